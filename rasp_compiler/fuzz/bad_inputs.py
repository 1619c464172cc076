"""Bad inputs, each of which must give one clear error.

Every :class:`Case` does one wrong thing (an uncompilable program, a token outside
the vocabulary, a malformed text program, a corrupt weight file, wrong CLI
arguments ...) and says which exception type it must raise and which words its
message must contain. :func:`run_cases` runs them all and returns one
:class:`Outcome` per case: the exception type and message actually seen, and whether
they meet the expectation. The tests (tests/test_bad_inputs.py) assert on the
outcomes; docs/reliability.md prints them as a table (``python -m
rasp_compiler.fuzz.bad_inputs --markdown``), so the table shows real messages.

A message is *clear* when it has the expected type, names the cause (the expected
words), and is not a traceback from deep inside a library.

CLI cases run the ``rasp-compiler`` entry point installed next to ``sys.executable``
in a subprocess; they and the weight-file cases are skipped when those parts are not
installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rasp_compiler import errors
from rasp_compiler.rasp import core as rasp

C = rasp.Comparison
ABC = ("a", "b", "c")


class CliFailed(Exception):
    """Stands for a CLI run that exited with a non-zero status (type column: ``exit N``)."""

    def __init__(self, code: int, stderr: str, stdout: str):
        self.code, self.stderr, self.stdout = code, stderr, stdout
        super().__init__(stderr.strip() or stdout.strip())


class _Skip(Exception):
    pass


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    what: str  # the bad input, in words
    run: Callable[["Context"], Any]  # must raise
    expect: type[BaseException] | int  # an exception type, or a CLI exit status
    mentions: tuple[str, ...] = ()  # words the message must contain (case-insensitive)
    known_issue: str | None = None  # a poor error reported to the owners: what happens now, and the fix


@dataclass(frozen=True)
class Outcome:
    case: Case
    status: str  # ok | wrong_type | unclear | no_error | skipped
    error_type: str | None = None
    message: str | None = None
    detail: str | None = None  # why it is not ok, or why skipped

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")

    @property
    def as_known(self) -> bool:
        """Not ok, but reported already (the case carries a ``known_issue``)."""
        return not self.ok and self.case.known_issue is not None


class Context:
    """Shared fixtures: a temporary directory and one small compiled model."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self._model = None

    def model(self):
        if self._model is None:
            from rasp_compiler.compiler import compile_rasp_to_model
            self._model = compile_rasp_to_model(_reverse(), set(ABC), 4)
        return self._model

    def weight_file(self, name: str = "good.safetensors") -> Path:
        save_model, _ = _export()
        path = self.tmp / name
        if not path.exists():
            save_model(self.model(), path)
        return path

    def rasp_file(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path


# --------------------------------------------------------------------------- helpers
def _reverse() -> rasp.SOp:
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE)).named("length")
    opp = rasp.SequenceMap(lambda n, i: n - i - 1, length, rasp.indices).named("opp_index")
    return rasp.Aggregate(rasp.Select(rasp.indices, opp, C.EQ), rasp.tokens).named("reverse")


def _compile(program, vocab=ABC, max_seq_len=4, causal=False, strict=False):
    from rasp_compiler.compiler import compile_rasp_to_model
    return compile_rasp_to_model(program, set(vocab), max_seq_len, causal=causal, strict=strict)


def _export():
    try:
        from rasp_compiler.export import load_model, save_model
    except ImportError as exc:
        raise _Skip(f"rasp_compiler.export is not available: {exc}") from None
    return save_model, load_model


def _numbers() -> rasp.SOp:
    return rasp.numerical(rasp.Map(lambda t: {"a": 0, "b": 1, "c": 2}[t], rasp.tokens)).named("numbers")


def _parse(text: str):
    from rasp_compiler.dsl import parse
    return parse(text, filename="prog.rasp")


def cli_path() -> Path | None:
    """The ``rasp-compiler`` script of this Python environment, if installed."""
    bindir = Path(sys.executable).parent
    for name in ("rasp-compiler", "rasp-compiler.exe"):
        if (bindir / name).exists():
            return bindir / name
    found = shutil.which("rasp-compiler")
    return Path(found) if found else None


def _cli(ctx: Context, *args: str) -> None:
    exe = cli_path()
    if exe is None:
        raise _Skip("the rasp-compiler entry point is not installed next to sys.executable")
    # its folder first on PATH: the hints it prints then say ``rasp-compiler``, as a user's shell would
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb",
           "PATH": os.pathsep.join([str(exe.parent), os.environ.get("PATH", "")])}
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=ctx.tmp, env=env, timeout=120)
    if proc.returncode != 0:
        raise CliFailed(proc.returncode, proc.stderr, proc.stdout)


# --------------------------------------------------------------------------- programs
def _numerical_select_keys(ctx):
    _compile(rasp.SelectorWidth(rasp.Select(_numbers(), rasp.tokens, C.EQ)).named("width"))


def _sequence_map_numerical(ctx):
    _compile(rasp.SequenceMap(lambda x, y: x + y, _numbers(), rasp.indices).named("total"))


def _categorical_aggregate_differing(ctx):
    _compile(rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE), rasp.tokens).named("any_token"))


def _categorical_aggregate_of_numerical(ctx):
    _compile(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.EQ), _numbers()).named("copy"))


