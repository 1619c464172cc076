"""The RASP DSL (rasp_compiler.rasp.core) and its reference evaluator."""

from __future__ import annotations

import operator
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp_compiler import rasp
from rasp_compiler.errors import (
    AggregateError, EvaluationError, InputError, RaspCompilerError, RaspTypeError,
)

TOKENS = st.lists(st.sampled_from([0, 1, 2, 3]), min_size=0, max_size=8)
LETTERS = st.lists(st.sampled_from(list("abcd")), min_size=0, max_size=8)
FAST = settings(max_examples=60, deadline=None)

PY_OPS = {
    rasp.Comparison.EQ: operator.eq,
    rasp.Comparison.LT: operator.lt,
    rasp.Comparison.LEQ: operator.le,
    rasp.Comparison.GT: operator.gt,
    rasp.Comparison.GEQ: operator.ge,
    rasp.Comparison.NEQ: operator.ne,
    rasp.Comparison.TRUE: lambda k, q: True,
    rasp.Comparison.FALSE: lambda k, q: False,
}


def ev(program, xs):
    return rasp.evaluate(program, xs)


# --------------------------------------------------------------------------- primitives
def test_tokens_and_indices():
    assert ev(rasp.tokens, list("abc")) == list("abc")
    assert ev(rasp.indices, list("abc")) == [0, 1, 2]
    assert ev(rasp.tokens, []) == [] and ev(rasp.indices, []) == []
    assert rasp.tokens.label == "tokens" and rasp.indices.label == "indices"
    assert isinstance(rasp.tokens, rasp.TokensType) and isinstance(rasp.indices, rasp.IndicesType)
    assert rasp.tokens.children == () and rasp.indices.children == ()


def test_evaluate_returns_a_fresh_list():
    xs = ["a", "b"]
    out = ev(rasp.tokens, xs)
    out.append("c")
    assert xs == ["a", "b"]
    assert ev(rasp.tokens, ("a", "b")) == ["a", "b"]  # tuples are sequences too


@given(LETTERS)
@FAST
def test_map(xs):
    program = rasp.Map(lambda t: t.upper(), rasp.tokens)
    assert ev(program, xs) == [t.upper() for t in xs]
    assert program.children == (rasp.tokens,) or program.children[0] is rasp.tokens


@given(TOKENS)
@FAST
def test_sequence_map(xs):
    program = rasp.SequenceMap(lambda t, i: t * 10 + i, rasp.tokens, rasp.indices)
    assert ev(program, xs) == [t * 10 + i for i, t in enumerate(xs)]
    assert [c.label for c in program.children] == ["tokens", "indices"]


@given(TOKENS)
@FAST
def test_linear_sequence_map(xs):
    program = rasp.LinearSequenceMap(rasp.tokens, rasp.indices, 2, -0.5)
    assert ev(program, xs) == [2 * t - 0.5 * i for i, t in enumerate(xs)]
    assert isinstance(program, rasp.SequenceMap)
    assert (program.fst_fac, program.snd_fac) == (2, -0.5)


def test_linear_sequence_map_factors_must_be_numbers():
    for bad in [True, "2", None]:
        with pytest.raises(RaspTypeError):
            rasp.LinearSequenceMap(rasp.tokens, rasp.indices, bad, 1)


def test_full():
    assert ev(rasp.Full(7), list("abc")) == [7, 7, 7]
    assert ev(rasp.Full("z"), []) == []
    assert rasp.Full(1).children == ()


def test_constant_sop_and_length_check():
    constant = rasp.ConstantSOp([5, 6, 7])
    assert ev(constant, list("abc")) == [5, 6, 7]
    with pytest.raises(EvaluationError, match=constant.label):
        ev(constant, list("ab"))
    with pytest.raises(EvaluationError, match="Constant len 3 doesn't match input len 4"):
        ev(constant, list("abcd"))
    loose = rasp.ConstantSOp([5, 6, 7], check_length=False)
    assert ev(loose, list("ab")) == [5, 6]
    assert ev(loose, list("abcd")) == [5, 6, 7, None]
    for bad in ["abc", 3, None]:
        with pytest.raises(RaspTypeError):
            rasp.ConstantSOp(bad)


