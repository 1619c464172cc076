"""Path patching (Wang et al. 2022; Goldowsky-Dill et al. 2023), from the sink backwards.

The effect of the path sender -> receiver -> (paths already found) -> sink: the clean run
with the sender's corrupted output added to the receiver's input only, and every other
edge frozen at its clean value, so the receiver's change reaches the metric only along
the paths found so far. Receivers are visited from the sink backwards; an edge whose mean
|effect| exceeds ``threshold`` x the clean-corrupted gap is kept, and its sender becomes a
receiver in turn. Edges into a receiver with no kept path to the sink score 0.

Where edge patching lets a receiver's change spread through the whole model, path
patching lets it through the circuit found so far: it misses what an earlier cut lost
and ignores what the rest of the model would add.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.methods.base import (Method, Scores, component_deltas, edge_keys, edge_matrix, np_run,
                                                outputs)
from rasp_compiler.interp.pairs import Pairs

THRESHOLD = 0.01  # of the mean clean-corrupted metric gap


def downstream(found: set, r: str) -> set:
    """The kept edges reachable from ``r`` (every kept edge lies on a path to the sink)."""
    reach, todo = {r}, [r]
    while todo:
        x = todo.pop()
        for s, t in found:
            if s == x and t not in reach:
                reach.add(t)
                todo.append(t)
    return {(s, t) for s, t in found if s in reach}


def path_patching(dec: Decomposed, pairs: Pairs, edges: list[tuple[str, str]] | None = None,
                  threshold: float = THRESHOLD) -> Scores:
    edges = edges or edge_keys(dec)
    rc, _, delta = component_deltas(dec, pairs)
    P, gap = len(pairs), float(pairs.gap.mean())
    base = pairs.metric(np_run(dec, pairs.clean))
    order = {c.name: c.order for c in dec.components}
    by_r: dict[str, list[int]] = {}
    for k, (_, r) in enumerate(edges):
        by_r.setdefault(r, []).append(k)
    per = np.zeros((P, len(edges)))
    found: set = set()
    for r in sorted(by_r, key=lambda n: -order[n]):
        live = downstream(found, r)
        if r != "unembed" and not live:
            continue  # no kept path from r to the sink: its edges score 0
        ks = by_r[r]
        mask = edge_matrix(dec, sorted(live), [1.0] * len(live), fill=0.0)
        clean = {n: np.tile(v, (len(ks), 1, 1)) for n, v in outputs(rc, dec).items()}
        d_in = np.concatenate([delta[edges[k][0]] for k in ks])
        resid = np_run(dec, np.tile(pairs.clean, (len(ks), 1)), edge_mask=mask, ablated=clean, in_delta={r: d_in})
        m = (resid * np.tile(pairs.U, (len(ks), 1, 1))).sum((1, 2))
        per[:, ks] = (m - np.tile(base, len(ks))).reshape(len(ks), P).T
        found |= {edges[k] for k in ks if np.abs(per[:, k]).mean() > threshold * gap}
    return Scores("path_patching", "edge", tuple(edges), per, gap, threshold=threshold * gap)


METHODS = (Method("path_patching", "edge", path_patching,
                  "path patching from the sink back: sender -> receiver -> kept paths, all else clean"),)