def _numerical_aggregate_of_strings(ctx):
    _compile(rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), rasp.tokens,
                                           default=0)).named("mean_token"))


def _causal_looking_ahead(ctx):
    later = rasp.Select(rasp.indices, rasp.indices, C.GT)
    _compile(rasp.numerical(rasp.Aggregate(later, _numbers(), default=0)).named("mean_of_later"), causal=True)


def _map_raising(ctx):
    _compile(rasp.numerical(rasp.Map(lambda i: 1 / i, rasp.indices)).named("inverse"))


def _map_too_dense_for_float32(ctx):
    a = rasp.LinearSequenceMap(rasp.indices, rasp.tokens, 1, 3).named("a")
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(a, a, C.GT), a, default=0)).named("mean_above")
    dense = rasp.numerical(rasp.LinearSequenceMap(rasp.indices, mean, 2, 6)).named("dense")  # 1,257 values in 0..108
    scrambled = rasp.numerical(rasp.Map(lambda x: round(x * 1000) * 7919 % 21 - 10, dense)).named("scrambled")
    _compile(scrambled, vocab={0, 1, 2}, max_seq_len=10)


def _two_encodings(ctx):
    m = rasp.Map(lambda t: t == "a", rasp.tokens).named("is_a")
    _compile(rasp.SequenceMap(lambda x, y: x and y, m, rasp.numerical(m)).named("both"))


def _selector_as_program(ctx):
    _compile(rasp.Select(rasp.tokens, rasp.tokens, C.EQ))


def _empty_vocab(ctx):
    from rasp_compiler.compiler import compile_rasp_to_model
    compile_rasp_to_model(_reverse(), [], 4)


def _bos_in_vocab(ctx):
    from rasp_compiler.compiler import compile_rasp_to_model
    compile_rasp_to_model(_reverse(), {"a", "BOS"}, 4)


def _zero_max_seq_len(ctx):
    from rasp_compiler.compiler import compile_rasp_to_model
    compile_rasp_to_model(_reverse(), set(ABC), 0)


def _select_of_selector(ctx):
    sel = rasp.Select(rasp.tokens, rasp.tokens, C.EQ)
    rasp.Select(sel, rasp.tokens, C.EQ)


def _map_not_callable(ctx):
    rasp.Map("upper", rasp.tokens)


def _aggregate_of_sop_as_selector(ctx):
    rasp.Aggregate(rasp.tokens, rasp.tokens)


# --------------------------------------------------------------------------- inputs
def _token_outside_vocab_apply(ctx):
    ctx.model().apply(["BOS", "a", "z", "c"])


def _token_outside_vocab_evaluate(ctx):
    from rasp_compiler.rasp.evaluate import evaluate
    evaluate(_reverse(), ["a", "z"], vocab=ABC)


def _too_long(ctx):
    ctx.model().apply(["BOS", "a", "b", "c", "a", "b"])


def _no_bos(ctx):
    ctx.model().apply(["a", "b", "c"])


def _string_input(ctx):
    ctx.model().apply("BOS a b")


def _too_long_in_batch(ctx):
    ctx.model().apply_batch([["BOS", "a"], ["BOS", "a", "b", "c", "a", "b"]])


def _evaluate_number(ctx):
    from rasp_compiler.rasp.evaluate import evaluate
    evaluate(_reverse(), 5)  # a string is fine: a list of letters, as in tracr


def _evaluate_map_raising(ctx):
    from rasp_compiler.rasp.evaluate import evaluate
    evaluate(rasp.Map(lambda i: 1 / i, rasp.indices).named("inverse"), ["a", "b"])


# --------------------------------------------------------------------------- text
def _syntax_missing_semicolon(ctx):
    _parse("a = tokens == \"a\"\nb = aggregate(select(indices, indices, <=), a);\n")


def _undefined_name(ctx):
    _parse("x = aggregate(select(indices, indices, ==), tokns);\n")


def _unclosed_string(ctx):
    _parse("x = tokens == \"a;\n")


def _wrong_arity(ctx):
    _parse("x = aggregate(select(indices, indices, ==));\n")


def _aggregate_of_selector(ctx):
    _parse("s = select(indices, indices, ==);\nx = aggregate(s, s);\n")


def _bad_predicate(ctx):
    _parse("s = select(indices, indices, =<);\n")


def _recursion(ctx):
    _parse("def f(x) {\n    return f(x);\n}\ny = f(tokens);\n")


def _assign_builtin(ctx):
    _parse("indices = tokens;\n")


def _unclosed_def(ctx):
    _parse("def f(x) {\n    return x + 1;\n")


def _bad_character(ctx):
    _parse("x = tokens $ 2;\n")


def _output_names_selector(ctx):
    _parse("s = select(indices, indices, ==);\nx = selector_width(s);\n# output: s\n")


def _load_missing_file(ctx):
    from rasp_compiler.dsl import load
    load(ctx.tmp / "missing.rasp")


# --------------------------------------------------------------------------- weight files
def _truncated_file(ctx):
    _, load_model = _export()
    good = ctx.weight_file()
    data = good.read_bytes()
    bad = ctx.tmp / "truncated.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    load_model(bad)


def _corrupted_tensor_bytes(ctx):
    _, load_model = _export()
    data = bytearray(ctx.weight_file().read_bytes())
    for i in range(len(data) - 64, len(data) - 8, 4):  # inside the last tensor
        data[i] ^= 0x5A
    bad = ctx.tmp / "corrupted.safetensors"
    bad.write_bytes(bytes(data))
    load_model(bad)


