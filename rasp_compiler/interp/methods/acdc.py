"""ACDC (Conmy et al. 2023): greedy edge pruning from the sink backwards, swept over thresholds.

Start from the full graph, every edge reading the sender's clean output. Visit receivers
from the sink backwards and, for each incoming edge, resample-ablate it (the receiver
reads the sender's *corrupted* output instead); keep it ablated when the distance from
the full model's metric grows by less than the threshold tau:

    D(G) = mean over pairs |M_G - M_full| / mean clean-corrupted gap.

Each tau in ``THRESHOLDS`` gives a circuit; an edge's score is the largest tau at which
it survives (0 if it never does), so the sweep yields a ranking; the circuit it reports
(``Scores.threshold``) is the edges that survive some tau >= 1%. All thresholds run side
by side as one batch (thresholds whose graphs coincide run once): one forward pass per
candidate edge, none for an edge whose sender does not change or whose receiver's output
no longer reaches anything.
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
    abl = outputs(rx, dec)
    full = pairs.metric(np_run(dec, pairs.clean))
    mask = np.ones((T, len(dec.writers), len(dec.receivers)))

    def distance(m):
        """D for each threshold's graph; graphs that coincide are run once."""
        uniq, inv = np.unique(m.reshape(T, -1), axis=0, return_inverse=True)
        u = len(uniq)
        resid = np_run(dec, np.tile(pairs.clean, (u, 1)), edge_mask=np.repeat(uniq.reshape(u, *m.shape[1:]), P, axis=0),
                       ablated={n: np.tile(v, (u, 1, 1)) for n, v in abl.items()})
        M = (resid * np.tile(pairs.U, (u, 1, 1))).sum((1, 2))
        return (np.abs(M.reshape(u, P) - full).mean(1) / gap)[inv.ravel()]

    cur = np.zeros(T)
    w_i, r_i = edge_index(dec, edges)
    order = {c.name: c.order for c in dec.components}
    w_of = {c.name: i for i, c in enumerate(dec.writers)}
    later = {c.name: [j for j, x in enumerate(dec.receivers) if x.order > c.order] for c in dec.receivers}
    visit = sorted(range(len(edges)), key=lambda k: (-order[edges[k][1]], -order[edges[k][0]]))
    for k in visit:
        s, r = edges[k]
        trial = mask.copy()
        trial[:, w_i[k], r_i[k]] = 0.0
        # nothing changes where the corrupted output equals the current (clean) one, or where
        # r's output reaches nothing any more (its outgoing edges were all decided already)
        silent = np.full(T, not np.abs(delta[s]).max() > 0)
        if r != "unembed":
            silent |= ~mask[:, w_of[r], later[r]].any(1)
        if silent.all():
            mask[:, w_i[k], r_i[k]] = 0.0
            continue
        d = np.where(silent, cur, 0.0)
        d[~silent] = distance(trial)[~silent]
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
