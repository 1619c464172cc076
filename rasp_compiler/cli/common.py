"""Shared by every command: the Typer app, one-line errors, options, and loading a
MODEL_OR_PROGRAM argument."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shlex
import shutil
import sys
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

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
        click_command = typer.main.get_command(self)
        global _prog_name
        _prog_name = kwargs.setdefault("prog_name", _invocation())  # usage lines and hints run as printed
        _text_programs.clear()  # one run's .rasp files (the app may be called again in one process)
        try:
            code = click_command.main(*args, standalone_mode=False, **kwargs)
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
            _error(str(_located(exc)))
            sys.exit(1)
        except OSError as exc:
            _error(f"{str(exc.filename) + ': ' if getattr(exc, 'filename', None) else ''}{exc.strerror or exc}")
            sys.exit(1)
        except RecursionError:
            _error("the input is nested too deeply to process (a program, token or file nested thousands of "
                   "levels deep); flatten it")
            sys.exit(1)
        except MemoryError:
            _error("out of memory: the program, vocabulary or max_seq_len is too large for this machine; "
                   "use smaller sizes")
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - a user never sees a traceback; RASP_COMPILER_TRACEBACK=1 shows it
            if os.environ.get("RASP_COMPILER_TRACEBACK"):
                raise
            _error(f"{type(exc).__name__}: {exc} (unexpected; set RASP_COMPILER_TRACEBACK=1 to see where)")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


_prog_name: str | None = None  # the name this run was called as (set by the app)


def command() -> str:
    """How to type this CLI again from here, so every printed hint runs as printed: the name
    the app was called with, else ``rasp-compiler`` when that name on the PATH is this program,
    else the path it was started by (``.venv/bin/rasp-compiler`` after ``make demo``) or
    ``python -m rasp_compiler.cli``."""
    return _prog_name or _invocation()


def _invocation() -> str:
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is None or started.name in ("__main__.py", "-c", "-m") or started.suffix == ".py":
        return f"{_here(Path(sys.executable))} -m rasp_compiler.cli"
    on_path = shutil.which("rasp-compiler")
    if started.name == "rasp-compiler" and (not started.exists() or (on_path and _same_file(on_path, started))):
        return "rasp-compiler"  # called by its name (or from a test harness): the name works
    return _here(started) if started.exists() else "rasp-compiler"


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _here(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it, else absolute; quoted for a shell."""
    path = Path(os.path.abspath(path))
    try:
        shown = str(path.relative_to(Path.cwd()))
        shown = shown if os.sep in shown else f".{os.sep}{shown}"
    except ValueError:
        shown = str(path)
    return shlex.quote(shown)


_text_programs: list = []  # the .rasp programs this run parsed, for errors found after parsing


def _located(exc: Exception) -> Exception:
    """An error about a node of a parsed .rasp program, at that node's file:line:col."""
    from rasp_compiler.errors import ParseError

    if isinstance(exc, ParseError):
        return exc
    for parsed in reversed(_text_programs):
        found = parsed.locate(exc)
        if found is not None:
            return found
    return exc


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/bold red] [red]{escape(message)}[/red]", soft_wrap=True)


def _warning(message: str) -> None:
    err.print(f"[bold yellow]warning:[/bold yellow] {escape(message)}", soft_wrap=True)


