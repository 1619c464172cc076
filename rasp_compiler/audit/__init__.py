"""An independent audit of exported task folders: every claim re-derived from the files alone.

The checker follows only the documented format (docs/testbed_format.md, docs/weight_files.md):
it reads safetensors and JSON with the safetensors, numpy and json libraries, runs its own
float64 forward pass, and imports nothing else of ``rasp_compiler`` (a test enforces it), so
a bug in the compiler or in ``rasp_compiler.interp`` cannot hide itself by agreeing with its
own copy. ``audit_task(folder)`` gives a :class:`~rasp_compiler.audit.checks.TaskAudit`;
``rasp-compiler testbed audit DIR...`` prints one table.

Modules: :mod:`.files` (a task folder as plain arrays and dicts), :mod:`.forward` (the forward
pass with component hooks), :mod:`.checks` (the four checks), :mod:`.report` (the table).
"""

from .checks import TaskAudit, audit_task
from .files import AuditFileError, task_folders
from .report import audit_paths, figures_by_variant, table_rows

__all__ = ["AuditFileError", "TaskAudit", "audit_paths", "audit_task", "figures_by_variant", "table_rows",
           "task_folders"]