# --------------------------------------------------------------------------- comparisons
VALUES = [-1, 0, 1, 2, 2.5]


@pytest.mark.parametrize("comparison", list(rasp.Comparison))
def test_comparison_matches_python_operator(comparison):
    for k in VALUES:
        for q in VALUES:
            assert comparison(k, q) == PY_OPS[comparison](k, q), (comparison, k, q)


def test_comparison_set_and_symbols():
    assert {c.name for c in rasp.Comparison} == {"EQ", "LT", "LEQ", "GT", "GEQ", "NEQ", "TRUE", "FALSE"}
    assert rasp.Comparison.LT.symbol == "<" and rasp.Comparison.GEQ.symbol == ">="
    assert all(isinstance(c.symbol, str) for c in rasp.Comparison)


def test_comparison_with_none_selects_only_under_true():
    for c in rasp.Comparison:
        assert c(None, 1) is (c is rasp.Comparison.TRUE)
        assert c(1, None) is (c is rasp.Comparison.TRUE)


@pytest.mark.parametrize("comparison", list(rasp.Comparison))
def test_select_argument_order_is_key_then_query(comparison):
    """Select(keys, queries, pred) selects key k for query q when pred(keys[k], queries[q])."""
    keys = rasp.ConstantSOp([0, 1, 2, 3])
    queries = rasp.ConstantSOp([2, 2, 0, 3])
    matrix = ev(rasp.Select(keys, queries, comparison), list("abcd"))
    kv, qv = [0, 1, 2, 3], [2, 2, 0, 3]
    assert matrix == [[PY_OPS[comparison](kv[k], qv[q]) for k in range(4)] for q in range(4)]


def test_select_with_a_lambda_predicate_gets_key_first():
    calls = []

    def pred(key, query):
        calls.append((key, query))
        return key == query + 1

    matrix = ev(rasp.Select(rasp.indices, rasp.indices, pred), list("abc"))
    assert matrix == [[False, True, False], [False, False, True], [False, False, False]]
    assert (1, 0) in calls  # key 1 for query 0


@given(TOKENS, st.sampled_from(list(rasp.Comparison)))
@FAST
def test_select_hypothesis(xs, comparison):
    matrix = ev(rasp.Select(rasp.tokens, rasp.indices, comparison), xs)
    assert matrix == [[PY_OPS[comparison](xs[k], q) for k in range(len(xs))] for q in range(len(xs))]


# --------------------------------------------------------------------------- selectors
@given(TOKENS)
@FAST
def test_selector_and_or_not(xs):
    lt = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT)
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    n = len(xs)
    want_lt = [[k < q for k in range(n)] for q in range(n)]
    want_same = [[xs[k] == xs[q] for k in range(n)] for q in range(n)]
    both = [[a and b for a, b in zip(r1, r2)] for r1, r2 in zip(want_lt, want_same)]
    either = [[a or b for a, b in zip(r1, r2)] for r1, r2 in zip(want_lt, want_same)]
    assert ev(rasp.SelectorAnd(lt, same), xs) == both
    assert ev(lt & same, xs) == both
    assert ev(rasp.SelectorOr(lt, same), xs) == either
    assert ev(lt | same, xs) == either
    assert ev(rasp.SelectorNot(lt), xs) == [[not v for v in row] for row in want_lt]
    assert ev(~lt, xs) == [[not v for v in row] for row in want_lt]
    assert isinstance(lt & same, rasp.SelectorAnd) and isinstance(~lt, rasp.SelectorNot)
    assert (lt & same).children == (lt, same) or len((lt & same).children) == 2
    # tracr's helpers merge Selects over the same SOps into one Select, with the same value
    eq = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ)
    assert isinstance(rasp.selector_not(lt), rasp.Select) and isinstance(rasp.selector_or(lt, eq), rasp.Select)
    assert ev(rasp.selector_or(lt, eq), xs) == ev(lt | eq, xs)


