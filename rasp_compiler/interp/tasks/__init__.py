"""The testbed as a dataset on disk: one folder per task (program x variant x seed).

    from rasp_compiler.interp.tasks import export_tasks, load_task
    report = export_tasks("tasks/", programs=["lib"], n_random=40)   # + manifest.json
    task = load_task("tasks/lib-reverse__rotated__s0")
    task.model, task.truth, task.pairs["reverse"]

A task folder is framework-neutral (safetensors with TransformerLens names, plain JSON):
``model.safetensors``, ``circuit.json``, ``pairs.json`` + ``pairs.safetensors``,
``task.json``, ``program.rasp`` (when the program has text) and ``basis.safetensors``
(when the residual stream is not in the standard basis). See docs/testbed_format.md.

* :mod:`.sources` — which programs (library, examples, random);
* :mod:`.circuit` — a ground truth as JSON and back;
* :mod:`.pairs_io` — fixed pairs and their metric on disk;
* :mod:`.export` — writing tasks and the manifest, atomically;
* :mod:`.trained_gate` — trained tasks: committed or cached weights, and the bar they must meet;
* :mod:`.load` — reading a task back.
"""

from rasp_compiler.interp.tasks.export import ExportReport, export_tasks, task_pairs, write_task
from rasp_compiler.interp.tasks.load import Task, is_task, load_manifest, load_task, task_dirs
from rasp_compiler.interp.tasks.sources import Source, TaskSetError, select_sources

__all__ = ["ExportReport", "Source", "Task", "TaskSetError", "export_tasks", "is_task", "load_manifest",
           "load_task", "select_sources", "task_dirs", "task_pairs", "write_task"]
