"""The compiler on program shapes one at a time, each checked against rasp.evaluate."""

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import (CausalityError, InputError, RaspTypeError, UnsupportedProgramError,
                                  ValueSetError)
from rasp_compiler.graph.nodes import Kind
from rasp_compiler.verify import check_model, exhaustive_inputs, random_inputs

C = rasp.Comparison
toks, idx = rasp.tokens, rasp.indices
ABC = {"a", "b", "c"}
VALUE = {"a": 0, "b": 1, "c": 2}


def assert_exact(program, vocab=ABC, n=5, causal=False, n_random=0, exhaustive_len=5):
    model = compile_rasp_to_model(program, vocab, n, causal=causal)
    inputs = list(exhaustive_inputs(vocab, min(n, exhaustive_len))) + random_inputs(vocab, n, n_random, full_length=5)
    report = check_model(model, program, inputs)
    assert report.exact, report.examples[:3]
    assert report.checked == len(inputs)
    return model


def numbers():
    return rasp.numerical(rasp.Map(lambda t: VALUE[t], toks)).named("numbers")


def length():
    return rasp.SelectorWidth(rasp.Select(toks, toks, C.TRUE)).named("length")


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("comparison", list(C))
def test_every_comparison_in_selector_width(comparison):
    assert_exact(rasp.SelectorWidth(rasp.Select(toks, toks, comparison)).named(f"w_{comparison.value}"))


@pytest.mark.parametrize("comparison", [C.EQ, C.LT, C.LEQ, C.GT, C.GEQ, C.NEQ, C.TRUE, C.FALSE])
def test_every_comparison_in_numerical_aggregate(comparison):
    assert_exact(rasp.numerical(rasp.Aggregate(rasp.Select(toks, toks, comparison), numbers(), default=0)))


def test_categorical_lookup_map_and_sequence_map():
    m = rasp.Map(lambda t: t.upper(), toks)
    s = rasp.SequenceMap(lambda a, i: f"{a}{i % 2}", m, idx)
    assert_exact(s, n=5)


def test_sequence_map_of_one_sop_twice():
    assert_exact(rasp.SequenceMap(lambda a, b: a + b, toks, toks))


def test_numerical_map_of_numerical_mean_is_a_staircase():
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), numbers(), default=0))
    assert_exact(rasp.Map(lambda x: x > 0.5, mean), n=8, n_random=100)
    assert_exact(rasp.numerical(rasp.Map(lambda x: x * x - 1, mean)), n=8, n_random=100)


def test_number_map_linear_on_its_inputs_is_an_interpolation_with_few_neurons():
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), numbers(), default=0)).named("mean")
    kinked = rasp.numerical(rasp.Map(lambda x: abs(1.3 - 3 * x), mean)).named("kinked")  # one kink
    model = assert_exact(kinked, n=8, n_random=100)
    n_values = len(model.compilation.value_sets["mean"])
    hidden = model.compilation.blocks.mlps["kinked"].n_hidden
    assert n_values > 20 and hidden <= 4, (n_values, hidden)  # a staircase needs two per value


def test_jumpy_number_map_over_many_close_values_is_exact():
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), numbers(), default=0)).named("mean")
    jumpy = rasp.numerical(rasp.Map(lambda x: round(x * 1000) * 7919 % 21 - 10, mean)).named("jumpy")
    assert_exact(jumpy, n=10, n_random=200, exhaustive_len=4)


def test_numerical_aggregate_of_values_other_than_0_and_1_with_default():
    assert_exact(rasp.numerical(rasp.Aggregate(rasp.Select(toks, toks, C.LT), numbers(), default=5)))


def test_numerical_aggregate_of_a_categorical_sop_with_numeric_values():
    nums = rasp.Map(lambda t: VALUE[t] * 2, toks)  # categorical, values 0, 2, 4
    assert_exact(rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), nums, default=0)))


def test_categorical_aggregate_default_then_map():
    shifted = rasp.Aggregate(rasp.Select(idx, idx, lambda k, q: q == k + 1), toks, default="z")
    assert_exact(shifted)
    assert_exact(rasp.Map(lambda x: x + "!", shifted))


def test_default_none_decodes_as_none():
    shifted = rasp.Aggregate(rasp.Select(idx, idx, lambda k, q: q == k + 2), toks)
    model = assert_exact(shifted)
    assert model.apply(["BOS", "a", "b", "c"]).decoded == ["BOS", None, None, "a"]


def test_linear_sequence_map_is_virtual_and_exact():
    a = rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), rasp.numerical(rasp.Map(lambda t: t == "a", toks)), default=0))
    b = rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), rasp.numerical(rasp.Map(lambda t: t == "b", toks)), default=0))
    diff = rasp.numerical(rasp.LinearSequenceMap(a, b, 1, -1)).named("diff")
    model = assert_exact(diff, n=8, n_random=100)
    assert model.compilation.graph.nodes["diff"].kind is Kind.VIRTUAL
    assert model.config.n_layers == 1
    assert_exact(rasp.Map(lambda x: x < 0, diff), n=8, n_random=100)


