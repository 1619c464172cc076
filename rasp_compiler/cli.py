"""The ``rasp-compiler`` command line: compile, run, evaluate, inspect and verify models.

    rasp-compiler compile examples/reverse.rasp --vocab a,b,c --max-seq-len 5 -o reverse.safetensors
    rasp-compiler run reverse.safetensors --input "a b c"
    rasp-compiler verify reverse.safetensors --exhaustive
    rasp-compiler inspect reverse.safetensors --plot reverse.png

A PROGRAM is a ``.rasp`` file or ``lib:NAME`` (a program of the standard library, see
``rasp-compiler list``); a MODEL is a weight file written by ``compile``. Commands that
take MODEL_OR_PROGRAM compile a program first.

Exit status: 0 success, 1 failure (a mismatch, an uncompilable program, a corrupt
file), 2 bad usage (a missing option, an unknown file). Errors are one red line on
stderr, never a traceback. Heavy libraries load only in the commands that need them
(matplotlib for ``--plot``, JAX only with ``--backend jax``).
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rasp_compiler.errors import RaspCompilerError

LIB_PREFIX = "lib:"
EXHAUSTIVE_LIMIT = 20_000  # verify checks every input when there are at most this many
DEFAULT_RANDOM = 2_000

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def _exception_class(name: str) -> type:
    """click's exception classes, wherever this typer version keeps click (it may vendor it)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


_UsageError = _exception_class("UsageError")
_ClickException = _exception_class("ClickException")


