"""What every method shares: the ``Method`` record, ``Scores``, keys, deltas, fast JIT.

A method takes the decomposed model, clean/corrupted pairs and the keys to score (node
names, or (sender, receiver) edges; ``None`` = all of them) and returns ``Scores``: per
pair, a signed estimate of how much the metric moves when that node (edge) is replaced by
its corrupted value, or for search methods (ACDC, masks) a per-key importance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.pairs import Pairs


@dataclass(frozen=True)
class Scores:
    """One method's estimates: ``per_pair`` (P, K) signed changes of the metric, ``keys`` the
    node names or (sender, receiver) edges, ``score`` the mean absolute change per key.
    ``threshold``: for methods that decide a circuit themselves (ACDC, path patching,
    masks), the score at or above which a key is in it (same units as ``score``)."""

    method: str
    level: str  # "node" or "edge"
    keys: tuple
    per_pair: np.ndarray
    gap: float  # mean M(clean) - M(corrupt)
    threshold: float | None = None

    @property
    def score(self) -> dict:
        return {k: float(v) for k, v in zip(self.keys, np.abs(self.per_pair).mean(0))}


@dataclass(frozen=True)
class Method:
    """A circuit-discovery method as the testbed calls it.

    ``run(dec, pairs, keys)`` scores ``keys`` (node names for level "node", (sender,
    receiver) pairs for "edge"; ``None``: every candidate) and returns :class:`Scores`."""

    name: str
    level: str  # "node" or "edge"
    run: Callable[[Decomposed, Pairs, list | None], Scores]
    description: str


# --------------------------------------------------------------------------- keys, deltas
def np_run(dec: Decomposed, ids, **kw):
    with np.errstate(over="ignore", invalid="ignore"):
        return dec.run(ids, xp=np, **kw)


def component_deltas(dec: Decomposed, pairs: Pairs) -> tuple[dict, dict, dict]:
    """Records of the clean and corrupted runs, and corrupt - clean output per writer."""
    rc, rx = {}, {}
    np_run(dec, pairs.clean, record=rc)
    np_run(dec, pairs.corrupt, record=rx)
    delta = {c.name: rx["out:" + c.name] - rc["out:" + c.name] for c in dec.writers}
    return rc, rx, delta


def outputs(record: dict, dec: Decomposed) -> dict:
    """Each writer's output from a run's record: what ``ablated=`` takes."""
    return {c.name: record["out:" + c.name] for c in dec.writers}


def node_keys(dec: Decomposed) -> list[str]:
    return [c.name for c in dec.writers]


def edge_keys(dec: Decomposed) -> list[tuple[str, str]]:
    """Every (sender, receiver) with the sender before the receiver; the sink is "unembed"."""
    return [(s.name, r.name) for r in dec.components if r.kind != "embed"
            for s in dec.writers if s.order < r.order]


def edge_matrix(dec: Decomposed, edges, values, fill: float = 1.0) -> np.ndarray:
    """A (W, R) array (writers x receivers, the layout of ``Decomposed.run(edge_mask=)``)
    holding ``values`` at ``edges`` and ``fill`` elsewhere."""
    w = {c.name: i for i, c in enumerate(dec.writers)}
    r = {c.name: i for i, c in enumerate(dec.receivers)}
    m = np.full((len(w), len(r)), fill, np.float64)
    for (s, t), v in zip(edges, values):
        m[w[s], r[t]] = v
    return m


def edge_index(dec: Decomposed, edges) -> tuple[np.ndarray, np.ndarray]:
    """Writer and receiver indices of ``edges`` in the (W, R) layout."""
    w = {c.name: i for i, c in enumerate(dec.writers)}
    r = {c.name: i for i, c in enumerate(dec.receivers)}
    return np.array([w[s] for s, _ in edges], int), np.array([r[t] for _, t in edges], int)


# --------------------------------------------------------------------------- JAX
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def fast_jit(fn):
    """jax.jit compiled ahead of time with cheap XLA options (these graphs are tiny: the
    compile, not the run, is the cost), one executable per argument shape."""
    import jax

    jitted, compiled = jax.jit(fn), {}

    def call(*args):
        leaves, tree = jax.tree_util.tree_flatten(args)
        key = (tree, tuple((getattr(a, "shape", ()), str(getattr(a, "dtype", type(a)))) for a in leaves))
        if key not in compiled:
            lowered = jitted.lower(*args)
            try:
                compiled[key] = lowered.compile(compiler_options=_FAST_COMPILE)
            except Exception:  # an XLA without these options: default compile
                compiled[key] = lowered.compile()
        return compiled[key](*args)

    return call
