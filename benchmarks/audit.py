"""The independent audit of a freshly exported task set, per variant, into docs/testbed.md.

    python benchmarks/audit.py [--programs lib] [--random 6] [--seeds 0,1] [--out /tmp/rasp_audit] [--no-write]

Exports the set as ``testbed export --programs lib --random 6 --seeds 0,1`` does (every default
variant) and the trained tasks of the committed weights (``benchmarks/results/trained``, as
``--variants trained`` uses them: no training), with the export's audit gate on. Every task the
export made is audited from its files (``rasp_compiler.audit``) before it is moved in; the
figures count them all, so a task the gate refused shows up as failing. Then the written set
is audited again from disk (``testbed audit``), which must pass every task. Writes the table
between the audit markers of docs/testbed.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from doc_section import replace_section  # noqa: E402  (benchmarks/, this script's folder)
from rasp_compiler.audit import audit_paths, figures_by_variant  # noqa: E402
from rasp_compiler.audit.report import VARIANT_COLUMNS, markdown  # noqa: E402
from rasp_compiler.interp.tasks import export_tasks  # noqa: E402
from rasp_compiler.interp.tasks.trained_gate import COMMITTED_DIR, TrainedBarWarning  # noqa: E402

BEGIN, END = "<!-- audit-benchmark:begin -->", "<!-- audit-benchmark:end -->"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default="lib")
    ap.add_argument("--random", type=int, default=6)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--out", default="/tmp/rasp_audit")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave the doc alone")
    args = ap.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    report = export_tasks(out / "set", programs=args.programs.split(","), seeds=seeds, n_random=args.random)
    committed = sorted(p.stem for p in COMMITTED_DIR.glob("*.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainedBarWarning)  # the trained gate's refusals are skipped notes
        trained = export_tasks(out / "trained", programs=[f"lib:{n}" for n in committed], variants=["trained"],
                               seeds=[0])
    t_export = time.perf_counter() - t0
    audits = report.audits + trained.audits
    t1 = time.perf_counter()
    again = audit_paths([out / "set", out / "trained"])
    t_audit = time.perf_counter() - t1
    refused = [a for a in audits if not a.ok]
    trained_bar = [s for s in trained.skipped if "misses the bar" in s]
    header = tuple("failing (not written)" if c == "failing tasks" else c for c in VARIANT_COLUMNS)
    lines = [
        f"Measured by `python benchmarks/audit.py --programs {args.programs} --random {args.random} --seeds "
        f"{args.seeds}`: `testbed export` of that set and of the trained tasks of the {len(committed)} committed "
        f"models ({len(audits)} tasks audited by the export's gate, {t_export:.0f} s with the export on 2 shared "
        f"cores; the {len(again)} written tasks audited again from disk by `testbed audit`: "
        f"{sum(a.ok for a in again)} pass, {t_audit:.0f} s; {len(report.errors) + len(trained.errors)} export errors).",
        "Forward disagreements count stated values and gaps; targets outside class count targets on some pair set "
        "of which the claimed circuit misses its variant's class; edge disagreements count structural edges or "
        "node reads/writes unlike the weights' and circuit members unlike the functional rule (n/a: trained "
        "tasks state no graph of their own weights); coverage is the share of circuit members some pair set "
        "exercises.",
        "",
        markdown(header, figures_by_variant(audits)),
        "",
        f"Refused by the audit (not written): {len(refused)}" + (":" if refused else "."),
    ]
    lines += [f"- {a.reason[:400]}" for a in refused[:20]] + ([f"- ... {len(refused) - 20} more"] if len(refused) > 20 else [])
    if trained_bar:
        lines += ["", f"Trained models the trained gate refused before the audit (docs/trained.md): {len(trained_bar)}."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        replace_section(ROOT / "docs" / "testbed.md", BEGIN, END, text)
        print("wrote docs/testbed.md")
    return 0 if all(a.ok for a in again) else 1


if __name__ == "__main__":
    raise SystemExit(main())
