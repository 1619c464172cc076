"""Values equal in Python but of different types (0 and 0.0, 1 and True) are distinct
categorical values: the model outputs the type rasp.evaluate gives, on every input
(issue 27 item 4). Each program is checked exhaustively, type-strictly, by a comparison
written here (not verify's), and by check_model."""

import itertools

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import UnsupportedProgramError, ValueSetError
from rasp_compiler.export import load_model, save_model
from rasp_compiler.verify import check_model, exhaustive_inputs, same_value

C = rasp.Comparison


def _typed(values):
    """A list compared by type and value: [0] and [0.0] differ, [(1,)] and [(True,)] too."""
    def key(v):
        if isinstance(v, tuple):
            return ("tuple", tuple(key(x) for x in v))
        return (type(v).__name__, v)
    return [key(v) for v in values]


def _type_exact(program, vocab, n, model=None):
    model = model or compile_rasp_to_model(program, vocab, n)
    kinds = set()
    for length in range(1, n + 1):
        for xs in itertools.product(sorted(vocab, key=repr), repeat=length):
            got = model.apply(["BOS", *xs]).decoded[1:]
            want = rasp.evaluate(program, list(xs))
            assert _typed(got) == _typed(want), (xs, got, want)
            kinds.update(type(v).__name__ for v in want)
    assert check_model(model, program, exhaustive_inputs(vocab, n)).exact
    return model, kinds


def test_sequence_map_with_an_int_branch_and_a_float_branch():
    """x / y on one branch, 0 or x on the other (InterpBench's divisions and halvings)."""
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE)).named("length")
    div = rasp.SequenceMap(lambda x, n: x / n if x % 2 and n else (0 if x == 0 else x), rasp.tokens,
                           length).named("div")
    model, kinds = _type_exact(div, {0, 1, 2, 3}, 3)
    assert kinds == {"int", "float"}  # both branches are reached
    values = model.config.output_values
    assert 2 in values and any(type(v) is float and v == 1.0 for v in values)  # 1 (int) and 1.0: two outputs


def test_map_returning_true_for_one_token_and_1_for_another():
    flag = rasp.categorical(rasp.Map(lambda t: True if t == "a" else (1 if t == "b" else 0), rasp.tokens)).named("f")
    _, kinds = _type_exact(flag, {"a", "b", "c"}, 3)
    assert kinds == {"bool", "int"}


def test_map_of_mixed_values_tells_them_apart():
    """A Map reading 0 and 0.0 sees two inputs and may give different outputs for them."""
    v = rasp.categorical(rasp.Map(lambda t: {"a": 0, "b": 0.0, "c": False}[t], rasp.tokens)).named("v")
    name = rasp.categorical(rasp.Map(lambda x: type(x).__name__, v)).named("name")
    _, kinds = _type_exact(name, {"a", "b", "c"}, 3)
    assert kinds == {"str"}


def test_tuples_of_mixed_types():
    v = rasp.categorical(rasp.Map(lambda t: {"a": (1,), "b": (True,), "c": (1.0, 0)}[t], rasp.tokens)).named("v")
    _type_exact(v, {"a", "b", "c"}, 3)


def test_categorical_aggregate_copies_0_and_0_0_with_their_types():
    v = rasp.categorical(rasp.Map(lambda t: {"a": 0, "b": 0.0, "c": 1}[t], rasp.tokens)).named("v")
    prev = rasp.Select(rasp.indices, rasp.Map(lambda i: i - 1, rasp.indices).named("prev_i"), C.EQ).named("prev")
    copy = rasp.Aggregate(prev, v, default=0.0).named("copy")
    _, kinds = _type_exact(copy, {"a", "b", "c"}, 4)
    assert kinds == {"int", "float"}


def test_select_matches_0_with_0_0_as_the_evaluator_does():
    """EQ compares with ==: a key 0.0 is selected by a query 0 (one value, two directions)."""
    v = rasp.categorical(rasp.Map(lambda t: {"a": 0, "b": 0.0, "c": 1}[t], rasp.tokens)).named("v")
    width = rasp.SelectorWidth(rasp.Select(v, v, C.EQ)).named("width")
    _type_exact(width, {"a", "b", "c"}, 4)
    w = rasp.categorical(rasp.Map(lambda t: {"a": "x", "b": "x", "c": "y"}[t], rasp.tokens)).named("w")
    copy = rasp.Aggregate(rasp.Select(v, v, C.EQ), w).named("copy")  # a and b hold one w: no conflict
    _type_exact(copy, {"a", "b", "c"}, 4)


def test_aggregate_that_can_select_0_and_0_0_together_is_not_compiled_silently():
    """The evaluator gives the first of 0 and 0.0; a head would blend their directions."""
    v = rasp.categorical(rasp.Map(lambda t: {"a": 0, "b": 0.0}[t], rasp.tokens)).named("v")
    first = rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE), v).named("first")
    with pytest.raises(UnsupportedProgramError, match=r"0 \(int\).*0\.0 \(float\)|0\.0 \(float\).*0 \(int\)"):
        compile_rasp_to_model(first, {"a", "b"}, 3)


