"""Activation patching: the exact effect of swapping one node's output for its corrupted value.

One forward pass per node: the clean run with that node's output replaced (every reader
sees the corrupted output, everything downstream recomputed)."""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.methods.base import Method, Scores, component_deltas, node_keys, np_run
from rasp_compiler.interp.pairs import Pairs


def activation_patching(dec: Decomposed, pairs: Pairs, nodes: list[str] | None = None) -> Scores:
    nodes = nodes or node_keys(dec)
    _, _, delta = component_deltas(dec, pairs)
    base = pairs.metric(np_run(dec, pairs.clean))
    per = np.stack([pairs.metric(np_run(dec, pairs.clean, out_delta={n: delta[n]})) - base for n in nodes], 1)
    return Scores("patching", "node", tuple(nodes), per, float(pairs.gap.mean()))


METHODS = (Method("patching", "node", activation_patching,
                  "activation patching: exact, one forward pass per node"),)
