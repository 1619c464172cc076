"""Every variant of every library program: its exactness, and its truth checked by ablation.

Exactness is measured against the compiled model (itself checked against ``rasp.evaluate``
in test_compile_library) on every input up to max_seq_len 4. The truth is checked by
zero-ablation on those inputs: no component outside the claimed circuit changes a decoded
output (alone, and all distractors together), every component inside does (a backed-up
component only together with its copy).
"""

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import VariantError
from rasp_compiler.interp.ground_truth import is_distractor
from rasp_compiler.interp.variants import make_variant
from rasp_compiler.interp.variants.base import ablation_changes, check_inputs
from rasp_compiler.lib import LIBRARY

MAX_LEN = 4


@pytest.fixture(scope="module")
def compiled():
    cache = {}

    def get(name):
        if name not in cache:
            e = LIBRARY[name]
            cache[name] = compile_rasp_to_model(e.build(), e.vocab, MAX_LEN)
        return cache[name]
    return get


def _check_truth(v, model, inputs):
    base = make_variant(model, "compiled").truth
    truth, names = v.truth, v.truth.scored
    circuit = truth.circuit().nodes
    backups = {n: n.replace("backup:", "") for n in names if "backup:" in truth.components[n].node}
    originals = {}
    for copy in backups:  # the original a copy duplicates: same layer and kind, same node
        c = truth.components[copy]
        originals[copy] = next(n for n in base.scored if base.components[n].layer == c.layer
                               and base.components[n].kind == c.kind and base.components[n].node == c.node[7:])
    paired = set(backups) | set(originals.values())
    for n in names:
        if n not in circuit:
            assert ablation_changes(v.model, inputs, [n]) == 0, f"{n} is outside the circuit but matters"
        elif n not in paired:
            assert ablation_changes(v.model, inputs, [n]) > 0, f"{n} is in the circuit but changes nothing"
    for copy, orig in originals.items():
        assert copy in circuit and orig in circuit
        assert ablation_changes(v.model, inputs, [copy]) == 0
        assert ablation_changes(v.model, inputs, [orig]) == 0
        assert ablation_changes(v.model, inputs, [copy, orig]) > 0
    distractors = [n for n in names if is_distractor(truth.components[n].node)]
    if distractors:
        assert ablation_changes(v.model, inputs, distractors) == 0
    # the circuit is the compiled one (plus the copies): distractors added nothing to it
    assert set(circuit) - set(backups) == set(base.circuit().nodes)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_every_variant_is_exact_and_its_truth_holds_under_ablation(compiled, name):
    model = compiled(name)
    inputs, how = check_inputs(model)
    assert how == f"exhaustive to length {MAX_LEN}"
    for kind in ("distractors", "backups", "dense"):
        try:
            v = make_variant(model, kind, seed=1)
        except VariantError as e:
            assert kind == "backups" and model.config.output_numerical, e
            continue
        assert v.exactness.exact, (kind, v.exactness)
        assert v.exactness.checked_inputs == len(inputs)
        _check_truth(v, model, inputs)


def test_distractors_are_active_labelled_and_move_the_logits(compiled):
    model = compiled("sort")
    v = make_variant(model, "distractors", seed=0)
    truth = v.truth
    d = [n for n in truth.scored if is_distractor(truth.components[n].node)]
    assert len(d) == 4 * model.config.n_layers  # a head pair and a block pair per layer
    assert all(truth.components[n].node.split("#")[0][len("distractor:"):] for n in d)  # names what it reads
    xs = [["BOS", *x] for x in ([1, 3, 2], [2, 1, 1, 3], [3, 4])]
    outs = []
    for x in xs:
        r = v.model.run_with_cache(x)
        from rasp_compiler.interp.hooks import component_output
        outs.append([np.abs(component_output(v.model, r.cache, n)).max() for n in d])
    assert np.min(np.max(outs, 0)) > 1e-3  # every distractor writes something on real inputs
    # ... which a single ablation shows in the logits, though not in the decoded output
    from rasp_compiler.interp.hooks import ablate
    x = xs[1]
    base = v.model.run_with_cache(x).output
    moved = v.model.run_with_cache(x, hooks=ablate(v.model, d[0], "zero")).output
    assert np.abs(moved - base).max() > 1e-3
    assert v.model.apply(x).decoded[1:] == rasp.evaluate(LIBRARY["sort"].build(), x[1:])


