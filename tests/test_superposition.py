"""Compressed residual streams and sparse autoencoders on compiled models (quick settings)."""

from __future__ import annotations

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model
from rasp_compiler.interp import superposition as sp
from rasp_compiler.lib import LIBRARY


@pytest.fixture(scope="module")
def frac():
    entry = LIBRARY["frac_prevs"]
    program = entry.build()
    model = compile_rasp_to_model(program, set(entry.vocab), entry.max_seq_len)
    return model, program, sp.random_data(model, program, 256, seed=0), sp.eval_data(model, program)


def _sparse_data(seed=0, n=4000, d=8, k=10, p=0.15):
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((k, d))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    codes = (rng.random((n, k)) < p) * rng.uniform(0.5, 1.5, (n, k))
    return (codes @ feats).astype(np.float32), feats


# ----------------------------------------------------------------------------- data and settings
def test_eval_data_is_every_input_and_model_is_exact(frac):
    model, program, _, test = frac
    assert len(test) == sum(3 ** n for n in range(1, 6))
    assert sp.accuracy(model, test) == 1.0


def test_rotation_is_an_exact_change_of_basis(frac):
    model, program, _, test = frac
    rot = sp.rotated_setting(model, seed=3)
    assert np.allclose(rot.W @ rot.W.T, np.eye(model.config.d_model), atol=1e-5)
    assert sp.accuracy(rot.model, test) == 1.0
    # the rotated stream is Q h, and feature i is Q e_i
    site = sp.residual_sites(model)[-1]
    h = sp.site_activations(model, test, site)
    assert np.allclose(sp.site_activations(rot.model, test, site), h @ rot.W.T, atol=1e-4)


def test_compress_params_with_a_selection_matrix_drops_dimensions(frac):
    model, program, _, test = frac
    labels = model.labels.residual
    keep = [i for i, name in enumerate(labels) if name not in ("tokens:y", "tokens:z")]  # never read
    W = np.eye(model.config.d_model, dtype=np.float32)[keep]
    compressed = sp.compressed_model(model, W)
    assert compressed.config.d_model == len(keep)
    assert sp.accuracy(compressed, test) == 1.0
    assert compressed.apply(["BOS", "x", "y", "x"]).decoded == model.apply(["BOS", "x", "y", "x"]).decoded
    assert sp.read_basis(model.params).shape[1] == len(keep)


def test_compression_at_full_width_stays_exact_and_is_seeded(frac):
    model, program, train, test = frac
    D = model.config.d_model
    kw = dict(steps=6, batch_size=16, lr=(1e-3,), checkpoints=1, n_select=64, train_data=train, eval_data=test)
    a = sp.train_compressions(model, program, [D, D - 2], **kw)
    b = sp.train_compressions(model, program, [D, D - 2], **kw)
    full = a[0]
    assert full.exact and full.model.config.d_model == D
    assert np.allclose(full.W @ full.W.T, np.eye(D), atol=1e-3)  # still (close to) orthogonal
    assert full.feature_direction("frac_prevs").shape == (D,)
    assert a[1].exact  # D - 2: dropping the two unread token dimensions is exact
    for r, s in zip(a, b):
        assert np.array_equal(r.W, s.W) and r.losses == s.losses
    assert len(full.losses) == 6 and all(np.isfinite(full.losses))


def test_compression_loss_is_zero_for_identity_and_positive_when_compressed(frac):
    import jax.numpy as jnp

    from rasp_compiler.interp.superposition.compress import _residuals, _targets, make_loss

    model, program, train, _ = frac
    import jax

    loss = jax.jit(make_loss(model, sp.CompressionConfig(d_compressed=model.config.d_model)))
    targets, mask = _targets(model, train)
    args = (train.ids, targets, mask, _residuals(model, train), train.token_mask, 1.0)
    total, (out, rec) = loss(jnp.eye(model.config.d_model), *args)
    assert float(rec) == 0.0 and float(out) < 1e-6
    total, (out, rec) = loss(jnp.asarray(sp.random_orthogonal(4, model.config.d_model, 0)), *args)
    assert float(rec) > 0.1 and float(out) > 1e-3


