"""Is the truth the SAE objective's optimum? Dictionaries built from the truth, under the SAE's loss.

If a dictionary made of the true features reconstructs the activations exactly yet has a
*higher* SAE loss (reconstruction + lambda * sparsity) than the SAE that training found,
then no amount of training will find the truth: the objective prefers something else,
and a low recovery score is a statement about the truth definition (or the objective),
not a training failure. If the truth's loss is *lower*, training missed a better optimum.

Two truth dictionaries, both exact (they reconstruct ``W h`` up to the compiled model's
~1e-6 attention leakage) and both in the setting's basis:

* :func:`onehot_dictionary`: one latent per labelled feature dimension (``W e_i``),
  code = the dimension's value, decoder bias = the constant ``one`` direction. This is
  the truth the single-direction scores use.
* :func:`group_dictionary`: per feature group (:mod:`.truth`: independent groups with
  their derived dimensions, interaction groups), the group's most frequent state is
  folded into the decoder bias and every other state is one latent along its
  difference from it (``tokens:a + map:f(a) - (tokens:c + map:f(c))``); numerical
  dimensions stay one latent each. The sparsest exact dictionary that keeps every
  group's values apart.

:func:`truth_objective` evaluates either under an SAE kind's loss in the SAE's own
normalised units; :func:`sae_objective` evaluates the trained SAE on the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rasp_compiler.interp.superposition.truth import FeatureTruth, group_values


@dataclass(frozen=True)
class TruthDictionary:
    name: str
    decoder: np.ndarray  # (m, d') unit rows
    codes: np.ndarray  # (n, m) non-negative magnitudes along the rows, original units
    b_dec: np.ndarray  # (d',)

    def reconstruct(self) -> np.ndarray:
        return self.codes @ self.decoder + self.b_dec


def _signed_latents(direction: np.ndarray, values: np.ndarray) -> tuple[list, list]:
    """A dimension as one latent (or two, +/- direction, when its values change sign). Values below
    1e-3 of the largest are the compiled attention's leakage (~1e-6), not activity: set to 0."""
    norm = float(np.linalg.norm(direction))
    values = np.where(np.abs(values) > 1e-3 * np.abs(values).max(initial=0.0), values, 0.0)
    rows, codes = [], []
    for sign in (1.0, -1.0):
        part = np.maximum(sign * values, 0.0)
        if part.any() and norm > 1e-12:
            rows.append(sign * direction / norm)
            codes.append(part * norm)
    return rows, codes


def onehot_dictionary(W: np.ndarray, h: np.ndarray, features: Sequence[int], one: int) -> TruthDictionary:
    """One latent per feature dimension ``W e_i`` (code: its value), bias ``W e_one``."""
    W = np.asarray(W, np.float64)
    rows, codes = [], []
    for i in features:
        r, c = _signed_latents(W[:, i], np.asarray(h[:, i], np.float64))
        rows += r
        codes += c
    return TruthDictionary("one-hot", np.array(rows).reshape(-1, W.shape[0]),
                           np.stack(codes, 1) if codes else np.zeros((len(h), 0)), W[:, one].copy())


def group_dictionary(W: np.ndarray, h: np.ndarray, truth: FeatureTruth, one: int) -> TruthDictionary:
    """Per group: most frequent state in the bias, one latent per other state (see module doc)."""
    W = np.asarray(W, np.float64)
    h = np.asarray(h, np.float64)
    b_dec = W[:, one].copy()
    rows, codes = [], []
    merged = {m for g in truth.groups for m in g.merged}
    for g in truth.groups:
        if g.name in merged or g.role == "constant":
            continue
        dims = list(g.dims)
        if g.numerical:
            for i in dims:
                r, c = _signed_latents(W[:, i], h[:, i])
                rows += r
                codes += c
            continue
        state = group_values(g, h)
        states, counts = np.unique(state, return_counts=True)
        means = {s: h[state == s][:, dims].mean(0) for s in states}
        base = states[np.argmax(counts)]
        b_dec += W[:, dims] @ means[base]
        for s in states:
            if s == base:
                continue
            vec = W[:, dims] @ (means[s] - means[base])
            norm = float(np.linalg.norm(vec))
            if norm > 1e-12:
                rows.append(vec / norm)
                codes.append((state == s) * norm)
    return TruthDictionary("groups", np.array(rows).reshape(-1, W.shape[0]),
                           np.stack(codes, 1) if codes else np.zeros((len(h), 0)), b_dec)


