"""What the run-time one-hot guard costs: apply and apply_batch with and without it.

For each library program (compiled at --length, default its own max_seq_len and 16),
times ``model.apply`` on one full-length input (numpy backend) and ``apply_batch`` on
--batch random inputs (numpy and jitted JAX, after a warm-up run), each with
``guard=True`` (the default) and ``guard=False``, best of --repeats, and writes the
table into its section of docs/reliability.md.

Run (from the repo root):
  .venv/bin/python benchmarks/guard_cost.py
  .venv/bin/python benchmarks/guard_cost.py --lengths 5,16 --batch 256 --repeats 15
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from doc_section import replace_section  # noqa: E402

from rasp_compiler import compile_rasp_to_model  # noqa: E402
from rasp_compiler.lib import LIBRARY  # noqa: E402
from rasp_compiler.verify import random_inputs  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
BEGIN, END = "<!-- guard-cost:begin (benchmarks/guard_cost.py) -->", "<!-- guard-cost:end -->"


def best_pair(run, repeats: int) -> tuple[float, float]:
    """Best time of ``run(False)`` and of ``run(True)``, interleaved so that a change in the
    machine's load hits both alike."""
    off, on = [], []
    for _ in range(repeats):
        for guard, times in ((False, off), (True, on)):
            t0 = time.perf_counter()
            run(guard)
            times.append(time.perf_counter() - t0)
    return min(off), min(on)


def measure(name: str, length: int, batch: int, repeats: int) -> dict:
    entry = LIBRARY[name]
    model = compile_rasp_to_model(entry.build(), entry.vocab, length)
    c = model.config
    one = [c.bos, *random_inputs(c.vocab, length, 1, seed=0, full_length=1)[0]]
    many = [[c.bos, *x] for x in random_inputs(c.vocab, length, batch, seed=1, full_length=batch // 2)]
    row = {"program": name, "length": length, "d_model": c.d_model}
    for key, run in (("apply", lambda g: model.apply(one, guard=g)),
                     ("batch_numpy", lambda g: model.apply_batch(many, backend="numpy", guard=g)),
                     ("batch_jax", lambda g: model.apply_batch(many, backend="jax", guard=g))):
        run(True), run(False)  # warm-up: JAX compiles each variant once
        row[key] = best_pair(run, repeats)
    return row


def _ms(t: float) -> str:
    return f"{t * 1000:.2f}" if t < 0.1 else f"{t * 1000:.0f}"


def table(rows: list[dict], batch: int, repeats: int, seconds: float) -> str:
    lines = [f"Measured by `benchmarks/guard_cost.py` on {platform.python_implementation()} "
             f"{platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.0f} "
             f"({time.strftime('%Y-%m-%d')}, {seconds:.0f} s; a shared machine, so single figures are noisy): "
             f"time per call in ms without / with the guard (best of {repeats}); `apply` is one full-length "
             f"input (numpy), `apply_batch` {batch} random inputs.", "",
             "| program | length | d_model | apply | apply_batch numpy | apply_batch jax |", "|---|---|---|---|---|---|"]
    ratios = {"apply": [], "batch_numpy": [], "batch_jax": []}
    for r in rows:
        cells = []
        for key in ratios:
            off, on = r[key]
            ratios[key].append(on / off)
            cells.append(f"{_ms(off)} / {_ms(on)} ({(on / off - 1) * 100:+.0f}%)")
        lines.append(f"| {r['program']} | {r['length']} | {r['d_model']} | " + " | ".join(cells) + " |")
    med = {k: (statistics.median(v) - 1) * 100 for k, v in ratios.items()}
    worst = {k: (max(v) - 1) * 100 for k, v in ratios.items()}
    extra = statistics.median(r["apply"][1] - r["apply"][0] for r in rows)
    lines += ["", f"Median cost of the guard: {med['apply']:+.0f}% on `apply` ({extra * 1e6:.0f} µs a call), "
                  f"{med['batch_numpy']:+.0f}% on `apply_batch` in numpy, {med['batch_jax']:+.0f}% in JAX (largest: "
                  f"{worst['apply']:+.0f}%, {worst['batch_numpy']:+.0f}%, {worst['batch_jax']:+.0f}%)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="lib,16", help="comma-separated: 'lib' (each program's own) or numbers")
    parser.add_argument("--programs", default=",".join(LIBRARY), help="comma-separated library names")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    t0, rows = time.perf_counter(), []
    for name in args.programs.split(","):
        for spec in args.lengths.split(","):
            length = LIBRARY[name].max_seq_len if spec == "lib" else int(spec)
            if rows and rows[-1]["program"] == name and rows[-1]["length"] == length:
                continue
            row = measure(name, length, args.batch, args.repeats)
            rows.append(row)
            print(name, length, {k: tuple(round(t * 1000, 2) for t in v) for k, v in row.items()
                                 if isinstance(v, tuple)}, flush=True)
    text = table(rows, args.batch, args.repeats, time.perf_counter() - t0)
    print(text)
    if not args.no_doc:
        replace_section(DOC, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