def _corrupted_header(ctx):
    _, load_model = _export()
    data = bytearray(ctx.weight_file().read_bytes())
    data[8:20] = b"#" * 12  # the JSON header starts at byte 8
    bad = ctx.tmp / "bad_header.safetensors"
    bad.write_bytes(bytes(data))
    load_model(bad)


def _rewrite_metadata(src: Path, dst: Path, **changes: str) -> None:
    import json
    data = src.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"].update(changes)
    new = json.dumps(header).encode("utf-8")
    new += b" " * (-len(new) % 8)
    dst.write_bytes(len(new).to_bytes(8, "little") + new + data[8 + n:])


def _unknown_version(ctx):
    _, load_model = _export()
    bad = ctx.tmp / "future.safetensors"
    _rewrite_metadata(ctx.weight_file(), bad, format_version="99")
    load_model(bad)


def _foreign_safetensors(ctx):
    _, load_model = _export()
    import numpy as np
    import safetensors.numpy
    bad = ctx.tmp / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.zeros((2, 2), np.float32)}, str(bad))
    load_model(bad)


def _not_safetensors(ctx):
    _, load_model = _export()
    bad = ctx.tmp / "notes.safetensors"
    bad.write_text("these are not weights\n")
    load_model(bad)


def _missing_weight_file(ctx):
    _, load_model = _export()
    load_model(ctx.tmp / "nowhere.safetensors")


def _save_interrupted(ctx):
    """A save that fails half way (the disk sync raises) leaves no file behind, and does
    not touch an older file at the same path."""
    from unittest import mock
    save_model, load_model = _export()
    target = ctx.tmp / "interrupted" / "model.safetensors"
    target.parent.mkdir(exist_ok=True)
    save_model(ctx.model(), target)
    before = target.read_bytes()
    other = _compile(rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.EQ)).named("hist"))
    try:
        with mock.patch("os.fsync", side_effect=OSError(28, "No space left on device")):
            save_model(other, target)
    finally:
        left = sorted(p.name for p in target.parent.iterdir())
        if left != ["model.safetensors"] or target.read_bytes() != before:
            raise AssertionError(f"a failed save left {left} behind (or changed the old file)")
    raise AssertionError("the interrupted save did not raise")  # pragma: no cover


def _dataset_into_file(ctx):
    from rasp_compiler.fuzz.dataset import write_dataset
    _export()
    target = ctx.tmp / "a_file"
    target.write_text("not a directory")
    write_dataset(1, target)


# --------------------------------------------------------------------------- CLI
def _cli_compile_no_args(ctx):
    _cli(ctx, "compile")


def _cli_generate_zero(ctx):
    _cli(ctx, "generate", "--n", "0", "--out", "dataset")


def _cli_unknown_command(ctx):
    _cli(ctx, "frobnicate")


def _cli_missing_program(ctx):
    _cli(ctx, "compile", "missing.rasp", "--vocab", "a,b", "--max-seq-len", "4")


def _cli_missing_vocab(ctx):
    ctx.rasp_file("rev.rasp", "opp = length - indices - 1;\nrev = aggregate(select(indices, opp, ==), tokens);\n")
    _cli(ctx, "compile", "rev.rasp", "--max-seq-len", "4")


def _cli_bad_max_seq_len(ctx):
    ctx.rasp_file("rev.rasp", "opp = length - indices - 1;\nrev = aggregate(select(indices, opp, ==), tokens);\n")
    _cli(ctx, "compile", "rev.rasp", "--vocab", "a,b", "--max-seq-len", "0")


def _cli_token_outside_vocab(ctx):
    ctx.rasp_file("rev.rasp", "opp = length - indices - 1;\nrev = aggregate(select(indices, opp, ==), tokens);\n")
    _cli(ctx, "run", "rev.rasp", "--vocab", "a,b", "--max-seq-len", "4", "--input", "a z")


def _cli_malformed_program(ctx):
    ctx.rasp_file("broken.rasp", "x = aggregate(select(indices, indices, ==) tokens);\n")
    _cli(ctx, "compile", "broken.rasp", "--vocab", "a,b", "--max-seq-len", "4")


def _cli_corrupt_weight_file(ctx):
    (ctx.tmp / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    _cli(ctx, "run", "junk.safetensors", "--input", "a b")


def _cli_unknown_option(ctx):
    _cli(ctx, "compile", "--frobnicate")


# --------------------------------------------------------------------------- poor errors (reported)
def _apply_unhashable_token(ctx):
    ctx.model().apply(["BOS", ["a"], "b"])


def _compile_unhashable_vocab(ctx):
    from rasp_compiler.compiler import compile_rasp_to_model
    compile_rasp_to_model(_reverse(), ["a", ["b"]], 4)


def _evaluate_unhashable_token(ctx):
    from rasp_compiler.rasp.evaluate import evaluate
    evaluate(_reverse(), ["a", ["b"]], vocab=ABC)


def _select_incomparable(ctx):
    before = rasp.Select(rasp.tokens, rasp.indices, C.LT).named("token_before_index")
    _compile(rasp.SelectorWidth(before).named("earlier"))


def _select_predicate_raising(ctx):
    odd = rasp.Select(rasp.indices, rasp.indices, lambda k, q: 1 / (k - q) > 0).named("after_ratio")
    _compile(rasp.SelectorWidth(odd).named("ratio_width"))


def _map_unhashable_values(ctx):
    _compile(rasp.Map(lambda t: [t], rasp.tokens).named("as_list"))


def _numerical_complex(ctx):
    _compile(rasp.numerical(rasp.Map(lambda t: 1j if t == "a" else 0, rasp.tokens)).named("imaginary"))


def _numerical_infinite(ctx):
    _compile(rasp.numerical(rasp.Map(lambda t: float("inf") if t == "a" else 1.0, rasp.tokens)).named("unbounded"))


def _mean_of_nan(ctx):
    nan = rasp.numerical(rasp.Map(lambda t: float("nan") if t == "a" else 1.0, rasp.tokens)).named("maybe_nan")
    _compile(rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), nan, default=0))
             .named("nan_mean"))