def truth_objective(dictionary: TruthDictionary, acts: np.ndarray, kind: str, lam: float,
                    scale: float) -> dict[str, float]:
    """The loss an SAE of ``kind`` with coefficient ``lam`` would have with this dictionary and
    these exact codes, in units where activations are multiplied by ``scale`` (the SAE's).

    relu: L1 of the codes (unit rows); gated: the same (gate = magnitude) and its auxiliary
    reconstruction equals the main one; jumprelu: L0."""
    x = np.asarray(acts, np.float64) * scale
    codes = dictionary.codes * scale
    recon_x = codes @ dictionary.decoder + dictionary.b_dec * scale
    recon = float(((x - recon_x) ** 2).sum(-1).mean())
    l0 = float((codes > 0).sum(-1).mean())
    sparsity = l0 if kind == "jumprelu" else float(codes.sum(-1).mean())
    aux = recon if kind == "gated" else 0.0
    return {"total": recon + lam * sparsity + aux, "recon": recon, "sparsity": sparsity, "l0": l0,
            "n_latents": int(dictionary.decoder.shape[0])}


def best_codes_objective(dictionary: TruthDictionary, acts: np.ndarray, kind: str, lam: float, scale: float,
                         iters: int = 400) -> dict[str, float]:
    """The lowest loss any encoder could reach with this decoder and bias: the truth's codes are
    exact, but an L1 penalty is lower for codes shrunk towards 0 (paying a little reconstruction),
    which a trained SAE exploits and exact codes do not.

    relu: ``min_{c >= 0} ||x - c D - b||^2 + lam * sum c`` per token (a non-negative lasso,
    convex; solved by FISTA from the exact codes). gated: the magnitude path keeps the exact
    codes (no reconstruction error) and the gate path solves the same lasso (its penalty and
    its auxiliary reconstruction), so the value is the same. jumprelu: exact codes (L0 does
    not shrink), as :func:`truth_objective`."""
    if kind == "jumprelu":
        return truth_objective(dictionary, acts, kind, lam, scale)
    x = np.asarray(acts, np.float64) * scale - dictionary.b_dec * scale
    D = dictionary.decoder
    c = dictionary.codes * scale
    L = 2.0 * max(np.linalg.norm(D @ D.T, 2), 1e-12)
    y, t = c.copy(), 1.0
    for _ in range(iters):
        grad = -2.0 * (x - y @ D) @ D.T + lam
        c_new = np.maximum(y - grad / L, 0.0)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = c_new + ((t - 1) / t_new) * (c_new - c)
        c, t = c_new, t_new
    recon = float(((x - c @ D) ** 2).sum(-1).mean())
    sparsity = float(c.sum(-1).mean())
    total = recon + lam * sparsity
    return {"total": total, "recon": 0.0 if kind == "gated" else recon, "sparsity": sparsity,
            "l0": float((c > 0).sum(-1).mean()), "n_latents": int(D.shape[0])}


def sae_objective(sae, acts: np.ndarray) -> dict[str, float]:
    """The trained SAE's own loss (:func:`.sae.make_sae_loss`) on ``acts``, in its normalised units."""
    import jax.numpy as jnp

    from rasp_compiler.interp.superposition.sae import make_sae_loss

    loss = make_sae_loss(sae.config)
    params = {k: jnp.asarray(v) for k, v in sae.params.items()}
    total, (recon, sparsity, l0) = loss(params, jnp.asarray(np.asarray(acts, np.float32) * sae.scale),
                                        float(sae.config.lam))
    return {"total": float(total), "recon": float(recon), "sparsity": float(sparsity), "l0": float(l0),
            "n_latents": sae.n_latents}
