"""The trained (SIIT) variant: losses fall, the mapped truth holds under ablation, files round-trip.

One tiny program (``length`` over {a, b} up to 4 tokens, a head and an MLP) is trained
for 600 steps once for the module (lr 3e-3: at this width the default 1e-2 is too coarse);
every test reads that one result.
"""

from __future__ import annotations

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.errors import UnsupportedProgramError
from rasp_compiler.export import load_model, save_model
from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.ground_truth import components
from rasp_compiler.interp.siit.batches import random_ids
from rasp_compiler.interp.variants import make_variant
from rasp_compiler.lib import make_frac_prevs, make_length

QUICK = dict(steps=600, lr=3e-3, d_model=16, d_head=4, neurons_per_node=8, unmapped_neurons=4, batch_size=128)


@pytest.fixture(scope="module")
def compiled():
    return compile_rasp_to_model(make_length(), vocab={"a", "b"}, max_seq_len=4, compiler_bos="BOS")


@pytest.fixture(scope="module")
def variant(compiled, tmp_path_factory):
    path = tmp_path_factory.mktemp("trained") / "length.safetensors"
    v = make_variant(compiled, "trained", seed=0, cache=path, **QUICK)
    return v, path


def _decode(logits, lengths):
    """Decoded classes at the real positions (argmax when above 0.5, else -1 for None)."""
    cls = np.where(logits.max(-1) > 0.5, logits.argmax(-1), -1)
    return [tuple(row[1:n + 1]) for row, n in zip(cls, lengths)]


def _resample(model, comp_name, base, source, lengths):
    """Outputs of ``base`` with one component's output taken from ``source`` (public Decomposed pass)."""
    dec = Decomposed(model)
    rb, rs = {}, {}
    dec.run(base, record=rb)
    dec.run(source, record=rs)
    delta = rs["out:" + comp_name] - rb["out:" + comp_name]
    return _decode(dec.logits(base, out_delta={comp_name: delta}), lengths)


def test_losses_decrease(variant):
    v, _ = variant
    history = v.model.metadata["extra"]["history"]
    first, last = history[0], history[-1]
    for kind in ("behaviour", "interchange", "strict"):
        assert last[kind] < 0.3 * first[kind], (kind, first, last)


def test_variant_contract_and_measured_exactness(variant, compiled):
    v, _ = variant
    assert v.kind == "trained" and type(v.model) is type(compiled)
    assert v.exactness.checked_inputs == 2 + 4 + 8 + 16  # every input up to length 4
    assert v.exactness.accuracy >= 0.95
    assert v.exactness.metrics["iia"] >= 0.9 and v.exactness.metrics["strict_iia"] >= 0.8
    # the trained model agrees with rasp.evaluate on its own inputs
    for xs in (["a"], ["a", "b", "b"], ["b", "b", "a", "a"]):
        assert v.model.apply(["BOS", *xs]).decoded[1:] == [len(xs)] * len(xs)


def test_truth_is_the_mapped_circuit(variant):
    v, _ = variant
    circuit = v.truth.circuit()
    names = {c.name for c in components(v.model)}
    assert {"L0.H0", "L0.MLP:length", "embed", "unembed"} <= circuit.nodes
    unmapped = [n for n in names if n not in circuit.nodes]
    assert unmapped and all(v.truth.graph.degree(n) == 0 for n in unmapped)
    assert set(v.truth.scored) == names - {"embed", "unembed"}


def test_truth_verified_by_resample_ablation(variant):
    """Unmapped components barely matter; each mapped one changes most outputs."""
    v, _ = variant
    rng = np.random.default_rng(7)
    c = v.model.config
    lengths = rng.integers(1, c.max_seq_len, 200)  # base shorter than the source: the length differs
    base = random_ids(rng, 200, c, lengths)
    source = random_ids(rng, 200, c, np.full(200, c.max_seq_len))
    clean = _decode(Decomposed(v.model).logits(base), lengths)
    circuit = v.truth.circuit().nodes
    for comp in components(v.model):
        if comp.kind in ("embed", "unembed"):
            continue
        changed = np.mean([a != b for a, b in zip(clean, _resample(v.model, comp.name, base, source, lengths))])
        if comp.name in circuit:
            assert changed > 0.5, (comp.name, changed)
        else:
            assert changed < 0.1, (comp.name, changed)


def test_saves_loads_and_reuses_the_cache(variant, compiled, tmp_path):
    v, path = variant
    assert path.exists()
    loaded = load_model(save_model(v.model, tmp_path / "m.safetensors"))
    batch = [["BOS", *xs] for xs in (["a"], ["b", "a"], ["a", "a", "b", "b"])]
    assert loaded.apply_batch(batch) == v.model.apply_batch(batch)
    assert [c.name for c in components(loaded)] == [c.name for c in components(v.model)]
    again = make_variant(compiled, "trained", seed=0, cache=path, **QUICK)  # loads: no training
    assert all(np.array_equal(again.model.params[k], v.model.params[k]) for k in v.model.params)
    assert again.exactness == v.exactness


def test_numerical_output_is_refused():
    model = compile_rasp_to_model(make_frac_prevs(), vocab={"x", "y"}, max_seq_len=3, compiler_bos="BOS")
    with pytest.raises(UnsupportedProgramError, match="frac_prevs"):
        make_variant(model, "trained", steps=1)


def test_cache_mismatch_is_an_error_and_from_cache_uses_the_files_settings(variant, compiled):
    from rasp_compiler.interp.variants.trained import from_cache

    v, path = variant
    with pytest.raises(ValueError, match="steps"):
        make_variant(compiled, "trained", seed=0, cache=path, **{**QUICK, "steps": 5})
    again = from_cache(compiled, path)
    assert again.settings == v.settings