def _unknown_backend(ctx):
    ctx.model().apply(["BOS", "a", "b"], backend="torch")


# --------------------------------------------------------------------------- round 2 (issue 14): edges
def _map_beyond_float32(ctx):
    _compile(rasp.numerical(rasp.Map(lambda t: 1e39 if t == "a" else 1.0, rasp.tokens)).named("huge"))


def _mean_of_mixed_magnitudes(ctx):
    v = rasp.numerical(rasp.Map(lambda t: {"a": 1e20, "b": 1.0, "c": 0.0}[t], rasp.tokens)).named("v")
    _compile(rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), v,
                                           default=0)).named("prefix_mean"))


def _one_and_one_point_0_told_apart(ctx):
    x = rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 1.0, rasp.tokens)).named("x")
    _compile(rasp.categorical(rasp.Map(lambda v: v, x, simplify=False)).named("same_x"))


def _zero_and_zero_point_0_copied_together(ctx):
    v = rasp.categorical(rasp.Map(lambda t: 0 if t == "a" else 0.0, rasp.tokens)).named("zero")
    _compile(rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE), v).named("any_zero"))


def _merged_floats_compared(ctx):
    x = rasp.numerical(rasp.Map(lambda t: {"a": 0.1 + 0.2, "b": 0.3, "c": 1.0}[t], rasp.tokens)).named("x")
    _compile(rasp.categorical(rasp.Map(lambda v: v == 0.3, x, simplify=False)).named("is_point_3"))


def _rare_program():
    sel = rasp.SelectorAnd(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "e"),
                           rasp.Select(rasp.indices, rasp.indices, lambda k, q: k in (0, 5)))
    return rasp.Aggregate(sel, rasp.indices).named("rare")


def _rare_aggregate(ctx):
    _compile(_rare_program(), vocab="abcde", max_seq_len=6, strict=True)


def _rare_aggregate_blends(ctx):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", errors.UnprovenAggregateWarning)
        model = _compile(_rare_program(), vocab="abcde", max_seq_len=6)
    model.apply(["BOS", "a", "b", "c", "d"])  # no "e": the Aggregate selects nothing, no blend
    model.apply(["BOS", "e", "a", "b", "c", "d", "e"])


def _copy_20000(ctx):
    copy = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.EQ), rasp.tokens).named("copy")
    _compile(copy, vocab=("a", "b"), max_seq_len=20000)


def _vocab_300000(ctx):
    _compile(rasp.Map(lambda t: t % 2, rasp.tokens).named("odd"), vocab=range(300_000))


def _length_1e20(ctx):
    _compile(rasp.Map(lambda t: t, rasp.tokens).named("same"), max_seq_len=10**20)


def _deep_token(ctx):
    token: object = "x"
    for _ in range(3000):
        token = (token,)
    _compile(rasp.Map(lambda t: t, rasp.tokens).named("same"), vocab=("a", token))


def _unhashable_bos(ctx):
    from rasp_compiler.compiler import compile_rasp_to_model
    compile_rasp_to_model(rasp.tokens, {"a"}, 3, compiler_bos=["BOS"])


def _causal_string(ctx):
    _compile(_reverse(), causal="no")


def _edited_config(ctx):
    import json
    _, load_model = _export()
    src = ctx.weight_file()
    data = src.read_bytes()
    n = int.from_bytes(data[:8], "little")
    config = json.loads(json.loads(data[8:8 + n])["__metadata__"]["config"])
    config["output_values"] = config["output_values"][::-1]
    bad = ctx.tmp / "edited.safetensors"
    _rewrite_metadata(src, bad, config=json.dumps(config))
    load_model(bad)


def _no_integrity_hash(ctx):
    import json
    _, load_model = _export()
    src = ctx.weight_file()
    data = src.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    del header["__metadata__"]["sha256"], header["__metadata__"]["params_sha256"]
    new = json.dumps(header).encode("utf-8")
    new += b" " * (-len(new) % 8)
    bad = ctx.tmp / "unsigned.safetensors"
    bad.write_bytes(len(new).to_bytes(8, "little") + new + data[8 + n:])
    load_model(bad)


def _header_beyond_file(ctx):
    _, load_model = _export()
    bad = ctx.tmp / "huge_header.safetensors"
    bad.write_bytes((12 * 2**30).to_bytes(8, "little") + b"{}")
    load_model(bad)


def _deep_json_header(ctx):
    _, load_model = _export()
    header = b"[" * 100_000 + b"]" * 100_000
    bad = ctx.tmp / "deep.safetensors"
    bad.write_bytes(len(header).to_bytes(8, "little") + header)
    load_model(bad)