def test_dense_has_no_axis_aligned_weight_and_the_same_graph(compiled):
    model = compiled("reverse")
    plain = make_variant(model, "distractors", seed=2)
    v = make_variant(model, "dense", seed=2)
    assert set(v.truth.graph.edges) == set(plain.truth.graph.edges)
    for name in ("embed.W_E", "blocks.0.attn.W_Q", "blocks.0.attn.W_O", "blocks.0.mlp.W_in", "unembed.W_U"):
        for m, dense in ((model, False), (v.model, True)):
            w = np.abs(np.asarray(m.params[name], np.float64))
            w = w.reshape(-1, w.shape[-1])
            w = w[w.max(1) > 0][:, w.max(0) > 0]  # rows and columns in use
            zeros = float(np.mean(w < 1e-6 * w.max()))
            # compiled weights are sparse in the feature basis; dense ones have no zero left
            assert (zeros < 0.01) if dense else (zeros > 0.1 or name.endswith("W_O")), (name, dense, zeros)
    with_off = make_variant(model, "dense", seed=2, distractors=False)
    assert with_off.exactness.exact and len(with_off.truth.scored) == len(make_variant(model, "compiled").truth.scored)


def test_backups_refuse_a_numerical_output(compiled):
    with pytest.raises(VariantError, match="frac_prevs.*numerical"):
        make_variant(compiled("frac_prevs"), "backups")


def test_testbed_scores_variants_with_precision_and_faithfulness(compiled):
    """On a distractor variant every method gives some non-circuit component a non-zero
    score, and the true circuit alone restores the whole metric while any strict part of
    it restores less."""
    from rasp_compiler.interp.testbed import _Faithfulness, evaluate
    from rasp_compiler.interp.forward import Decomposed
    from rasp_compiler.interp.methods import component_deltas

    model = compiled("sort")
    v = make_variant(model, "distractors", seed=0)
    res = evaluate(v.model, "sort", targets=[model.config.output], n_pairs=8, gt=v.truth)
    out = res.output()
    assert out.truth_faithfulness["node"] == pytest.approx(1.0, abs=1e-4)
    assert out.truth_faithfulness["edge"] == pytest.approx(1.0, abs=1e-4)
    negatives = [n for n in v.truth.scored if n not in out.circuit_nodes]
    for name, raw in out.scores.items():
        keys = negatives if raw.level == "node" else [e for e in raw.keys if e not in out.circuit_edges]
        assert max(raw.score[k] for k in keys) > 1e-3 * float(out.pairs.gap.mean()), name
    s = out.node["structural"]["patching"]
    assert s.auc == 1.0 and s.faithfulness == pytest.approx(1.0, abs=1e-4) and 0 < s.n_pos < s.n_pos + s.n_neg
    assert out.edge["structural"]["eap"].auc < 0.9  # saturated MLPs hide true edges from gradients
    faith = _Faithfulness(Decomposed(v.model), out.pairs, component_deltas(Decomposed(v.model), out.pairs)[2])
    assert faith.nodes([]) < 0.5  # only the embedding clean
    assert faith.nodes(out.circuit_nodes[1:]) < 0.99


def test_dense_with_learned_compression_keeps_the_truth_and_measures_its_cost(compiled):
    model, program = compiled("hist"), LIBRARY["hist"].build()
    with pytest.raises(VariantError, match="needs the program"):
        make_variant(model, "dense", compress_to=8)
    v = make_variant(model, "dense", seed=0, compress_to=8, program=program, compress_steps=150)
    assert v.model.config.d_model == 8 and v.settings["compress_to"] == 8
    assert 0.5 < v.exactness.accuracy <= 1.0  # measured, not assumed
    plain = make_variant(model, "distractors", seed=0)
    assert set(v.truth.graph.edges) == set(plain.truth.graph.edges)
    assert v.truth.features.features[3].direction.shape == (8,)  # W e_i, rotated
