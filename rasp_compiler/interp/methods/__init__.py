"""Circuit-discovery methods, one module each, collected in the registry ``METHODS``.

Every method estimates, for each clean/corrupted pair (see
:mod:`rasp_compiler.interp.pairs`), how much the metric depends on each node (a
component's output) or edge (one sender's output in one receiver's input only); a key's
score is the mean absolute value over the pairs (``Scores.score``).

===================  =====  ===================================================
name                 level  module
===================  =====  ===================================================
patching             node   :mod:`.patching` (exact)
edge_patching        edge   :mod:`.edge_patching` (exact)
atp, atp_qk,         node   :mod:`.atp` (AtP, QK fix, AtP* with GradDrop per head/MLP)
atp_star
eap, eap_qk,         edge   :mod:`.atp`
eap_star
atp_ig / eap_ig      both   :mod:`.eap_ig` (integrated gradients clean -> corrupt)
path_patching        edge   :mod:`.path_patching` (iterative, from the sink back)
acdc                 edge   :mod:`.acdc` (greedy pruning swept over thresholds)
node_mask /          both   :mod:`.masks` (a learned continuous mask, optax)
edge_mask
===================  =====  ===================================================

A new method is one module in this package that defines ``METHODS``: a tuple of
:class:`Method`; it is picked up here without further registration.

Scores below ``1e-4`` of the mean clean-corrupted metric gap are set to 0 when scored
(float32 noise at these weight scales, not evidence); see :mod:`rasp_compiler.interp.scoring`.
"""

from __future__ import annotations

import importlib
import pkgutil

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.methods.atp import attribution
from rasp_compiler.interp.methods.base import Method, Scores, component_deltas, edge_keys, node_keys
from rasp_compiler.interp.methods.edge_patching import edge_patching
from rasp_compiler.interp.methods.patching import activation_patching
from rasp_compiler.interp.pairs import Pairs


def _collect() -> dict[str, Method]:
    found: dict[str, Method] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for m in getattr(module, "METHODS", ()):
            if m.name in found:
                raise ValueError(f"method {m.name!r} is defined twice (in {module.__name__} and before)")
            found[m.name] = m
    return found


METHODS: dict[str, Method] = _collect()
NODE_METHODS = tuple(n for n, m in METHODS.items() if m.level == "node")
EDGE_METHODS = tuple(n for n, m in METHODS.items() if m.level == "edge")

# the edge version of a node method (one name in ``evaluate(methods=...)`` asks for both)
EDGE_PARTNER = {"patching": "edge_patching", "atp": "eap", "atp_qk": "eap_qk", "atp_star": "eap_star",
                "atp_ig": "eap_ig", "node_mask": "edge_mask"}


def method(name: str) -> Method:
    """The registered method ``name`` (a ValueError listing the known names otherwise)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def run_all(dec: Decomposed, pairs: Pairs, edges: bool = True) -> dict[str, Scores]:
    """Patching, AtP, AtP+QK and AtP* on nodes, and their edge versions when ``edges``."""
    res = {"patching": activation_patching(dec, pairs)}
    if edges:
        res["edge_patching"] = edge_patching(dec, pairs)
    res.update(attribution(dec, pairs, edges=None if edges else []))
    return res


__all__ = ["METHODS", "NODE_METHODS", "EDGE_METHODS", "EDGE_PARTNER", "Method", "Scores", "method",
           "activation_patching", "attribution", "component_deltas", "edge_keys", "edge_patching", "node_keys",
           "run_all"]