def test_numerical_sops_still_mix_int_and_float():
    x = rasp.numerical(rasp.Map(lambda t: {"a": 1, "b": 1.0, "c": 2}[t], rasp.tokens)).named("x")
    model = compile_rasp_to_model(x, {"a", "b", "c"}, 3)
    assert check_model(model, x, exhaustive_inputs({"a", "b", "c"}, 3)).exact
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), x, default=0)).named("m")
    model = compile_rasp_to_model(mean, {"a", "b", "c"}, 3)
    assert check_model(model, mean, exhaustive_inputs({"a", "b", "c"}, 3)).exact
    big = rasp.categorical(rasp.Map(lambda v: v > 1, x, simplify=False)).named("big")  # same output for 1, 1.0
    _type_exact(big, {"a", "b", "c"}, 3)


def test_a_map_that_tells_apart_what_a_numerical_sop_merges_is_refused():
    """A numerical SOp holds 1 and 1.0 as one number: a Map giving different types for them
    cannot be exact, so it is refused, naming both values."""
    x = rasp.numerical(rasp.Map(lambda t: {"a": 1, "b": 1.0, "c": 2}[t], rasp.tokens)).named("x")
    same = rasp.categorical(rasp.Map(lambda v: v, x, simplify=False)).named("same")
    with pytest.raises(ValueSetError, match=r"numerical x can take both .* \((int|float)\) and .* same gives"):
        compile_rasp_to_model(same, {"a", "b", "c"}, 3)


def test_weight_file_keeps_output_types(tmp_path):
    v = rasp.categorical(rasp.Map(lambda t: {"a": 3, "b": 3.0, "c": True, "d": 1}[t], rasp.tokens)).named("v")
    model = compile_rasp_to_model(v, {"a", "b", "c", "d"}, 2)
    loaded = load_model(save_model(model, tmp_path / "m.safetensors"))
    assert _typed(loaded.config.output_values) == _typed(model.config.output_values)
    assert len(loaded.config.output_values) == 4
    _type_exact(v, {"a", "b", "c", "d"}, 2, model=loaded)
    enc = loaded.output_encoder
    assert _typed(enc.decode([enc.encoding_map[3], enc.encoding_map[3.0]])) == _typed([3, 3.0])


def test_verify_compares_categorical_outputs_by_type():
    assert same_value(3, 3.0) and not same_value(3, 3.0, typed=True)
    assert not same_value((1,), (True,), typed=True) and same_value((1,), (1,), typed=True)
    assert same_value(0.30000000000000004, 0.3, typed=True)  # a float is still compared within tolerance


def test_map_of_a_numerical_sop_gives_0_and_0_0_for_different_numbers():
    """A staircase MLP over a number: a step from output 0 to output 0.0 is a step."""
    x = rasp.numerical(rasp.Map(lambda t: {"a": 0, "b": 1, "c": 2}[t], rasp.tokens)).named("x")
    y = rasp.categorical(rasp.Map(lambda v: 0 if v < 1 else (0.0 if v < 2 else 1), x, simplify=False)).named("y")
    _, kinds = _type_exact(y, {"a", "b", "c"}, 3)
    assert kinds == {"int", "float"}


def test_a_map_of_a_numerical_mean_whose_default_is_0_and_mean_0_0():
    """Nothing selected gives the default 0 (int), a mean of zeros 0.0: one number in the
    residual stream. A Map that keeps the type cannot be exact (refused); one that does not
    look at the type compiles."""
    x = rasp.numerical(rasp.Map(lambda t: t, rasp.tokens)).named("x")
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, C.GT), x, default=0)).named("mean")
    same = rasp.categorical(rasp.Map(lambda v: v, mean, simplify=False)).named("same")
    with pytest.raises(ValueSetError, match=r"numerical mean can take both 0\.0 \(float\) and 0 \(int\)"):
        compile_rasp_to_model(same, {0, 1, 2}, 3)
    positive = rasp.categorical(rasp.Map(lambda v: v > 0, mean, simplify=False)).named("positive")
    _type_exact(positive, {0, 1, 2}, 3)
    as_float = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, C.GT), x,
                                             default=0.0)).named("mean0")
    _type_exact(rasp.categorical(rasp.Map(lambda v: v, as_float, simplify=False)).named("same0"), {0, 1, 2}, 3)


@pytest.mark.parametrize("selector", [
    lambda: rasp.Select(rasp.indices, rasp.indices, C.LEQ),  # each query selects its own position
    lambda: rasp.Select(rasp.tokens, rasp.indices, C.TRUE),  # every pair of values
    lambda: rasp.SelectorNot(rasp.Select(rasp.tokens, rasp.tokens, C.FALSE)),
])
def test_a_default_that_is_never_given_has_no_type_to_keep(selector):
    """The default 0 of a head that always selects a position never reaches a Map: the
    mean 0.0 is its only zero, so `lambda v: v` of it compiles and is type-exact."""
    x = rasp.numerical(rasp.Map(lambda t: t, rasp.tokens)).named("x")
    mean = rasp.numerical(rasp.Aggregate(selector(), x, default=0)).named("mean")
    same = rasp.categorical(rasp.Map(lambda v: v, mean, simplify=False)).named("same")
    _, kinds = _type_exact(same, {0, 1, 2}, 3)
    assert kinds == {"float"}