def test_selector_combinators_need_selectors():
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    with pytest.raises(RaspTypeError, match="SelectorAnd"):
        rasp.SelectorAnd(sel, rasp.tokens)
    with pytest.raises(RaspTypeError, match="SelectorOr"):
        rasp.SelectorOr(rasp.tokens, sel)
    with pytest.raises(RaspTypeError, match="SelectorNot"):
        rasp.SelectorNot(rasp.indices)


@given(TOKENS)
@FAST
def test_selector_width(xs):
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LEQ))
    got = ev(width, xs)
    assert got == [sum(1 for k in xs if k <= q) for q in xs]
    assert all(type(v) is int for v in got)
    everything = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE))
    assert ev(everything, xs) == [len(xs)] * len(xs)
    nothing = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.FALSE))
    assert ev(nothing, xs) == [0] * len(xs)


# --------------------------------------------------------------------------- aggregate
@given(TOKENS)
@FAST
def test_numerical_aggregate_is_the_mean(xs):
    prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    mean = rasp.numerical(rasp.Aggregate(prefix, rasp.numerical(rasp.tokens), default=0))
    got = ev(mean, xs)
    for i, value in enumerate(got):
        assert type(value) is float
        assert abs(value - sum(xs[: i + 1]) / (i + 1)) < 1e-12


def test_numerical_aggregate_of_booleans_gives_numbers_not_bools():
    is_a = rasp.numerical(rasp.Map(lambda t: t == "a", rasp.tokens))
    everything = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    got = ev(rasp.numerical(rasp.Aggregate(everything, is_a)), list("aab"))
    assert got == [2 / 3] * 3
    assert all(type(v) is float for v in got)
    one = ev(rasp.numerical(rasp.Aggregate(everything, is_a)), ["a"])
    assert one == [1.0] and type(one[0]) is float


def test_numerical_aggregate_default_is_zero_unless_given():
    nothing = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.FALSE)
    values = rasp.numerical(rasp.Full(3))
    assert ev(rasp.numerical(rasp.Aggregate(nothing, values)), list("ab")) == [0, 0]
    assert ev(rasp.numerical(rasp.Aggregate(nothing, values, default=-1)), list("ab")) == [-1, -1]
    earlier = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT)
    assert ev(rasp.numerical(rasp.Aggregate(earlier, values)), list("abc")) == [0, 3.0, 3.0]


def test_numerical_aggregate_of_non_numbers_raises():
    everything = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    agg = rasp.numerical(rasp.Aggregate(everything, rasp.tokens)).named("bad_mean")
    with pytest.raises(EvaluationError, match="bad_mean"):
        ev(agg, list("ab"))


def test_categorical_aggregate_one_selected():
    flip = rasp.Select(rasp.indices, rasp.Map(lambda i: 2 - i, rasp.indices), rasp.Comparison.EQ)
    assert ev(rasp.Aggregate(flip, rasp.tokens), list("abc")) == list("cba")


def test_categorical_aggregate_equal_values():
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    assert ev(rasp.Aggregate(same, rasp.tokens), list("abab")) == list("abab")


def test_categorical_aggregate_differing_values_raises_naming_it():
    everything = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    agg = rasp.Aggregate(everything, rasp.tokens).named("mixed")
    with pytest.raises(AggregateError, match="mixed") as info:
        ev(agg, list("ab"))
    assert isinstance(info.value, EvaluationError)
    assert "tokens" in str(info.value)
    unnamed = rasp.Aggregate(everything, rasp.tokens)
    with pytest.raises(AggregateError, match=unnamed.label):
        ev(unnamed, list("ab"))


def test_categorical_aggregate_default_when_nothing_selected():
    shift = rasp.Select(rasp.indices, rasp.indices, lambda k, q: q == k + 1)
    assert ev(rasp.Aggregate(shift, rasp.tokens), list("abc")) == [None, "a", "b"]
    assert ev(rasp.Aggregate(shift, rasp.tokens, default="_"), list("abc")) == ["_", "a", "b"]


def test_aggregate_needs_selector_and_sop():
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    with pytest.raises(RaspTypeError, match="Aggregate"):
        rasp.Aggregate(rasp.tokens, rasp.tokens)
    with pytest.raises(RaspTypeError, match="Aggregate"):
        rasp.Aggregate(sel, sel)
    with pytest.raises(RaspTypeError, match="SelectorWidth"):
        rasp.SelectorWidth(rasp.tokens)