class _App(typer.Typer):
    """A Typer app whose errors are one red line: exit 2 for usage, 1 for failures."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        command = typer.main.get_command(self)
        try:
            code = command.main(*args, standalone_mode=False, **kwargs)
        except _UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `rasp-compiler`: show the help
                exc.show()
                sys.exit(0)
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            _error(exc.format_message() + hint)
            sys.exit(exc.exit_code)
        except _ClickException as exc:
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except typer.Abort:
            _error("aborted")
            sys.exit(1)
        except KeyboardInterrupt:
            _error("interrupted")
            sys.exit(130)
        except RaspCompilerError as exc:
            _error(str(exc))
            sys.exit(1)
        except OSError as exc:
            _error(f"{exc.filename + ': ' if getattr(exc, 'filename', None) else ''}{exc.strerror or exc}")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/bold red] [red]{escape(message)}[/red]", soft_wrap=True)


app = _App(
    name="rasp-compiler",
    help="Compile RASP programs into exact, fully labelled transformer weights.\n\n"
         "PROGRAM is a .rasp file or lib:NAME (see `rasp-compiler list`); MODEL is a weight file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class VocabType(str, Enum):
    auto = "auto"
    str = "str"
    int = "int"
    float = "float"


class Backend(str, Enum):
    numpy = "numpy"
    jax = "jax"


# ---------------------------------------------------------------------------- shared options
VocabOpt = Annotated[Optional[str], typer.Option(
    "--vocab", help="Input tokens, comma-separated (a,b,c). Items that look like integers (3, -1) "
                    "become ints unless --vocab-type says otherwise. Default for lib: programs: "
                    "the library's vocabulary.")]
VocabTypeOpt = Annotated[VocabType, typer.Option(
    "--vocab-type", help="How to read --vocab and --input items: auto (integers become int, "
                         "the rest str), str, int or float.", case_sensitive=False)]
MaxLenOpt = Annotated[Optional[int], typer.Option(
    "--max-seq-len", min=1, help="Longest input the model accepts (default for lib: programs: 5).")]
OutputOpt = Annotated[Optional[str], typer.Option(
    "--output", help="Which named program of the .rasp file to use (default: the file's output, "
                     "its `# output:` line or last assignment).")]
CausalOpt = Annotated[bool, typer.Option("--causal", help="Compile a causal (decoder) model.")]
BosOpt = Annotated[str, typer.Option("--bos", help="The BOS token.")]
PadOpt = Annotated[str, typer.Option("--pad", help="The PAD token.")]
InputOpt = Annotated[str, typer.Option("--input", "-i", help='The input tokens, e.g. "a b c" '
                                       "(split on whitespace, or on --sep).")]
SepOpt = Annotated[Optional[str], typer.Option("--sep", help="Separator of --input items (default: whitespace).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
BackendOpt = Annotated[Backend, typer.Option("--backend", help="Forward pass: numpy (no compile wait) or jax.",
                                             case_sensitive=False)]


# ---------------------------------------------------------------------------- values and inputs
_INT = re.compile(r"[+-]?\d+\Z")


def _convert(item: str, vocab_type: VocabType, what: str) -> Any:
    try:
        if vocab_type is VocabType.int:
            return int(item)
        if vocab_type is VocabType.float:
            return float(item)
    except ValueError:
        raise typer.BadParameter(f"{item!r} is not a{'n int' if vocab_type is VocabType.int else ' float'}",
                                 param_hint=what) from None
    if vocab_type is VocabType.auto and _INT.match(item):
        return int(item)
    return item


def _parse_vocab(text: str, vocab_type: VocabType) -> list:
    items = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in items):
        raise typer.BadParameter(f"give comma-separated tokens such as a,b,c (got {text!r})", param_hint="--vocab")
    values = [_convert(s, vocab_type, "--vocab") for s in items]
    if len(set(values)) != len(values):
        raise typer.BadParameter(f"repeated tokens in {text!r}", param_hint="--vocab")
    return values


def _split_input(text: str, sep: str | None) -> list[str]:
    items = text.split(sep) if sep else text.split()
    items = [s.strip() for s in items] if sep else items
    if not items or any(not s for s in items):
        raise typer.BadParameter(f"give at least one token, e.g. --input \"a b c\" (got {text!r})",
                                 param_hint="--input")
    return items


def _tokens_for_vocab(items: list[str], vocab: Any) -> list:
    """Input items matched to the vocabulary tokens by their text (so 1 reads as the int 1)."""
    by_text: dict[str, Any] = {}
    for tok in vocab:
        by_text.setdefault(str(tok), tok)
    tokens = []
    for i, item in enumerate(items):
        if item not in by_text:
            raise typer.BadParameter(f"token {item!r} at position {i} is not in the vocabulary "
                                     f"{' '.join(map(str, vocab))}", param_hint="--input")
        tokens.append(by_text[item])
    return tokens


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _json_value(value: Any) -> Any:
    from rasp_compiler.export.values import printable_value
    return printable_value(value)


# ---------------------------------------------------------------------------- programs and models
@dataclass
class Loaded:
    """What a MODEL_OR_PROGRAM argument stands for."""

    spec: str
    program: Any = None  # the RASP SOp, when known
    source: str | None = None  # program text
    origin: dict | None = None  # {"origin": file name or lib:NAME, "output": label}
    model: Any = None  # CompiledModel, when compiled or loaded
    library: Any = None  # LibraryProgram, for lib: programs


def _is_program(spec: str) -> bool:
    return spec.startswith(LIB_PREFIX) or spec.endswith(".rasp")


def _load_program(spec: str, output: str | None) -> Loaded:
    from rasp_compiler.rasp import core

    if spec.startswith(LIB_PREFIX):
        from rasp_compiler.lib import LIBRARY

        name = spec[len(LIB_PREFIX):]
        if name not in LIBRARY:
            raise typer.BadParameter(f"no library program {name!r}; known: {', '.join(sorted(LIBRARY))}",
                                     param_hint="PROGRAM")
        if output is not None:
            raise typer.BadParameter("--output picks a program of a .rasp file; a lib: program has one",
                                     param_hint="--output")
        entry = LIBRARY[name]
        program = entry.build()
        return Loaded(spec, program, None, {"origin": spec, "output": program.label}, library=entry)
    path = Path(spec)
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {spec}" if not path.exists() else f"not a file: {spec}",
                                 param_hint="PROGRAM")
    from rasp_compiler.dsl import load

    parsed = load(path)
    if output is not None:
        if output not in parsed.programs:
            raise typer.BadParameter(f"{spec} defines no program {output!r}; it defines "
                                     f"{', '.join(parsed.programs)}", param_hint="--output")
        program = parsed.programs[output]
    else:
        program = parsed.output
        if program is None:
            raise typer.BadParameter(f"{spec} defines no sequence to compile", param_hint="PROGRAM")
    if not isinstance(program, core.SOp):
        raise typer.BadParameter(f"{program.label!r} in {spec} is a selector, not a sequence: pick a "
                                 f"sequence (an aggregate, a selector_width, a map ...)", param_hint="--output")
    return Loaded(spec, program, parsed.source, {"origin": path.name, "output": program.label})


def _program_of_model(model: Any) -> tuple[Any, str | None]:
    """The program stored with a loaded model (from its source text or library name), and where from."""
    info = (model.metadata or {}).get("program") or {}
    origin = info.get("origin")
    if model.source:
        from rasp_compiler.dsl import parse

        where = f"{(model.metadata or {}).get('file', '<model>')} (stored source)"
        parsed = parse(model.source, filename=where)
        name = info.get("output") or model.config.output
        program = parsed.programs.get(name, parsed.output)
        return program, f"stored source ({origin or 'text'})"
    if isinstance(origin, str) and origin.startswith(LIB_PREFIX):
        from rasp_compiler.lib import LIBRARY

        name = origin[len(LIB_PREFIX):]
        if name in LIBRARY:
            return LIBRARY[name].build(), f"library program {origin}"
    return None, None


def _compile(loaded: Loaded, vocab: str | None, vocab_type: VocabType, max_seq_len: int | None,
             causal: bool, bos: str, pad: str) -> Any:
    if loaded.library is not None:
        tokens = _parse_vocab(vocab, vocab_type) if vocab is not None else list(loaded.library.vocab)
        max_seq_len = max_seq_len or loaded.library.max_seq_len
    else:
        if vocab is None:
            raise _UsageError(f"compiling {loaded.spec} needs its input tokens: add --vocab, e.g. --vocab a,b,c")
        if max_seq_len is None:
            raise _UsageError(f"compiling {loaded.spec} needs the longest input length: add --max-seq-len, "
                              f"e.g. --max-seq-len 5")
        tokens = _parse_vocab(vocab, vocab_type)
    from rasp_compiler.compiler import compile_rasp_to_model

    model = compile_rasp_to_model(loaded.program, tokens, max_seq_len, causal=causal,
                                  compiler_bos=bos, compiler_pad=pad)
    model.source = loaded.source
    model.metadata = {"program": loaded.origin}
    loaded.model = model
    return model


def _load(spec: str, *, vocab: str | None = None, vocab_type: VocabType = VocabType.auto,
          max_seq_len: int | None = None, output: str | None = None, causal: bool = False,
          bos: str = "BOS", pad: str = "PAD", need_program: bool = False) -> Loaded:
    """Compile a program, or load a weight file (and the program it stores)."""
    if _is_program(spec):
        loaded = _load_program(spec, output)
        _compile(loaded, vocab, vocab_type, max_seq_len, causal, bos, pad)
        return loaded
    path = Path(spec)
    if not path.exists():
        raise typer.BadParameter(f"no such file: {spec} (a MODEL is a .safetensors weight file; a PROGRAM "
                                 f"a .rasp file or lib:NAME)", param_hint="MODEL_OR_PROGRAM")
    from rasp_compiler.export import load_model

    model = load_model(path)
    program, _ = _program_of_model(model)
    if need_program and program is None:
        raise RaspCompilerError(f"{spec} stores no program (no source text, no library name), so there is "
                                f"nothing to check it against; verify the program instead: "
                                f"rasp-compiler verify PROGRAM.rasp --vocab ... --max-seq-len ...")
    return Loaded(spec, program, model.source, (model.metadata or {}).get("program"), model)


def _describe(model: Any) -> str:
    s = model.sizes()
    return (f"{s['layers']} layers, {s['heads']} heads/layer, d_model {s['d_model']}, d_head {s['d_head']}, "
            f"d_mlp {s['d_mlp']}, {s['params']:,} params")


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
) -> None:
    """Compile PROGRAM into a weight file (.safetensors with JSON metadata).

    Example: rasp-compiler compile examples/reverse.rasp --vocab a,b,c --max-seq-len 5 -o reverse.safetensors
    """
    import rasp_compiler.compiler  # noqa: F401  (imported before the clock starts)
    from rasp_compiler.export import save_model

    t0 = time.perf_counter()
    loaded = _load_program(program, output)
    model = _compile(loaded, vocab, vocab_type, max_seq_len, causal, bos, pad)
    took = time.perf_counter() - t0
    target = out_file or Path((loaded.program.label if loaded.library else Path(program).stem) + ".safetensors")
    save_model(model, target)
    c = model.config
    out.print(f"compiled [bold]{escape(c.output)}[/bold] from {escape(program)} in {took * 1000:.0f} ms: "
              f"{_describe(model)}")
    checked = model.compilation.checked_cases
    out.print(f"vocab {escape(' '.join(map(str, c.vocab)))}, max_seq_len {c.max_seq_len}"
              f"{', causal' if c.causal else ''}"
              + (f"; blocks self-checked on {checked:,} input cases" if checked else ""))
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
) -> None:
    """Run a model on one input and print its decoded output.

    A program is compiled first. When the program is known (given, or stored in the
    weight file), the evaluator runs too; a disagreement exits with status 1.

    Example: rasp-compiler run reverse.safetensors --input "a b c"
    """
    from rasp_compiler.verify import expected_output, same_value

    loaded = _load(target, vocab=vocab, vocab_type=vocab_type, max_seq_len=max_seq_len, output=output,
                   causal=causal, bos=bos, pad=pad)
    model = loaded.model
    xs = _tokens_for_vocab(_split_input(input, sep), model.config.vocab)
    got = model.apply([model.config.bos, *xs], backend=backend.value).decoded[1:]
    want, problem = None, None
    if loaded.program is not None:
        try:
            want = expected_output(loaded.program, xs, model.config.causal)
        except RaspCompilerError as exc:
            problem = f"the evaluator fails on this input: {exc}"
    bad = set() if want is None else {i for i, (g, w) in enumerate(zip(got, want)) if not same_value(g, w)}
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
) -> None:
    """Check a model against the evaluator; exit status 1 on any mismatch.

    Without --exhaustive or --random, every input is checked when there are at most
    20,000, else 2,000 random ones. A weight file is checked against its stored program.

    Example: rasp-compiler verify reverse.safetensors --exhaustive
    """
    if exhaustive and random_n is not None:
        raise typer.BadParameter("give --exhaustive or --random N, not both", param_hint="--random")
    loaded = _load(target, vocab=vocab, vocab_type=vocab_type, max_seq_len=max_seq_len, output=output,
                   causal=causal, bos=bos, pad=pad, need_program=True)
    report = _verify(loaded.model, loaded.program, exhaustive, random_n, seed, backend.value)
    _print_report(report, show)
    if not report.exact:
        raise typer.Exit(1)


def _count_inputs(n_vocab: int, max_len: int) -> int:
    return sum(n_vocab ** n for n in range(1, max_len + 1))


def _verify(model: Any, program: Any, exhaustive: bool, random_n: int | None, seed: int,
            backend: str = "numpy", console: Console | None = None) -> Any:
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
        report = check_model(model, program, inputs, backend=backend,
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
@app.command("inspect")
def inspect_command(
    target: Annotated[str, typer.Argument(metavar="MODEL_OR_PROGRAM",
                                          help="A weight file, a .rasp file or lib:NAME.")],
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Draw the program graph and the weight matrices into this PNG "
                       "(large models: one more PNG per layer, FILE-layerN.png).")] = None,
    vocab: VocabOpt = None,
    max_seq_len: MaxLenOpt = None,
    output: OutputOpt = None,
    causal: CausalOpt = False,
    bos: BosOpt = "BOS",
    pad: PadOpt = "PAD",
    vocab_type: VocabTypeOpt = VocabType.auto,
) -> None:
    """Print a model's layers, heads, MLPs and residual layout; optionally plot them.

    Example: rasp-compiler inspect reverse.safetensors --plot reverse.png
    """
    from rasp_compiler.export import model_metadata

    loaded = _load(target, vocab=vocab, vocab_type=vocab_type, max_seq_len=max_seq_len, output=output,
                   causal=causal, bos=bos, pad=pad)
    model = loaded.model
    graph = model_metadata(model).get("graph")
    _print_inspection(model, graph, loaded)
    if plot is not None:
        files = plot_model(model, graph, plot)
        for f in files:
            out.print(f"wrote {escape(str(f))}")


_PREDICATES = {"EQ": "==", "NEQ": "!=", "LT": "<", "LEQ": "<=", "GT": ">", "GEQ": ">="}


def _describe_term(term: dict) -> str:
    """One Boolean table of a head, as "key K <op> query Q" (tracr's order: predicate(key, query))."""
    pred = term.get("predicate")
    if pred == "TRUE":
        return "every key (TRUE)"
    if pred == "FALSE":
        return "no key (FALSE)"
    return f"key {term.get('key')} {_PREDICATES.get(pred, pred)} query {term.get('query')}"


def _node_records(graph: dict | None) -> dict[str, dict]:
    return {n["label"]: n for n in (graph or {}).get("nodes", [])}


def _print_inspection(model: Any, graph: dict | None, loaded: Loaded) -> None:
    c, labels = model.config, model.labels
    nodes = _node_records(graph)
    meta = model.metadata or {}
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    origin = (loaded.origin or {}).get("origin")
    summary.add_row("model", escape(f"{c.output}" + (f"  (from {origin})" if origin else "")))
    if meta.get("file"):
        summary.add_row("file", escape(f"{meta['file']}  (format {meta.get('format_version')}, "
                                       f"{meta.get('created_by')})"))
    summary.add_row("sizes", _describe(model))
    summary.add_row("vocab", escape(f"{' '.join(map(str, c.vocab))}   BOS={c.bos!r} PAD={c.pad!r}   "
                                    f"max_seq_len {c.max_seq_len}{'   causal' if c.causal else ''}"))
    kind = "numerical" if c.output_numerical else "categorical"
    values = " ".join(_fmt(v) for v in c.output_values)
    summary.add_row("output", escape(f"{c.output}: {kind}, {len(c.output_values)} values: {values}"))
    summary.add_row("program", "stored source text" if model.source else
                    ("library reference" if origin and origin.startswith(LIB_PREFIX) else "not stored"))
    out.print(summary)

    layers = Table(title="layers", title_justify="left")
    layers.add_column("layer", justify="right")
    layers.add_column("attention heads")
    layers.add_column("MLP")
    for l in range(c.n_layers):
        heads = [f"h{h} {name}" for h, name in enumerate(labels.heads[l]) if name]
        mlps = [f"{name} [{a}:{b}]" for name, a, b in labels.mlps[l]]
        used = sum(b - a for _, a, b in labels.mlps[l])
        layers.add_row(str(l), escape(", ".join(heads) or "-"),
                       escape((", ".join(mlps) + f"  ({used}/{c.d_mlp} neurons)") if mlps else "-"))
    out.print(layers)

    heads = Table(title="attention heads", title_justify="left")
    for col in ("layer", "head", "node", "op", "selects", "reads value", "output values"):
        heads.add_column(col)
    for l in range(c.n_layers):
        for h, name in enumerate(labels.heads[l]):
            if not name:
                continue
            rec = nodes.get(name, {})
            terms = " and ".join(_describe_term(t) for t in rec.get("terms", []))
            op = rec.get("op", "?")
            if rec.get("kind") == "selector_width":
                op += " (head + MLP)"
            heads.add_row(str(l), str(h), escape(name), op, escape(terms or "?"),
                          escape(rec.get("aggregated") or "-"), _value_summary(rec))
    out.print(heads)

    mlps = Table(title="MLPs", title_justify="left")
    for col in ("layer", "node", "op", "neurons", "reads", "output values"):
        mlps.add_column(col)
    for l in range(c.n_layers):
        for name, a, b in labels.mlps[l]:
            rec = nodes.get(name, {})
            mlps.add_row(str(l), escape(name), rec.get("op", "?"), f"{a}:{b} ({b - a})",
                         escape(", ".join(rec.get("inputs", [])) or "?"), _value_summary(rec))
    out.print(mlps)

    out.print(_residual_table(model, nodes))


def _value_summary(rec: dict, limit: int = 8) -> str:
    from rasp_compiler.export.values import decode_value

    values = rec.get("value_set")
    if values is None:
        return "?" if not rec else "-"
    shown = [_fmt(decode_value(v)) for v in values[:limit]]
    more = f" ... ({len(values)})" if len(values) > limit else ""
    return escape(f"{rec.get('encoding', '')[:3]} " + " ".join(shown) + more)


def residual_groups(labels: list[str], node_names: set[str]) -> list[tuple[str, int, int, list[str]]]:
    """Consecutive residual dimensions of one node: (node, first, end, value labels)."""
    groups: list[tuple[str, int, int, list[str]]] = []
    for i, label in enumerate(labels):
        node = max((n for n in node_names if label == n or label.startswith(n + ":")), key=len, default=None)
        if node is None:
            node = label.partition(":")[0]
        value = label[len(node) + 1:] if len(label) > len(node) else ""
        if groups and groups[-1][0] == node and groups[-1][2] == i:
            name, a, _, vals = groups[-1]
            groups[-1] = (name, a, i + 1, vals + [value])
        else:
            groups.append((node, i, i + 1, [value]))
    return groups


def _residual_table(model: Any, nodes: dict[str, dict]) -> Table:
    table = Table(title=f"residual stream ({model.config.d_model} dimensions)", title_justify="left")
    for col in ("dims", "node", "encoding", "values", "written by"):
        table.add_column(col)
    for node, a, b, values in residual_groups(model.residual_labels, set(nodes)):
        rec = nodes.get(node, {})
        if node in ("one", "bos") and not rec:
            enc, writer = "-", "embedding"
            vals = "1 everywhere" if node == "one" else "1 at BOS only"
        else:
            enc = rec.get("encoding", "?")
            vals = " ".join(v for v in values if v) or "(one number)"
            if rec.get("kind") == "embed":
                writer = "embedding"
            elif rec.get("layer") is not None:
                writer = f"L{rec['layer']} " + ("head + MLP" if rec.get("kind") == "selector_width"
                                                else "attention" if rec.get("sublayer") == "attn" else "MLP")
            else:
                writer = "?"
        table.add_row(f"{a}" if b == a + 1 else f"{a}-{b - 1}", escape(node), enc, escape(vals), writer)
    return table


# ---------------------------------------------------------------------------- plots
_KIND_COLOURS = {"embed": "#d9d9d9", "virtual": "#f2f2f2", "attention": "#9ecae1",
                 "selector_width": "#c6b3e6", "mlp": "#fdbe85"}
_MAX_PANELS_ONE_FILE = 12


def _stage(rec: dict) -> float:
    """Column of a node in the graph drawing: 0 embedding, then one column per sublayer."""
    if rec.get("kind") == "embed":
        return 0.0
    if rec.get("kind") == "virtual" or rec.get("sublayer_index", -1) < 0:
        return rec.get("ready", -1) + 1.5
    return rec["sublayer_index"] + 1.0


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _draw_graph(ax: Any, graph: dict | None, n_layers: int) -> None:
    import networkx as nx

    ax.set_title("program graph (columns: embedding, then each layer's attention and MLP sublayers; "
                 "bold: output)", fontsize=10, loc="left")
    ax.axis("off")
    if not graph or not graph.get("nodes"):
        ax.text(0.5, 0.5, "no program graph stored in this file", ha="center", va="center", transform=ax.transAxes)
        return
    g = nx.DiGraph()
    for rec in graph["nodes"]:
        g.add_node(rec["label"], **rec)
    g.add_edges_from((a, b) for a, b in graph.get("edges", []) if a in g and b in g)
    columns: dict[float, list[str]] = {}
    for label in nx.topological_sort(g):
        columns.setdefault(_stage(g.nodes[label]), []).append(label)
    pos = {}
    tallest = max(len(v) for v in columns.values())
    for x, labels in columns.items():
        for i, label in enumerate(labels):
            pos[label] = (x, (len(labels) - 1) / 2 - i)
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowstyle="-|>", arrowsize=12, edge_color="#777777",
                           node_size=2600, connectionstyle="arc3,rad=0.05")
    for label, (x, y) in pos.items():
        rec = g.nodes[label]
        where = ""
        if rec.get("head"):
            where = f"L{rec['head'][0]} h{rec['head'][1]}"
        elif rec.get("mlp_neurons"):
            where = f"L{rec['mlp_neurons'][0]} MLP"
        text = f"{_short(label, 24)}\n{rec.get('op', '')}" + (f" · {where}" if where else "")
        bold = label == graph.get("output")
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5, fontweight="bold" if bold else "normal",
                bbox=dict(boxstyle="round,pad=0.35", fc=_KIND_COLOURS.get(rec.get("kind"), "white"),
                          ec="black" if bold else "#555555", lw=1.6 if bold else 0.8))
    n_sub = 2 * n_layers
    names = ["embedding"] + [f"L{s // 2} {'attn' if s % 2 == 0 else 'mlp'}" for s in range(n_sub)]
    top = tallest / 2 + 0.2
    for i, name in enumerate(names):
        ax.text(i, top, name, ha="center", va="bottom", fontsize=8, color="#444444")
        if i:
            ax.axvline(i - 0.5, color="#eeeeee", lw=1, zorder=0)
    ax.set_xlim(-0.7, max(n_sub, max(columns)) + 0.7)
    ax.set_ylim(-tallest / 2 - 0.3, top + 0.5)
    handles = [__import__("matplotlib.patches", fromlist=["Patch"]).Patch(fc=c, ec="#555555", label=k)
               for k, c in _KIND_COLOURS.items()]
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False, ncol=len(handles))


