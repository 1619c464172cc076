"""Score sparse autoencoders against a compiled model's known features.

Three *settings* give the residual stream in a basis where the true features are known
but not axis-aligned (except in the first):

* ``plain``: the compiled model itself; feature i is ``e_i`` (a sanity baseline);
* ``rotated``: the residual stream multiplied by a random orthogonal ``Q`` (folded into
  the weights, so the model is still exact); feature i is ``Q e_i``;
* ``compressed``: a model compressed to d' < d_model dimensions
  (:mod:`~rasp_compiler.interp.superposition.compress`); feature i is ``W e_i``, and
  features now share dimensions.

Each is a :class:`Setting`: a runnable model whose residual stream is ``W h`` for the
original stream ``h``, and the matrix ``W`` (``I``, ``Q`` or the trained compression).
A *site* is a hook name (``blocks.{l}.hook_resid_pre`` or the final
``blocks.{L-1}.hook_resid_post``). The features scored at a site are the labelled
dimensions other than ``one`` and ``bos`` that are non-zero somewhere at that site
(a value computed in a later layer is not yet in the stream).

Scores (:class:`SAEScores`), against two truths:

* single one-hot directions: mean over labelled features of the best cosine with any
  decoder row, the fraction with best cosine >= 0.9, and the same for activations (best
  Pearson correlation of a latent's activation with the feature's value);
* feature groups (:mod:`.truth`, :mod:`.groups`): the fraction of the independent
  groups' units (values, numbers) recovered by a latent that lies in the group's span
  and fires for the unit, the mean fraction of each independent group's varying subspace
  spanned by its latents, and the unit recovery of interaction groups, reported apart.

Plus dead latents (never active on the evaluation tokens), dense latents (active on
more than half of them), reconstruction MSE over the activations' total variance, mean
L0, and the model's exact-match accuracy with the SAE's reconstruction spliced into the
residual stream at the site (at every position but BOS, which the SAE is not trained on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from rasp_compiler.interp.superposition.compress import CompressionResult, compressed_model, random_orthogonal
from rasp_compiler.interp.superposition.data import (
    NON_FEATURES, ProgramData, accuracy, residual_sites, site_activations,
)
from rasp_compiler.interp.superposition.groups import RECOVERY_THRESHOLD, score_groups
from rasp_compiler.interp.superposition.sae import SAE, SAEConfig, train_saes
from rasp_compiler.interp.superposition.truth import FeatureTruth, feature_truth
from rasp_compiler.model.compiled import CompiledModel

DENSE_FRACTION = 0.5


# ----------------------------------------------------------------------------- feature recovery
def max_cosines(decoder: np.ndarray, features: np.ndarray) -> np.ndarray:
    """For each feature (row of ``features``), the largest cosine with any row of ``decoder``."""
    dec = np.asarray(decoder, np.float64)
    feat = np.asarray(features, np.float64)
    dec = dec / np.maximum(np.linalg.norm(dec, axis=1, keepdims=True), 1e-12)
    feat = feat / np.maximum(np.linalg.norm(feat, axis=1, keepdims=True), 1e-12)
    return (feat @ dec.T).max(axis=1)


def max_correlations(latents: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each feature (column of ``values``: its value at every token), the largest Pearson
    correlation with any latent's activation (columns of ``latents``); 0 for a constant latent."""
    def standardise(a):
        a = np.asarray(a, np.float64)
        a = a - a.mean(0)
        norm = np.linalg.norm(a, axis=0)
        return a / np.where(norm > 1e-12, norm, np.inf)
    return (standardise(values).T @ standardise(latents)).max(axis=1)


def feature_recovery(decoder: np.ndarray, features: np.ndarray,
                     threshold: float = RECOVERY_THRESHOLD) -> tuple[float, float]:
    """(mean max cosine, fraction of features with max cosine >= threshold)."""
    cos = max_cosines(decoder, features)
    return float(cos.mean()), float((cos >= threshold).mean())


