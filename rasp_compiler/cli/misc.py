"""``list``, ``demo`` and ``generate``: the library, a one-command tour, random programs."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from rasp_compiler.cli.common import (
    LIB_PREFIX,
    _describe,
    _error,
    app,
    command,
    err,
    out,
    unknown_name,
    writing,
)
from rasp_compiler.cli.model_commands import _print_report, _result_table, _verify


@app.command("list")
def list_command() -> None:
    """List the library programs usable as lib:NAME."""
    from rasp_compiler.lib import LIBRARY

    table = Table("name", "vocab", "description")
    for name, entry in LIBRARY.items():
        table.add_row(f"lib:{name}", escape(",".join(map(str, entry.vocab))), escape(entry.description))
    out.print(table)


# ---------------------------------------------------------------------------- demo
@app.command("demo")
def demo_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the demo weight file.")]
    = Path("out/demo.safetensors"),
    program: Annotated[str, typer.Option("--program", help="Library program to demonstrate.")] = "sort",
) -> None:
    """Compile a library program, run it, verify it, save it, load it back, compare.

    Example: rasp-compiler demo --output out/demo.safetensors
    """
    from rasp_compiler.compiler import compile_rasp_to_model
    from rasp_compiler.export import load_model, save_model
    from rasp_compiler.lib import LIBRARY
    from rasp_compiler.rasp import evaluate
    from rasp_compiler.verify import exhaustive_inputs

    if program not in LIBRARY:
        raise unknown_name("library program", program, LIBRARY, "--program")
    entry = LIBRARY[program]
    max_len = entry.max_seq_len
    t_all = time.perf_counter()

    out.rule(f"1. compile lib:{program}: {entry.description}")
    t0 = time.perf_counter()
    model = compile_rasp_to_model(entry.build(), entry.vocab, max_len)
    model.metadata = {"program": {"origin": LIB_PREFIX + program, "output": model.config.output}}
    out.print(f"vocab {' '.join(map(str, entry.vocab))}, max_seq_len {max_len}: {_describe(model)} "
              f"in {(time.perf_counter() - t0) * 1000:.0f} ms")
    for l in range(model.config.n_layers):
        heads = ", ".join(h for h in model.labels.heads[l] if h) or "-"
        mlps = ", ".join(n for n, _, _ in model.labels.mlps[l]) or "-"
        out.print(escape(f"  layer {l}: attention heads: {heads}; MLPs: {mlps}"))

    out.rule("2. run on an example input")
    example = {"sort": [3, 1, 4, 1, 2], "reverse": ["a", "b", "c", "a"]}.get(
        program, [entry.vocab[i % len(entry.vocab)] for i in range(max_len)])[:max_len]
    got = model.apply([model.config.bos, *example]).decoded[1:]
    want = evaluate(entry.build(), example)
    out.print(_result_table([("input", example), ("model", got), ("evaluate", want)]))

    out.rule("3. verify against the evaluator")
    report = _verify(model, entry.build(), exhaustive=True, random_n=None, seed=0)
    _print_report(report, 5)

    out.rule("4. save the weight file")
    with writing(output, "--output"):
        save_model(model, output)
    out.print(f"wrote {escape(str(output))} ({output.stat().st_size:,} bytes: safetensors + JSON metadata)")

    out.rule("5. load it back and compare")
    loaded = load_model(output)
    same_params = loaded.params.keys() == model.params.keys() and all(
        (loaded.params[k] == model.params[k]).all() for k in model.params)
    inputs = [[model.config.bos, *x] for x in exhaustive_inputs(entry.vocab, max_len)]
    same_out = loaded.apply_batch(inputs, backend="numpy") == model.apply_batch(inputs, backend="numpy")
    out.print(f"parameters identical: {same_params}; outputs identical on all {len(inputs):,} inputs: {same_out}")
    ok = report.exact and same_params and same_out and got == want
    out.rule()
    if not ok:
        _error("the demo found a problem (see above)")
        raise typer.Exit(1)
    plot = output.with_suffix(".png")  # beside the weight file, not in the checkout
    out.print(f"[green]demo passed[/green] in {time.perf_counter() - t_all:.1f} s. Next: "
              f"{escape(command())} inspect {escape(shlex.quote(str(output)))} --plot {escape(shlex.quote(str(plot)))}")


# ---------------------------------------------------------------------------- generate
@app.command("generate")
def generate_command(
    n: Annotated[int, typer.Option("--n", min=1, help="How many programs.")] = 100,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the dataset into.")]
    = Path("dataset"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    depth: Annotated[int, typer.Option("--depth", min=1, help="Maximum program depth.")] = 3,
) -> None:
    """Write a dataset of N random programs with their compiled weight files.

    Example: rasp-compiler generate --n 100 --out dataset --seed 0
    """
    try:
        from rasp_compiler.fuzz import write_dataset
    except ImportError as exc:
        _error(f"the program generator (rasp_compiler.fuzz) is not available in this installation: {exc}")
        raise typer.Exit(2) from None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("generate", total=n)

        def advance(*args: Any, **kwargs: Any) -> None:
            ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
            if len(ints) >= 2:  # progress(done, total)
                progress.update(task, completed=ints[0], total=ints[1])
            else:
                progress.advance(task, ints[0] if ints else 1)

        result = write_dataset(n=n, out_dir=out_dir, seed=seed, depth=depth, progress=advance)
    out.print(f"wrote {n} programs to {escape(str(out_dir))}" + (f": {escape(str(result))}" if result else ""))
    _summarise_notes(result)


def _summarise_notes(index: Any) -> None:
    """One line for the generator's notes (kept in index.json), not one warning per program."""
    import json

    try:
        entries = json.loads(Path(index).read_text(encoding="utf-8"))["programs"]
    except (OSError, TypeError, ValueError, KeyError):
        return
    noted = [e for e in entries if isinstance(e, dict) and e.get("notes")]
    if noted:
        first = noted[0]["notes"][0]
        out.print(f"[dim]note: {len(noted)} of {len(entries)} generated programs carry construction notes "
                  f"(e.g. {escape(first)}); they compile exactly, see 'notes' in index.json[/dim]")
