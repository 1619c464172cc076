"""Soundness campaign of the per-position Aggregate analysis (graph/positional.py).

For each seed, rasp_compiler.fuzz.position_programs builds a random program whose
categorical Aggregates select by position (valid or not), evaluates every input
(strict), and checks that no proven Aggregate conflicts and that every input's values
fit one case of the analysis; every --compile-every-th program is also compiled and
compared with rasp.evaluate on every input. Writes its section of docs/reliability.md.

Run (from the repo root):
  .venv/bin/python benchmarks/position_proof.py --programs 5000 --steps default,12
Exit status 1 if any proof was wrong or any compiled model disagreed.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import platform
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from doc_section import replace_section  # noqa: E402

from rasp_compiler.fuzz.position_programs import check_position_program, compile_position_program  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
BEGIN, END = "<!-- position-proof:begin (benchmarks/position_proof.py) -->", "<!-- position-proof:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=2000, help="seeds per step setting")
    parser.add_argument("--steps", default="default,12", help="comma-separated: 'default' (3-7) or a number")
    parser.add_argument("--compile-every", type=int, default=5)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # SequenceMap-of-itself notices
    rows, failures, started = [], [], time.perf_counter()
    for steps_name in args.steps.split(","):
        steps = None if steps_name == "default" else int(steps_name)
        total, outcomes, slowest, t0 = Counter(), Counter(), 0.0, time.perf_counter()
        for seed in range(args.programs):
            check = check_position_program(seed, steps)
            for key in ("aggregates", "proven", "by_positions", "conflicting", "inputs"):
                total[key] += getattr(check, key)
            slowest = max(slowest, check.slowest)
            failures.extend(check.failures)
            if seed % args.compile_every == 0:
                outcome = compile_position_program(seed, steps)
                outcomes[outcome if outcome in ("exact", "refused") else "mismatch"] += 1
                if outcome not in ("exact", "refused"):
                    failures.append(outcome)
        rows.append((steps_name if steps is not None else "3-7", args.programs, total, outcomes,
                     slowest, time.perf_counter() - t0))
    elapsed = time.perf_counter() - started
    body = _section(rows, failures, elapsed, args)
    print(body)
    if not args.no_doc:
        replace_section(DOC, BEGIN, END, body)
    return 1 if failures else 0


def _section(rows, failures, elapsed: float, args) -> str:
    today = datetime.date.today().isoformat()
    lines = [f"Measured by `python benchmarks/position_proof.py --programs {args.programs} --steps {args.steps}` "
             f"({today}, Python {platform.python_version()}, {elapsed:.1f} s in all): "
             f"**{len(failures)} wrong proofs or mismatches**.", "",
             "| steps | programs | categorical Aggregates | proven (any rule) | proven per position | "
             "conflicting on some input | inputs fitted to a case | compiled: exact / refused / mismatch | "
             "slowest proof (ms) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for steps, programs, t, o, slowest, _ in rows:
        lines.append(f"| {steps} | {programs:,} | {t['aggregates']:,} | {t['proven']:,} | {t['by_positions']:,} | "
                     f"{t['conflicting']:,} | {t['inputs']:,} | {o['exact']:,} / {o['refused']:,} / "
                     f"{o['mismatch']:,} | {slowest * 1000:.1f} |")
    lines += [f"- {f}" for f in failures[:5]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