# ----------------------------------------------------------------------------- SAEs
@pytest.mark.parametrize("kind", sp.SAE_KINDS)
def test_sae_training_decreases_loss(kind):
    x, _ = _sparse_data()
    sae = sp.train_sae(x, sp.SAEConfig(kind=kind, n_latents=16, steps=150, sparsity=0.1, sparsity_warmup=0.0))
    assert np.mean(sae.losses[-20:]) < 0.5 * np.mean(sae.losses[:5])
    assert np.allclose(np.linalg.norm(sae.decoder, axis=1), 1.0, atol=1e-4)
    recon = sae.reconstruct(x)
    assert recon.shape == x.shape
    assert ((recon - x) ** 2).sum(1).mean() < 0.5 * ((x - x.mean(0)) ** 2).sum(1).mean()


def test_sae_training_is_seeded():
    x, _ = _sparse_data()
    cfg = sp.SAEConfig(kind="jumprelu", n_latents=16, steps=50)  # same shapes as above: no new compile
    a, b = sp.train_sae(x, cfg), sp.train_sae(x, cfg)
    c = sp.train_sae(x, cfg, seed=1)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params) and a.losses == b.losses
    assert not np.array_equal(a.params["W_dec"], c.params["W_dec"])


def test_sweep_over_sparsity_trains_independent_saes():
    x, _ = _sparse_data()
    cfg = sp.SAEConfig(kind="relu", n_latents=16, steps=150)
    low, high = sp.train_saes(x, cfg, [0.01, 3.0])
    alone = sp.train_saes(x, cfg, [0.01])[0]
    assert np.allclose(low.params["W_dec"], alone.params["W_dec"], atol=1e-5)
    assert (high.encode(x) > 0).sum(1).mean() < (low.encode(x) > 0).sum(1).mean()


def test_jumprelu_threshold_pseudo_derivative():
    import jax
    import jax.numpy as jnp

    from rasp_compiler.interp.superposition.sae import _jump_fns

    jumprelu, step = _jump_fns(0.5)
    z = jnp.asarray([[0.1, 0.9, 2.0], [0.8, 0.2, 1.6]])
    theta = jnp.asarray([1.0, 1.0, 1.0])
    # H(z - theta): d/dtheta = -(1/eps) * #{|z - theta| < eps/2}; nothing flows to z
    g_theta = jax.grad(lambda t: step(z, t).sum())(theta)
    assert np.allclose(g_theta, [-2.0, -2.0, 0.0])
    assert np.allclose(jax.grad(lambda zz: step(zz, theta).sum())(z), 0.0)
    # JumpReLU: d/dtheta = -(theta/eps) K(...); d/dz = 1[z > theta]
    assert np.allclose(jax.grad(lambda t: jumprelu(z, t).sum())(theta), [-2.0, -2.0, 0.0])
    assert np.allclose(jax.grad(lambda zz: jumprelu(zz, theta).sum())(z), [[0, 0, 1], [0, 0, 1]])


def test_gated_sae_shares_gate_and_magnitude_weights():
    x, _ = _sparse_data(n=64)
    sae = sp.SAE.from_decoder(np.eye(8), kind="gated")
    f = sae.encode(np.abs(x))
    assert np.allclose(f, np.abs(x), atol=1e-6)  # W_mag = exp(0) * W_gate = I
    sae.params["r_mag"] = np.full(8, np.log(2.0), np.float32)
    assert np.allclose(sae.encode(np.abs(x)), 2 * np.abs(x), atol=1e-5)


# ----------------------------------------------------------------------------- scores
def test_scores_on_a_hand_made_dictionary(frac):
    model, program, _, test = frac
    setting = sp.plain_setting(model)
    site = sp.residual_sites(model)[-1]
    features = sp.site_features(model, test, site)
    labels = model.labels.residual
    assert "one" not in [labels[i] for i in features] and "bos" not in [labels[i] for i in features]
    assert "frac_prevs" in [labels[i] for i in features]
    # decoder = the true features plus the constant direction: a perfect, lossless dictionary
    one = labels.index("one")
    sae = sp.SAE.from_decoder(np.eye(model.config.d_model)[features + [one]])
    s = sp.score_sae(sae, setting, site, test, features)
    assert s.mean_max_cos == pytest.approx(1.0) and s.recovered == 1.0
    assert s.mean_max_corr == pytest.approx(1.0) and s.recovered_corr == 1.0
    assert s.nmse == pytest.approx(0.0, abs=1e-10) and s.spliced_accuracy == 1.0 == s.baseline_accuracy
    on = sp.site_activations(model, test, site)[:, features + [one]] > 0  # latent j is feature j
    assert s.dense == pytest.approx((on.mean(0) > 0.5).mean()) and s.dense >= 1 / (len(features) + 1)  # 'one'
    assert s.dead == 0.0
    assert s.l0 == pytest.approx(on.sum(1).mean())
    # a rotated model with the rotated dictionary scores the same
    rot = sp.rotated_setting(model, seed=1)
    s_rot = sp.score_sae(sp.SAE.from_decoder(rot.W[:, features + [one]].T), rot, site, test, features)
    assert s_rot.recovered == 1.0 and s_rot.spliced_accuracy == 1.0
    # a dictionary of random directions recovers nothing and breaks the model when spliced in
    rand = sp.SAE.from_decoder(np.random.default_rng(0).standard_normal((len(features), model.config.d_model)))
    s_bad = sp.score_sae(rand, setting, site, test, features)
    assert s_bad.recovered == 0.0 and s_bad.spliced_accuracy < 0.5


