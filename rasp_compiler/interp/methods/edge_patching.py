"""Edge patching: the exact effect of one sender's corrupted output in one receiver's input only.

Each edge s -> r is the clean run with ``o_s`` swapped in r's input alone (every other
reader still sees the clean ``o_s``; r's change propagates downstream). One batched pass
per receiver covers all its senders."""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.methods.base import Method, Scores, component_deltas, edge_keys, np_run
from rasp_compiler.interp.pairs import Pairs


def edge_patching(dec: Decomposed, pairs: Pairs, edges: list[tuple[str, str]] | None = None) -> Scores:
    edges = edges or edge_keys(dec)
    _, _, delta = component_deltas(dec, pairs)
    base = pairs.metric(np_run(dec, pairs.clean))
    P = len(pairs)
    per = np.zeros((P, len(edges)))
    by_r: dict[str, list[int]] = {}
    for k, (_, r) in enumerate(edges):
        by_r.setdefault(r, []).append(k)
    for r, ks in by_r.items():
        ids = np.tile(pairs.clean, (len(ks), 1))
        d_in = np.concatenate([delta[edges[k][0]] for k in ks])
        m = (np_run(dec, ids, in_delta={r: d_in}) * np.tile(pairs.U, (len(ks), 1, 1))).sum((1, 2))
        per[:, ks] = (m - np.tile(base, len(ks))).reshape(len(ks), P).T
    return Scores("edge_patching", "edge", tuple(edges), per, float(pairs.gap.mean()))


METHODS = (Method("edge_patching", "edge", edge_patching,
                  "edge patching: exact, the sender's corrupted output in one receiver's input only"),)
