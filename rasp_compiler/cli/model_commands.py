"""The commands that compile, run, evaluate and verify a program or weight file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rasp_compiler.cli.common import (
    DEFAULT_RANDOM,
    EXHAUSTIVE_LIMIT,
    Backend,
    BackendOpt,
    BosOpt,
    CausalOpt,
    InputOpt,
    JsonOpt,
    MaxLenOpt,
    NoGuardOpt,
    OutputOpt,
    PadOpt,
    RaspCompilerError,
    SepOpt,
    StrictOpt,
    VocabOpt,
    VocabType,
    VocabTypeOpt,
    _compile,
    _convert,
    _describe,
    _error,
    _fmt,
    _json_value,
    _load,
    _load_program,
    _parse_vocab,
    _split_input,
    _tokens_for_vocab,
    app,
    err,
    out,
    warn_if_large,
    writing,
)


# ---------------------------------------------------------------------------- compile
@app.command("compile")
def compile_command(
    program: Annotated[str, typer.Argument(metavar="PROGRAM", help="A .rasp file or lib:NAME.")],
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Weight file to write (default: <program>.safetensors here).")] = None,
    vocab: VocabOpt = None,
    max_seq_len: MaxLenOpt = None,
    output: OutputOpt = None,
    causal: CausalOpt = False,
    bos: BosOpt = "BOS",
    pad: PadOpt = "PAD",
    vocab_type: VocabTypeOpt = VocabType.auto,
    strict: StrictOpt = False,
) -> None:
    """Compile PROGRAM into a weight file (.safetensors with JSON metadata).

    Example: rasp-compiler compile examples/reverse.rasp --vocab a,b,c --max-seq-len 5 -o reverse.safetensors
    """
    import rasp_compiler.compiler  # noqa: F401  (imported before the clock starts)
    from rasp_compiler.export import save_model

    t0 = time.perf_counter()
    loaded = _load_program(program, output)
    model = _compile(loaded, vocab, vocab_type, max_seq_len, causal, bos, pad, strict)
    took = time.perf_counter() - t0
    target = out_file or Path((loaded.program.label if loaded.library else Path(program).stem) + ".safetensors")
    c = model.config
    out.print(f"compiled [bold]{escape(c.output)}[/bold] from {escape(program)} in {took * 1000:.0f} ms: "
              f"{_describe(model)}")
    checked = model.compilation.checked_cases
    out.print(f"vocab {escape(' '.join(map(str, c.vocab)))}, max_seq_len {c.max_seq_len}"
              f"{', causal' if c.causal else ''}"
              + (f"; blocks self-checked on {checked:,} input cases" if checked else ""))
    if c.unproven_aggregates:
        out.print(f"unproven (guarded at run time): {escape(', '.join(c.unproven_aggregates))}")
    warn_if_large(model)
    with writing(target, "--out/-o"):
        save_model(model, target)
    out.print(f"wrote {escape(str(target))} ({target.stat().st_size:,} bytes)")


# ---------------------------------------------------------------------------- run / eval
def _result_table(rows: list[tuple[str, list]], highlight: set[int] | None = None) -> Table:
    n = max(len(v) for _, v in rows)
    table = Table(show_header=True, header_style="dim", box=None, pad_edge=False)
    table.add_column("")
    for i in range(n):
        table.add_column(str(i), justify="center")
    for name, values in rows:
        cells = []
        for i, v in enumerate(values):
            text = escape(_fmt(v))
            cells.append(f"[bold red]{text}[/bold red]" if highlight and i in highlight and name == "model" else text)
        table.add_row(name, *cells)
    return table


@app.command("run")
def run_command(
    target: Annotated[str, typer.Argument(metavar="MODEL_OR_PROGRAM",
                                          help="A weight file, a .rasp file or lib:NAME.")],
    input: InputOpt,
    vocab: VocabOpt = None,
    max_seq_len: MaxLenOpt = None,
    output: OutputOpt = None,
    causal: CausalOpt = False,
    bos: BosOpt = "BOS",
    pad: PadOpt = "PAD",
    vocab_type: VocabTypeOpt = VocabType.auto,
    sep: SepOpt = None,
    backend: BackendOpt = Backend.numpy,
    as_json: JsonOpt = False,
    strict: StrictOpt = False,
    no_guard: NoGuardOpt = False,
) -> None:
    """Run a model on one input and print its decoded output.

    A program is compiled first. When the program is known (given, or stored in the
    weight file), the evaluator runs too; a disagreement exits with status 1.

    Example: rasp-compiler run reverse.safetensors --input "a b c"
    """
    from rasp_compiler.verify import expected_output, same_value

    loaded = _load(target, vocab=vocab, vocab_type=vocab_type, max_seq_len=max_seq_len, output=output,
                   causal=causal, bos=bos, pad=pad, strict=strict)
    model = loaded.model
    xs = _tokens_for_vocab(_split_input(input, sep), model.config.vocab)
    got = model.apply([model.config.bos, *xs], backend=backend.value, guard=not no_guard).decoded[1:]
    want, problem = None, None
    if loaded.program is not None:
        try:
            want = expected_output(loaded.program, xs, model.config.causal)
        except RaspCompilerError as exc:
            problem = f"the evaluator fails on this input: {exc}"
    bad = set() if want is None else {i for i, (g, w) in enumerate(zip(got, want)) if not same_value(g, w, not model.config.output_numerical)}
    if as_json:
        record = {"input": [_json_value(x) for x in xs], "output": [_json_value(v) for v in got]}
        if want is not None:
            record.update(expected=[_json_value(v) for v in want], agree=not bad)
        if problem:
            record["error"] = problem
        print(json.dumps(record))
    else:
        rows = [("input", xs), ("model", got)] + ([("evaluate", want)] if want is not None else [])
        out.print(_result_table(rows, bad))
        if want is None and problem is None:
            out.print("[dim](no program known for this model: not compared with the evaluator)[/dim]")
        elif not bad and problem is None:
            out.print("[green]model and evaluator agree[/green]")
    if problem:
        _error(problem)
        raise typer.Exit(1)
    if bad:
        _error(f"model and evaluator disagree at positions {', '.join(map(str, sorted(bad)))}")
        raise typer.Exit(1)


@app.command("eval")
def eval_command(
    program: Annotated[str, typer.Argument(metavar="PROGRAM", help="A .rasp file or lib:NAME.")],
    input: InputOpt,
    output: OutputOpt = None,
    vocab: Annotated[Optional[str], typer.Option(
        "--vocab", help="Check the input against these tokens (comma-separated); also fixes how "
                        "items are read (3 as the int 3 if 3 is in the vocabulary).")] = None,
    vocab_type: VocabTypeOpt = VocabType.auto,
    sep: SepOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate PROGRAM on one input with the reference evaluator (no model).

    Example: rasp-compiler eval examples/frac_prevs.rasp --input "x y x"
    """
    from rasp_compiler.rasp import evaluate

    loaded = _load_program(program, output)
    items = _split_input(input, sep)
    if vocab is not None:
        xs = _tokens_for_vocab(items, _parse_vocab(vocab, vocab_type))
    elif loaded.library is not None and vocab_type is VocabType.auto:
        xs = _tokens_for_vocab(items, loaded.library.vocab)
    else:
        xs = [_convert(s, vocab_type, "--input") for s in items]
    result = evaluate(loaded.program, xs)
    if as_json:
        print(json.dumps({"input": [_json_value(x) for x in xs], "output": [_json_value(v) for v in result]}))
    else:
        out.print(_result_table([("input", xs), (loaded.program.label, result)]))