def test_cosine_and_correlation_helpers():
    feats = np.eye(4)[:3]
    dec = np.stack([feats[0], (feats[1] + feats[2]) / np.sqrt(2), -feats[2]])
    assert np.allclose(sp.max_cosines(dec, feats), [1.0, 1 / np.sqrt(2), 1 / np.sqrt(2)])
    assert sp.feature_recovery(dec, feats) == pytest.approx((np.mean([1, 2 ** -0.5, 2 ** -0.5]), 1 / 3))
    values = np.asarray([[1, 0], [0, 1], [1, 0], [0, 1]], float)
    latents = np.asarray([[3, 0, 1], [0, 2, 1], [3, 0, 1], [0, 2, 1]], float)  # last latent is constant
    assert np.allclose(sp.max_correlations(latents, values), [1.0, 1.0])


def test_sae_experiment_end_to_end(frac):
    model, program, train, test = frac
    site = sp.residual_sites(model)[-1]
    out = sp.sae_experiment(sp.rotated_setting(model), site, train, test,
                            sp.SAEConfig(kind="relu", n_latents=11, steps=100), [0.1, 1.0])
    assert len(out) == 2
    for sae, s in out:
        assert s.setting == "rotated" and s.kind == "relu" and s.n_latents == 11 and s.n_features == 9
        assert 0.0 <= s.recovered <= 1.0 and 0.0 <= s.spliced_accuracy <= 1.0 and s.baseline_accuracy == 1.0
        assert set(s.row()) >= {"mean_max_cos", "dead", "dense", "nmse", "l0", "spliced_accuracy"}


# ----------------------------------------------------------------------------- feature groups (truth.py, groups.py)
def _compile(program, vocab, max_seq_len):
    model = compile_rasp_to_model(program, set(vocab), max_seq_len)
    return model, program, sp.eval_data(model, program)


def test_feature_truth_roles_follow_the_program_graph():
    from rasp_compiler import rasp

    tok_map = rasp.categorical(rasp.Map(lambda t: t == "a", rasp.tokens)).named("is_a")  # tokens only: derived
    both = rasp.categorical(rasp.SequenceMap(lambda t, i: f"{t}{i % 2}", rasp.tokens, rasp.indices)).named("tok_par")
    prev = rasp.categorical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q - 1),
                                           both)).named("prev")  # reads another position: independent
    out = rasp.categorical(rasp.SequenceMap(lambda a, p: f"{a}{p}", tok_map, prev)).named("out")
    model, program, test = _compile(out, "ab", 4)
    site = sp.residual_sites(model)[-1]
    truth = sp.feature_truth(model, sp.site_features(model, test, site))
    g = {x.name: x for x in truth.groups}
    assert {n: g[n].role for n in g} == {"tokens": "independent", "indices": "independent", "is_a": "derived",
                                         "tok_par": "interaction", "prev": "independent", "out": "interaction"}
    assert g["out"].sources == ("prev", "tokens") and g["tok_par"].sources == ("indices", "tokens")
    # a Map of tokens moves with tokens: its dimensions are in the tokens group's span
    labels = model.labels.residual
    assert g["tokens"].merged == ("is_a",)
    assert {labels[i].split(":")[0] for i in g["tokens"].dims} == {"tokens", "is_a"}
    # the graph rule holds on every input: each derived value is a function of its sources'
    h = sp.site_activations(model, test, site)
    assert sp.functional_violations(truth, h) == {"is_a": 0, "tok_par": 0, "out": 0}
    # ...and the check can fail: scramble `out` across tokens and it is no longer a function of its sources
    h2 = h.copy()
    cols = [labels.index(f"out:{v}") for v in g["out"].values]
    h2[:, cols] = h[np.random.default_rng(0).permutation(len(h))][:, cols]
    assert sp.functional_violations(truth, h2)["out"] > 0


