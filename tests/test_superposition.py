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
