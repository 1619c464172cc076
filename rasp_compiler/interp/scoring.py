"""Scoring a method's ranking against the true circuit.

For a target, the *positives* are the circuit's components (or edges) and the
*negatives* every other candidate. A method's scores rank the candidates; we report

* ROC AUC (Mann-Whitney: the chance a random positive outranks a random negative,
  ties counting one half), ``nan`` when either class is empty;
* TPR and FPR at k = the number of positives (the top-k by score, ties at the cut
  shared out in expectation, as a random tie-break would).

Scores below ``floor`` x the mean metric gap are set to 0 first: at these weight scales
float32 leaves ~1e-6 relative noise (more in a rotated model), and a saturated softmax
passes ~1e-20; ranking such numbers above an exact zero would reward noise.

``active`` restricts the positives to those a two-input comparison can reveal: circuit
members whose output (for edges: the sender's output in the carried directions) differs
between clean and corrupted on at least one pair. Inactive members (for example the
``length`` head when both inputs have the same length) are then left out of the ranking
altogether rather than counted as misses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

FLOOR = 1e-4


@dataclass(frozen=True)
class Score:
    auc: float
    tpr: float
    fpr: float
    n_pos: int
    n_neg: int
    zero_positives: int  # positives the method scored (after the floor) exactly zero

    def as_row(self) -> dict:
        return {"auc": self.auc, "tpr": self.tpr, "fpr": self.fpr, "pos": self.n_pos, "neg": self.n_neg,
                "zero_pos": self.zero_positives}


def floored(scores: dict, gap: float, floor: float = FLOOR) -> dict:
    cut = floor * abs(gap)
    return {k: (v if v > cut else 0.0) for k, v in scores.items()}


def roc_auc(scores: dict, positives: Iterable, candidates: Iterable) -> float:
    pos = set(positives)
    cand = list(candidates)
    p = [scores.get(k, 0.0) for k in cand if k in pos]
    n = [scores.get(k, 0.0) for k in cand if k not in pos]
    if not p or not n:
        return math.nan
    p_arr, n_arr = np.asarray(p)[:, None], np.asarray(n)[None, :]
    return float(((p_arr > n_arr).sum() + 0.5 * (p_arr == n_arr).sum()) / (len(p) * len(n)))


def tpr_fpr_at_k(scores: dict, positives: Iterable, candidates: Iterable, k: int | None = None
                 ) -> tuple[float, float]:
    pos = set(positives)
    cand = list(candidates)
    n_pos = sum(c in pos for c in cand)
    n_neg = len(cand) - n_pos
    k = n_pos if k is None else k
    if not cand or k == 0:
        return math.nan, math.nan
    vals = np.asarray([scores.get(c, 0.0) for c in cand])
    is_pos = np.asarray([c in pos for c in cand])
    cut = np.sort(vals)[::-1][min(k, len(vals)) - 1]
    above, tied = vals > cut, vals == cut
    slots = min(k, len(vals)) - above.sum()
    tp = is_pos[above].sum() + slots * is_pos[tied].mean()
    fp = min(k, len(vals)) - tp
    return (float(tp / n_pos) if n_pos else math.nan, float(fp / n_neg) if n_neg else math.nan)


def score_ranking(scores: dict, positives: Iterable, candidates: Iterable, gap: float = 1.0,
                  floor: float = FLOOR) -> Score:
    s = floored(scores, gap, floor)
    cand = list(candidates)
    pos = [c for c in cand if c in set(positives)]
    tpr, fpr = tpr_fpr_at_k(s, pos, cand)
    return Score(roc_auc(s, pos, cand), tpr, fpr, len(pos), len(cand) - len(pos),
                 sum(s.get(c, 0.0) == 0.0 for c in pos))