# --------------------------------------------------------------------------- names and ids
def test_automatic_labels_are_unique():
    exprs = [rasp.Map(lambda x: x, rasp.tokens) for _ in range(5)]
    exprs += [rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ) for _ in range(3)]
    exprs += [rasp.Full(1), rasp.ConstantSOp([1]), rasp.SequenceMap(lambda a, b: a, rasp.tokens, rasp.tokens)]
    labels = [e.label for e in exprs]
    assert len(set(labels)) == len(labels)
    assert len({e.unique_id for e in exprs}) == len(exprs)
    assert exprs[0].label.startswith("map_")
    assert exprs[5].label.startswith("select_")
    assert [e.name for e in exprs[:6]] == ["map"] * 5 + ["select"]  # tracr's default names
    assert all(e.label.startswith(e.name + "_") for e in exprs)


def test_named_returns_a_copy_with_the_same_identity():
    m = rasp.Map(lambda x: x + 1, rasp.indices)
    named = m.named("plus_one")
    assert named is not m
    assert named.label == "plus_one" and named.name == "plus_one"
    assert named.unique_id == m.unique_id
    assert m.label != "plus_one"  # the original is unchanged
    assert ev(named, list("ab")) == [1, 2]
    renamed = named.named("other")
    assert renamed.label == "other" and named.label == "plus_one"
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same")
    assert sel.label == "same" and isinstance(sel, rasp.Select)
    for bad in ["", None, 3]:
        with pytest.raises(RaspTypeError):
            m.named(bad)


def test_repr_mentions_type_and_label():
    assert repr(rasp.Map(lambda x: x, rasp.tokens).named("m")) == "Map(m)"


def test_numerical_and_categorical_annotations():
    m = rasp.Map(lambda x: 1, rasp.tokens).named("ones")
    assert rasp.is_categorical(m) and not rasp.is_numerical(m)
    assert rasp.get_encoding(m) is rasp.Encoding.CATEGORICAL
    num = rasp.numerical(m)
    assert rasp.is_numerical(num) and num.is_numerical
    assert rasp.get_encoding(num) is rasp.Encoding.NUMERICAL
    assert num.unique_id == m.unique_id and num.label == "ones"
    assert rasp.is_categorical(m)  # the original is unchanged
    back = rasp.categorical(num)
    assert rasp.is_categorical(back) and back.unique_id == m.unique_id and back.label == "ones"
    # naming after annotating keeps the encoding, and vice versa
    assert rasp.is_numerical(num.named("renamed"))
    assert rasp.numerical(m.named("x")).label == "x"
    assert "encoding" in num.annotations and num.annotations["name"] == "ones"
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    with pytest.raises(RaspTypeError):
        rasp.numerical(sel)
    with pytest.raises(RaspTypeError):
        rasp.categorical(sel)
    assert not rasp.is_numerical(sel) and not rasp.is_categorical(sel)


def test_annotations_are_read_only_copies():
    m = rasp.Map(lambda x: x, rasp.tokens).named("a")
    with pytest.raises(TypeError):
        m.annotations["name"] = "b"
    assert m.label == "a" and m.annotations["name"] == "a" and m.annotations["encoding"] is rasp.Encoding.CATEGORICAL


def test_sops_hash_by_identity():
    m = rasp.Map(lambda x: x, rasp.tokens)
    assert {m: 1}[m] == 1
    assert isinstance(m == 1, rasp.SOp)  # == builds an SOp, as in tracr


# --------------------------------------------------------------------------- Map simplification
def test_map_of_map_is_fused():
    inner = rasp.Map(lambda x: x + 1, rasp.indices)
    outer = rasp.Map(lambda x: x * 10, inner)
    assert outer.inner is rasp.indices or outer.inner.label == "indices"
    assert ev(outer, list("abc")) == [10, 20, 30]
    triple = rasp.Map(lambda x: x - 1, outer)
    assert triple.inner.label == "indices"
    assert ev(triple, list("abc")) == [9, 19, 29]


