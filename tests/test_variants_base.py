"""The variant contract: every kind returns the same model type, a truth and a measured exactness."""

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.interp.variants import KINDS, available, make_variant
from rasp_compiler.lib import LIBRARY
from rasp_compiler.model.compiled import CompiledModel


@pytest.fixture(scope="module")
def reverse():
    e = LIBRARY["reverse"]
    return e, compile_rasp_to_model(e.build(), e.vocab, 4)


def test_compiled_and_rotated_are_exact_on_every_input(reverse):
    entry, model = reverse
    for kind in ("compiled", "rotated"):
        v = make_variant(model, kind, seed=1)
        assert isinstance(v.model, CompiledModel)
        assert v.exactness.exact and v.exactness.checked_inputs == sum(3 ** n for n in range(1, 5))
        # exactness is measured against the evaluator's outputs, not assumed
        xs = ["c", "a", "b"]
        assert v.model.apply(["BOS", *xs]).decoded[1:] == rasp.evaluate(entry.build(), xs)


def test_noise_costs_accuracy_and_keeps_the_clean_truth(reverse):
    _, model = reverse
    v = make_variant(model, "noise", seed=0, scale=0.3)
    assert v.exactness.accuracy < 1.0
    assert set(v.truth.circuit().nodes) == set(make_variant(model, "compiled").truth.circuit().nodes)


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        make_variant(None, "nope")
    assert set(available()) <= set(KINDS)


def test_rotated_truth_points_along_the_rotated_directions(reverse):
    import numpy as np

    _, model = reverse
    v = make_variant(model, "rotated", seed=3)
    basis = v.model.residual_basis
    assert not np.allclose(basis, np.eye(len(basis)))
    for f in v.truth.features.features:  # feature i is row i of the basis, not the standard vector e_i
        assert np.allclose(f.direction, basis[f.index])