def _heatmap(ax: Any, matrix: Any, rows: list[str], cols: list[str], title: str, ylabel: str,
             xlabel: str) -> None:
    import numpy as np

    vmax = float(np.abs(matrix).max()) if matrix.size else 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-vmax or -1, vmax=vmax or 1, aspect="auto",
                      interpolation="nearest")
    size = lambda n: max(4.0, min(8.0, 260.0 / max(n, 1)))  # noqa: E731
    ax.set_yticks(range(len(rows)), [_short(r) for r in rows], fontsize=size(len(rows)))
    ax.set_xticks(range(len(cols)), [_short(c) for c in cols], fontsize=size(len(cols)), rotation=90)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=6)


def _strip_node(neuron: str) -> str:
    """A neuron label without its node prefix (the panel title names the node)."""
    node, sep, rest = neuron.partition(": ")
    return rest if sep else neuron


def _nonzero(matrix: Any, axis: int) -> Any:
    import numpy as np

    return np.flatnonzero(np.abs(matrix).max(axis=axis) > 1e-9)


def _weight_panels(model: Any) -> list[list[tuple]]:
    """Per layer, the matrices to draw: (matrix, row labels, column labels, title, ylabel, xlabel)."""
    import numpy as np

    p, labels = model.params, model.labels
    res = model.residual_labels
    layers = []
    for l in range(model.config.n_layers):
        panels = []
        for h, node in enumerate(labels.heads[l]):
            if not node:
                continue
            wq, wk = p[f"blocks.{l}.attn.W_Q"][h], p[f"blocks.{l}.attn.W_K"][h]
            wv, wo = p[f"blocks.{l}.attn.W_V"][h], p[f"blocks.{l}.attn.W_O"][h]
            for m, title, ylabel, xlabel in (
                    (wq @ wk.T, f"L{l} h{h} {node}: W_QK", "query reads", "key reads"),
                    (wv @ wo, f"L{l} h{h} {node}: W_OV", "value reads", "output writes")):
                r, c = _nonzero(m, 1), _nonzero(m, 0)
                panels.append((m[np.ix_(r, c)], [res[i] for i in r], [res[i] for i in c], title, ylabel, xlabel))
        used = [i for i, name in enumerate(labels.neurons[l]) if name]
        if used:
            nodes = ", ".join(n for n, _, _ in labels.mlps[l])
            neuron_names = [f"{i}: {_strip_node(labels.neurons[l][i])}" for i in used]
            w_in = np.vstack([p[f"blocks.{l}.mlp.W_in"], p[f"blocks.{l}.mlp.b_in"][None]])[:, used]
            r = _nonzero(w_in, 1)
            columns = neuron_names if len(used) <= 16 else [str(i) for i in used]  # W_out rows name them
            panels.append((w_in[r], [(res + ["bias b_in"])[i] for i in r], columns,
                           f"L{l} MLP ({_short(nodes, 40)}): W_in", "residual reads", "neuron"))
            w_out = p[f"blocks.{l}.mlp.W_out"][used]
            c = _nonzero(w_out, 0)
            panels.append((w_out[:, c], neuron_names, [res[i] for i in c],
                           f"L{l} MLP ({_short(nodes, 40)}): W_out", "neuron", "residual writes"))
        layers.append(panels)
    return layers