def test_map_simplify_false_keeps_both():
    inner = rasp.Map(lambda x: x + 1, rasp.indices)
    outer = rasp.Map(lambda x: x * 10, inner, simplify=False)
    assert outer.inner is inner
    assert ev(outer, list("abc")) == [10, 20, 30]


def test_map_of_other_sops_is_not_fused():
    lsm = rasp.LinearSequenceMap(rasp.indices, rasp.indices, 1, 1)
    assert rasp.Map(lambda x: x, lsm).inner is lsm
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE))
    assert rasp.Map(lambda x: x, width).inner is width


def test_map_needs_a_function_and_an_sop():
    with pytest.raises(RaspTypeError, match="Map"):
        rasp.Map(3, rasp.tokens)
    with pytest.raises(RaspTypeError, match="Map"):
        rasp.Map(lambda x: x, rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ))
    with pytest.raises(RaspTypeError, match="SequenceMap"):
        rasp.SequenceMap(lambda a, b: a, rasp.tokens, 3)
    with pytest.raises(RaspTypeError, match="SequenceMap"):
        rasp.SequenceMap(None, rasp.tokens, rasp.tokens)


def test_none_passes_through_maps():
    shift = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, lambda k, q: q == k + 1), rasp.indices)
    assert ev(rasp.Map(lambda x: x + 1, shift), list("abc")) == [None, 1, 2]
    assert ev(rasp.SequenceMap(lambda a, b: a + b, shift, rasp.indices), list("abc")) == [None, 1, 3]


# --------------------------------------------------------------------------- operators
BINARY = [
    (operator.add, lambda a, b: a + b), (operator.sub, lambda a, b: a - b),
    (operator.mul, lambda a, b: a * b), (operator.mod, lambda a, b: a % b),
    (operator.lt, lambda a, b: a < b), (operator.le, lambda a, b: a <= b),
    (operator.gt, lambda a, b: a > b), (operator.ge, lambda a, b: a >= b),
    (operator.eq, lambda a, b: a == b), (operator.ne, lambda a, b: a != b),
    (operator.and_, lambda a, b: a and b), (operator.or_, lambda a, b: a or b),
]


@pytest.mark.parametrize("op,py", BINARY)
def test_binary_operators_with_constants_and_sops(op, py):
    xs = [3, 0, 2, 5]
    tok = rasp.tokens
    with_const = op(tok, 2)
    assert isinstance(with_const, rasp.Map)
    assert ev(with_const, xs) == [py(x, 2) for x in xs]
    positions = rasp.ConstantSOp([1, 2, 3, 4])
    with_sop = op(tok, positions)
    assert isinstance(with_sop, rasp.SequenceMap)
    assert ev(with_sop, xs) == [py(x, i + 1) for i, x in enumerate(xs)]


def test_division_and_reflected_operators():
    xs = [1, 2, 4]
    assert ev(rasp.tokens / 2, xs) == [0.5, 1.0, 2.0]
    assert ev(8 / rasp.tokens, xs) == [8.0, 4.0, 2.0]
    assert ev(rasp.tokens / rasp.tokens, xs) == [1.0, 1.0, 1.0]
    assert ev(10 + rasp.tokens, xs) == [11, 12, 14]
    assert ev(10 - rasp.tokens, xs) == [9, 8, 6]
    assert ev(3 * rasp.tokens, xs) == [3, 6, 12]
    assert ev(True & (rasp.tokens > 1), xs) == [False, True, True]
    assert ev(False | (rasp.tokens > 1), xs) == [False, True, True]


def test_unary_operators():
    assert ev(-rasp.tokens, [1, -2]) == [-1, 2]
    assert ev(~(rasp.tokens == 1), [1, 2]) == [False, True]


def test_operators_reject_selectors():
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    with pytest.raises(RaspTypeError):
        rasp.tokens + sel
    with pytest.raises(RaspTypeError):
        rasp.tokens == sel  # noqa: B015


