"""A long differential-fuzzing campaign: random programs, compiled, against rasp.evaluate.

For each seed, rasp_compiler.fuzz.check_seed generates a random well-typed program (of
the given depth, or of depths cycling through --depths), regenerates it while the
compiler rejects it (UnsupportedProgramError, counted and grouped by reason), compiles
it, and compares the model's output with rasp.evaluate on every short input and on
random ones (half of them of the full length). A printable program is also printed,
parsed back and evaluated on the same inputs (and the parsed program is compiled and
checked too). Every --jax-every-th program is also run with the jitted JAX forward
pass, and every --file-every-th is saved to a weight file, loaded back and checked.

With --edges N it runs the edge campaign instead (rasp_compiler.fuzz.edges: N programs
of each edge kind: extreme magnitudes, near-equal floats, bool/int mixes, rare-input
categorical Aggregates, sizes around resource limits); each must be refused with a
compiler error or agree with rasp.evaluate on every (or many random) inputs. It writes
benchmarks/results/fuzz_edges.json and its section of docs/reliability.md.

Run (from the repo root):
  .venv/bin/python benchmarks/fuzz.py --programs 1000 --seed 0 --depths 2,3,4,5
  .venv/bin/python benchmarks/fuzz.py --programs 200 --depth 3
  .venv/bin/python benchmarks/fuzz.py --edges 200
Outputs: a summary on stdout and benchmarks/results/fuzz.json.
Exit status 1 if any compiled model disagreed with rasp.evaluate.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rasp_compiler.fuzz import check_seed
from rasp_compiler.fuzz.generator import rejection_reason

RESULTS = Path(__file__).parent / "results" / "fuzz.json"
EDGE_RESULTS = Path(__file__).parent / "results" / "fuzz_edges.json"
DOC = Path(__file__).parent.parent / "docs" / "reliability.md"
EDGE_BEGIN, EDGE_END = "<!-- edges:begin (benchmarks/fuzz.py --edges) -->", "<!-- edges:end -->"


def run_edge_campaign(per_kind: int, seed: int, console: Console) -> dict:
    from rasp_compiler.fuzz.edges import KINDS, check_edge, generate_edge

    start = time.perf_counter()
    by_kind: dict[str, Counter] = {k: Counter() for k in KINDS}
    slowest: dict[str, float] = {k: 0.0 for k in KINDS}
    mismatches, refusals = [], {}
    columns = [TextColumn("[bold]edges[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=per_kind * len(KINDS))
        for kind in KINDS:
            progress.update(task, description=kind)
            for s in range(seed, seed + per_kind):
                r = check_edge(generate_edge(kind, s))
                by_kind[kind][r.status] += 1
                by_kind[kind]["inputs"] += r.checked
                slowest[kind] = max(slowest[kind], r.seconds)
                if r.status == "mismatch":
                    mismatches.append({"kind": kind, "seed": s, "program": r.case.description, "detail": r.detail})
                elif r.status == "refused":
                    refusals.setdefault(kind, {}).setdefault(r.detail.split(":")[0], [s, r.detail[:300]])
                progress.advance(task)
    return {"per_kind": per_kind, "seed": seed, "seconds": round(time.perf_counter() - start, 1),
            "by_kind": {k: dict(v) for k, v in by_kind.items()},
            "slowest_seconds": {k: round(v, 2) for k, v in slowest.items()},
            "mismatches": mismatches, "refusal_examples": refusals,
            "python": platform.python_version(), "date": datetime.date.today().isoformat()}


def edge_markdown(res: dict, command: str) -> str:
    rows = ["| kind | programs | refused | exact | mismatches | inputs compared | slowest (s) |",
            "|---|---|---|---|---|---|---|"]
    for kind, c in res["by_kind"].items():
        total = c.get("exact", 0) + c.get("refused", 0) + c.get("mismatch", 0)
        rows.append(f"| {kind} | {total} | {c.get('refused', 0)} | {c.get('exact', 0)} | {c.get('mismatch', 0)} | "
                    f"{c.get('inputs', 0):,} | {res['slowest_seconds'][kind]} |")
    lines = [EDGE_BEGIN, "", f"Measured by `{command}` ({res['date']}, Python {res['python']}, "
             f"{res['seconds']} s in all): **{len(res['mismatches'])} mismatches**.", "", *rows, "",
             "One refusal of each kind (the first seen), as the compiler words it:", ""]
    for kind, examples in res["refusal_examples"].items():
        for name, (seed, text) in list(examples.items())[:2]:
            text = " ".join(text.split()).replace("|", "\\|")
            lines.append(f"- {kind} (seed {seed}): {text}")
    lines += ["", EDGE_END]
    return "\n".join(lines)


def write_edge_section(res: dict, command: str, doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    section = edge_markdown(res, command)
    if EDGE_BEGIN in text and EDGE_END in text:
        head, rest = text.split(EDGE_BEGIN, 1)
        text = head + section + rest.split(EDGE_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = doc.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(doc)


def _reason_of(error: str) -> str:
    name, _, message = error.partition(": ")
    return rejection_reason(name, message)


def run(programs: int, seed: int, depths: list[int], jax_every: int, file_every: int,
        compile_text: bool, stage_seconds: float, console: Console) -> dict:
    start = time.perf_counter()
    rejections: Counter = Counter()
    rejection_examples: dict[str, int] = {}
    compiler_errors: dict[str, dict] = {}
    failures: list[dict] = []
    text_rejections: list[dict] = []
    round_trip: Counter = Counter()
    text_compiled: Counter = Counter()
    extra: dict[str, Counter] = defaultdict(Counter)
    ops: Counter = Counter()
    layers: Counter = Counter()
    by_depth: dict[int, Counter] = defaultdict(Counter)
    totals = Counter()

    columns = [TextColumn("[bold]fuzz[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=programs)
        for i in range(programs):
            s = seed + i
            depth = depths[i % len(depths)]
            result = check_seed(s, depth, compile_text=compile_text, stage_seconds=stage_seconds,
                                jax=jax_every > 0 and i % jax_every == 0,
                                via_file=file_every > 0 and i % file_every == 0)
            totals["programs"] += 1
            totals["generated"] += 1 + len(result.rejections)
            for r in result.rejections:
                rejections[r.reason] += 1
                rejection_examples.setdefault(r.reason, s)
            if result.compile_error:
                key = _reason_of(result.compile_error)
                entry = compiler_errors.setdefault(key, {"count": 0, "seeds": [], "example": result.compile_error})
                entry["count"] += 1
                if len(entry["seeds"]) < 10:
                    entry["seeds"].append({"seed": s, "depth": depth})
            else:
                totals["compiled"] += 1
                by_depth[depth]["compiled"] += 1
            totals["inputs"] += result.inputs_checked
            totals["mismatching_inputs"] += result.n_mismatches
            if result.n_mismatches:
                totals["mismatching_programs"] += 1
            if result.check_error:
                totals["check_errors"] += 1
            if result.guarded:  # an unproven Aggregate that conflicts, stopped by the one-hot guard
                totals["guarded"] += 1
            round_trip[result.round_trip] += 1
            text_compiled[result.text_compiled] += 1
            if result.text_compiled in ("rejected", "timeout"):
                text_rejections.append({"seed": s, "depth": depth, "status": result.text_compiled,
                                        "reason": result.text_compiled_detail})
            for name, status in result.extra_checks.items():
                extra[name]["ok" if status == "ok" else status.split(":")[0]] += 1
            for op in set(result.ops):
                ops[op] += 1
            if result.layers:
                layers[result.layers] += 1
            by_depth[depth]["programs"] += 1
            by_depth[depth]["inputs"] += result.inputs_checked
            if result.failed:
                gen = result.generated
                failures.append({"seed": s, "depth": depth, "summary": result.summary(),
                                 "attempt": gen.attempt if gen else None,
                                 "text": gen.text if gen else None,
                                 "ops": list(result.ops)})
            if not console.is_terminal and (i + 1) % 50 == 0:  # no live bar when stderr is a file or pipe
                console.print(f"{i + 1}/{programs} programs, {time.perf_counter() - start:.0f} s, "
                              f"{totals['inputs']:,} inputs, {totals['mismatching_inputs']} mismatches", markup=False)
            progress.update(task, advance=1, description=(
                f"inputs {totals['inputs']:,}  mismatches {totals['mismatching_inputs']}  "
                f"rejected {sum(rejections.values())}  crashes {sum(e['count'] for e in compiler_errors.values())}  "
                f"round-trip failures {sum(v for k, v in round_trip.items() if k not in ('ok', 'not_printable', 'skipped'))}"))
    seconds = time.perf_counter() - start
    rejected = sum(rejections.values())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "command": " ".join(["benchmarks/fuzz.py", *sys.argv[1:]]),
        "config": {"programs": programs, "seed": seed, "depths": depths, "jax_every": jax_every,
                   "file_every": file_every, "compile_text": compile_text,
                   "stage_seconds": stage_seconds},
        "programs_tried": totals["programs"],
        "programs_generated": totals["generated"],
        "programs_compiled": totals["compiled"],
        "programs_rejected": rejected,
        "rejection_rate": rejected / max(totals["generated"], 1),
        "rejections_by_reason": {k: {"count": v, "example_seed": rejection_examples[k]}
                                 for k, v in rejections.most_common()},
        "compiler_errors": dict(sorted(compiler_errors.items(), key=lambda kv: -kv[1]["count"])),
        "inputs_checked": totals["inputs"],
        "mismatching_programs": totals["mismatching_programs"],
        "mismatching_inputs": totals["mismatching_inputs"],
        "check_errors": totals["check_errors"],
        "guarded_programs": totals["guarded"],
        "round_trip": dict(round_trip),
        "parsed_text_compiled": dict(text_compiled),
        "parsed_text_rejected_or_slow": text_rejections,
        "extra_checks": {k: dict(v) for k, v in extra.items()},
        "by_depth": {str(d): dict(c) for d, c in sorted(by_depth.items())},
        "layers": {str(k): v for k, v in sorted(layers.items())},
        "op_coverage": dict(sorted(ops.items())),
        "seconds": round(seconds, 1),
        "failures": failures,
    }


def print_summary(res: dict, console: Console) -> None:
    t = Table(title="differential fuzzing", show_header=False)
    t.add_column(justify="left")
    t.add_column(justify="right")
    crashes = sum(e["count"] for e in res["compiler_errors"].values())
    rt = res["round_trip"]
    rt_bad = sum(v for k, v in rt.items() if k not in ("ok", "not_printable", "skipped"))
    rows = [
        ("programs tried (seeds)", f"{res['programs_tried']:,}"),
        ("programs generated (incl. rejected)", f"{res['programs_generated']:,}"),
        ("rejected by the compiler", f"{res['programs_rejected']:,} ({100 * res['rejection_rate']:.2f}%)"),
        ("compiled and checked", f"{res['programs_compiled']:,}"),
        ("compiler crashes / failed self-checks", f"{crashes:,}"),
        ("inputs checked", f"{res['inputs_checked']:,}"),
        ("mismatching inputs (must be 0)", f"{res['mismatching_inputs']:,}"),
        ("mismatching programs", f"{res['mismatching_programs']:,}"),
        ("unproven Aggregates caught by the guard", f"{res.get('guarded_programs', 0):,}"),
        ("text round trips ok / printable", f"{rt.get('ok', 0):,} / {sum(v for k, v in rt.items() if k != 'not_printable'):,}"),
        ("text round trips that changed the program", f"{rt_bad:,}"),
        ("parsed text compiled and exact", f"{res['parsed_text_compiled'].get('ok', 0):,}"),
        ("parsed text rejected / over the time limit", f"{res['parsed_text_compiled'].get('rejected', 0):,} / "
                                                        f"{res['parsed_text_compiled'].get('timeout', 0):,}"),
        *[(f"{name} checks", ", ".join(f"{k} {v}" for k, v in c.items())) for name, c in res["extra_checks"].items()],
        ("time", f"{res['seconds']:.0f} s"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    if res["rejections_by_reason"]:
        console.print("[bold]rejections by reason[/bold]")
        for reason, info in res["rejections_by_reason"].items():
            console.print(f"  {info['count']:5d}  {reason}  (e.g. seed {info['example_seed']})", markup=False)
    if res["compiler_errors"]:
        console.print("[bold]compiler crashes and failed self-checks (bugs)[/bold]")
        for reason, info in res["compiler_errors"].items():
            seeds = ", ".join(f"{x['seed']}@d{x['depth']}" for x in info["seeds"][:5])
            console.print(f"  {info['count']:5d}  {reason}  (seeds {seeds})", markup=False)
    bad = [f for f in res["failures"] if "compile error" not in f["summary"]]
    if bad:
        console.print("[bold]other failures[/bold]")
        for f in bad[:20]:
            console.print(f"  {f['summary'][:300]}", markup=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=300, help="how many seeds (programs) to try")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--depth", type=int, default=None, help="program depth (levels of operations)")
    parser.add_argument("--depths", default="2,3,4,5", help="depths to cycle through when --depth is not given")
    parser.add_argument("--jax-every", type=int, default=50, help="also run every Nth model with JAX (0: never)")
    parser.add_argument("--file-every", type=int, default=10,
                        help="also save/load every Nth model through a weight file (0: never)")
    parser.add_argument("--no-compile-text", action="store_true", help="do not compile the parsed printed programs")
    parser.add_argument("--stage-seconds", type=float, default=30.0,
                        help="time limit of each stage of one program (compile, check, round trip, compile text)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--edges", type=int, default=0,
                        help="run the edge campaign instead: this many programs of each edge kind")
    parser.add_argument("--no-docs", action="store_true", help="with --edges: do not rewrite docs/reliability.md")
    args = parser.parse_args(argv)
    if args.edges:
        res = run_edge_campaign(args.edges, args.seed, Console(stderr=True))
        command = f"python benchmarks/fuzz.py --edges {args.edges}" + (f" --seed {args.seed}" if args.seed else "")
        Console().print(edge_markdown(res, command), markup=False)
        EDGE_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        EDGE_RESULTS.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        if not args.no_docs:
            write_edge_section(res, command)
        return 1 if res["mismatches"] else 0
    if args.programs < 1:
        parser.error("--programs must be at least 1")
    depths = [args.depth] if args.depth is not None else [int(d) for d in args.depths.split(",") if d.strip()]
    if not depths or min(depths) < 1:
        parser.error("depths must be positive integers")
    console = Console(stderr=True)
    res = run(args.programs, args.seed, depths, args.jax_every, args.file_every, not args.no_compile_text,
              args.stage_seconds, console)
    print_summary(res, Console())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    Console().print(f"results written to {args.out}")
    return 1 if res["mismatching_inputs"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