def _save_to_empty_name(ctx):
    save_model, _ = _export()
    save_model(ctx.model(), "")


def _save_under_a_file(ctx):
    save_model, _ = _export()
    blocker = ctx.tmp / "blocker"
    blocker.write_text("a file")
    save_model(ctx.model(), blocker / "model.safetensors")


def _cli_huge_max_seq_len(ctx):
    _cli(ctx, "compile", "lib:reverse", "--max-seq-len", "99999999999999999999", "--out", "huge.safetensors")


def _cli_run_model_with_vocab(ctx):
    _cli(ctx, "run", str(ctx.weight_file()), "--input", "a b", "--vocab", "a,b,z")


CASES: tuple[Case, ...] = (
    # programs the compiler cannot take
    Case("numerical Select keys", "program", "SelectorWidth(Select(numerical(Map(...)), tokens, EQ))",
         _numerical_select_keys, errors.UnsupportedProgramError, ("numerical", "categorical")),
    Case("SequenceMap over a numerical SOp", "program", "SequenceMap(f, numerical(Map(...)), indices)",
         _sequence_map_numerical, errors.UnsupportedProgramError, ("SequenceMap", "numerical", "LinearSequenceMap")),
    Case("categorical Aggregate of differing values", "program",
         "Aggregate(Select(tokens, tokens, TRUE), tokens) (copies one of several different tokens)",
         _categorical_aggregate_differing, errors.UnsupportedProgramError, ("differing values", "numerical")),
    Case("categorical Aggregate of a numerical SOp", "program", "Aggregate(Select(indices, indices, EQ), numerical(...))",
         _categorical_aggregate_of_numerical, errors.UnsupportedProgramError, ("categorical Aggregate", "numerical")),
    Case("numerical Aggregate of strings", "program", "numerical(Aggregate(select, tokens)) with tokens a, b, c",
         _numerical_aggregate_of_strings, errors.UnsupportedProgramError, ("mean_token", "non-numbers")),
    Case("causal program looking ahead", "program", "Aggregate(Select(indices, indices, GT), ...) with causal=True",
         _causal_looking_ahead, errors.CausalityError, ("mean_of_later", "causal", "after")),
    Case("Map raising on a value", "program", "numerical(Map(lambda i: 1 / i, indices))",
         _map_raising, errors.UnsupportedProgramError, ("inverse", "ZeroDivisionError", "0")),
    Case("numerical Map too dense for float32", "program",
         "numerical(Map(jumpy f, x)), x with 1,257 values in 0..108 some 0.029 apart",
         _map_too_dense_for_float32, errors.ValueSetError, ("scrambled", "float32", "dense", "0.0286")),
    Case("one SOp with two encodings", "program", "m and numerical(m) in one program",
         _two_encodings, errors.UnsupportedProgramError, ("is_a", "numerical", "categorical")),
    Case("a selector as the program", "program", "compile_rasp_to_model(Select(...), ...)",
         _selector_as_program, errors.RaspTypeError, ("SOp", "selector")),
    Case("empty vocabulary", "program", "compile_rasp_to_model(program, [], 4)",
         _empty_vocab, errors.InputError, ("vocab", "empty")),
    Case("BOS inside the vocabulary", "program", "vocab {'a', 'BOS'} with compiler_bos='BOS'",
         _bos_in_vocab, errors.InputError, ("BOS",)),
    Case("max_seq_len 0", "program", "compile_rasp_to_model(program, vocab, 0)",
         _zero_max_seq_len, errors.InputError, ("max_seq_len", "positive")),
    Case("Select over a selector", "program", "Select(Select(...), tokens, EQ)",
         _select_of_selector, errors.RaspTypeError, ("Select", "keys", "selector")),
    Case("Map of a non-function", "program", "Map('upper', tokens)",
         _map_not_callable, errors.RaspTypeError, ("Map", "function")),
    Case("Aggregate with an SOp as selector", "program", "Aggregate(tokens, tokens)",
         _aggregate_of_sop_as_selector, errors.RaspTypeError, ("Aggregate", "selector", "tokens")),
    # inputs
    Case("token outside the vocabulary (model)", "input", "model.apply(['BOS', 'a', 'z', 'c'])",
         _token_outside_vocab_apply, errors.InputError, ("'z'", "position 2", "vocabulary")),
    Case("token outside the vocabulary (evaluate)", "input", "rasp.evaluate(program, ['a', 'z'], vocab=['a', 'b', 'c'])",
         _token_outside_vocab_evaluate, errors.InputError, ("'z'", "position 1", "vocabulary")),
    Case("sequence longer than max_seq_len", "input", "5 tokens after BOS, max_seq_len=4",
         _too_long, errors.InputError, ("5 tokens", "max_seq_len=4")),
    Case("sequence without BOS", "input", "model.apply(['a', 'b', 'c'])",
         _no_bos, errors.InputError, ("BOS",)),
    Case("a string instead of a token list", "input", "model.apply('BOS a b')",
         _string_input, errors.InputError, ("list of tokens",)),
    Case("one bad sequence in a batch", "input", "apply_batch with one sequence too long",
         _too_long_in_batch, errors.InputError, ("max_seq_len",)),
    Case("evaluate on a number", "input", "rasp.evaluate(program, 5)",
         _evaluate_number, errors.InputError, ("list of tokens",)),
    Case("evaluate a Map that raises", "input", "rasp.evaluate(Map(lambda i: 1 / i, indices), ['a', 'b'])",
         _evaluate_map_raising, errors.EvaluationError, ("inverse", "ZeroDivisionError", "on 0")),
    # text programs
    Case("missing semicolon", "text", 'a = tokens == "a" (no ;) then another statement',
         _syntax_missing_semicolon, errors.ParseError, ("prog.rasp:1", "missing ';' at the end of this statement")),
    Case("undefined name", "text", "aggregate(..., tokns)",
         _undefined_name, errors.ParseError, ("prog.rasp:1", "undefined name 'tokns'", "did you mean 'tokens'")),
    Case("unclosed string", "text", 'tokens == "a;',
         _unclosed_string, errors.ParseError, ("prog.rasp:1", "string")),
    Case("wrong number of arguments", "text", "aggregate(select(...)) with one argument",
         _wrong_arity, errors.ParseError, ("aggregate", "2 or 3 arguments", "got 1")),
    Case("aggregate of a selector", "text", "aggregate(s, s)",
         _aggregate_of_selector, errors.ParseError, ("prog.rasp:2", "selector", "selector_width")),
    Case("bad predicate", "text", "select(indices, indices, =<)",
         _bad_predicate, errors.ParseError, ("prog.rasp:1", "unexpected")),
    Case("recursion", "text", "def f(x) { return f(x); }",
         _recursion, errors.ParseError, ("calls itself", "recursion")),
    Case("assigning a built-in", "text", "indices = tokens;",
         _assign_builtin, errors.ParseError, ("built-in", "indices")),
    Case("unclosed def", "text", "def f(x) { return x + 1;  (no closing brace)",
         _unclosed_def, errors.ParseError, ("end of file", "'}'")),
    Case("stray character", "text", "tokens $ 2",
         _bad_character, errors.ParseError, ("prog.rasp:1", "'$'")),
    Case("# output: names a selector", "text", "# output: s where s is a select",
         _output_names_selector, errors.ParseError, ("output", "selector")),
    Case("load a missing .rasp file", "text", "dsl.load('missing.rasp')",
         _load_missing_file, errors.RaspCompilerError, ("missing.rasp",)),
    # weight files
    Case("truncated weight file", "file", "the first half of a weight file",
         _truncated_file, errors.ModelFileError, ("truncated.safetensors", "truncated or corrupt")),
    Case("corrupted tensor bytes", "file", "bytes flipped inside the last tensor",
         _corrupted_tensor_bytes, errors.ModelFileError, ("corrupted.safetensors", "checksum")),
    Case("corrupted header", "file", "the JSON header overwritten with '#'",
         _corrupted_header, errors.ModelFileError, ("bad_header.safetensors", "safetensors")),
    Case("unknown format version", "file", "format_version '99' in the metadata",
         _unknown_version, errors.ModelFileError, ("future.safetensors", "format_version", "99", "upgrade")),
    Case("foreign safetensors file", "file", "a safetensors file written by another tool",
         _foreign_safetensors, errors.ModelFileError, ("foreign.safetensors", "not a rasp_compiler model")),
    Case("not a safetensors file", "file", "a text file named .safetensors",
         _not_safetensors, errors.ModelFileError, ("notes.safetensors",)),
    Case("missing weight file", "file", "load_model('nowhere.safetensors')",
         _missing_weight_file, errors.ModelFileError, ("nowhere.safetensors", "no such file")),
    Case("save interrupted half way", "file", "os.fsync raises ENOSPC during save_model over an existing file",
         _save_interrupted, OSError, ("No space left",)),
    Case("dataset into a file", "file", "write_dataset(1, 'a_file') where a_file is a file",
         _dataset_into_file, errors.RaspCompilerError, ("a_file", "not a directory")),
    # errors that were poor when these cases were written (bare TypeErrors, silent nan): fixed since
    Case("unhashable token (model)", "input", "model.apply(['BOS', ['a'], 'b'])",
         _apply_unhashable_token, errors.InputError, ("position 1",)),
    Case("unhashable token (compile vocab)", "program", "compile_rasp_to_model(program, ['a', ['b']], 4)",
         _compile_unhashable_vocab, errors.InputError, ("vocab", "hashable")),
    Case("unhashable token (evaluate vocab)", "input", "rasp.evaluate(program, ['a', ['b']], vocab=['a', 'b', 'c'])",
         _evaluate_unhashable_token, errors.InputError, ("position 1",)),
    Case("Select comparing values Python cannot order", "program",
         "SelectorWidth(Select(tokens, indices, LT)) with string tokens",
         _select_incomparable, errors.UnsupportedProgramError, ("token_before_index", "TypeError")),
    Case("Select predicate raising", "program", "Select(indices, indices, lambda k, q: 1 / (k - q) > 0)",
         _select_predicate_raising, errors.UnsupportedProgramError, ("after_ratio", "ZeroDivisionError")),
    Case("Map with unhashable values", "program", "Map(lambda t: [t], tokens)",
         _map_unhashable_values, errors.UnsupportedProgramError, ("as_list", "hashable")),
    Case("numerical SOp with complex values", "program", "numerical(Map(lambda t: 1j if t == 'a' else 0, tokens))",
         _numerical_complex, errors.UnsupportedProgramError, ("imaginary",)),
    Case("numerical SOp with an infinite value", "program", "numerical(Map(lambda t: inf if t == 'a' else 1.0, tokens))",
         _numerical_infinite, errors.UnsupportedProgramError, ("unbounded", "inf")),
    Case("numerical mean of nan", "program", "numerical(Aggregate(select, numerical(Map(-> nan or 1.0))))",
         _mean_of_nan, errors.UnsupportedProgramError, ("maybe_nan", "nan")),
    Case("unknown forward backend", "input", "model.apply(tokens, backend='torch')",
         _unknown_backend, ValueError, ("torch", "numpy", "jax")),
    # command line
    Case("compile without a program", "cli", "rasp-compiler compile", _cli_compile_no_args, 2,
         ("missing argument", "PROGRAM")),
    Case("generate no programs", "cli", "rasp-compiler generate --n 0", _cli_generate_zero, 2, ("--n", "1")),
    Case("unknown command", "cli", "rasp-compiler frobnicate", _cli_unknown_command, 2, ("frobnicate",)),
    Case("unknown option", "cli", "rasp-compiler compile --frobnicate", _cli_unknown_option, 2, ("--frobnicate",)),
    Case("missing program file", "cli", "rasp-compiler compile missing.rasp ...",
         _cli_missing_program, 2, ("missing.rasp",)),
    Case("compile without --vocab", "cli", "rasp-compiler compile rev.rasp --max-seq-len 4",
         _cli_missing_vocab, 2, ("--vocab",)),
    Case("--max-seq-len 0", "cli", "rasp-compiler compile rev.rasp --vocab a,b --max-seq-len 0",
         _cli_bad_max_seq_len, 2, ("max-seq-len",)),
    Case("input token outside the vocabulary", "cli", "rasp-compiler run rev.rasp --vocab a,b ... --input 'a z'",
         _cli_token_outside_vocab, 2, ("'z'", "vocabulary")),
    Case("malformed program", "cli", "rasp-compiler compile broken.rasp (missing comma)",
         _cli_malformed_program, 1, ("broken.rasp:1", "unexpected")),
    Case("corrupt weight file", "cli", "rasp-compiler run junk.safetensors",
         _cli_corrupt_weight_file, 1, ("junk.safetensors",)),
    # round 2 (issue 14): number formats, merged values, rare inputs, sizes, file integrity
    Case("number beyond float32", "program", "numerical Map to 1e39",
         _map_beyond_float32, errors.ValueSetError, ("huge", "1e+39", "float32", "rescale")),
    Case("mean of mixed magnitudes", "program", "prefix mean of values 1e20, 1.0 and 0.0",
         _mean_of_mixed_magnitudes, errors.ValueSetError, ("prefix_mean", "float32", "rescale")),
    Case("1 and 1.0 merged, then told apart", "program",
         "numerical Map giving 1 and 1.0 (one number), then categorical Map(lambda v: v)",
         _one_and_one_point_0_told_apart, errors.ValueSetError, ("same_x", "1 (int)", "1.0 (float)", "one type")),
    Case("0 and 0.0 copied by one head", "program",
         "Aggregate(Select(tokens, tokens, TRUE), v) where v is 0 for one token and 0.0 for another",
         _zero_and_zero_point_0_copied_together, errors.UnsupportedProgramError,
         ("any_zero", "0 (int)", "0.0 (float)", "different types")),
    Case("near-equal floats told apart later", "program",
         "numerical 0.1 + 0.2 and 0.3, then a Map testing == 0.3",
         _merged_floats_compared, errors.ValueSetError, ("is_point_3", "float rounding", "round")),
    Case("categorical Aggregate conflicting on rare inputs", "program",
         "selects positions 0 and 5 only when both hold 'e' (vocab of 5, length 6), strict=True",
         _rare_aggregate, errors.UnsupportedProgramError, ("rare", "different values", "numerical")),
    Case("unproven Aggregate blending at run time", "input",
         "the same program compiled without strict (UnprovenAggregateWarning), run on e a b c d e",
         _rare_aggregate_blends, errors.BlendedValueError, ("rare", "position 1", "'e', 'a', 'b'", "unproven")),
    Case("copy at max_seq_len 20000", "program", "Aggregate(Select(indices, indices, EQ), tokens), n = 20000",
         _copy_20000, errors.ResourceLimitError, ("GiB", "max_weight_bytes", "indices")),
    Case("vocab of 300,000 ints", "program", "compile with vocab=range(300_000)",
         _vocab_300000, errors.ResourceLimitError, ("vocab", "max_values")),
    Case("max_seq_len of 10**20", "program", "compile with max_seq_len=10**20",
         _length_1e20, errors.ResourceLimitError, ("max_seq_len", "Limits.max_seq_len")),
    Case("token nested 3000 tuples deep", "program", "a vocab token ((((...'x'...))))",
         _deep_token, errors.InputError, ("nested", "64")),
    Case("unhashable BOS", "program", "compiler_bos=['BOS']",
         _unhashable_bos, errors.InputError, ("compiler_bos", "hashable")),
    Case("causal='no'", "program", "compile_rasp_to_model(..., causal='no')",
         _causal_string, errors.InputError, ("causal", "True or False")),
    Case("edited config", "file", "output_values reversed in the config JSON, checksum left",
         _edited_config, errors.ModelFileError, ("edited.safetensors", "checksum")),
    Case("no integrity checksum", "file", "sha256 and params_sha256 deleted from the metadata",
         _no_integrity_hash, errors.ModelFileError, ("unsigned.safetensors", "sha256")),
    Case("header length beyond the file", "file", "an 8-byte length of 12 GiB, then 2 bytes",
         _header_beyond_file, errors.ModelFileError, ("huge_header.safetensors", "header claims")),
    Case("100,000-deep JSON header", "file", "a header of 100,000 nested lists",
         _deep_json_header, errors.ModelFileError, ("deep.safetensors", "nested 100000 deep")),
    Case("save to ''", "file", "save_model(model, '')",
         _save_to_empty_name, errors.ModelFileError, ("not a file name",)),
    Case("save under a file", "file", "save_model(model, 'blocker/model.safetensors') where blocker is a file",
         _save_under_a_file, errors.ModelFileError, ("blocker", "is a file")),
    Case("huge --max-seq-len", "cli", "compile lib:reverse --max-seq-len 99999999999999999999",
         _cli_huge_max_seq_len, 1, ("max_seq_len", "Limits.max_seq_len")),
    Case("--vocab given with a weight file", "cli", "run good.safetensors --input 'a b' --vocab a,b,z",
         _cli_run_model_with_vocab, 2, ("--vocab", "weight file")),
)