def test_full_and_constant_sop():
    assert_exact(rasp.SequenceMap(lambda a, b: a + b, rasp.Full("q"), toks))
    assert_exact(rasp.numerical(rasp.LinearSequenceMap(rasp.numerical(rasp.Full(2)), numbers(), 1, 3)))
    const = rasp.ConstantSOp([3, 1, 4, 1, 5], check_length=False)
    assert_exact(rasp.SequenceMap(lambda c, t: f"{t}{c}", const, toks))


def test_composite_selectors_and_or_not():
    before = rasp.Select(idx, idx, C.LT)
    same = rasp.Select(toks, toks, C.EQ)
    assert_exact(rasp.Map(lambda w: w == 0, rasp.SelectorWidth(rasp.SelectorAnd(before, same))), n=6)
    assert_exact(rasp.SelectorWidth(rasp.SelectorOr(rasp.Select(idx, idx, C.EQ), same)), n=5)
    assert_exact(rasp.SelectorWidth(rasp.SelectorNot(same)))
    assert_exact(rasp.numerical(rasp.Aggregate(rasp.SelectorNot(rasp.SelectorAnd(before, same)), numbers(), default=0)))
    assert_exact(rasp.Aggregate(rasp.SelectorAnd(rasp.Select(idx, idx, C.EQ), rasp.SelectorOr(same, same)), toks))


def test_conjunction_is_one_head_without_product_space():
    sel = rasp.SelectorAnd(rasp.Select(idx, idx, C.LT), rasp.Select(toks, toks, C.EQ))
    model = compile_rasp_to_model(rasp.SelectorWidth(sel).named("w"), ABC, 5)
    node = model.compilation.graph.nodes["w"]
    assert len(node.terms) == 2 and not any(n.synthetic for n in model.compilation.graph.nodes.values())


def test_or_over_different_sops_uses_product_space():
    sel = rasp.SelectorOr(rasp.Select(idx, idx, C.EQ), rasp.Select(toks, toks, C.EQ))
    model = compile_rasp_to_model(rasp.SelectorWidth(sel).named("w"), ABC, 4)
    assert any(n.synthetic for n in model.compilation.graph.nodes.values())


def test_reverse_and_sort_at_longer_lengths():
    opp = rasp.SequenceMap(lambda n, i: n - 1 - i, length(), idx)
    reverse = rasp.Aggregate(rasp.Select(idx, opp, C.EQ), toks).named("reverse")
    assert_exact(reverse, vocab=set("abcdefgh"), n=24, n_random=100, exhaustive_len=2)


def test_none_keys_and_queries_follow_the_evaluator():
    """A categorical Aggregate that selects nothing holds None; selectors still compare it."""
    prev = rasp.Aggregate(rasp.Select(idx, rasp.Map(lambda i: i - 1, idx), C.EQ), toks).named("prev")
    assert_exact(rasp.SelectorWidth(rasp.Select(toks, prev, C.TRUE)).named("w_true"))
    assert_exact(rasp.SelectorWidth(rasp.SelectorNot(rasp.Select(prev, toks, C.EQ))).named("w_not"))
    assert_exact(rasp.SelectorWidth(rasp.Select(prev, prev, lambda k, q: k is None and q is None)).named("w_none"))


def test_numerical_sop_that_can_be_none_is_rejected():
    prev = rasp.Aggregate(rasp.Select(idx, rasp.Map(lambda i: i - 1, idx), C.EQ), toks).named("prev")
    with pytest.raises(ValueSetError, match="None"):
        compile_rasp_to_model(rasp.numerical(rasp.Map(lambda t: t == "a", prev)).named("num"), ABC, 4)


# --------------------------------------------------------------------------- causal
def test_causal_model_matches_prefix_evaluation():
    frac = rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), numbers(), default=0))
    assert_exact(frac, n=6, causal=True)


def test_causal_rejects_programs_that_look_ahead():
    with pytest.raises(CausalityError, match="length"):
        compile_rasp_to_model(length(), ABC, 5, causal=True)