def plot_model(model: Any, graph: dict | None, path: Path) -> list[Path]:
    """Draw the program graph and every head's W_QK / W_OV and every MLP's W_in / W_out.

    One row of matrices per layer. Small models go into one PNG; when there are more
    than a dozen matrices, ``path`` holds the graph and ``<stem>-layer<N><suffix>`` the
    matrices of layer N. Axes are labelled with residual dimensions and neuron labels;
    only rows and columns holding a non-zero weight are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layers = _weight_panels(model)
    ncols = max(2, min(6, max((len(x) for x in layers), default=2)))
    row_specs = [(l, panels[i:i + ncols]) for l, panels in enumerate(layers) for i in range(0, len(panels), ncols)]
    tallest = max([1] + [len([1 for n in (graph or {}).get("nodes", []) if _stage(n) == s])
                         for s in {_stage(n) for n in (graph or {}).get("nodes", [])}])
    graph_height = max(3.0, 0.75 * tallest + 1.6)
    graph_width = max(12.0, 2.3 * (2 * model.config.n_layers + 1), 4.6 * ncols)
    title = f"{model.config.output}: {_describe(model)}"
    panel_h = 4.6

    def draw_rows(fig: Any, spec: Any, rows: list) -> None:
        for r, (_, panels) in enumerate(rows):
            for k, (m, rlabels, clabels, name, ylabel, xlabel) in enumerate(panels):
                _heatmap(fig.add_subplot(spec[r, k]), m, rlabels, clabels, name, ylabel, xlabel)

    if sum(len(p) for p in layers) <= _MAX_PANELS_ONE_FILE and len(row_specs) <= 4:
        n = len(row_specs)
        fig = plt.figure(figsize=(graph_width, graph_height + panel_h * n + 0.5), layout="constrained")
        outer = fig.add_gridspec(1 + n, 1, height_ratios=[graph_height] + [panel_h] * n)
        _draw_graph(fig.add_subplot(outer[0]), graph, model.config.n_layers)
        if n:
            draw_rows(fig, outer[1:].subgridspec(n, ncols), row_specs)
        fig.suptitle(title, fontsize=13, x=0.01, ha="left")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return [path]
    files = [path]
    graph_width = max(12.0, 2.6 * (2 * model.config.n_layers + 1))
    fig = plt.figure(figsize=(graph_width, graph_height + 0.5), layout="constrained")
    _draw_graph(fig.add_subplot(1, 1, 1), graph, model.config.n_layers)
    fig.suptitle(title, fontsize=13, x=0.01, ha="left")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    for l in range(model.config.n_layers):
        rows = [r for r in row_specs if r[0] == l]
        if not rows:
            continue
        fig = plt.figure(figsize=(4.6 * ncols, panel_h * len(rows) + 0.5), layout="constrained")
        draw_rows(fig, fig.add_gridspec(len(rows), ncols), rows)
        fig.suptitle(f"{model.config.output}: layer {l}", fontsize=13, x=0.01, ha="left")
        target = path.with_name(f"{path.stem}-layer{l}{path.suffix or '.png'}")
        fig.savefig(target, dpi=100)
        plt.close(fig)
        files.append(target)
    return files


# ---------------------------------------------------------------------------- list
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
        raise typer.BadParameter(f"no library program {program!r}; known: {', '.join(sorted(LIBRARY))}",
                                 param_hint="--program")
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
    out.print(f"[green]demo passed[/green] in {time.perf_counter() - t_all:.1f} s. Next: "
              f"rasp-compiler inspect {escape(str(output))} --plot demo.png")


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


def main() -> None:  # python -m rasp_compiler.cli
    app()


if __name__ == "__main__":
    main()