app = _App(
    name="rasp-compiler",
    help="Compile RASP programs into exact, fully labelled transformer weights.\n\n"
         "PROGRAM is a .rasp file or lib:NAME (see `rasp-compiler list`); MODEL is a weight file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from rasp_compiler import __version__
        out.print(f"rasp-compiler {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_show_version, help="Print the version and exit.")] = False) -> None:
    pass


def unknown_name(what: str, name: str, known, param_hint: str) -> typer.BadParameter:
    """The error for a name not among ``known``: the closest ones first ("did you mean"), then all."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return typer.BadParameter(f"no {what} {name!r}{hint} (known: {', '.join(known)})", param_hint=param_hint)


@contextlib.contextmanager
def writing(path: Path, option: str):
    """Name the output path (and its option) in an error while writing it: the user sees
    that it was the file they asked to write, not an input, that could not be created."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) and str(exc.filename) != str(path) else ""
        raise RaspCompilerError(f"cannot write the output file {path} ({option}): {reason}{where}") from None


LARGE_BYTES = 100 * 10**6  # weights above this get a warning: few programs need them, a typo can make them


def warn_if_large(model: Any) -> None:
    """Warn (stderr) before writing more than LARGE_BYTES of weights, with the size and what grows it."""
    size = sum(int(v.nbytes) for v in model.params.values())
    if size > LARGE_BYTES:
        c = model.config
        err.print(f"[yellow]warning:[/yellow] the weights take {size / 1e6:,.0f} MB (d_model {c.d_model}, "
                  f"d_mlp {c.d_mlp}, max_seq_len {c.max_seq_len}, {len(c.vocab)} tokens); a smaller "
                  f"--max-seq-len or vocabulary makes them smaller", soft_wrap=True, highlight=False)


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
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Refuse a categorical Aggregate that no rule proves to copy one value (by default it "
                     "compiles with a warning, is listed by inspect and is guarded at run time).")]
NoGuardOpt = Annotated[bool, typer.Option(
    "--no-guard", help="Skip the run-time check that every categorical SOp holds one value at every "
                       "position (faster; a blended value then goes unreported).")]
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
            number = _same_number(item, vocab)
            if number is not _NO_TOKEN:
                tokens.append(number)
                continue
            raise typer.BadParameter(f"token {item!r} at position {i} is not in the vocabulary "
                                     f"{' '.join(map(str, vocab))}", param_hint="--input")
        tokens.append(by_text[item])
    return tokens


_NO_TOKEN = object()


def _same_number(item: str, vocab: Any) -> Any:
    """The one numeric vocabulary token equal to ``item`` read as a number ("1" for 1.0, "1e-3"
    for 0.001), so a model with float tokens can be fed from the command line."""
    try:
        x = float(item)
    except ValueError:
        return _NO_TOKEN
    hits = [t for t in vocab if isinstance(t, (int, float)) and not isinstance(t, bool) and t == x]
    return hits[0] if len(hits) == 1 else _NO_TOKEN


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
            raise unknown_name("library program", name, LIBRARY, "PROGRAM")
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
    _text_programs.append(parsed)
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
             causal: bool, bos: str, pad: str, strict: bool = False) -> Any:
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

    from rasp_compiler.errors import UnprovenAggregateWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnprovenAggregateWarning)
        model = compile_rasp_to_model(loaded.program, tokens, max_seq_len, causal=causal,
                                      compiler_bos=bos, compiler_pad=pad, strict=strict)
    for w in caught:  # one yellow line each (an UnprovenAggregateWarning names the node and why)
        if issubclass(w.category, UnprovenAggregateWarning):
            _warning(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    model.source = loaded.source
    model.metadata = {"program": loaded.origin}
    loaded.model = model
    return model


def _load(spec: str, *, vocab: str | None = None, vocab_type: VocabType = VocabType.auto,
          max_seq_len: int | None = None, output: str | None = None, causal: bool = False,
          bos: str = "BOS", pad: str = "PAD", need_program: bool = False, strict: bool = False) -> Loaded:
    """Compile a program, or load a weight file (and the program it stores)."""
    if _is_program(spec):
        loaded = _load_program(spec, output)
        _compile(loaded, vocab, vocab_type, max_seq_len, causal, bos, pad, strict)
        return loaded
    path = Path(spec)
    if not path.exists():
        raise typer.BadParameter(f"no such file: {spec} (a MODEL is a .safetensors weight file; a PROGRAM "
                                 f"a .rasp file or lib:NAME)", param_hint="MODEL_OR_PROGRAM")
    for flag, given in (("--vocab", vocab is not None), ("--max-seq-len", max_seq_len is not None),
                        ("--output", output is not None), ("--causal", causal)):
        if given:
            raise typer.BadParameter(f"{flag} applies when compiling a PROGRAM; {spec} is a weight file, "
                                     f"which keeps the settings it was compiled with (see {command()} "
                                     f"inspect {spec})", param_hint=flag)
    from rasp_compiler.export import load_model

    model = load_model(path)
    if strict and model.config.unproven_aggregates:
        from rasp_compiler.errors import UnsupportedProgramError

        raise UnsupportedProgramError(
            f"{spec} was compiled with categorical Aggregates no rule proves to copy one value "
            f"({', '.join(model.config.unproven_aggregates)}); --strict refuses such a model")
    program, _ = _program_of_model(model)
    if need_program and program is None:
        raise RaspCompilerError(f"{spec} stores no program (no source text, no library name), so there is "
                                f"nothing to check it against; verify the program instead: "
                                f"{command()} verify PROGRAM.rasp --vocab ... --max-seq-len ...")
    return Loaded(spec, program, model.source, (model.metadata or {}).get("program"), model)


def _describe(model: Any) -> str:
    s = model.sizes()
    return (f"{s['layers']} layers, {s['heads']} heads/layer, d_model {s['d_model']}, d_head {s['d_head']}, "
            f"d_mlp {s['d_mlp']}, {s['params']:,} params")


