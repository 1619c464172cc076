"""Which programs a task set is made of: the library, the ``.rasp`` examples, random ones.

A :class:`Source` is one program with everything needed to compile it (vocabulary,
length, causality) and its text when it has one. Selectors (``--programs``):
``lib`` (every library program), ``lib:NAME``, ``examples`` (every ``examples/*.rasp``),
``ex:NAME``, ``corpus:PATH`` (every case of an InterpBench circuits-benchmark checkout at PATH,
read by :mod:`rasp_compiler.corpus`; nothing of it is copied) or ``corpus:PATH:1,5,88`` (those
cases); your own programs: ``PATH.rasp`` (a text program: its output) and ``MODULE:FUNCTION``
or ``PATH.py:FUNCTION`` (a Python function of no arguments returning the program), which need
the vocabulary and length to compile at (``vocab``, ``max_seq_len``); random programs come from
:func:`random_sources`.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from rasp_compiler.errors import RaspCompilerError

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"  # the repository's examples (source checkouts)
EXAMPLE_VOCABS = {"running_max": (0, 1, 2, 3), "running_min": (0, 1, 2, 3)}  # the files say so in their header
DEFAULT_PROGRAMS = ("lib", "examples")
MIN_LAYERS = 2  # random programs with fewer layers have circuits too trivial to rank methods on


class TaskSetError(RaspCompilerError):
    """A task set cannot be made or read: an unknown program selector, a missing or corrupt task file."""


@dataclass(frozen=True)
class Source:
    name: str  # folder-name stem: "lib-reverse", "ex-reverse", "rand-00012"
    origin: str  # "lib:reverse", "examples/reverse.rasp", "rasp_compiler.fuzz seed 12 attempt 0 depth 3"
    build: Callable[[], Any]  # -> the rasp program
    vocab: tuple
    max_seq_len: int
    causal: bool = False
    text: str | None = None  # text RASP, when the program has one

    def compile(self):
        """Compiled strictly: a task's ground truth must be proven exact, so a categorical
        Aggregate that no rule proves is refused (UnsupportedProgramError), never guarded."""
        from rasp_compiler.compiler import compile_rasp_to_model

        model = compile_rasp_to_model(self.build(), self.vocab, self.max_seq_len, causal=self.causal, strict=True)
        model.source = self.text
        model.metadata = {"program": {"origin": self.origin, "output": model.config.output}}
        return model


def _text_of(program) -> str | None:
    from rasp_compiler.dsl import to_text

    try:
        return to_text(program)
    except Exception:  # noqa: BLE001 - Python-only programs (lambdas) have no text form
        return None


def library_sources(names: list[str] | None = None) -> list[Source]:
    from rasp_compiler.lib import LIBRARY

    out = []
    for name in names or list(LIBRARY):
        if name not in LIBRARY:
            import difflib

            close = difflib.get_close_matches(name, list(LIBRARY), n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise TaskSetError(f"no library program {name!r}{hint} (known: {', '.join(LIBRARY)})")
        e = LIBRARY[name]
        out.append(Source(f"lib-{name}", f"lib:{name}", e.build, tuple(e.vocab), e.max_seq_len,
                          text=_text_of(e.build())))
    return out


def example_sources(names: list[str] | None = None, directory: Path = EXAMPLES_DIR) -> tuple[list[Source], list[str]]:
    """Sources of ``examples/*.rasp`` (vocabulary: the library program of the same name), and notes
    on the files left out."""
    from rasp_compiler.dsl import load
    from rasp_compiler.lib import LIBRARY

    if not directory.is_dir():
        return [], [f"no examples directory at {directory} (examples ship with a source checkout)"]
    files = sorted(directory.glob("*.rasp"))
    known = {f.stem for f in files}
    for name in names or []:
        if name not in known:
            raise TaskSetError(f"no example {name}.rasp in {directory}; known: {', '.join(sorted(known))}")
    out, notes = [], []
    for f in files:
        if names and f.stem not in names:
            continue
        vocab = EXAMPLE_VOCABS.get(f.stem) or (tuple(LIBRARY[f.stem].vocab) if f.stem in LIBRARY else None)
        if vocab is None:
            notes.append(f"examples/{f.name}: no known vocabulary (no library program {f.stem!r}), skipped")
            continue
        parsed = load(f)
        out.append(Source(f"ex-{f.stem}", f"examples/{f.name}", lambda f=f: load(f).output, vocab, 5,
                          text=parsed.source))
    return out, notes


def corpus_sources(path: str, numbers: list[int] | None = None) -> list[Source]:
    """The cases of the InterpBench corpus at ``path``, each with its own vocabulary, length
    and causal flag (its ``supports_causal_masking()``)."""
    from rasp_compiler.corpus import CorpusError, load_corpus

    try:
        cases = load_corpus(path, numbers)
    except CorpusError as exc:
        raise TaskSetError(str(exc)) from exc
    return [Source(f"corpus-{c.number:03d}", f"circuits_benchmark/benchmark/cases/{c.file.name}",
                   lambda c=c: c.program, tuple(sorted(c.vocab, key=repr)), c.max_seq_len, c.causal,
                   _text_of(c.program)) for c in cases]


def _corpus_selector(sel: str) -> list[Source]:
    """``corpus:PATH`` or ``corpus:PATH:1,5,88`` (a last part of digits and commas is the case list)."""
    body = sel[len("corpus:"):]
    path, _, last = body.rpartition(":")
    if path and re.fullmatch(r"\d+(,\d+)*", last):
        return corpus_sources(path, [int(n) for n in last.split(",")])
    if not body:
        raise TaskSetError("corpus: needs a path: corpus:PATH or corpus:PATH:1,5,88")
    return corpus_sources(body)


def random_sources(n: int, seed: int = 0, depth: int = 3, min_layers: int = MIN_LAYERS) -> Iterator[tuple[Source, Any]]:
    """``n`` random programs (generator seeds from ``seed`` up) whose models have at least
    ``min_layers`` layers, each with its compiled model."""
    from rasp_compiler.fuzz.generator import GenerationError, compile_generated, generate_program

    found, s = 0, seed
    while found < n:
        if s - seed > 50 * max(n, 1):
            raise TaskSetError(f"only {found} of {n} random programs from seed {seed} have {min_layers}+ layers")
        try:
            made = compile_generated(s, depth, strict=True)  # no unproven Aggregate in a task
        except GenerationError:
            s += 1
            continue
        gen = made.generated
        s += 1
        if made.model.config.n_layers < min_layers or not _output_varies(made.model):
            continue
        args = gen.rebuild_args()
        src = Source(f"rand-{gen.seed:05d}", f"rasp_compiler.fuzz seed {gen.seed} attempt {gen.attempt} depth {depth}",
                     lambda args=args: generate_program(**args).program, tuple(gen.vocab), gen.max_seq_len,
                     gen.causal, gen.text)
        model = made.model
        model.source = gen.text
        model.metadata = {"program": {"origin": src.origin, "output": model.config.output}}
        found += 1
        yield src, model


def _output_varies(model, n: int = 64) -> bool:
    """Whether the output differs between some inputs (a program of the indices alone has no
    clean/corrupted pair, so no method can be scored on it)."""
    from rasp_compiler.verify import random_inputs

    c = model.config
    xs = random_inputs(c.vocab, c.max_seq_len, n, seed=0, full_length=n)
    outs = {repr(o) for o in model.apply_batch([[c.bos, *x] for x in xs if len(x) == c.max_seq_len], backend="numpy")}
    return len(outs) > 1


USER_MAX_SEQ_LEN = 5  # the length your own programs are compiled at unless told otherwise
_BUILDER = re.compile(r"(?P<module>[A-Za-z_][\w.]*|.+\.py):(?P<function>[A-Za-z_]\w*)\Z")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "program"


def program_source(program, vocab, max_seq_len: int | None = None, causal: bool = False,
                   name: str | None = None, origin: str | None = None, text: str | None = None) -> Source:
    """A RASP program (an SOp) as a task source, compiled at ``vocab`` and ``max_seq_len``."""
    from rasp_compiler.rasp import core

    if not isinstance(program, core.SOp):
        raise TaskSetError(f"a program must be a RASP sequence (an SOp), got {program!r:.80}")
    if vocab is None:
        raise TaskSetError(f"{origin or program.label} needs the tokens to compile it with: give vocab "
                           f"(--vocab a,b,c on the command line)")
    return Source(name or f"prog-{_slug(program.label)}", origin or f"program {program.label}",
                  lambda: program, tuple(vocab), max_seq_len or USER_MAX_SEQ_LEN, causal,
                  text if text is not None else _text_of(program))


def rasp_file_source(path: str, vocab, max_seq_len: int | None = None, causal: bool = False) -> Source:
    """A ``.rasp`` file's output as a task source."""
    from rasp_compiler.dsl import load

    file = Path(path)
    if not file.is_file():
        raise TaskSetError(f"no such file: {path}" if not file.exists() else f"not a file: {path}")
    parsed = load(file)
    if parsed.output is None:
        raise TaskSetError(f"{path} defines no sequence to make a task of")
    return program_source(parsed.output, vocab, max_seq_len, causal, name=f"rasp-{_slug(file.stem)}",
                          origin=str(path), text=parsed.source)


def builder_source(spec: str, vocab, max_seq_len: int | None = None, causal: bool = False) -> Source:
    """``MODULE:FUNCTION`` or ``PATH.py:FUNCTION``: the program the function returns."""
    m = _BUILDER.match(spec)
    module_name, function = m.group("module"), m.group("function")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise TaskSetError(f"{spec}: no such file {module_name}")
            spec_ = importlib.util.spec_from_file_location(_slug(file.stem), file)
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
        else:
            sys.path.insert(0, str(Path.cwd()))  # a module beside you, as `python -m` would find it
            try:
                module = importlib.import_module(module_name)
            finally:
                sys.path.remove(str(Path.cwd()))
    except ImportError as exc:
        raise TaskSetError(f"{spec}: cannot import {module_name} ({exc})") from None
    build = getattr(module, function, None)
    if not callable(build):
        raise TaskSetError(f"{spec}: {module_name} has no function {function}")
    return program_source(build(), vocab, max_seq_len, causal, name=f"py-{_slug(function)}", origin=spec)


def _rejoin_case_lists(selectors: list[str]) -> list[str]:
    """``corpus:PATH:1,5,88`` split at its commas (the CLI splits ``--programs`` so) made whole again."""
    out: list[str] = []
    for sel in (s.strip() for s in selectors):
        if sel.isdigit() and out and re.fullmatch(r"corpus:.+:\d+(,\d+)*", out[-1]):
            out[-1] += f",{sel}"
        else:
            out.append(sel)
    return out


def select_sources(selectors: list, vocab=None, max_seq_len: int | None = None,
                   causal: bool = False) -> tuple[list[Source], list[str]]:
    """Sources for ``--programs`` selectors (see the module docstring); an item may also be a
    RASP program (an SOp) or a :class:`Source`. ``vocab``, ``max_seq_len``, ``causal``: how
    your own programs (files, functions, SOps) are compiled."""
    from rasp_compiler.rasp import core

    out, notes, seen = [], [], set()
    given = [s for s in selectors if not isinstance(s, str)]
    for sel in [*_rejoin_case_lists([s for s in selectors if isinstance(s, str)]), *given]:
        if isinstance(sel, Source):
            got = [sel]
        elif isinstance(sel, core.RASPExpr):
            got = [program_source(sel, vocab, max_seq_len, causal)]
        elif sel.endswith(".rasp"):
            got = [rasp_file_source(sel, vocab, max_seq_len, causal)]
        elif sel == "lib":
            got = library_sources()
        elif sel.startswith("lib:"):
            got = library_sources([sel[4:]])
        elif sel == "examples":
            got, more = example_sources()
            notes += more
        elif sel.startswith("ex:"):
            got, more = example_sources([sel[3:]])
            notes += more
        elif sel.startswith("corpus:"):
            got = _corpus_selector(sel)
        elif _BUILDER.match(sel):
            got = [builder_source(sel, vocab, max_seq_len, causal)]
        else:
            raise TaskSetError(f"unknown program selector {sel!r}: write lib, lib:NAME, examples, ex:NAME, "
                               f"corpus:PATH or corpus:PATH:1,5,88, a FILE.rasp, or MODULE:FUNCTION "
                               f"(random programs: --random N)")
        for s in got:
            if s.name not in seen:
                seen.add(s.name)
                out.append(s)
    return out, notes
