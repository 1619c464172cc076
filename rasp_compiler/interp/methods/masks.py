"""Mask learning (subnetwork probing, Cao et al. 2021; edge pruning, Bhaskar et al. 2024).

A continuous mask ``m = sigmoid(logit)`` per node (every reader sees
``o' + m (o - o')``, with ``o'`` the corrupted output) or per edge (only that receiver
does), trained with optax Adam on the clean inputs to keep the metric of the full model
while switching as much off as it can:

    loss = mean over pairs (M_m - M_full)^2 / gap^2  +  sparsity x mean(m)

A key's score is its final mask value (times the gap, so that the testbed's noise floor
applies as to the other methods); the circuit it reports is the keys with mask > 1/2. Keys not asked for keep a mask of 1. Saturated
softmaxes and ReLU steps give flat stretches where the fidelity gradient is zero, so the
penalty can push a mask across a step before the loss objects: the method can be wrong.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.methods.base import (Method, Scores, component_deltas, edge_index, edge_keys, fast_jit,
                                                node_keys, outputs)
from rasp_compiler.interp.pairs import Pairs

STEPS = 300
LEARNING_RATE = 0.1
SPARSITY = 0.05
INIT = 3.0  # sigmoid(3) = 0.95: start from (almost) the full model


def learn_mask(dec: Decomposed, pairs: Pairs, level: str, keys, steps: int = STEPS, lr: float = LEARNING_RATE,
               sparsity: float = SPARSITY, seed: int = 0) -> np.ndarray:
    """Final mask values (len(keys),) for nodes (``level="node"``) or edges."""
    import jax
    import jax.numpy as jnp
    import optax

    _, rx, _ = component_deltas(dec, pairs)
    ablated = {k: jnp.asarray(v, jnp.float32) for k, v in outputs(rx, dec).items()}
    ids = jnp.asarray(pairs.clean, jnp.int32)
    U = jnp.asarray(pairs.U, jnp.float32)
    dec.params(jnp)
    with np.errstate(over="ignore", invalid="ignore"):
        full = jnp.asarray(pairs.metric(dec.run(pairs.clean)), jnp.float32)
    gap2 = float(max(pairs.gap.mean(), 1e-9)) ** 2
    W, R = len(dec.writers), len(dec.receivers)
    if level == "node":
        w_of = {c.name: i for i, c in enumerate(dec.writers)}
        idx = (np.array([w_of[k] for k in keys], int),)
        shape = (W,)
    else:
        idx = edge_index(dec, keys)
        shape = (W, R)

    def masks(logits):
        return jnp.ones(shape, jnp.float32).at[idx].set(jax.nn.sigmoid(logits))

    def loss(logits, ablated, ids, U, full, gap2):
        m = masks(logits)
        kw = {"node_mask": m} if level == "node" else {"edge_mask": m}
        M = (dec.run(ids, xp=jnp, ablated=ablated, **kw) * U).sum((1, 2))
        return ((M - full) ** 2).mean() / gap2 + sparsity * jax.nn.sigmoid(logits).mean()

    opt = optax.adam(lr)

    def train(logits, ablated, ids, U, full, gap2):
        def step(_, carry):
            logits, state = carry
            upd, state = opt.update(jax.grad(loss)(logits, ablated, ids, U, full, gap2), state, logits)
            return optax.apply_updates(logits, upd), state
        return jax.lax.fori_loop(0, steps, step, (logits, opt.init(logits)))[0]

    fns = dec.__dict__.setdefault("_mask_fns", {})  # one compile per (model, level, shapes)
    key = (level, tuple(keys), steps, lr, sparsity)
    if key not in fns:
        fns[key] = fast_jit(train)
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(INIT + 0.01 * rng.standard_normal(len(keys)), jnp.float32)
    logits = fns[key](logits, ablated, ids, U, full, jnp.float32(gap2))
    return np.asarray(jax.nn.sigmoid(logits), np.float64)


def node_mask(dec: Decomposed, pairs: Pairs, nodes: list[str] | None = None) -> Scores:
    nodes = nodes or node_keys(dec)
    m = learn_mask(dec, pairs, "node", nodes)
    gap = float(pairs.gap.mean())
    return Scores("node_mask", "node", tuple(nodes), np.tile(m * gap, (len(pairs), 1)), gap, threshold=0.5 * gap)


def edge_mask(dec: Decomposed, pairs: Pairs, edges: list[tuple[str, str]] | None = None) -> Scores:
    edges = edges or edge_keys(dec)
    m = learn_mask(dec, pairs, "edge", edges)
    gap = float(pairs.gap.mean())
    return Scores("edge_mask", "edge", tuple(edges), np.tile(m * gap, (len(pairs), 1)), gap, threshold=0.5 * gap)


METHODS = (
    Method("node_mask", "node", node_mask, "subnetwork probing: a sigmoid mask per node trained with optax "
                                           "to keep the metric under a sparsity penalty"),
    Method("edge_mask", "edge", edge_mask, "edge pruning: a sigmoid mask per edge trained with optax "
                                           "to keep the metric under a sparsity penalty"),
)