# --------------------------------------------------------------------------- running
_INTERNAL_MARKERS = ("Traceback (most recent call last)", 'File "/')


def run_case(case: Case, ctx: Context) -> Outcome:
    """Run one case; paths under the case's temporary directory read ``<tmp>`` in the message."""
    outcome = _run_case(case, ctx)
    if outcome.message:
        outcome = Outcome(outcome.case, outcome.status, outcome.error_type,
                          outcome.message.replace(str(ctx.tmp), "<tmp>"), outcome.detail)
    return outcome


def _run_case(case: Case, ctx: Context) -> Outcome:
    try:
        case.run(ctx)
    except _Skip as exc:
        return Outcome(case, "skipped", detail=str(exc))
    except CliFailed as exc:
        message = exc.stderr.strip() or exc.stdout.strip()
        return _judge(case, f"exit {exc.code}", exc.code == case.expect, message)
    except AssertionError as exc:  # a case's own check failed (e.g. a file was left behind)
        return Outcome(case, "unclear", "AssertionError", str(exc), str(exc))
    except BaseException as exc:  # noqa: BLE001 - the point is to see every exception type
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        ok_type = isinstance(case.expect, type) and isinstance(exc, case.expect)
        return _judge(case, type(exc).__name__, ok_type, str(exc), _expected_name(case))
    return Outcome(case, "no_error", detail="no error was raised")