def test_group_scores_of_hand_made_dictionaries(frac):
    model, program, _, test = frac
    site = sp.residual_sites(model)[-1]
    features = sp.site_features(model, test, site)
    truth = sp.feature_truth(model, features)
    assert [(x.name, x.role) for x in truth.groups] == [("tokens", "independent"), ("indices", "independent"),
                                                         ("frac_prevs", "independent")]
    h = sp.site_activations(model, test, site)
    labels = model.labels.residual
    D = model.config.d_model
    eye = np.eye(D)
    one = labels.index("one")
    # the one-hot basis itself: every value and the number recovered, every group subspace captured
    exact = sp.score_groups(eye[features + [one]], sp.SAE.from_decoder(eye[features + [one]]).encode(h),
                            eye, h, truth)
    assert exact.summary() == {"units_recovered": 1.0, "group_capture": pytest.approx(1.0), "groups_captured": 1.0}
    # an always-on group folded into a bias: latents tokens:x - tokens:z (etc.) still lie in the tokens span
    # and fire for one value each, so every value but the folded one is recovered and the subspace captured
    tx, ty, tz = (labels.index(f"tokens:{t}") for t in "xyz")
    folded = np.stack([eye[tx] - eye[tz], eye[ty] - eye[tz]])
    codes = np.stack([h[:, tx], h[:, ty]], 1)
    s = sp.score_groups(folded, codes, eye, h, truth)
    per_unit = {u.label: u.recovered for u in s.units}
    assert per_unit["tokens:x"] and per_unit["tokens:y"] and not per_unit["tokens:z"]
    assert {x.name: x.capture for x in s.groups}["tokens"] == pytest.approx(1.0)
    # combination latents (tokens:x + indices:0) lie in no group's span: nothing recovered, nothing captured
    i0 = labels.index("indices:0")
    combo = sp.score_groups((eye[tx] + eye[i0])[None], (h[:, tx] * h[:, i0])[:, None], eye, h, truth)
    assert combo.summary()["units_recovered"] == 0.0 and combo.summary()["group_capture"] == 0.0
    # a latent in the right span that fires for the wrong value is not a recovery
    wrong = sp.score_groups(eye[tx][None], h[:, [ty]], eye, h, truth)
    assert not {u.label: u.recovered for u in wrong.units}["tokens:x"]
    # the scores are basis-free: rotate the residual and the dictionary together, nothing changes
    rot = sp.rotated_setting(model, seed=2)
    rotated = sp.score_groups(folded @ rot.W.T, codes, rot.W, h, truth)
    assert rotated.summary() == pytest.approx(s.summary(), nan_ok=True)


PLANTED_SPARSITY = {"relu": 1.0, "gated": 4.0, "jumprelu": 1.0}


@pytest.mark.parametrize("kind", sp.SAE_KINDS)
def test_every_sae_kind_recovers_planted_independent_features(kind):
    """12 independent sparse features with known (non-orthogonal) directions in 16 dimensions:
    a working SAE of every kind must find them, by direction and by unit (span + activation)."""
    x, W, codes = sp.planted_features(4000, d=16, k=12, p=0.1, seed=1)
    truth = sp.planted_truth(12)
    sae = sp.train_sae(x, sp.SAEConfig(kind=kind, n_latents=24, steps=1000, sparsity=PLANTED_SPARSITY[kind]))
    cos = sp.max_cosines(sae.decoder, W.T)
    scores = sp.score_groups(sae.decoder, sae.encode(x), W, codes, truth).summary()
    assert cos.mean() >= 0.95 and scores["units_recovered"] >= 0.9 and scores["group_capture"] >= 0.9, (cos, scores)
    # the same scores on a random dictionary of the same size are near zero
    rand = sp.SAE.from_decoder(np.random.default_rng(0).standard_normal((24, 16)))
    chance = sp.score_groups(rand.decoder, rand.encode(x), W, codes, truth).summary()
    assert chance["units_recovered"] <= 0.2 and sp.max_cosines(rand.decoder, W.T).mean() < 0.8


