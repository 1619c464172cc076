"""The interpretability testbed: ground truth, interventions, methods, rotation."""

import math

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp import ground_truth, rotate_residual
from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.hooks import (ablate, component_output, feature_subspace, patch_from, patch_residual,
                                        replace_pattern, run_batch_with_cache)
from rasp_compiler.interp.scoring import faithfulness, pr_auc, roc_auc, score_ranking, tpr_fpr_at_k
from rasp_compiler.lib import LIBRARY
from rasp_compiler.model.compiled import CompiledModel
from rasp_compiler.model.config import ModelConfig, ModelLabels
from rasp_compiler.model.transformer import forward
from rasp_compiler.verify import exhaustive_inputs


@pytest.fixture(scope="module")
def models():
    out = {}
    for name in ("frac_prevs", "reverse", "hist", "sort"):
        e = LIBRARY[name]
        out[name] = compile_rasp_to_model(e.build(), e.vocab, 5)
    return out


def loaded(model):
    """The model as a file would give it back: weights, config and labels, no compilation."""
    return CompiledModel(ModelConfig.from_json(model.config.to_json()), dict(model.params),
                         ModelLabels.from_json(model.labels.to_json()))


# --------------------------------------------------------------------------- ground truth
def test_ground_truth_frac_prevs(models):
    gt = ground_truth(models["frac_prevs"])
    assert set(gt.graph.edges) == {("embed", "L0.H0"), ("L0.H0", "unembed")}
    assert gt.graph.edges["L0.H0", "unembed"]["dims"] == ("frac_prevs",)
    assert "tokens:x" in gt.graph.edges["embed", "L0.H0"]["dims"]
    assert gt.graph.nodes["L0.H0"]["node"] == "frac_prevs"
    c = gt.circuit()
    assert c.nodes == {"embed", "L0.H0", "unembed"} and len(c.edges) == 2


def test_ground_truth_reverse_chain_and_subcircuits(models):
    gt = ground_truth(models["reverse"])
    assert set(gt.graph.edges) == {
        ("embed", "L0.H0"), ("L0.H0", "L0.MLP:length"), ("L0.MLP:length", "L1.MLP:opp_idx"),
        ("embed", "L1.MLP:opp_idx"), ("L1.MLP:opp_idx", "L2.H0"), ("embed", "L2.H0"), ("L2.H0", "unembed")}
    assert "L1.H0" not in gt.graph  # the unused head of layer 1
    assert gt.circuit().nodes >= {"L0.H0", "L0.MLP:length", "L1.MLP:opp_idx", "L2.H0"}
    sub = gt.circuit("opp_idx")
    assert sub.nodes == {"embed", "L0.H0", "L0.MLP:length", "L1.MLP:opp_idx", "probe:opp_idx"}
    assert ("L1.MLP:opp_idx", "probe:opp_idx") in sub.edges
    # a virtual node's circuit comes through its read-out
    assert "L0.MLP:length" in gt.circuit("length_minus_index").nodes
    layer = ground_truth(models["reverse"], "layer")
    assert ("L1.mlp", "L2.attn") in layer.graph.edges and "L1.attn" not in layer.graph


def test_ground_truth_without_compilation(models):
    for name in ("reverse", "sort"):
        a, b = ground_truth(models[name]), ground_truth(loaded(models[name]))
        assert set(a.graph.edges) == set(b.graph.edges)
        assert all(a.graph.edges[e]["dims"] == b.graph.edges[e]["dims"] for e in a.graph.edges)
        assert a.circuit("opp_idx" if name == "reverse" else "sort_target_pos") == \
            b.circuit("opp_idx" if name == "reverse" else "sort_target_pos")


def test_feature_dictionary(models):
    gt = ground_truth(models["reverse"])
    f = gt.features.by_label("tokens:a")
    assert (f.node, f.value, f.kind) == ("tokens", "a", "categorical")
    assert f.written_by == ("embed",) and "L2.H0" in f.read_by
    assert gt.features.by_label("opp_idx:-3").value == -3
    assert gt.features.by_label("length:<bos-fraction>").kind == "internal"
    assert gt.features.by_label("one").kind == "constant"
    neurons = [n for n in gt.features.neurons if n.component == "L1.MLP:opp_idx"]
    assert neurons and all(n.meaning.startswith("opp_idx") for n in neurons)
    lf = ground_truth(loaded(models["reverse"])).features.by_label("opp_idx:-3")
    assert lf.value == -3  # parsed back from the label


