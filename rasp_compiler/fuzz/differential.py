"""Differential testing: a compiled random program against ``rasp.evaluate``, and a
printed program against its own text.

For one seed, :func:`check_seed` generates a program (regenerating while the compiler
rejects it), compiles it, runs the model on a few hundred inputs (every input up to
some length, then random ones, half of them of the full length) and compares each
output with the evaluator, using :func:`rasp_compiler.verify.check_model` so that a
mismatch means what it means everywhere else. For a printable program it also prints
it, parses the text back and compares the evaluations of the two programs on the same
inputs (and, optionally, compiles the parsed program and checks it too).

Every failure is kept as data in a :class:`SeedResult` (the exception type and message,
the first mismatching inputs), never raised, so a long campaign can report them all.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from rasp_compiler.errors import AggregateError, BlendedValueError, UnsupportedProgramError
from rasp_compiler.fuzz.generator import (
    GeneratedProgram, GenerationError, Rejection, compile_generated, describe_ops,
)
from rasp_compiler.rasp import core
from rasp_compiler.rasp.evaluate import evaluate
from rasp_compiler.verify import Mismatch, check_model, same_value

EXHAUSTIVE_BUDGET = 120  # every input of length 1, 2, ... while the total stays under this
RANDOM_INPUTS = 120


class FuzzTimeout(Exception):
    """A stage of checking one program took longer than its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`FuzzTimeout` in the block after ``seconds`` (Unix main thread only; else no limit)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise FuzzTimeout(f"took more than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def fuzz_inputs(vocab: Sequence[Any], max_seq_len: int, seed: int, exhaustive_budget: int = EXHAUSTIVE_BUDGET,
                n_random: int = RANDOM_INPUTS) -> list[list]:
    """Every short input (up to the budget), then random ones, half of them full length."""
    v = sorted(vocab, key=repr)
    out: list[list] = []
    for length in range(1, max_seq_len + 1):
        if len(out) + len(v) ** length > exhaustive_budget:
            break
        out.extend(list(p) for p in itertools.product(v, repeat=length))
    rng = random.Random(f"rasp_compiler.fuzz.inputs:{seed}")
    for i in range(n_random):
        n = max_seq_len if i % 2 == 0 else rng.randint(1, max_seq_len)
        out.append([rng.choice(v) for _ in range(n)])
    return out


@dataclass
class SeedResult:
    """What happened to one seed."""

    seed: int
    generated: GeneratedProgram | None = None
    rejections: tuple[Rejection, ...] = ()
    compile_error: str | None = None  # anything but UnsupportedProgramError while compiling: a bug
    check_error: str | None = None  # an exception while running or evaluating: a bug
    guarded: str | None = None  # the one-hot guard stopped an unproven Aggregate that really conflicts: not a bug
    inputs_checked: int = 0
    n_mismatches: int = 0
    mismatches: tuple[Mismatch, ...] = ()
    round_trip: str = "skipped"  # ok | mismatch | print_error | parse_error | eval_error | not_printable | skipped
    round_trip_detail: str | None = None
    text_compiled: str = "skipped"  # ok | rejected | guarded | mismatch | error | timeout | skipped
    text_compiled_detail: str | None = None
    extra_checks: dict = field(default_factory=dict)  # "jax" / "file": ok | "mismatch: ..." | "error: ..."
    layers: int = 0
    seconds: float = 0.0
    ops: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        """A bug was seen: a crash, a wrong output, or a text round trip that changed the program."""
        return bool(self.compile_error or self.check_error or self.n_mismatches
                    or self.round_trip in ("mismatch", "print_error", "parse_error", "eval_error")
                    or self.text_compiled in ("mismatch", "error", "timeout")
                    or any(v != "ok" for v in self.extra_checks.values()))

    def summary(self) -> str:
        parts = [f"seed {self.seed}"]
        if self.compile_error:
            parts.append(f"compile error: {self.compile_error}")
        if self.check_error:
            parts.append(f"check error: {self.check_error}")
        if self.n_mismatches:
            m = self.mismatches[0]
            parts.append(f"{self.n_mismatches} mismatches, e.g. input {m.input!r}: got {m.got!r}, expected {m.expected!r}")
        if self.round_trip not in ("ok", "skipped", "not_printable"):
            parts.append(f"round trip {self.round_trip}: {self.round_trip_detail}")
        if self.text_compiled in ("mismatch", "error", "timeout"):
            parts.append(f"parsed text compiled: {self.text_compiled}: {self.text_compiled_detail}")
        for name, status in self.extra_checks.items():
            if status != "ok":
                parts.append(f"{name} check: {status}")
        return "; ".join(parts)


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _first_difference(a: core.SOp, b: core.SOp, inputs: list[list]) -> tuple[str, str | None]:
    """Evaluate both programs on every input: ('ok', None) or (status, detail)."""
    for xs in inputs:
        try:
            want = evaluate(a, xs)
        except FuzzTimeout:
            raise
        except Exception:  # noqa: BLE001 - the original cannot evaluate it either: nothing to compare
            continue
        try:
            got = evaluate(b, xs)
        except FuzzTimeout:
            raise
        except Exception as exc:  # noqa: BLE001
            return "eval_error", f"input {xs!r}: the parsed program raised {_err(exc)}; the original gives {want!r}"
        if len(got) != len(want) or not all(same_value(g, w) for g, w in zip(got, want)):
            return "mismatch", f"input {xs!r}: parsed program gives {got!r}, the original {want!r}"
    return "ok", None