# ----------------------------------------------------------------------------- truth dictionaries under the SAE loss
def test_truth_dictionaries_are_exact_and_priced_by_the_sae_loss(frac):
    from rasp_compiler.interp.superposition import truth_loss

    model, program, train, test = frac
    site = sp.residual_sites(model)[-1]
    features = sp.site_features(model, test, site)
    truth = sp.feature_truth(model, features)
    h = sp.site_activations(model, test, site)
    one = model.labels.residual.index("one")
    rot = sp.rotated_setting(model, seed=0)
    acts = sp.site_activations(rot.model, test, site)
    onehot = truth_loss.onehot_dictionary(rot.W, h, features, one)
    grouped = truth_loss.group_dictionary(rot.W, h, truth, one)
    for dic in (onehot, grouped):  # both reconstruct the rotated residual exactly (up to attention leakage)
        assert np.abs(dic.reconstruct() - acts).max() < 1e-3
        assert np.allclose(np.linalg.norm(dic.decoder, axis=1), 1.0) and (dic.codes >= 0).all()
    # one-hot: L0 = number of non-zero feature dimensions per token; groups: tokens and indices (always on)
    # fold their most frequent value into the bias, so fewer latents fire
    lo = truth_loss.truth_objective(onehot, acts, "jumprelu", 0.5, 1.0)
    lg = truth_loss.truth_objective(grouped, acts, "jumprelu", 0.5, 1.0)
    assert lo["l0"] == pytest.approx((np.abs(h[:, features]) > 1e-3).sum(1).mean())
    assert lg["l0"] < lo["l0"] and lo["total"] == pytest.approx(0.5 * lo["l0"], abs=1e-6)
    # the trained SAE's objective is its own loss on the tokens
    sae = sp.train_sae(acts, sp.SAEConfig(kind="relu", n_latents=11, steps=100))
    own = truth_loss.sae_objective(sae, acts)
    assert own["total"] == pytest.approx(own["recon"] + sae.sparsity * own["sparsity"], rel=1e-5)
    assert own["recon"] * len(acts) == pytest.approx(
        ((acts * sae.scale - sae.reconstruct(acts) * sae.scale) ** 2).sum(), rel=1e-3)


# ----------------------------------------------------------------------------- SAE-Lens adapter
def test_saelens_sae_scores_like_ours(frac):
    """A real SAE-Lens StandardSAE carrying one of our trained ReLU SAEs' weights (scale folded in)
    gets the same scores through the adapter as our SAE (skipped without the `sae` extra)."""
    torch = pytest.importorskip("torch")
    sae_lens = pytest.importorskip("sae_lens")
    from rasp_compiler.interp.superposition.saelens import SAELensDictionary

    model, program, train, test = frac
    site = sp.residual_sites(model)[-1]
    rot = sp.rotated_setting(model, seed=0)
    acts = sp.site_activations(rot.model, train, site)
    ours = sp.train_sae(acts, sp.SAEConfig(kind="relu", n_latents=11, steps=100))
    D, m, s = model.config.d_model, ours.n_latents, ours.scale
    cfg = sae_lens.StandardSAEConfig(d_in=D, d_sae=m, apply_b_dec_to_input=True, dtype="float32", device="cpu")
    theirs = sae_lens.StandardSAE(cfg)
    p = ours.params
    with torch.no_grad():  # ours: f = relu((s x - b_dec) W_enc + b_enc), x_hat = (f W_dec + b_dec) / s
        theirs.W_enc.copy_(torch.tensor(s * p["W_enc"]))
        theirs.b_enc.copy_(torch.tensor(p["b_enc"]))
        theirs.W_dec.copy_(torch.tensor(p["W_dec"] / s))
        theirs.b_dec.copy_(torch.tensor(p["b_dec"] / s))
    wrapped = SAELensDictionary(theirs, sparsity=ours.sparsity)
    assert wrapped.kind == "sae-lens standard" and wrapped.n_latents == m
    assert np.allclose(wrapped.encode(acts), ours.encode(acts), atol=1e-4)
    a, b = sp.score_sae(ours, rot, site, test), sp.score_sae(wrapped, rot, site, test)
    for key in ("mean_max_cos", "units_recovered", "group_capture", "nmse", "l0", "spliced_accuracy"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-3), key