def _expected_name(case: Case) -> str:
    return case.expect.__name__ if isinstance(case.expect, type) else f"exit {case.expect}"


def _judge(case: Case, error_type: str, ok_type: bool, message: str, expected: str | None = None) -> Outcome:
    if not ok_type:
        return Outcome(case, "wrong_type", error_type, message, f"expected {expected or _expected_name(case)}")
    missing = [w for w in case.mentions if w.lower() not in message.lower()]
    if missing:
        return Outcome(case, "unclear", error_type, message, f"the message does not mention {missing}")
    if any(m in message for m in _INTERNAL_MARKERS):
        return Outcome(case, "unclear", error_type, message, "the message is a traceback")
    return Outcome(case, "ok", error_type, message)


def run_cases(cases: Sequence[Case] = CASES, tmp: Path | None = None) -> list[Outcome]:
    """Run every case (in a temporary directory unless ``tmp`` is given)."""
    if tmp is not None:
        ctx = Context(Path(tmp))
        return [run_case(c, ctx) for c in cases]
    with tempfile.TemporaryDirectory(prefix="rasp_bad_inputs_") as d:
        ctx = Context(Path(d))
        return [run_case(c, ctx) for c in cases]


def _cell(text: str | None, limit: int = 400) -> str:
    if text is None:
        return ""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("`", "'")


