"""A random change of basis of the residual stream: same function, no aligned features.

A compiled model's residual dimensions are its features, which makes some methods
(reading a neuron, a one-hot probe) look better than they would on a trained model.
:func:`rotate_residual` multiplies every residual-side weight by a random orthogonal Q
(Haar measure), so the residual stream becomes ``x' = x @ Q``:

* writers are right-multiplied: ``W_E Q``, ``W_pos Q``, ``W_O[h] Q``, ``W_out Q``, ``b_out Q``;
* readers are left-multiplied by Q^T: ``Q^T W_Q[h]``, ``Q^T W_K[h]``, ``Q^T W_V[h]``,
  ``Q^T W_in``, ``Q^T W_U``.

Every product a reader forms, ``x' Q^T W = x W``, is unchanged, so attention scores,
MLP pre-activations and logits are the same up to float32 rounding (the BOS gating
through the ``bos`` direction included: it is just another direction). Decoded outputs
are identical (the tests check every input of a few programs).

Labels: ``labels.residual[i]`` still names feature i, but feature i is no longer
dimension i: its direction is row i of ``model.residual_basis`` (``e_i^T Q``, i.e. the
column ``Q^T e_i``). A rotated model's ``residual_basis`` composes with an earlier one
(``B Q``). :mod:`rasp_compiler.interp.ground_truth` maps weights back through it, so the
true circuit of a rotated model is the original one; heads, neurons and the hidden MLP
basis are not rotated, so their labels carry over unchanged.

``noise > 0`` also adds independent Gaussian noise to every weight array, with standard
deviation ``noise`` x that array's root-mean-square entry (after rotation): a model that
computes nearly, not exactly, the program. Its accuracy is measured in
``benchmarks/interp_methods.py``. The ground truth of a noisy model is that of the model
before noise (pass ``tol`` above the noise to :func:`ground_truth` to read it off the
noisy weights).
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.ground_truth import residual_basis
from rasp_compiler.model.compiled import CompiledModel

_WRITERS = ("embed.W_E", "pos_embed.W_pos")
_READERS = ("unembed.W_U",)


def random_orthogonal(d: int, seed: int = 0) -> np.ndarray:
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))[None, :]


def rotate_params(params: dict[str, np.ndarray], Q: np.ndarray) -> dict[str, np.ndarray]:
    """The weights of the same model in the residual basis ``x' = x @ Q``."""
    Q = np.asarray(Q, np.float64)
    out = {}
    for name, w in params.items():
        w = np.asarray(w, np.float64)
        if name in _WRITERS or name.endswith(("attn.W_O", "mlp.W_out", "mlp.b_out")):
            w = w @ Q  # (..., d_model) on the right
        elif name in _READERS or name.endswith("mlp.W_in"):
            w = Q.T @ w  # (d_model, k)
        elif name.endswith(("attn.W_Q", "attn.W_K", "attn.W_V")):
            w = np.einsum("ed,hek->hdk", Q, w)  # Q^T W per head
        out[name] = w.astype(np.float32)
    return out


def add_noise(params: dict[str, np.ndarray], scale: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Each array plus Gaussian noise of std ``scale`` x the array's RMS entry."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, w in params.items():
        rms = float(np.sqrt(np.mean(np.square(w, dtype=np.float64)))) if w.size else 0.0
        out[name] = (w + rng.standard_normal(w.shape) * scale * rms).astype(np.float32)
    return out


def rotate_residual(model: CompiledModel, seed: int = 0, noise: float = 0.0, noise_seed: int | None = None
                    ) -> CompiledModel:
    """The same model in a random orthonormal residual basis (see the module docstring)."""
    d = model.config.d_model
    Q = random_orthogonal(d, seed)
    params = rotate_params(model.params, Q)
    if noise:
        params = add_noise(params, noise, seed if noise_seed is None else noise_seed)
    new = CompiledModel(model.config, params, model.labels, compilation=model.compilation, source=model.source)
    new.residual_basis = residual_basis(model) @ Q
    new.rotation = Q
    new.noise = float(noise)
    return new
