"""Numbers float32 cannot carry are refused before building (issue 14, class 1); numbers
it can carry compile exactly."""

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import ValueSetError
from rasp_compiler.verify import check_model, exhaustive_inputs

VOCAB = {"a", "b", "c"}


def _values(mapping, name="v"):
    return rasp.numerical(rasp.Map(lambda t: mapping[t], rasp.tokens)).named(name)


def _exact(program, vocab=VOCAB, n=3):
    model = compile_rasp_to_model(program, vocab, n)
    report = check_model(model, program, exhaustive_inputs(vocab, n))
    assert report.exact, report.examples[:2]


@pytest.mark.parametrize("big", [1e39, -1e39, 3e38, 1e31])
def test_numerical_value_beyond_float32_is_refused(big):
    with pytest.raises(ValueSetError, match=r"numerical Map v can take .*beyond what float32 can carry.*rescale"):
        compile_rasp_to_model(_values({"a": big, "b": 1.0, "c": 0.0}), VOCAB, 3)


def test_large_values_averaged_from_a_categorical_sop_are_refused():
    v = rasp.categorical(rasp.Map(lambda t: {"a": 1e35, "b": 1, "c": 0}[t], rasp.tokens)).named("v")
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ), v,
                                         default=0)).named("mean")
    with pytest.raises(ValueSetError, match=r"v \(averaged by mean\) can take 1e\+35"):
        compile_rasp_to_model(mean, VOCAB, 3)


@pytest.mark.parametrize("comparison", [rasp.Comparison.LEQ, rasp.Comparison.EQ])
def test_mean_of_very_different_magnitudes_is_refused(comparison):
    """Leaked attention weight times 1e20 swamps a mean of ones (was wrong on 12-22 of 39 inputs)."""
    v = _values({"a": 1e20, "b": 1.0, "c": 0.0})
    sel = rasp.Select(rasp.indices, rasp.indices, comparison) if comparison is rasp.Comparison.LEQ \
        else rasp.Select(rasp.tokens, rasp.tokens, comparison)
    mean = rasp.numerical(rasp.Aggregate(sel, v, default=0)).named("mean")
    with pytest.raises(ValueSetError, match=r"numerical output Aggregate mean cannot be read exactly from float32"):
        compile_rasp_to_model(mean, VOCAB, 3)


def test_map_of_an_imprecise_mean_is_refused():
    v = _values({"a": 1e12, "b": 1.0, "c": 0.0})
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ), v,
                                         default=0)).named("mean")
    small = rasp.categorical(rasp.Map(lambda x: x < 0.75, mean)).named("small")
    with pytest.raises(ValueSetError, match=r"Map small cannot be computed exactly in float32: its input mean"):
        compile_rasp_to_model(small, VOCAB, 3)


@pytest.mark.parametrize("scale", [1.0, 1e6, 1e-6, 1e15])
def test_uniform_magnitudes_compile_exactly(scale):
    v = _values({"a": 3 * scale, "b": 1 * scale, "c": 0.0})
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ), v,
                                         default=0)).named("mean")
    _exact(mean)


def test_large_but_carried_values_compile_exactly():
    _exact(_values({"a": 1e29, "b": -1e29, "c": 0.0}))
