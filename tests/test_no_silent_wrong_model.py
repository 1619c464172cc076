"""A program either compiles to a model that agrees with rasp.evaluate on every input, or
is refused with a clear error (issue 14, classes 1-3)."""

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import (
    BlendedValueError, InputError, UnprovenAggregateWarning, UnsupportedProgramError, ValueSetError,
)
from rasp_compiler.verify import check_model, exhaustive_inputs


def _exact(program, vocab, n, causal=False):
    model = compile_rasp_to_model(program, vocab, n, causal=causal)
    report = check_model(model, program, exhaustive_inputs(vocab, n))
    assert report.exact, report.examples[:2]
    return model


# ---------------------------------------------------------------- values Python keeps apart
def test_near_equal_categorical_floats_stay_apart():
    """0.1 + 0.2 and 0.3 are different values to Python: a Select over them must agree."""
    v = rasp.categorical(rasp.Map(lambda t: {"a": 0.1 + 0.2, "b": 0.3, "c": 0.5}[t], rasp.tokens)).named("v")
    same = rasp.Select(v, v, rasp.Comparison.EQ).named("same")
    width = rasp.SelectorWidth(same).named("width")
    _exact(width, {"a", "b", "c"}, 4)
    _exact(v, {"a", "b", "c"}, 3)  # as an output, each keeps its own spelling


def test_true_and_one_in_one_categorical_sop_keep_their_types():
    """Kept apart as two values (tests/test_value_types.py has the other patterns)."""
    mixed = rasp.categorical(rasp.Map(lambda t: True if t == "a" else 1 if t == "b" else 0, rasp.tokens)).named("m")
    model = _exact(mixed, {"a", "b", "c"}, 3)
    assert [type(v) for v in model.apply(["BOS", "a", "b"]).decoded[1:]] == [bool, int]


def test_true_and_one_in_the_vocab_are_refused():
    with pytest.raises(InputError, match="vocab can take both"):
        compile_rasp_to_model(rasp.tokens, [1, True, 2], 3)


def test_numbers_may_mix_int_and_float_in_a_numerical_sop():
    x = rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 1.0 if t == "b" else 2, rasp.tokens)).named("x")
    _exact(x, {"a", "b", "c"}, 3)


def test_merge_that_changes_a_map_output_is_refused():
    x = rasp.numerical(rasp.Map(lambda t: {"a": 0.1 + 0.2, "b": 0.3, "c": 1.0}[t], rasp.tokens)).named("x")
    flag = rasp.categorical(rasp.Map(lambda v: v == 0.3, x, simplify=False)).named("flag")
    with pytest.raises(ValueSetError, match=r"flag gives .* for x=.* but .* differ only by float rounding"):
        compile_rasp_to_model(flag, {"a", "b", "c"}, 3)


def test_merge_that_changes_nothing_still_compiles():
    x = rasp.numerical(rasp.Map(lambda t: {"a": 0.1 + 0.2, "b": 0.3, "c": 1.0}[t], rasp.tokens)).named("x")
    big = rasp.categorical(rasp.Map(lambda v: v > 0.5, x, simplify=False)).named("big")
    _exact(big, {"a", "b", "c"}, 3)


@pytest.mark.parametrize("bad", [float("nan")])
def test_nan_categorical_value_is_refused(bad):
    m = rasp.categorical(rasp.Map(lambda t: bad if t == "a" else 1.0, rasp.tokens)).named("m")
    with pytest.raises(ValueSetError, match="not equal to itself"):
        compile_rasp_to_model(m, {"a", "b"}, 3)


# ---------------------------------------------------------------- categorical Aggregates, soundly
def _rare_conflict():
    """Selects positions 0 and 5 only when both hold "e": differing values only then."""
    sel = rasp.SelectorAnd(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "e"),
                           rasp.Select(rasp.indices, rasp.indices, lambda k, q: k in (0, 5)))
    return rasp.Aggregate(sel, rasp.indices).named("rare")


def test_rare_input_conflict_is_refused_under_strict_and_caught_at_run_time_otherwise():
    program = _rare_conflict()
    conflict = ["e", "a", "a", "a", "a", "e"]
    with pytest.raises(Exception, match="differing values"):  # strict: a head copies one value (tracr's evaluator averages)
        rasp.evaluate(program, conflict, strict=True)
    with pytest.raises(UnsupportedProgramError, match="rare may select positions of indices holding different"):
        compile_rasp_to_model(program, {"a", "b", "c", "d", "e"}, 6, strict=True)
    with pytest.warns(UnprovenAggregateWarning, match="rare may select positions of indices holding different"):
        model = compile_rasp_to_model(program, {"a", "b", "c", "d", "e"}, 6)
    with pytest.raises(BlendedValueError, match=r"rare holds no single value at position 1 .*'e', 'a', 'a'"):
        model.apply(["BOS", *conflict])
    fine = [["e", "a", "a", "a", "a", "b"], ["a", "b", "c", "d", "e", "e"], ["e"], ["b", "e", "e"]]
    assert check_model(model, program, fine).exact


def test_conflict_found_by_trying_every_small_input():
    sel = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k in (0, 2))
    program = rasp.Aggregate(sel, rasp.tokens).named("ends")
    with pytest.raises(UnsupportedProgramError, match=r"differing values .* \(on input"):
        compile_rasp_to_model(program, {"a", "b"}, 3)


def test_unprovable_but_valid_compiles_after_every_input_is_tried():
    sel = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k in (0, 2))
    parity = rasp.categorical(rasp.Map(lambda i: i % 2, rasp.indices)).named("parity")
    _exact(rasp.Aggregate(sel, parity).named("even"), {"a", "b"}, 4)


@pytest.mark.parametrize("name", ["sort", "sort_unique", "reverse", "shift"])
def test_library_aggregates_are_proven_without_trying_inputs(name, monkeypatch):
    from rasp_compiler import lib
    from rasp_compiler.graph import validate

    monkeypatch.setattr(validate, "EXHAUSTIVE_AGGREGATE_INPUTS", 0)  # no fallback: must be proven
    program = {"sort": lambda: lib.make_sort(rasp.tokens, rasp.tokens),
               "sort_unique": lambda: lib.make_sort_unique(rasp.tokens, rasp.tokens),
               "reverse": lambda: lib.make_reverse(rasp.tokens),
               "shift": lambda: lib.make_shift_by(2, rasp.tokens)}[name]()
    _exact(program, {1, 2, 3}, 4)


def test_numerical_map_returning_none_names_the_map():
    n = rasp.numerical(rasp.Map(lambda t: None if t == "a" else 1, rasp.tokens)).named("n")
    with pytest.raises(ValueSetError, match="the function of numerical Map n returns None"):
        compile_rasp_to_model(n, {"a", "b"}, 3)
