"""Train the SIIT variant of library programs and write the figures to docs/trained.md.

For each program: compile it (the library's vocabulary, at most 5 tokens), train a
transformer from random weights with strict interchange-intervention training
(:mod:`rasp_compiler.interp.siit`), and measure task accuracy (every input up to the
maximum length), IIA and strict IIA (2,048 random interventions each). Trained weights are
cached under benchmarks/results/trained/<program>.safetensors (reused when the settings
match, so other benchmarks and task export load them instead of retraining); the table
goes between the markers of docs/trained.md, the raw figures to
benchmarks/results/trained/<program>.json (one file per program, so several runs of this
script on different programs can share the work; the table is rebuilt from every file).

    nice -n 10 .venv/bin/python benchmarks/train_siit.py            # every program below (~40 min on 2 busy cores)
    .venv/bin/python benchmarks/train_siit.py length reverse         # some programs (others keep their row)
    .venv/bin/python benchmarks/train_siit.py --retrain              # ignore the cache
    .venv/bin/python benchmarks/train_siit.py --render-only          # rewrite the doc from the stored figures
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rasp_compiler import compile_rasp_to_model  # noqa: E402
from rasp_compiler.export.safetensors_file import atomic_write  # noqa: E402
from rasp_compiler.interp.variants import make_variant  # noqa: E402
from rasp_compiler.interp.variants.trained import LIBRARY_SETTINGS  # noqa: E402
from rasp_compiler.lib import LIBRARY  # noqa: E402

CACHE = ROOT / "benchmarks" / "results" / "trained"
DOC = ROOT / "docs" / "trained.md"
BEGIN, END = "<!-- BEGIN train_siit (written by benchmarks/train_siit.py) -->", "<!-- END train_siit -->"
COMMAND = "nice -n 10 .venv/bin/python benchmarks/train_siit.py"

PROGRAMS = LIBRARY_SETTINGS  # program -> settings of the trained variant (beyond the defaults)
MAX_SEQ_LEN = 5

T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def run(name: str, settings: dict, retrain: bool) -> dict:
    entry = LIBRARY[name]
    n = min(entry.max_seq_len, MAX_SEQ_LEN)
    compiled = compile_rasp_to_model(entry.build(), vocab=entry.vocab, max_seq_len=n, compiler_bos="BOS")
    path = CACHE / f"{name}.safetensors"
    if retrain and path.exists():
        path.unlink()
    say(f"{name}: compiled {compiled}; training with {settings}")
    t = time.perf_counter()
    v = make_variant(compiled, "trained", seed=0, cache=path,
                     log=lambda e: say(f"  {name} step {e['step']}: " + ", ".join(
                         f"{k} {e[k]:.4f}" for k in ("behaviour", "interchange", "strict"))), **settings)
    extra = (v.model.metadata or {}).get("extra") or {}
    c = v.model.config
    row = {"program": name, "vocab": list(map(str, entry.vocab)), "max_seq_len": n, "layers": c.n_layers,
           "heads": c.n_heads, "d_model": c.d_model, "d_mlp": c.d_mlp, "params": v.model.n_params,
           "mapped": sum(1 for s in v.truth.scored if s in v.truth.circuit().nodes),
           "unmapped": sum(1 for s in v.truth.scored if s not in v.truth.circuit().nodes),
           "steps": v.settings["steps"], "accuracy": v.exactness.accuracy, "checked": v.exactness.how,
           "iia": v.exactness.metrics["iia"], "strict_iia": v.exactness.metrics["strict_iia"],
           "train_seconds": extra.get("seconds"), "wall_seconds": round(time.perf_counter() - t, 1),
           "file_kb": round(path.stat().st_size / 1024, 1)}
    say(f"{name}: accuracy {row['accuracy']:.4f}, IIA {row['iia']:.4f}, strict IIA {row['strict_iia']:.4f}")
    return row


def table(rows: list[dict]) -> str:
    ok = [r for r in rows if r["accuracy"] >= 0.99 and r["iia"] >= 0.95]
    lines = [BEGIN, "", f"Measured by `{COMMAND}` on {platform.machine()} "
             f"({platform.python_version()}, CPU; 2 cores shared with other jobs, so the training times vary "
             "with the load); trained weights in `benchmarks/results/trained/`, seed 0.", "",
             "| program | layers × heads | d_model | d_mlp | params | mapped / unmapped components | steps "
             "| accuracy | IIA | strict IIA | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['program']} | {r['layers']} × {r['heads']} | {r['d_model']} | {r['d_mlp']} | "
                     f"{r['params']} | {r['mapped']} / {r['unmapped']} | {r['steps']} | {r['accuracy']:.4f} | "
                     f"{r['iia']:.4f} | {r['strict_iia']:.4f} | {r['train_seconds']} |")
    lines += ["", f"Accuracy over every input up to length {MAX_SEQ_LEN} (exhaustive); IIA and strict IIA "
              "over 2,048 random interventions each (whole output sequence must match). "
              f"**{len(ok)} of {len(rows)} programs reach accuracy ≥ 0.99 and IIA ≥ 0.95** "
              f"({', '.join(r['program'] for r in ok) or 'none'}).", "", END]
    return "\n".join(lines)


def write_doc(rows: list[dict]) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Trained variant\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    atomic_write(DOC, (head + table(rows) + tail).encode())


def stored_rows() -> list[dict]:
    return [json.loads((CACHE / f"{p}.json").read_text()) for p in PROGRAMS if (CACHE / f"{p}.json").exists()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", nargs="*", help=f"default: {' '.join(PROGRAMS)}")
    ap.add_argument("--retrain", action="store_true", help="train even when cached weights exist")
    ap.add_argument("--render-only", action="store_true", help="rewrite the doc from the stored figures")
    args = ap.parse_args()
    unknown = [p for p in args.programs if p not in PROGRAMS]
    if unknown:
        ap.error(f"unknown program(s) {unknown}; known: {', '.join(PROGRAMS)}")
    for name in [] if args.render_only else (args.programs or list(PROGRAMS)):
        row = run(name, PROGRAMS[name], args.retrain)
        atomic_write(CACHE / f"{name}.json", (json.dumps(row, indent=1) + "\n").encode())
        write_doc(stored_rows())
    write_doc(stored_rows())
    say("done")


if __name__ == "__main__":
    main()