def round_trip(gen: GeneratedProgram, inputs: list[list]) -> tuple[str, str | None, core.SOp | None]:
    """Print -> parse -> same evaluation: (status, detail, parsed output SOp)."""
    from rasp_compiler.dsl import parse

    if not gen.printable:
        return "not_printable", None, None
    if gen.text is None:
        return "print_error", gen.print_error, None
    try:
        parsed = parse(gen.text, filename=f"<fuzz seed {gen.seed}>").output
    except Exception as exc:  # noqa: BLE001
        return "parse_error", _err(exc), None
    if parsed is None:
        return "parse_error", "the printed text has no output SOp", None
    status, detail = _first_difference(gen.program, parsed, inputs)
    return status, detail, parsed


def check_seed(seed: int, depth: int = 3, *, inputs: list[list] | None = None, text_round_trip: bool = True,
               compile_text: bool = False, backend: str = "numpy", jax: bool = False, via_file: bool = False,
               exhaustive_budget: int = EXHAUSTIVE_BUDGET, n_random: int = RANDOM_INPUTS,
               stage_seconds: float | None = None, **options: Any) -> SeedResult:
    """Generate, compile and check the program of one seed (see the module docstring).

    ``jax`` also runs the jitted JAX forward pass on the inputs; ``via_file`` saves the
    model to a weight file, loads it back and checks the loaded model. ``stage_seconds``
    bounds each stage (compiling, checking, the round trip, compiling the parsed text): a
    stage that takes longer is recorded as a ``FuzzTimeout`` (Unix only). Other keyword
    arguments go to :func:`rasp_compiler.fuzz.generator.generate_program`.
    """
    start = time.perf_counter()
    result = SeedResult(seed)
    limit = stage_seconds
    try:
        with time_limit(limit):
            made = compile_generated(seed, depth, **options)
    except GenerationError as exc:
        result.compile_error = _err(exc)
        result.seconds = time.perf_counter() - start
        return result
    except Exception as exc:  # noqa: BLE001 - a crash of the compiler (not a refusal) is a bug
        result.compile_error = _err(exc)
        result.seconds = time.perf_counter() - start
        return result
    gen, model = made.generated, made.model
    result.generated, result.rejections, result.ops = gen, made.rejections, describe_ops(gen.program)
    result.layers = model.config.n_layers
    if inputs is None:
        inputs = fuzz_inputs(gen.vocab, gen.max_seq_len, seed, exhaustive_budget, n_random)
    try:
        with time_limit(limit):
            report = check_model(model, gen.program, inputs, backend=backend)
        result.inputs_checked, result.n_mismatches, result.mismatches = \
            report.checked, report.n_mismatches, report.examples[:5]
    except BlendedValueError as exc:
        if _really_conflicts(gen.program, exc.input[1:], exc.sop):
            result.guarded = _err(exc)
        else:
            result.check_error = f"false alarm of the one-hot guard: {_err(exc)}"
    except Exception as exc:  # noqa: BLE001
        result.check_error = _err(exc)
    if jax and not result.guarded:  # a guarded model raises the same on every backend
        with time_limit(limit and 4 * limit):  # includes JAX's compile of the forward pass
            result.extra_checks["jax"] = _check_status(model, gen.program, inputs, "jax")
    if via_file and not result.guarded:
        with time_limit(limit):
            result.extra_checks["file"] = _check_via_file(model, gen.program, inputs)
    if text_round_trip:
        try:
            with time_limit(limit):
                status, detail, parsed = round_trip(gen, inputs)
        except FuzzTimeout as exc:
            status, detail, parsed = "eval_error", _err(exc), None
        result.round_trip, result.round_trip_detail = status, detail
        if compile_text and status == "ok" and parsed is not None:
            try:
                with time_limit(limit):
                    result.text_compiled, result.text_compiled_detail = _compile_text(parsed, gen, inputs, backend)
            except FuzzTimeout as exc:
                result.text_compiled, result.text_compiled_detail = "timeout", f"compiling the parsed text {exc}"
    result.seconds = time.perf_counter() - start
    return result


