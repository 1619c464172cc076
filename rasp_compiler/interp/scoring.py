"""Scoring a method's ranking against the true circuit.

For a target, the *positives* are the circuit's components (or edges) and the
*negatives* every other candidate. A method's scores rank the candidates; we report

* ROC AUC (Mann-Whitney: the chance a random positive outranks a random negative,
  ties counting one half), ``nan`` when either class is empty;
* PR AUC (average precision: sum over distinct score thresholds of precision x the
  recall gained there, so tied candidates enter together);
* precision, recall (TPR), F1 and FPR at k = the number of positives (the top-k by
  score, ties at the cut shared out in expectation, as a random tie-break would);
* precision, recall and F1 at the method's own threshold: the components it would
  report. A method may carry one (``Scores.threshold``, e.g. ACDC's); otherwise a key
  is reported when its score is at least ``THRESHOLD`` (10%) of the mean metric gap.

Circuit faithfulness (the metric with only a circuit left clean, everything else
resampled, over the full model's) needs the model and is computed in
:mod:`rasp_compiler.interp.testbed`; :func:`faithfulness` is the ratio.

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
THRESHOLD = 0.1
NAN = math.nan


@dataclass(frozen=True)
class Score:
    auc: float
    tpr: float  # recall at k
    fpr: float
    n_pos: int
    n_neg: int
    zero_positives: int  # positives the method scored (after the floor) exactly zero
    pr_auc: float = NAN
    precision: float = NAN  # at k
    f1: float = NAN  # at k
    precision_t: float = NAN  # at the method's threshold
    recall_t: float = NAN
    f1_t: float = NAN
    reported: int = 0  # keys at or above the threshold
    zero_negatives: int = 0  # negatives scored exactly zero (all of them, in a compiled model)
    faithfulness: float = NAN  # of the top-k keys (set by the testbed)
    faithfulness_t: float = NAN  # of the keys above the threshold

    @property
    def recall(self) -> float:
        return self.tpr

    def as_row(self) -> dict:
        return {"auc": self.auc, "pr_auc": self.pr_auc, "precision": self.precision, "recall": self.tpr,
                "tpr": self.tpr,
                "f1": self.f1, "fpr": self.fpr, "precision_t": self.precision_t, "recall_t": self.recall_t,
                "f1_t": self.f1_t, "reported": self.reported, "faithfulness": self.faithfulness,
                "faithfulness_t": self.faithfulness_t, "pos": self.n_pos, "neg": self.n_neg,
                "zero_pos": self.zero_positives, "zero_neg": self.zero_negatives}


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


def pr_auc(scores: dict, positives: Iterable, candidates: Iterable) -> float:
    """Average precision: sum over distinct thresholds of precision x recall gained."""
    pos = set(positives)
    cand = list(candidates)
    n_pos = sum(c in pos for c in cand)
    if not n_pos or n_pos == len(cand):
        return math.nan
    vals = np.asarray([scores.get(c, 0.0) for c in cand])
    is_pos = np.asarray([c in pos for c in cand])
    ap, tp, seen = 0.0, 0, 0
    for v in np.unique(vals)[::-1]:
        at = vals == v
        tp_new = tp + int(is_pos[at].sum())
        seen += int(at.sum())
        ap += (tp_new - tp) / n_pos * (tp_new / seen)
        tp = tp_new
    return float(ap)


def top_k(scores: dict, candidates: Iterable, k: int) -> list:
    """The k best-scored candidates (ties broken by candidate order: deterministic)."""
    cand = list(candidates)
    order = sorted(range(len(cand)), key=lambda i: -scores.get(cand[i], 0.0))
    return [cand[i] for i in order[:k]]


def _f1(p: float, r: float) -> float:
    if math.isnan(p) or math.isnan(r):
        return math.nan
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def reported(scores: dict, candidates: Iterable, gap: float, threshold: float | None = None) -> list:
    """The candidates a method reports: score >= its own threshold (absolute), or else
    >= THRESHOLD x the metric gap (and above zero)."""
    cut = threshold if threshold is not None else THRESHOLD * abs(gap)
    return [c for c in candidates if scores.get(c, 0.0) >= cut and scores.get(c, 0.0) > 0]


def score_ranking(scores: dict, positives: Iterable, candidates: Iterable, gap: float = 1.0,
                  floor: float = FLOOR, threshold: float | None = None) -> Score:
    """Every figure of the module docstring but faithfulness; ``threshold`` is the method's
    own (absolute) cut, if it has one."""
    s = floored(scores, gap, floor)
    cand = list(candidates)
    pos = [c for c in cand if c in set(positives)]
    n_pos, n_neg = len(pos), len(cand) - len(pos)
    tpr, fpr = tpr_fpr_at_k(s, pos, cand)
    precision = tpr  # k = n_pos: precision, recall and F1 at k coincide
    picked = reported(s, cand, gap, threshold)
    hits = sum(c in set(pos) for c in picked)
    precision_t = hits / len(picked) if picked else math.nan
    recall_t = hits / n_pos if n_pos else math.nan
    f1_t = 0.0 if not picked and n_pos else _f1(precision_t, recall_t)
    return Score(roc_auc(s, pos, cand), tpr, fpr, n_pos, n_neg,
                 sum(s.get(c, 0.0) == 0.0 for c in pos), pr_auc(s, pos, cand), precision, _f1(precision, tpr),
                 precision_t, recall_t, f1_t, len(picked), sum(s.get(c, 0.0) == 0.0 for c in cand if c not in set(pos)))


def faithfulness(m_circuit, m_clean, m_corrupt) -> float:
    """(M(circuit) - M(corrupt)) / (M(clean) - M(corrupt)), means over pairs: 1 when the
    circuit alone restores the full model's metric, 0 when it restores nothing."""
    den = float(np.mean(m_clean) - np.mean(m_corrupt))
    return float((np.mean(m_circuit) - np.mean(m_corrupt)) / den) if den else math.nan
