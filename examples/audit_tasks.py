"""The independent audit: export a few tasks, audit them, break one on purpose and audit again.

    python examples/audit_tasks.py [OUT_DIR]

The same from the command line: ``rasp-compiler testbed export OUT_DIR --programs lib:reverse
--random 0`` (which already refuses any task the audit fails) and ``rasp-compiler testbed audit
OUT_DIR``.
"""

import sys
import tempfile

from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from rasp_compiler.audit import audit_paths, audit_task, table_rows
from rasp_compiler.audit.report import COLUMNS, plain
from rasp_compiler.interp.tasks import export_tasks

out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
report = export_tasks(out, programs=["lib:reverse"], variants=["compiled", "rotated", "distractors"], n_pairs=8)
print(plain(COLUMNS, table_rows(audit_paths([out]))))

# store one gap 1% off: the audit's own forward pass disagrees, naming task, file and check
path = f"{out}/lib-reverse__rotated__s0/pairs.safetensors"
with safe_open(path, "np") as fh:
    meta = fh.metadata()
tensors = load_file(path)
tensors["t0.gap"] = tensors["t0.gap"] * 1.01
save_file(tensors, path, metadata=meta)
print(audit_task(f"{out}/lib-reverse__rotated__s0").reason)
