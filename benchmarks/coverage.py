"""How much of the structural circuit the exported pair sets exercise, per variant.

    python benchmarks/coverage.py [--programs lib] [--random 6] [--seeds 0] [--out /tmp/rasp_cov] [--no-write]

Exports the task set as ``testbed export`` does, then reads every task's ``circuit.json``
alone (no package code in the count): a structural member (scored component or edge of a
target's circuit) counts as exercised when some pair set's ``active`` circuit lists it.
Also counts what the first (``main``, same-length) set alone exercises, and the members no
input can move at all (edges out of ``embed`` along position directions only:
:func:`rasp_compiler.interp.coverage.input_independent`). Writes the coverage section of
docs/testbed.md (between its coverage markers).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from doc_section import replace_section  # noqa: E402  (benchmarks/, this script's folder)
from rasp_compiler.interp.coverage import MAIN, input_independent  # noqa: E402
from rasp_compiler.interp.tasks import export_tasks, load_task  # noqa: E402

BEGIN, END = "<!-- coverage-benchmark:begin -->", "<!-- coverage-benchmark:end -->"


def count(folder: Path) -> dict:
    """Members, exercised by some pair set, by ``main`` alone, input-independent; silent ones."""
    circuit = json.loads((folder / "circuit.json").read_text())
    task = load_task(folder)
    out = collections.Counter()
    silent = []
    for c in circuit["circuits"]:
        members = [("node", n) for n in c["nodes"]] + [("edge", tuple(e)) for e in c["edges"]]
        active = c.get("active", {})
        hit = {("node", n) for a in active.values() for n in a["nodes"]} | \
              {("edge", tuple(e)) for a in active.values() for e in a["edges"]}
        main = active.get(MAIN, {"nodes": [], "edges": []})
        main_hit = {("node", n) for n in main["nodes"]} | {("edge", tuple(e)) for e in main["edges"]}
        fixed = {("edge", e) for e in input_independent(task.model, task.truth, c["target"])}
        out["members"] += len(members)
        out["exercised"] += sum(m in hit for m in members)
        out["main"] += sum(m in main_hit for m in members)
        out["fixed"] += len(fixed)
        out["with_second_set"] += int(len(active) > 1)
        out["targets"] += 1
        silent += [(c["target"], m) for m in members if m not in hit and m not in fixed]
    return {"counts": out, "silent": silent}


def table(per_kind: dict, silent: dict) -> str:
    pct = lambda a, b: f"{100 * a / b:.1f}%" if b else "-"
    lines = ["| variant | tasks | targets (with a second set) | structural members | exercised, `main` only | "
             "exercised, some pair set | no input moves them | exercised of the rest |",
             "|---|---|---|---|---|---|---|---|"]
    total = collections.Counter()
    for kind, (n, c) in sorted(per_kind.items()):
        total += c
        lines.append(f"| {kind} | {n} | {c['targets']} ({c['with_second_set']}) | {c['members']} | "
                     f"{pct(c['main'], c['members'])} | {pct(c['exercised'], c['members'])} | {c['fixed']} | "
                     f"{pct(c['exercised'], c['members'] - c['fixed'])} |")
    t = total
    lines.append(f"| **all** | {sum(n for n, _ in per_kind.values())} | {t['targets']} ({t['with_second_set']}) | "
                 f"{t['members']} | {pct(t['main'], t['members'])} | {pct(t['exercised'], t['members'])} | "
                 f"{t['fixed']} | {pct(t['exercised'], t['members'] - t['fixed'])} |")
    left = [f"{task}: {target} {kind} {name}" for task, rows in sorted(silent.items())
            for target, (kind, name) in rows]
    lines += ["", f"Members silent on every pair set although some input could move them: {len(left)}"
              + (":" if left else ".")]
    lines += [f"- `{row}`" for row in left[:30]] + ([f"- ... {len(left) - 30} more"] if len(left) > 30 else [])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default="lib")
    ap.add_argument("--random", type=int, default=6)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--variants", default=None, help="comma-separated kinds (default: export's default)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/rasp_coverage_tasks"))
    ap.add_argument("--no-write", action="store_true", help="print the table, leave docs/testbed.md alone")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    report = export_tasks(args.out, programs=args.programs.split(","), n_random=args.random, seeds=seeds,
                          variants=args.variants.split(",") if args.variants else None,
                          progress=lambda name, done, total: print(f"[{done}/{total}] {name}", flush=True))
    per_kind: dict = {}
    silent = {}
    for entry in report.tasks:
        got = count(args.out / entry["name"])
        kind = entry["variant"]["kind"]
        n, c = per_kind.get(kind, (0, collections.Counter()))
        per_kind[kind] = (n + 1, c + got["counts"])
        if got["silent"]:
            silent[entry["name"]] = got["silent"]
    seconds = time.perf_counter() - start
    body = (f"Measured by `python benchmarks/coverage.py --programs {args.programs} --random {args.random} "
            f"--seeds {args.seeds}` ({len(report.tasks)} tasks, {seconds:.0f} s; {len(report.errors)} export "
            f"errors):\n\n" + table(per_kind, silent))
    print(body)
    for e in report.errors:
        print("error:", e["task"], e["error"], file=sys.stderr)
    if not args.no_write:
        replace_section(ROOT / "docs" / "testbed.md", BEGIN, END, body, heading="### Coverage (measured)")


if __name__ == "__main__":
    main()
