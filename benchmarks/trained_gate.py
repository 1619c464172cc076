"""Which committed trained models the export publishes, and every figure of the bar, per task.

    python benchmarks/trained_gate.py [--out /tmp/rasp_trained] [--no-write]

Exports ``--variants trained`` (seed 0) for every program with committed weights in
benchmarks/results/trained/, exactly as ``rasp-compiler testbed export`` does (no training:
the committed weights are used), and measures for each task the figures of
:mod:`rasp_compiler.interp.siit.gate` — for a refused model too, on the pairs the export
would have written. Writes the table between the trained-gate markers of docs/trained.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from doc_section import replace_section  # noqa: E402  (benchmarks/, this script's folder)
from rasp_compiler.interp.ground_truth import aligned_truth  # noqa: E402
from rasp_compiler.interp.siit.gate import BAR, misses, pair_figures  # noqa: E402
from rasp_compiler.interp.tasks import export_tasks, task_pairs  # noqa: E402
from rasp_compiler.interp.tasks.sources import library_sources  # noqa: E402
from rasp_compiler.interp.tasks.trained_gate import COMMITTED_DIR, TrainedBarWarning, trained_variant  # noqa: E402
from rasp_compiler.interp.variants.trained import LIBRARY_SETTINGS  # noqa: E402

BEGIN, END = "<!-- BEGIN trained_gate (written by benchmarks/trained_gate.py) -->", "<!-- END trained_gate -->"
COMMAND = "python benchmarks/trained_gate.py"


def figures(name: str) -> dict:
    """The gate's figures for committed program ``name`` at seed 0 (as the export measures them)."""
    source = library_sources([name])[0]
    v = trained_variant(source, source.compile(), 0)
    truth = aligned_truth(v.truth, v.model)
    entries, _ = task_pairs(v.model, truth, 16, 0)
    m = {"iia": v.exactness.metrics["iia"], "strict_iia": v.exactness.metrics["strict_iia"],
         **pair_figures(v.model, truth, [(p, o) for p, o, _ in entries])}
    return {"program": name, "accuracy": v.exactness.accuracy, **m, "misses": misses(v.exactness.accuracy, m)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/rasp_trained_gate"))
    ap.add_argument("--no-write", action="store_true", help="print the table, leave the doc alone")
    args = ap.parse_args()
    names = [n for n in LIBRARY_SETTINGS if (COMMITTED_DIR / f"{n}.safetensors").is_file()]
    shutil.rmtree(args.out, ignore_errors=True)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainedBarWarning)  # the refusals are in report.skipped
        report = export_tasks(args.out, programs=[f"lib:{n}" for n in names], variants=["trained"], seeds=[0])
    seconds = time.perf_counter() - t
    written = {t["name"]: t for t in report.tasks}
    rows = []
    for n in names:
        row = figures(n)
        task = written.get(f"lib-{n}__trained__s0")
        if task is not None:  # the export wrote these very figures into task.json
            stored = json.loads((args.out / task["name"] / "task.json").read_text())["exactness"]["metrics"]
            assert all(abs(stored[k] - row[k]) <= 1e-9 for k in stored if k in row), (n, stored, row)
        rows.append({**row, "exported": task is not None})
    lines = [f"Measured by `{COMMAND}` ({platform.python_version()}, CPU): `testbed export --variants trained` "
             f"of the {len(names)} programs with committed weights (seed 0, no training: {seconds:.0f} s for the "
             f"export); outside effect and faithfulness on the 16 pairs each task stores.", "",
             "| program | accuracy | IIA | strict IIA | outside_effect_max | faithfulness | exported |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = "yes" if r["exported"] else "refused: " + "; ".join(m.split(" (")[0] for m in r["misses"])
        lines.append(f"| {r['program']} | {r['accuracy']:.4f} | {r['iia']:.4f} | {r['strict_iia']:.4f} | "
                     f"{r['outside_effect_max']:.3f} | {r['faithfulness_min']:.3f}..{r['faithfulness_max']:.3f} | "
                     f"{verdict} |")
    ok = [r for r in rows if r["exported"]]
    lines += ["", f"Bar: accuracy ≥ {BAR.accuracy}, IIA ≥ {BAR.iia}, strict IIA ≥ {BAR.strict_iia}, "
              f"outside_effect_max ≤ {BAR.unmapped_bound}, faithfulness within 1 ± {BAR.faithfulness_bound}. "
              f"**{len(ok)} of {len(rows)} exported**; among them the largest outside effect is "
              f"{max((r['outside_effect_max'] for r in ok), default=float('nan')):.3f} and faithfulness spans "
              f"{min((r['faithfulness_min'] for r in ok), default=float('nan')):.3f}.."
              f"{max((r['faithfulness_max'] for r in ok), default=float('nan')):.3f}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        replace_section(ROOT / "docs" / "trained.md", BEGIN, END, body, heading="## The export gate (measured)")


if __name__ == "__main__":
    main()