# --------------------------------------------------------------------------- evaluation errors
def test_vocab_check_raises_input_error():
    with pytest.raises(InputError, match="'z' at position 2"):
        rasp.evaluate(rasp.tokens, ["a", "b", "z"], vocab={"a", "b"})
    assert rasp.evaluate(rasp.tokens, ["a", "b"], vocab=["a", "b"]) == ["a", "b"]
    assert issubclass(InputError, ValueError) and issubclass(InputError, RaspCompilerError)


def test_input_must_be_a_list():
    assert rasp.evaluate(rasp.tokens, "abc") == ["a", "b", "c"]  # a string is a list of letters, as in tracr
    with pytest.raises(InputError):
        rasp.evaluate(rasp.tokens, 5)


def test_evaluate_needs_an_expression():
    with pytest.raises(RaspTypeError):
        rasp.evaluate(lambda x: x, [1])


def test_failing_map_names_the_map():
    bad = rasp.Map(lambda t: 1 / t, rasp.tokens).named("reciprocal")
    with pytest.raises(EvaluationError, match="reciprocal") as info:
        rasp.evaluate(bad, [1, 0])
    assert "ZeroDivisionError" in str(info.value)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    bad2 = rasp.SequenceMap(lambda a, b: a / b, rasp.tokens, rasp.indices).named("ratio")
    with pytest.raises(EvaluationError, match="ratio"):
        rasp.evaluate(bad2, [1, 2])
    bad_sel = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k < q).named("cmp")
    with pytest.raises(EvaluationError, match="cmp"):
        rasp.evaluate(bad_sel, [1, "a"])


def test_type_misuse_names_the_part():
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("my_sel")
    with pytest.raises(RaspTypeError, match="my_sel") as info:
        rasp.Select(sel, rasp.tokens, rasp.Comparison.EQ)
    assert "keys" in str(info.value)
    with pytest.raises(RaspTypeError, match="queries"):
        rasp.Select(rasp.tokens, sel, rasp.Comparison.EQ)
    with pytest.raises(RaspTypeError, match="predicate"):
        rasp.Select(rasp.tokens, rasp.tokens, "EQ")
    m = rasp.Map(lambda x: x, rasp.tokens).named("my_map")
    with pytest.raises(RaspTypeError, match="my_map"):
        rasp.Aggregate(m, rasp.tokens)
    with pytest.raises(RaspTypeError, match="my_sel"):
        rasp.Map(lambda x: x, sel)
    assert issubclass(RaspTypeError, TypeError)


# --------------------------------------------------------------------------- evaluator behaviour
def test_evaluate_selector_gives_matrix():
    sel = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    assert ev(sel, list("ab")) == [[True, False], [True, True]]


def test_shared_nodes_are_evaluated_once():
    calls = []
    shared = rasp.Map(lambda x: calls.append(x) or x, rasp.tokens)
    program = rasp.SequenceMap(lambda a, b: a + b, shared, rasp.numerical(shared))
    assert ev(program, [1, 2]) == [2, 4]
    assert calls == [1, 2]


def test_deep_programs_do_not_hit_the_recursion_limit():
    program = rasp.tokens
    depth = sys.getrecursionlimit() + 500
    for _ in range(depth):
        program = rasp.Map(lambda x: x + 1, program, simplify=False)
    assert ev(program, [0, 1]) == [depth, depth + 1]


@given(LETTERS)
@FAST
def test_reverse_built_by_hand(xs):
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE))
    opp = rasp.SequenceMap(lambda n, i: n - 1 - i, length, rasp.indices)
    rev = rasp.Aggregate(rasp.Select(rasp.indices, opp, rasp.Comparison.EQ), rasp.tokens)
    assert ev(rev, xs) == xs[::-1]


@given(TOKENS)
@FAST
def test_hist_and_frac_by_hand(xs):
    hist = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ))
    assert ev(hist, xs) == [xs.count(x) for x in xs]
    zero = rasp.numerical(rasp.Map(lambda t: 1 if t == 0 else 0, rasp.tokens))
    frac = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ),
                                         zero, default=0))
    got = ev(frac, xs)
    for i, v in enumerate(got):
        assert abs(v - xs[: i + 1].count(0) / (i + 1)) < 1e-12