# ----------------------------------------------------------------------------- settings
@dataclass
class Setting:
    name: str  # "plain", "rotated" or "compressed"
    model: CompiledModel  # runs on the residual stream W h
    W: np.ndarray  # (d', d_model)
    original: CompiledModel

    @property
    def labels(self) -> tuple[str, ...]:
        return self.original.labels.residual

    def feature_directions(self, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), d'): row j is W e_i for i = indices[j]."""
        return self.W[:, list(indices)].T


def plain_setting(model: CompiledModel) -> Setting:
    return Setting("plain", model, np.eye(model.config.d_model, dtype=np.float32), model)


def rotated_setting(model: CompiledModel, seed: int = 0) -> Setting:
    Q = random_orthogonal(model.config.d_model, model.config.d_model, seed)
    return Setting("rotated", compressed_model(model, Q, prefix="rotated"), Q, model)


def compressed_setting(result: CompressionResult) -> Setting:
    return Setting("compressed", result.model, result.W, result.original)


def site_features(model: CompiledModel, data: ProgramData, site: str, include_bos: bool = False,
                  tol: float = 1e-6) -> list[int]:
    """Labelled dimensions (not 'one'/'bos') that are non-zero somewhere at ``site``."""
    h = site_activations(model, data, site, include_bos)
    alive = np.abs(h).max(axis=0) > tol
    return [i for i, name in enumerate(model.labels.residual) if name not in NON_FEATURES and alive[i]]


# ----------------------------------------------------------------------------- scoring
@dataclass
class SAEScores:
    setting: str
    site: str
    kind: str
    sparsity: float
    n_features: int
    n_latents: int
    mean_max_cos: float
    recovered: float  # fraction of features with max cosine >= 0.9
    mean_max_corr: float  # mean over features of the best correlation of a latent's activation with it
    recovered_corr: float  # fraction of features with max correlation >= 0.9
    dead: float  # fraction of latents never active on the evaluation tokens
    dense: float  # fraction of latents active on more than half of them
    nmse: float  # reconstruction MSE / variance of the activations
    l0: float  # mean number of active latents per token
    spliced_accuracy: float  # exact-match rate with the reconstruction spliced in
    baseline_accuracy: float  # same model, nothing spliced
    # against feature groups (see truth.py / groups.py): independent features only
    units_recovered: float = float("nan")  # values / numbers with a latent in the group's span firing for them
    group_capture: float = float("nan")  # mean fraction of a group's varying subspace spanned by its latents
    groups_captured: float = float("nan")  # fraction of groups with capture >= 0.9
    interaction_recovered: float = float("nan")  # units_recovered for interaction groups (not independent)
    per_feature: dict[str, float] = field(default_factory=dict)  # label -> max cosine
    per_feature_corr: dict[str, float] = field(default_factory=dict)  # label -> max correlation
    per_unit: dict[str, float] = field(default_factory=dict)  # unit label -> best F1 / correlation in span
    per_group: dict[str, float] = field(default_factory=dict)  # group -> capture

    def row(self) -> dict:
        d = asdict(self)
        for key in ("per_feature", "per_feature_corr", "per_unit", "per_group"):
            d.pop(key)
        return d


def splice_hooks(sae: SAE, site: str, include_bos: bool = False) -> dict:
    """Hooks for ``forward`` that replace the residual at ``site`` with the SAE's reconstruction."""
    first = 0 if include_bos else 1

    def hook(x):
        x = np.array(x, np.float32, copy=True)
        b, t, d = x.shape
        x[:, first:] = sae.reconstruct(x[:, first:].reshape(-1, d)).reshape(b, t - first, d)
        return x

    return {site: hook}


