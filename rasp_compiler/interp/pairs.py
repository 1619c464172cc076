"""Clean/corrupted input pairs and the metric a method explains, for any target SOp.

A *target* is the program's output (``None``) or any SOp with residual directions (or a
read-out, for virtual nodes). Its value at each position is read off the final residual
stream exactly as the model decodes its output: for a categorical target the largest of
its one-hot coordinates when above 0.5 (else None), for a numerical one the coordinate
(or read-out). So pairs are built from the model alone and work for loaded models. A model
that is not exact (weight noise) is labelled by another, exact one (``labels``: the
compiled model, so the program's values); the metric and the gaps stay the model's own.

The metric is linear in the final residual: for pair i,
``M_i(resid) = sum_p <resid[p], U[i, p]>``, where at each position p whose target value
differs between clean and corrupted, ``U[i, p]`` is

* categorical: direction(clean value) - direction(corrupted value) (for the output,
  columns of W_U: the logit difference; a side whose value is None contributes 0);
* numerical: sign(clean - corrupted) x the read-out direction (the value difference).

So ``M(clean) - M(corrupted) > 0`` for every pair, and a component matters for the pair
when patching it moves M.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.ground_truth import GroundTruth, residual_basis


@dataclass(frozen=True)
class Readout:
    """How a target's value is read from the final residual: ``resid @ matrix``."""

    target: str
    matrix: np.ndarray  # (d_model, k)
    numerical: bool
    values: tuple  # categorical: value of each column

    def decode(self, resid: np.ndarray) -> np.ndarray:
        """Values (batch, positions) as an object array (None where no value is on)."""
        coords = np.asarray(resid, np.float64) @ self.matrix
        if self.numerical:
            return coords[..., 0].astype(object)
        out = np.full(coords.shape[:-1], None, dtype=object)
        if coords.shape[-1]:
            j = coords.argmax(-1)
            on = np.take_along_axis(coords, j[..., None], -1)[..., 0] > 0.5
            vals = np.empty(len(self.values), dtype=object)  # filled one by one: tuple values stay whole
            for k, v in enumerate(self.values):
                vals[k] = v
            out[on] = vals[j[on]]
        return out


def readout(model, gt: GroundTruth, target: str | None = None) -> Readout:
    """The read-out of the output (W_U) or of an intermediate SOp (its feature directions)."""
    c = model.config
    if target is None or target == c.output:
        return Readout(c.output, np.asarray(model.params["unembed.W_U"], np.float64), c.output_numerical,
                       tuple(c.output_values))
    basis = residual_basis(model)
    feats = [f for f in gt.features.of_node(target) if f.kind in ("categorical", "numerical")]
    if feats and feats[0].kind == "categorical":
        return Readout(target, basis[[f.index for f in feats]].T, False, tuple(f.value for f in feats))
    if feats:
        return Readout(target, basis[[feats[0].index]].T, True, ())
    weights = gt.readouts.get(target)
    if weights is None:
        gt.target_labels(target)  # raises a KeyError naming the known nodes
    vec = sum(w * gt.features.by_label(lab).direction for lab, w in weights.items())
    return Readout(target, np.asarray(vec, np.float64)[:, None], True, ())


@dataclass(frozen=True)
class Pairs:
    target: str
    clean: np.ndarray  # token ids (P, n_ctx), BOS first, PAD-padded
    corrupt: np.ndarray
    U: np.ndarray  # (P, n_ctx, d_model) metric directions
    clean_values: np.ndarray  # (P, n_ctx) target values (object)
    corrupt_values: np.ndarray
    lengths: np.ndarray  # (P,) number of tokens after BOS, clean
    gap: np.ndarray  # (P,) M(clean) - M(corrupt) > 0

    def __len__(self) -> int:
        return len(self.clean)

    @property
    def same_length(self) -> bool:
        """Every pair's clean and corrupted inputs hold the same number of tokens (PAD is id 1)."""
        return bool(np.array_equal((self.clean != 1).sum(1), (self.corrupt != 1).sum(1)))

    def metric(self, resid) -> np.ndarray:
        """Per-pair metric of a final residual (P, n_ctx, d_model); works for jnp too."""
        return (resid * self.U).sum(axis=(1, 2))

    def tokens(self, model, which: str = "clean") -> list[list]:
        toks = model.config.input_tokens
        ids = self.clean if which == "clean" else self.corrupt
        return [[toks[i] for i in row if i != 1] for row in ids]


