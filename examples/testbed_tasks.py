"""The testbed as a dataset: export a few tasks, load one back, score a method on it.

    python examples/testbed_tasks.py [OUT_DIR]      # default: out/testbed_tasks

The same from the command line: ``rasp-compiler testbed export OUT_DIR --programs lib:reverse
--random 0`` and ``rasp-compiler testbed score --method eap OUT_DIR/lib-reverse__rotated__s0``.
"""

import sys

from rasp_compiler.interp.tasks import export_tasks, load_task
from rasp_compiler.interp.tasks.score import score_model

out = sys.argv[1] if len(sys.argv) > 1 else "out/testbed_tasks"  # under the working directory; ignored by git
report = export_tasks(out, programs=["lib:reverse"], variants=["compiled", "rotated"], n_pairs=8)
print(f"wrote {len(report.tasks)} tasks to {out}")

task = load_task(f"{out}/lib-reverse__rotated__s0")
print(task.name, task.model.sizes(), "targets:", list(task.pairs))
print("true circuit of the output:", sorted(task.truth.circuit().nodes))

scored = score_model(task.model, task.truth, "edge_patching", n_pairs=8, seed=task.seed, pairs=task.pairs)
for t in scored.data["targets"]:
    print(f"{t['target']}: active ROC AUC {t['views']['active']['auc']}, circuit edges {len(t['circuit'])}")