# ---------------------------------------------------------------------------- verify
@app.command("verify")
def verify_command(
    target: Annotated[str, typer.Argument(metavar="MODEL_OR_PROGRAM",
                                          help="A weight file (with stored source), a .rasp file or lib:NAME.")],
    exhaustive: Annotated[bool, typer.Option("--exhaustive", help="Check every input up to max_seq_len.")] = False,
    random_n: Annotated[Optional[int], typer.Option("--random", min=1, metavar="N",
                                                    help="Check N random inputs.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --random.")] = 0,
    show: Annotated[int, typer.Option("--show", min=0, help="How many mismatches to print.")] = 5,
    vocab: VocabOpt = None,
    max_seq_len: MaxLenOpt = None,
    output: OutputOpt = None,
    causal: CausalOpt = False,
    bos: BosOpt = "BOS",
    pad: PadOpt = "PAD",
    vocab_type: VocabTypeOpt = VocabType.auto,
    backend: BackendOpt = Backend.numpy,
    strict: StrictOpt = False,
    no_guard: NoGuardOpt = False,
) -> None:
    """Check a model against the evaluator; exit status 1 on any mismatch.

    Without --exhaustive or --random, every input is checked when there are at most
    20,000, else 2,000 random ones. A weight file is checked against its stored program.

    Example: rasp-compiler verify reverse.safetensors --exhaustive
    """
    if exhaustive and random_n is not None:
        raise typer.BadParameter("give --exhaustive or --random N, not both", param_hint="--random")
    loaded = _load(target, vocab=vocab, vocab_type=vocab_type, max_seq_len=max_seq_len, output=output,
                   causal=causal, bos=bos, pad=pad, need_program=True, strict=strict)
    report = _verify(loaded.model, loaded.program, exhaustive, random_n, seed, backend.value, guard=not no_guard)
    _print_report(report, show)
    if not report.exact:
        raise typer.Exit(1)


def _count_inputs(n_vocab: int, max_len: int) -> int:
    return sum(n_vocab ** n for n in range(1, max_len + 1))


def _verify(model: Any, program: Any, exhaustive: bool, random_n: int | None, seed: int,
            backend: str = "numpy", console: Console | None = None, guard: bool = True) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rasp_compiler.verify import check_model, exhaustive_inputs, random_inputs

    c = model.config
    total = _count_inputs(len(c.vocab), c.max_seq_len)
    if random_n is None and (exhaustive or total <= EXHAUSTIVE_LIMIT):
        inputs, n, what = exhaustive_inputs(c.vocab, c.max_seq_len), total, "inputs (all)"
    else:
        n = random_n or DEFAULT_RANDOM
        inputs = random_inputs(c.vocab, c.max_seq_len, n, seed=seed, full_length=min(n // 4, 100))
        what = f"random inputs (seed {seed})"
    (console or out).print(f"checking {n:,} {what} of length 1..{c.max_seq_len} against the evaluator")
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("verify", total=n)
        report = check_model(model, program, inputs, backend=backend, guard=guard,
                             progress=lambda k: progress.advance(task, k))
    return report


def _print_report(report: Any, show: int, console: Console | None = None) -> None:
    console = console or out
    if report.exact:
        console.print(f"[green]exact:[/green] {report.checked:,} of {report.checked:,} inputs match the evaluator")
        return
    console.print(f"[bold red]{report.n_mismatches:,} of {report.checked:,} inputs differ[/bold red] "
                  f"(accuracy {report.accuracy:.2%})")
    if show and report.examples:
        table = Table("input", "model", "evaluate", title=f"first {min(show, len(report.examples))} mismatches")
        for m in report.examples[:show]:
            table.add_row(*(escape(" ".join(_fmt(v) for v in vs)) for vs in (m.input, m.got, m.expected)))
        console.print(table)


# ---------------------------------------------------------------------------- inspect