def make_pairs(model, gt: GroundTruth, target: str | None = None, n_pairs: int = 16, seed: int = 0,
               same_length: bool = True, length: int | None = None, pool: int = 512,
               dec: Decomposed | None = None, pad_to_n: bool = True,
               labels: Decomposed | None = None) -> Pairs | None:
    """Random clean/corrupted pairs whose target value differs somewhere (None if none exists).

    ``same_length`` (default): both inputs of a pair have the same number of tokens
    (``length``, default max_seq_len, or one fewer), so positions align and the mask is
    shared. Otherwise lengths vary (1..max_seq_len)
    and only positions present in both count; this is the only way a method can see
    components that depend on the length alone (e.g. ``length`` in ``reverse``).
    When fewer than ``n_pairs`` distinct pairs exist they are repeated (``pad_to_n``).
    ``labels``: the (exact) model whose decoded values label the pairs, same residual basis
    (default: ``model`` itself); the metric directions and gaps are still ``dec``'s, and a pair
    whose gap is not positive there (the labelled model disagrees) is left out.
    """
    c = model.config
    rng = np.random.default_rng(seed)
    dec = dec or Decomposed(model)
    ro = readout(model, gt, target)
    label_ro = ro if labels is None else readout(labels.model, gt, target)
    n_vocab = len(c.vocab)
    length = length or c.max_seq_len
    if same_length:  # the two longest lengths (an odd length alone can make e.g. balance constant)
        lens = rng.choice(sorted({length, max(1, length - 1)}), pool)
    else:
        lens = rng.integers(1, c.max_seq_len + 1, pool)
    ids = np.full((pool, c.n_ctx), 1, np.int64)
    ids[:, 0] = 0
    for i, n in enumerate(lens):
        ids[i, 1:n + 1] = 2 + rng.integers(0, n_vocab, n)
    ids = np.unique(ids, axis=0)
    lens = (ids != 1).sum(1) - 1
    with np.errstate(over="ignore", invalid="ignore"):
        values = label_ro.decode((labels or dec).run(ids))
    values[:, 0] = None  # BOS position never counts
    order = rng.permutation(len(ids))
    chosen: list[tuple[int, int, np.ndarray]] = []
    for i in order:
        if len(chosen) == n_pairs:
            break
        cand = np.nonzero(lens == lens[i])[0] if same_length else np.arange(len(ids))
        for j in rng.permutation(cand)[:64]:
            if j == i:
                continue
            m = min(lens[i], lens[j]) + 1
            diff = np.array([not _same(values[i, p], values[j, p], ro.numerical) for p in range(m)])
            if diff.any():
                chosen.append((i, j, np.nonzero(diff)[0]))
                break
    if labels is not None and chosen:
        chosen = [ch for ch, g in zip(chosen, _gaps(dec, ro, ids, values, chosen)) if g > 0]
    if not chosen:
        return None
    if pad_to_n:  # repeat pairs so every target of a model has the same shapes (one JAX compile)
        chosen = [chosen[k % len(chosen)] for k in range(n_pairs)]
    d = c.d_model
    U = np.zeros((len(chosen), c.n_ctx, d))
    for k, (i, j, positions) in enumerate(chosen):
        for p in positions:
            U[k, p] = _direction(ro, values[i, p], values[j, p])
    clean = ids[[i for i, _, _ in chosen]]
    corrupt = ids[[j for _, j, _ in chosen]]
    with np.errstate(over="ignore", invalid="ignore"):
        gap = (dec.run(clean) * U).sum((1, 2)) - (dec.run(corrupt) * U).sum((1, 2))
    return Pairs(ro.target, clean, corrupt, U, values[[i for i, _, _ in chosen]],
                 values[[j for _, j, _ in chosen]], lens[[i for i, _, _ in chosen]], gap)


def _gaps(dec, ro, ids, values, chosen) -> np.ndarray:
    """M(clean) - M(corrupt) on ``dec`` of each chosen (clean, corrupt, positions)."""
    U = np.zeros((len(chosen), ids.shape[1], dec.config.d_model))
    for k, (i, j, positions) in enumerate(chosen):
        for p in positions:
            U[k, p] = _direction(ro, values[i, p], values[j, p])
    with np.errstate(over="ignore", invalid="ignore"):
        return ((dec.run(ids[[i for i, _, _ in chosen]]) - dec.run(ids[[j for _, j, _ in chosen]])) * U).sum((1, 2))


def _same(a, b, numerical: bool) -> bool:
    if a is None or b is None:
        return a is b
    if numerical:
        return abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(a)))
    return a == b


def _direction(ro: Readout, clean, corrupt) -> np.ndarray:
    if ro.numerical:
        return np.sign(float(clean) - float(corrupt)) * ro.matrix[:, 0]
    col = {v: k for k, v in enumerate(ro.values)}
    u = np.zeros(ro.matrix.shape[0])
    if clean is not None:
        u += ro.matrix[:, col[clean]]
    if corrupt is not None:
        u -= ro.matrix[:, col[corrupt]]
    return u