# --------------------------------------------------------------------------- artifacts and labels
def test_artifacts_labels_and_backends():
    frac = rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), numbers(), default=0)).named("frac")
    model = compile_rasp_to_model(frac, ABC, 6)
    comp = model.compilation
    assert set(comp.graph.graph.nodes) == {"tokens", "indices", "numbers", "frac"}
    assert comp.schedule.layer_of("frac") == 0
    assert comp.value_sets["indices"] == frozenset(range(6))
    assert len(model.residual_labels) == model.config.d_model
    assert "frac" in model.residual_labels and "indices:0" in model.residual_labels
    assert model.labels.heads[0][0] == "frac"
    assert model.params["blocks.0.attn.W_Q"].shape == (model.config.n_heads, model.config.d_model, model.config.d_head)
    xs = ["BOS", "a", "c", "b"]
    numpy_run = model.run_with_cache(xs)
    jax_out = model.apply(xs, backend="jax").output
    np.testing.assert_allclose(numpy_run.output, jax_out, atol=1e-5)
    assert numpy_run.cache["blocks.0.attn.hook_pattern"].shape == (model.config.n_heads, 4, 4)
    assert numpy_run.cache["blocks.0.mlp.hook_post"].shape == (4, model.config.d_mlp)
    assert model.apply_batch([xs, ["BOS", "a"]], backend="jax") == [model.apply(xs).decoded, ["BOS", 0.0]]


# --------------------------------------------------------------------------- rejected programs
def test_unsupported_programs_are_rejected_naming_the_sop():
    nums = numbers()
    with pytest.raises(UnsupportedProgramError, match="numbers"):
        compile_rasp_to_model(rasp.SelectorWidth(rasp.Select(nums, toks, C.EQ)).named("w"), ABC, 4)
    with pytest.raises(UnsupportedProgramError, match="mixed"):
        compile_rasp_to_model(rasp.Aggregate(rasp.Select(toks, toks, C.TRUE), toks).named("mixed"), ABC, 4)
    with pytest.raises(UnsupportedProgramError, match="pair"):
        compile_rasp_to_model(rasp.SequenceMap(lambda a, b: a, nums, toks).named("pair"), ABC, 4)
    with pytest.raises(UnsupportedProgramError, match="catnum"):
        compile_rasp_to_model(rasp.Aggregate(rasp.Select(idx, idx, C.EQ), nums).named("catnum"), ABC, 4)
    with pytest.raises(UnsupportedProgramError, match="strings"):
        compile_rasp_to_model(rasp.numerical(rasp.Aggregate(rasp.Select(idx, idx, C.LEQ), toks)).named("strings"), ABC, 4)
    with pytest.raises(ValueSetError, match="boom"):
        compile_rasp_to_model(rasp.Map(lambda t: 1 / (t == "x"), toks).named("boom"), ABC, 4)
    with pytest.raises(RaspTypeError):
        compile_rasp_to_model(rasp.Select(toks, toks, C.EQ), ABC, 4)


def test_bad_compile_arguments_and_inputs():
    with pytest.raises(InputError):
        compile_rasp_to_model(toks, set(), 4)
    with pytest.raises(InputError):
        compile_rasp_to_model(toks, {"BOS", "a"}, 4)
    with pytest.raises(InputError):
        compile_rasp_to_model(toks, ABC, 0)
    with pytest.raises(InputError, match="no value"):
        compile_rasp_to_model(toks, {None, "a"}, 3)
    model = compile_rasp_to_model(rasp.Map(lambda t: t, toks), ABC, 3)
    with pytest.raises(InputError, match="BOS"):
        model.apply(["a", "b"])
    with pytest.raises(InputError, match="'z'"):
        model.apply(["BOS", "z"])
    with pytest.raises(InputError, match="max_seq_len"):
        model.apply(["BOS", "a", "a", "a", "a"])


# --------------------------------------------------------------------------- running
def test_numpy_forward_skips_only_zero_padding():
    """apply() skips each layer's padding (narrower heads, no head, no MLP); the full forward
    pass that run_with_cache uses must give the same numbers on every input."""
    from rasp_compiler import lib
    program = lib.make_sort_freq(max_seq_len=5)
    model = compile_rasp_to_model(program, ABC, 5)
    c = model.config
    assert any(w != (c.n_heads, c.d_head, c.d_mlp) for w in model._widths)
    assert any(0 in w[1:] for w in model._widths)  # a layer without a head or without an MLP
    for tokens in exhaustive_inputs(ABC, 5):
        fast, full = model.apply(["BOS", *tokens]), model.run_with_cache(["BOS", *tokens])
        np.testing.assert_allclose(fast.output, full.output, atol=1e-5)
        assert fast.decoded == full.decoded == ["BOS", *rasp.evaluate(program, tokens)]


def test_assembled_weights_are_read_only_and_replacing_one_runs_the_full_forward():
    from rasp_compiler import lib
    program = lib.make_hist()
    model = compile_rasp_to_model(program, ABC, 5)
    w_out = model.params["blocks.0.mlp.W_out"]
    with pytest.raises(ValueError, match="read-only"):
        w_out[0, 0] = 1.0
    assert model._weights_as_assembled()
    model.params["blocks.0.mlp.W_out"] = w_out.copy()  # a user's edited copy: no skipping any more
    assert not model._weights_as_assembled()
    for tokens in exhaustive_inputs(ABC, 4):
        assert model.apply(["BOS", *tokens]).decoded == ["BOS", *rasp.evaluate(program, tokens)]