def score_sae(sae: SAE, setting: Setting, site: str, data: ProgramData, features: Sequence[int] | None = None,
              include_bos: bool = False, acts: np.ndarray | None = None,
              baseline_accuracy: float | None = None, h: np.ndarray | None = None,
              truth: FeatureTruth | None = None) -> SAEScores:
    """Every score of ``sae`` trained at ``site`` of ``setting``, measured on ``data``.

    ``sae`` is anything with ``decoder`` (rows = latent directions), ``encode``,
    ``reconstruct``, ``kind``, ``n_latents`` and ``sparsity`` (our :class:`SAE`, or an
    SAE-Lens SAE through :class:`~.saelens.SAELensDictionary`). ``h`` is the original
    model's residual at ``site`` (labelled basis) and ``truth`` its feature groups; both
    are computed when not given.
    """
    if features is None:
        features = site_features(setting.original, data, site, include_bos)
    if acts is None:
        acts = site_activations(setting.model, data, site, include_bos)
    if h is None:
        h = site_activations(setting.original, data, site, include_bos)
    if truth is None:
        truth = feature_truth(setting.original, alive=features)
    labels = setting.labels
    cos = max_cosines(sae.decoder, setting.feature_directions(features)) if len(features) else np.zeros(0)
    f = sae.encode(acts)
    active = f > 0
    values = h[:, list(features)]  # the true features' values at every token (original basis)
    corr = max_correlations(f, values) if len(features) else np.zeros(0)
    grouped = score_groups(sae.decoder, f, setting.W, h, truth)
    indep, inter = grouped.summary("independent"), grouped.summary("interaction")
    recon = sae.reconstruct(acts)
    var = float(((acts - acts.mean(0)) ** 2).sum(-1).mean())
    mse = float(((acts - recon) ** 2).sum(-1).mean())
    if baseline_accuracy is None:
        baseline_accuracy = accuracy(setting.model, data)
    spliced = accuracy(setting.model, data, hooks=splice_hooks(sae, site, include_bos))
    return SAEScores(
        setting=setting.name, site=site, kind=sae.kind, sparsity=float(sae.sparsity),
        n_features=len(features), n_latents=sae.n_latents,
        mean_max_cos=float(cos.mean()) if len(cos) else float("nan"),
        recovered=float((cos >= RECOVERY_THRESHOLD).mean()) if len(cos) else float("nan"),
        mean_max_corr=float(corr.mean()) if len(corr) else float("nan"),
        recovered_corr=float((corr >= RECOVERY_THRESHOLD).mean()) if len(corr) else float("nan"),
        dead=float((~active.any(0)).mean()), dense=float((active.mean(0) > DENSE_FRACTION).mean()),
        nmse=mse / var if var > 0 else float("nan"), l0=float(active.sum(-1).mean()),
        spliced_accuracy=spliced, baseline_accuracy=float(baseline_accuracy),
        units_recovered=indep["units_recovered"], group_capture=indep["group_capture"],
        groups_captured=indep["groups_captured"], interaction_recovered=inter["units_recovered"],
        per_feature={labels[i]: float(c) for i, c in zip(features, cos)},
        per_feature_corr={labels[i]: float(c) for i, c in zip(features, corr)},
        per_unit={u.label: u.best for u in grouped.units},
        per_group={g.name: g.capture for g in grouped.groups})


def sae_experiment(setting: Setting, site: str, train_data: ProgramData, eval_data: ProgramData,
                   config: SAEConfig, sparsities: Sequence[float] | None = None, include_bos: bool = False,
                   log=None) -> list[tuple[SAE, SAEScores]]:
    """Train SAEs (one per sparsity coefficient) at ``site`` of ``setting`` and score each."""
    train_acts = site_activations(setting.model, train_data, site, include_bos)
    eval_acts = site_activations(setting.model, eval_data, site, include_bos)
    features = site_features(setting.original, eval_data, site, include_bos)
    h = site_activations(setting.original, eval_data, site, include_bos)
    truth = feature_truth(setting.original, alive=features)
    base = accuracy(setting.model, eval_data)
    saes = train_saes(train_acts, config, sparsities, log=log, tag=f"{setting.name} {site} ")
    return [(sae, score_sae(sae, setting, site, eval_data, features, include_bos, eval_acts, base, h, truth))
            for sae in saes]


def default_sites(model: CompiledModel) -> list[str]:
    return residual_sites(model)
