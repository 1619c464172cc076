"""Score an SAE against feature groups and their subspaces (see :mod:`.truth`).

Two levels, both for the groups of a :class:`~.truth.FeatureTruth` in a setting whose
residual stream is ``W h`` (``h`` in the original, labelled basis):

* **unit recovery** (one per categorical value, one per numerical feature): some latent
  whose decoder direction lies in the group's span (its projection onto
  ``span(W e_i, i in group)`` keeps at least 0.9 of its norm) *and* whose activation
  follows the unit: for a value, the F1 of "latent active" against "SOp has this value"
  over the tokens; for a number, the Pearson correlation of the activation with it.
  A latent ``tokens:a - tokens:c`` (with ``tokens:c`` folded into the decoder bias) is
  thus a recovery of ``tokens:a``; a latent ``tokens:a + indices:0`` (a combination) is not.
* **group capture**: how much of the group's *varying subspace* (the span of its
  centred activations, mapped by ``W``: rank k-1 for an always-defined k-valued SOp)
  lies in the span of the latents assigned to the group (those in its span):
  ``||P_latents U||_F^2 / rank``. 1 means the group's subspace is fully represented by
  latents that belong to it, however they split it into directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp_compiler.interp.superposition.truth import FeatureGroup, FeatureTruth, group_values

RECOVERY_THRESHOLD = 0.9
SPAN_THRESHOLD = 0.9
FIRE_TOL = 1e-3  # a latent "fires" above this fraction of its largest activation (compiled attention leaks ~1e-6)


@dataclass(frozen=True)
class UnitScore:
    label: str  # "tokens:a" or a numerical node's name
    group: str
    role: str
    best: float  # best F1 (value) or correlation (number) over the latents in the group's span; 0 if none
    recovered: bool


@dataclass(frozen=True)
class GroupScore:
    name: str
    role: str
    rank: int  # dimension of the group's varying subspace
    capture: float  # fraction of that subspace inside the span of the group's latents
    n_latents: int  # latents whose direction lies in the group's span


@dataclass(frozen=True)
class GroupScores:
    units: tuple[UnitScore, ...]
    groups: tuple[GroupScore, ...]

    def summary(self, role: str = "independent") -> dict[str, float]:
        """Fraction of units recovered, mean capture and fraction of groups captured (>= 0.9)."""
        u = [s for s in self.units if s.role == role]
        g = [s for s in self.groups if s.role == role and s.rank > 0]
        nan = float("nan")
        return {"units_recovered": float(np.mean([s.recovered for s in u])) if u else nan,
                "group_capture": float(np.mean([s.capture for s in g])) if g else nan,
                "groups_captured": float(np.mean([s.capture >= RECOVERY_THRESHOLD for s in g])) if g else nan}


def orthonormal(M: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """(d, r) orthonormal basis of the column span of ``M`` (numerical rank r)."""
    M = np.asarray(M, np.float64)
    if M.size == 0:
        return np.zeros((M.shape[0], 0))
    U, S, _ = np.linalg.svd(M, full_matrices=False)
    return U[:, S > tol * max(S.max(initial=0.0), 1e-30)]


def span_fraction(decoder: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """For each decoder row: ||P row|| / ||row|| with P the projection onto ``basis``'s columns."""
    dec = np.asarray(decoder, np.float64)
    norms = np.maximum(np.linalg.norm(dec, axis=1), 1e-12)
    return np.linalg.norm(dec @ basis, axis=1) / norms


def f1_scores(active: np.ndarray, indicator: np.ndarray) -> np.ndarray:
    """F1 of each latent's firing (columns of ``active``) against a boolean ``indicator``."""
    active = np.asarray(active, bool)
    tp = (active & indicator[:, None]).sum(0).astype(np.float64)
    denom = active.sum(0) + indicator.sum()
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def correlations(latents: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Pearson correlation of each latent's activation with ``value`` (0 where either is constant)."""
    a = np.asarray(latents, np.float64)
    a = a - a.mean(0)
    v = np.asarray(value, np.float64) - np.mean(value)
    denom = np.linalg.norm(a, axis=0) * np.linalg.norm(v)
    return np.where(denom > 1e-12, (v @ a) / np.maximum(denom, 1e-300), 0.0)


def varying_subspace(group: FeatureGroup, W: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(d', r) orthonormal basis of ``W`` times the span of the group's centred activations."""
    dims = list(group.dims)
    x = np.asarray(h[:, dims], np.float64)
    x = x - x.mean(0)
    _, S, Vt = np.linalg.svd(x, full_matrices=False)
    V = Vt[S > 1e-6 * max(S.max(initial=0.0), 1e-30)].T  # (|dims|, r)
    return orthonormal(np.asarray(W, np.float64)[:, dims] @ V)


def score_groups(decoder: np.ndarray, latents: np.ndarray, W: np.ndarray, h: np.ndarray,
                 truth: FeatureTruth, span_threshold: float = SPAN_THRESHOLD,
                 threshold: float = RECOVERY_THRESHOLD) -> GroupScores:
    """Unit and group scores of a dictionary (``decoder`` rows, ``latents`` (n, m) activations
    on the same tokens as ``h`` (n, D), the original-basis residual) in the basis ``W h``."""
    decoder = np.asarray(decoder, np.float64)
    latents = np.asarray(latents, np.float64)
    active = latents > FIRE_TOL * np.maximum(latents.max(0, initial=0.0), 1e-30)
    units, groups = [], []
    for g in truth.groups:
        if g.role == "constant":
            continue
        inside = span_fraction(decoder, orthonormal(np.asarray(W, np.float64)[:, list(g.dims)])) >= span_threshold
        values = group_values(g, h)
        for k, (label, _) in enumerate(g.units()):
            if not inside.any():
                best = 0.0
            elif g.numerical:
                best = float(correlations(latents[:, inside], values).max())
            else:
                best = float(f1_scores(active[:, inside], values == k).max())
            units.append(UnitScore(label, g.name, g.role, best, best >= threshold))
        U = varying_subspace(g, W, h)
        L = orthonormal(decoder[inside].T) if inside.any() else np.zeros((decoder.shape[1], 0))
        capture = float(np.linalg.norm(L.T @ U) ** 2 / U.shape[1]) if U.shape[1] else float("nan")
        groups.append(GroupScore(g.name, g.role, int(U.shape[1]), capture, int(inside.sum())))
    return GroupScores(tuple(units), tuple(groups))
