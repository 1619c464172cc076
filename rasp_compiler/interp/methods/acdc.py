"""ACDC (Conmy et al. 2023): greedy edge pruning from the sink backwards, swept over thresholds.

Start from the full graph, every edge reading the sender's clean output. Visit receivers
from the sink backwards and, for each incoming edge, resample-ablate it (the receiver
reads the sender's *corrupted* output instead); keep it ablated when the distance from
the full model's metric grows by less than the threshold tau:

    D(G) = mean over pairs |M_G - M_full| / mean clean-corrupted gap.

Each tau in ``THRESHOLDS`` gives a circuit; an edge's score is the largest tau at which
it survives (0 if it never does), so the sweep yields a ranking; the circuit it reports
(``Scores.threshold``) is the edges that survive some tau >= 1%. All thresholds run side
by side as one batch: one forward pass per candidate edge.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.methods.base import (Method, Scores, component_deltas, edge_index, edge_keys, np_run,
                                                outputs)
from rasp_compiler.interp.pairs import Pairs

THRESHOLDS = tuple(float(t) for t in np.geomspace(1e-3, 1.0, 16))
REPORT_AT = 0.01  # the circuit ACDC reports: edges that survive some tau >= 1% of the gap


def acdc_masks(dec: Decomposed, pairs: Pairs, edges, thresholds=THRESHOLDS) -> np.ndarray:
    """The kept edges (T, len(edges)) of ACDC at each threshold."""
    _, rx, delta = component_deltas(dec, pairs)
    P, T = len(pairs), len(thresholds)
    tau = np.asarray(thresholds, np.float64)
    gap = max(float(pairs.gap.mean()), 1e-12)
    ids = np.tile(pairs.clean, (T, 1))
    U = np.tile(pairs.U, (T, 1, 1))
    ablated = {n: np.tile(v, (T, 1, 1)) for n, v in outputs(rx, dec).items()}
    full = pairs.metric(np_run(dec, pairs.clean))
    mask = np.ones((T, len(dec.writers), len(dec.receivers)))

    def distance(m):
        M = (np_run(dec, ids, edge_mask=np.repeat(m, P, axis=0), ablated=ablated) * U).sum((1, 2))
        return np.abs(M.reshape(T, P) - full).mean(1) / gap

    cur = np.zeros(T)
    w_i, r_i = edge_index(dec, edges)
    order = {c.name: c.order for c in dec.components}
    visit = sorted(range(len(edges)), key=lambda k: (-order[edges[k][1]], -order[edges[k][0]]))
    for k in visit:
        s = edges[k][0]
        if not np.abs(delta[s]).max() > 0:  # the corrupted output equals the current one
            mask[:, w_i[k], r_i[k]] = 0.0
            continue
        trial = mask.copy()
        trial[:, w_i[k], r_i[k]] = 0.0
        d = distance(trial)
        drop = d - cur < tau
        mask[drop, w_i[k], r_i[k]] = 0.0
        cur[drop] = d[drop]
    return mask[:, w_i, r_i] > 0.5


def acdc(dec: Decomposed, pairs: Pairs, edges: list[tuple[str, str]] | None = None,
         thresholds=THRESHOLDS) -> Scores:
    edges = edges or edge_keys(dec)
    kept = acdc_masks(dec, pairs, edges, thresholds)
    tau = np.asarray(thresholds)[:, None]
    score = np.where(kept, tau, 0.0).max(0)
    per = np.tile(score * float(pairs.gap.mean()), (len(pairs), 1))  # in metric units, like the others
    gap = float(pairs.gap.mean())
    return Scores("acdc", "edge", tuple(edges), per, gap, threshold=REPORT_AT * gap)


METHODS = (Method("acdc", "edge", acdc,
                  "ACDC: greedy resample-ablation of edges from the sink back; score = largest surviving threshold"),)