def markdown_table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a Markdown table (one row per case)."""
    rows = ["| group | bad input | what was tried | error | message | clear? |", "|---|---|---|---|---|---|"]
    for o in outcomes:
        if o.status == "ok":
            verdict = "yes"
        elif o.status == "skipped":
            verdict = f"skipped ({o.detail})"
        elif o.case.known_issue:
            verdict = f"**no** (reported): {o.case.known_issue}"
        else:
            verdict = f"**no**: {o.status}, {o.detail}"
        rows.append(f"| {o.case.group} | {_cell(o.case.name)} | {_cell(o.case.what)} | "
                    f"{'`' + o.error_type + '`' if o.error_type else '(none)'} | {_cell(o.message)} | {_cell(verdict, 600)} |")
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description="Run every bad-input case and report the errors.")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    outcomes = run_cases()
    if args.markdown:
        sys.stdout.write(markdown_table(outcomes))
    else:
        for o in outcomes:
            print(f"[{o.status}] {o.case.group}: {o.case.name}: {o.error_type}: {_cell(o.message, 300)}"
                  + (f"  ({o.detail})" if o.status != "ok" and o.detail else ""))
    return 0 if all(o.ok or o.as_known for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Case", "Outcome", "CASES", "run_cases", "run_case", "markdown_table", "cli_path", "CliFailed"]