def _really_conflicts(program: core.SOp, xs: list, sop: str) -> bool:
    """Whether the strict evaluator finds categorical Aggregate ``sop`` selecting differing values on ``xs``."""
    try:
        evaluate(program, xs, strict=True)
    except AggregateError as exc:
        return f"categorical Aggregate {sop} selects" in str(exc)
    except Exception:  # noqa: BLE001
        return False
    return False


def _check_status(model, program: core.SOp, inputs: list[list], backend: str) -> str:
    try:
        report = check_model(model, program, inputs, backend=backend)
    except FuzzTimeout as exc:
        return f"timeout: {exc}"
    except Exception as exc:  # noqa: BLE001
        return f"error: {_err(exc)}"
    if report.exact:
        return "ok"
    m = report.examples[0]
    return f"mismatch: {report.n_mismatches} inputs, e.g. {m.input!r}: got {m.got!r}, expected {m.expected!r}"


def _check_via_file(model, program: core.SOp, inputs: list[list]) -> str:
    import tempfile
    from pathlib import Path

    try:
        from rasp_compiler.export import load_model, save_model
    except ImportError as exc:
        return f"error: weight files are not available: {exc}"
    with tempfile.TemporaryDirectory(prefix="rasp_fuzz_") as d:
        try:
            loaded = load_model(save_model(model, Path(d) / "model.safetensors"))
        except FuzzTimeout as exc:
            return f"timeout: {exc}"
        except Exception as exc:  # noqa: BLE001
            return f"error: {_err(exc)}"
        return _check_status(loaded, program, inputs, "numpy")


def _compile_text(parsed: core.SOp, gen: GeneratedProgram, inputs: list[list], backend: str) -> tuple[str, str | None]:
    from rasp_compiler.compiler import compile_rasp_to_model

    try:
        model = compile_rasp_to_model(parsed, gen.vocab, gen.max_seq_len, causal=gen.causal)
    except FuzzTimeout:
        raise
    except UnsupportedProgramError as exc:
        return "rejected", _err(exc)
    except Exception as exc:  # noqa: BLE001
        return "error", _err(exc)
    try:
        report = check_model(model, parsed, inputs, backend=backend)
    except FuzzTimeout:
        raise
    except BlendedValueError as exc:
        if _really_conflicts(parsed, exc.input[1:], exc.sop):
            return "guarded", _err(exc)
        return "error", f"false alarm of the one-hot guard: {_err(exc)}"
    except Exception as exc:  # noqa: BLE001
        return "error", _err(exc)
    if report.exact:
        return "ok", None
    m = report.examples[0]
    return "mismatch", f"{report.n_mismatches} inputs, e.g. {m.input!r}: got {m.got!r}, expected {m.expected!r}"


__all__ = ["SeedResult", "check_seed", "fuzz_inputs", "round_trip", "time_limit", "FuzzTimeout", "EXHAUSTIVE_BUDGET",
           "RANDOM_INPUTS"]