# --------------------------------------------------------------------------- running
@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_decomposed_forward_matches_model(models, name):
    m = models[name]
    vocab = list(m.config.vocab)
    ids = np.stack([m.encode([m.config.bos, *(vocab * 3)[i:i + n]]) for i, n in [(0, 5), (1, 3), (2, 1)]])
    ref = forward(m.params, ids, xp=np, n_layers=m.config.n_layers, causal=False)
    for g in ("node", "layer"):
        dec = Decomposed(m, g)
        with np.errstate(over="ignore", invalid="ignore"):
            np.testing.assert_allclose(dec.logits(ids), ref, atol=1e-5)
    import jax.numpy as jnp
    np.testing.assert_allclose(np.asarray(Decomposed(m).logits(jnp.asarray(ids), xp=jnp)), ref, atol=1e-4)


def test_head_outputs_sum_to_attention_out(models):
    m = models["sort"]
    cache = m.run_with_cache([m.config.bos, 3, 1, 2]).cache
    total = component_output(m, cache, "L0.H0") + component_output(m, cache, "L0.H1")
    np.testing.assert_allclose(total, cache["blocks.0.hook_attn_out"], atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_interventions(models, backend):
    m = models["reverse"]
    bos = m.config.bos
    clean, other = [bos, "a", "b", "c", "c"], [bos, "b", "b", "a", "c"]
    run = lambda hooks: m.run_with_cache(clean, hooks=hooks, backend=backend).decoded
    assert run(None) == [bos, "c", "c", "b", "a"]
    # zero ablation of the head that moves tokens: nothing is selected any more
    assert run(ablate(m, "L2.H0", "zero")) == [bos, None, None, None, None]
    # patching the head from another input of the same length gives that input's answer
    assert run(patch_from(m, "L2.H0", m.run_with_cache(other).cache)) == [bos, "c", "a", "b", "b"]
    # patching the length MLP changes nothing when both inputs have the same length
    assert run(patch_from(m, "L0.MLP:length", m.run_with_cache(other).cache)) == run(None)
    # an attention pattern that reads position 1 everywhere
    to_first = np.zeros((5, 5), np.float32)
    to_first[:, 1] = 1.0
    assert run(replace_pattern(2, 0, to_first)) == [bos, "a", "a", "a", "a"]
    # swapping the tokens subspace of the residual read by the last head
    D = feature_subspace(m, ["tokens:a", "tokens:b", "tokens:c"])
    src = m.run_with_cache(other).cache["blocks.2.hook_resid_pre"]
    assert run(patch_residual("blocks.2.hook_resid_pre", D, source=src)) == [bos, "c", "a", "b", "b"]


def test_mean_and_resample_ablation(models):
    m = models["hist"]
    bos = m.config.bos
    clean = [bos, "a", "a", "b", "a"]
    reference = [[bos, *xs] for xs in exhaustive_inputs(m.config.vocab, 4, min_len=4)]
    base = m.apply(clean).decoded
    mean = m.run_with_cache(clean, hooks=ablate(m, "L0.H0", "mean", reference=reference)).decoded
    assert mean != base and len(set(mean[1:])) == 1  # every position sees the average count
    resampled = m.run_with_cache(clean, hooks=ablate(m, "L0.H0", "resample", source=[bos, "c", "c", "c", "c"])).decoded
    assert resampled == [bos, 4, 4, 4, 4]
    batch = run_batch_with_cache(m, reference[:7])
    assert batch["blocks.0.attn.hook_pattern"].shape == (7, 1, 6, 6)


# --------------------------------------------------------------------------- methods
def test_patching_identifies_the_true_circuit(models):
    from rasp_compiler.interp.testbed import evaluate
    for name in ("reverse", "hist"):
        m = models[name]
        res = evaluate(m, name, targets=[m.config.output], n_pairs=8)
        out = res.output()
        assert out.edge["active"]["edge_patching"].auc == 1.0
        assert out.edge["active"]["edge_patching"].tpr == 1.0
        scores = out.scores["patching"].score
        assert all(scores[n] > 0 for n in out.active_nodes)
    # same-length pairs cannot change reverse's length chain; mixed-length pairs can
    m = models["reverse"]
    res = evaluate(m, "reverse", targets=[m.config.output], n_pairs=8, same_length=False)
    out = res.output()
    assert set(out.active_nodes) == {"L0.H0", "L0.MLP:length", "L1.MLP:opp_idx", "L2.H0"}
    assert all(out.scores["patching"].score[n] > 0 for n in out.active_nodes)
    assert out.edge["active"]["edge_patching"].auc == 1.0


def test_atp_star_recovers_saturated_attention(models):
    from rasp_compiler.interp.testbed import evaluate
    m = models["sort"]
    res = evaluate(m, "sort", targets=[m.config.output], n_pairs=8)
    out = res.output()
    mlp = "L1.MLP:sort_target_pos"  # feeds only the query/key side of the saturated last head
    patch = out.scores["patching"].score[mlp]
    assert patch > 0.1
    assert out.scores["atp"].score[mlp] < 1e-6 * patch  # softmax gradient ~exp(-50)
    assert out.scores["atp_qk"].score[mlp] == pytest.approx(patch, rel=1e-3)
    assert out.scores["atp_star"].score[mlp] > 0.5 * patch
    for view in ("active", "structural"):
        assert out.edge[view]["eap_star"].auc > out.edge[view]["eap"].auc
        assert out.node[view]["atp_star"].zero_positives < out.node[view]["atp"].zero_positives


def test_scoring_metrics():
    scores = {"a": 3.0, "b": 2.0, "c": 0.0, "d": 0.0, "e": 1.0}
    assert roc_auc(scores, {"a", "b"}, scores) == 1.0
    assert roc_auc(scores, {"c", "e"}, scores) == pytest.approx((0 + 0 + 0.5 + 0 + 0 + 1) / 6)
    assert math.isnan(roc_auc(scores, set(scores), scores))
    assert tpr_fpr_at_k(scores, {"a", "c"}, scores) == (0.5, 1 / 3)
    # ties at the cut are shared out in expectation
    tpr, fpr = tpr_fpr_at_k({"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}, {"a", "b"}, "abcd")
    assert tpr == pytest.approx(2 / 3) and fpr == pytest.approx(1 / 3)
    s = score_ranking({"a": 1e-9, "b": 1.0}, {"a"}, ["a", "b", "c"], gap=1.0)
    assert s.zero_positives == 1  # below the floor


def test_precision_recall_f1_and_pr_auc():
    scores = {"a": 3.0, "b": 2.0, "c": 0.0, "d": 0.0, "e": 1.0}
    # thresholds 3 (a: +1 of 2, precision 1), 2 (b: nothing gained), 1 (e: +1, precision 2/3)
    assert pr_auc(scores, {"a", "e"}, scores) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert pr_auc({"a": 1.0, "b": 1.0}, {"a"}, "ab") == pytest.approx(0.5)  # a tie enters together
    s = score_ranking(scores, {"a", "e"}, scores, gap=10.0)  # default cut: 10% of the gap = 1.0
    assert (s.reported, s.precision_t, s.recall_t, s.f1_t) == (3, pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
    assert s.precision == s.tpr == s.f1 == 0.5  # top-2 = {a, b}
    assert s.zero_negatives == 2
    own = score_ranking(scores, {"a", "e"}, scores, gap=10.0, threshold=2.5)  # a method's own cut
    assert (own.reported, own.precision_t, own.recall_t) == (1, 1.0, 0.5)
    nothing = score_ranking(scores, {"a", "e"}, scores, gap=100.0)
    assert nothing.reported == 0 and nothing.f1_t == 0.0
    assert faithfulness([3.0, 5.0], [4.0, 6.0], [0.0, 2.0]) == pytest.approx(0.75)


# --------------------------------------------------------------------------- rotation
@pytest.mark.parametrize("name", ["reverse", "frac_prevs", "sort"])
def test_rotation_preserves_outputs_exactly(models, name):
    m = models[name]
    r = rotate_residual(m, seed=7)
    assert not np.allclose(r.params["embed.W_E"], m.params["embed.W_E"])
    Q = r.rotation
    np.testing.assert_allclose(Q @ Q.T, np.eye(len(Q)), atol=1e-10)
    inputs = [[m.config.bos, *xs] for xs in exhaustive_inputs(m.config.vocab, 4)]
    assert r.apply_batch(inputs, backend="numpy") == m.apply_batch(inputs, backend="numpy")
    # the truth is read back through the rotation; feature directions are rows of the basis
    a, b = ground_truth(m), ground_truth(r)
    assert set(a.graph.edges) == set(b.graph.edges)
    assert all(a.graph.edges[e]["dims"] == b.graph.edges[e]["dims"] for e in a.graph.edges)
    f = b.features.by_label(m.labels.residual[3])
    np.testing.assert_allclose(f.direction, Q[3])
    # probing the rotated residual along a feature direction gives the feature's value
    toks = inputs[-1]
    resid = r.run_with_cache(toks).cache["blocks.0.hook_resid_pre"]
    orig = m.run_with_cache(toks).cache["blocks.0.hook_resid_pre"]
    np.testing.assert_allclose(resid @ b.features.directions(m.labels.residual).T, orig, atol=1e-5)


def test_rotation_twice_and_noise(models):
    m = models["reverse"]
    r2 = rotate_residual(rotate_residual(m, 1), 2)
    assert set(ground_truth(r2).graph.edges) == set(ground_truth(m).graph.edges)
    inputs = [[m.config.bos, *xs] for xs in exhaustive_inputs(m.config.vocab, 3)]
    assert r2.apply_batch(inputs, backend="numpy") == m.apply_batch(inputs, backend="numpy")
    noisy = rotate_residual(m, 1, noise=0.3)
    assert noisy.apply_batch(inputs, backend="numpy") != m.apply_batch(inputs, backend="numpy")
