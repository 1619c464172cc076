"""Localisation methods: activation patching, edge patching, AtP, and AtP*.

Every method estimates, for each pair, the change of the metric (see
:mod:`rasp_compiler.interp.pairs`) when one component's output (a *node*) or one
sender's output in one receiver's input only (an *edge*) is replaced by its value on
the corrupted input; a component's score is the mean absolute change over the pairs.

* ``patching``: exact. One forward pass per node (the clean run with that node's
  output swapped), one per receiver for all its incoming edges (batched).
* ``atp`` (attribution patching, Nanda 2023; edges: EAP, Syed et al. 2023): the
  first-order estimate ``(o_corrupt - o_clean) . dM/do``, one ``jax.grad`` through the
  JAX forward pass for all nodes and edges at once.
* ``atp_qk``: AtP with the QK fix of AtP* (Kramár et al. 2024). The gradient is taken
  with every head's query/key side frozen, and each head's attention pattern is instead
  *recomputed exactly* with the change the node makes to that head's input (propagated
  linearly, by a ``jax.jvp`` with patterns frozen), and the pattern change is multiplied
  by ``dM/dpattern``. A saturated softmax (score gaps of ~50 here) has a gradient of
  ~exp(-50), so plain AtP sees nothing on the query/key side; the exact recomputation
  sees the full flip.
* ``atp_star``: ``atp_qk`` plus GradDrop: for each layer l the estimate is recomputed
  with the gradient into layer l's components dropped, and the node's score is
  ``sum_l |estimate_l| / (L - 1)`` (L = 1: no drop), so paths that cancel each other in
  the full gradient are seen one at a time.

Scores below ``1e-4`` of the mean clean-corrupted metric gap are set to 0 (float32
noise at these weight scales, not evidence); see :mod:`rasp_compiler.interp.scoring`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.pairs import Pairs

NODE_METHODS = ("patching", "atp", "atp_qk", "atp_star")
EDGE_METHODS = ("edge_patching", "eap", "eap_qk", "eap_star")


@dataclass(frozen=True)
class Scores:
    """One method's estimates: ``per_pair`` (P, K) signed changes of the metric, ``keys`` the
    node names or (sender, receiver) edges, ``score`` the mean absolute change per key."""

    method: str
    level: str  # "node" or "edge"
    keys: tuple
    per_pair: np.ndarray
    gap: float  # mean M(clean) - M(corrupt)

    @property
    def score(self) -> dict:
        return {k: float(v) for k, v in zip(self.keys, np.abs(self.per_pair).mean(0))}


# --------------------------------------------------------------------------- helpers
def _np_run(dec: Decomposed, ids, **kw):
    with np.errstate(over="ignore", invalid="ignore"):
        return dec.run(ids, xp=np, **kw)


def component_deltas(dec: Decomposed, pairs: Pairs) -> tuple[dict, dict, dict]:
    """Records of the clean and corrupted runs, and corrupt - clean output per writer."""
    rc, rx = {}, {}
    _np_run(dec, pairs.clean, record=rc)
    _np_run(dec, pairs.corrupt, record=rx)
    delta = {c.name: rx["out:" + c.name] - rc["out:" + c.name] for c in dec.writers}
    return rc, rx, delta


def node_keys(dec: Decomposed) -> list[str]:
    return [c.name for c in dec.writers]


def edge_keys(dec: Decomposed) -> list[tuple[str, str]]:
    """Every (sender, receiver) with the sender before the receiver; the sink is "unembed"."""
    return [(s.name, r.name) for r in dec.components if r.kind != "embed"
            for s in dec.writers if s.order < r.order]


# --------------------------------------------------------------------------- patching
def activation_patching(dec: Decomposed, pairs: Pairs, nodes: list[str] | None = None) -> Scores:
    nodes = nodes or node_keys(dec)
    _, _, delta = component_deltas(dec, pairs)
    base = pairs.metric(_np_run(dec, pairs.clean))
    per = np.stack([pairs.metric(_np_run(dec, pairs.clean, out_delta={n: delta[n]})) - base for n in nodes], 1)
    return Scores("patching", "node", tuple(nodes), per, float(pairs.gap.mean()))


def edge_patching(dec: Decomposed, pairs: Pairs, edges: list[tuple[str, str]] | None = None) -> Scores:
    """Each edge s -> r: the clean run with ``o_s`` swapped in r's input only; one batched
    pass per receiver covers all its senders."""
    edges = edges or edge_keys(dec)
    _, _, delta = component_deltas(dec, pairs)
    base = pairs.metric(_np_run(dec, pairs.clean))
    P = len(pairs)
    per = np.zeros((P, len(edges)))
    by_r: dict[str, list[int]] = {}
    for k, (_, r) in enumerate(edges):
        by_r.setdefault(r, []).append(k)
    for r, ks in by_r.items():
        ids = np.tile(pairs.clean, (len(ks), 1))
        d_in = np.concatenate([delta[edges[k][0]] for k in ks])
        m = (_np_run(dec, ids, in_delta={r: d_in}) * np.tile(pairs.U, (len(ks), 1, 1))).sum((1, 2))
        per[:, ks] = (m - np.tile(base, len(ks))).reshape(len(ks), P).T
    return Scores("edge_patching", "edge", tuple(edges), per, float(pairs.gap.mean()))


# --------------------------------------------------------------------------- attribution
_CHUNK = 32  # tangents per batched jvp: a fixed shape, so one compile serves every target


_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _fast_jit(fn):
    """jax.jit compiled ahead of time with cheap XLA options (these graphs are tiny: the
    compile, not the run, is the cost), one executable per argument shape."""
    import jax

    jitted, compiled = jax.jit(fn), {}

    def call(*args):
        key = tuple((getattr(a, "shape", ()), str(getattr(a, "dtype", type(a)))) for a in args)
        if key not in compiled:
            lowered = jitted.lower(*args)
            try:
                compiled[key] = lowered.compile(compiler_options=_FAST_COMPILE)
            except Exception:  # an XLA without these options: default compile
                compiled[key] = lowered.compile()
        return compiled[key](*args)

    return call


def _jitted(dec: Decomposed):
    """The two compiled JAX functions AtP/AtP* need, built once per model.

    ``freeze`` (0/1) and ``drop`` ((n_layers,) 0/1 weights) are traced, so one executable
    serves AtP, the QK fix and every GradDrop layer; node and edge tangents share one jvp."""
    cache = dec.__dict__.setdefault("_attribution_fns", {})
    if cache:
        return cache
    import jax
    import jax.numpy as jnp

    dec.params(jnp)  # materialise the JAX arrays outside any trace
    writers = [c.name for c in dec.writers]
    receivers = [c.name for c in dec.components if c.kind != "embed"]
    heads = dec.heads
    d = dec.config.d_model

    def grads(ids, U, freeze, drop):
        P, n = ids.shape
        pats = {h.name: jnp.zeros((P, len(dec.head_indices(h)), n, n), jnp.float32) for h in heads}
        zeros = lambda names: {name: jnp.zeros((P, n, d), jnp.float32) for name in names}

        def f(od, idl, pd):
            resid = dec.run(ids, xp=jnp, out_delta=od, in_delta=idl, pattern_delta=pd, freeze_qk=freeze,
                            drop_layer=drop)
            return (resid * U).sum()

        return jax.grad(f, argnums=(0, 1, 2))(zeros(writers), zeros(receivers), pats)

    def head_jvp(ids, sel_out, sel_in, D, drop):
        """Inputs of every head and their change along D, injected at the writer (sel_out)
        or receiver (sel_in) each row selects; patterns frozen."""
        def inputs(D):
            od = {n: D * sel_out[:, k, None, None] for k, n in enumerate(writers)}
            idl = {n: D * sel_in[:, k, None, None] for k, n in enumerate(receivers)}
            rec: dict = {}
            dec.run(ids, xp=jnp, out_delta=od, in_delta=idl, freeze_qk=True, drop_layer=drop, record=rec)
            return {h.name: rec["in:" + h.name] for h in heads}
        return jax.jvp(inputs, (jnp.zeros_like(D),), (D,))

    cache.update(grads=_fast_jit(grads), head_jvp=_fast_jit(head_jvp), writers=writers, receivers=receivers)
    return cache


class _Attribution:
    """Shared machinery for AtP / AtP* on one set of pairs (JAX, jitted once per model)."""

    def __init__(self, dec: Decomposed, pairs: Pairs):
        import jax.numpy as jnp

        self.jnp = jnp
        self.dec, self.pairs = dec, pairs
        self.fns = _jitted(dec)
        self.rc, _, delta = component_deltas(dec, pairs)
        self.delta = {k: v.astype(np.float32) for k, v in delta.items()}
        self.ids = jnp.asarray(pairs.clean, jnp.int32)
        self.U = jnp.asarray(pairs.U, jnp.float32)
        self.heads = dec.heads
        self.visible = dec.visible(pairs.clean, np)
        self.n_layers = dec.config.n_layers

    def _drop(self, layer: int | None):
        w = np.zeros(self.n_layers, np.float32)
        if layer is not None:
            w[layer] = 1.0
        return self.jnp.asarray(w)

    def gradients(self, freeze_qk: bool, drop_layer: int | None):
        """dM/d(out_delta), dM/d(in_delta), dM/d(pattern) at the clean run (summed over pairs:
        pairs are independent, so each pair's rows hold its own gradient)."""
        g = self.fns["grads"](self.ids, self.U, self.jnp.float32(1.0 if freeze_qk else 0.0),
                              self._drop(drop_layer))
        return tuple({k: np.asarray(v, np.float64) for k, v in part.items()} for part in g)

    def linear(self, g_out, g_in, nodes, edges):
        d = self.delta
        node_est = np.stack([(g_out[n] * d[n]).sum((1, 2)) for n in nodes], 1)
        edge_est = np.stack([(g_in[r] * d[s]).sum((1, 2)) for s, r in edges], 1) if edges else None
        return node_est, edge_est

    def qk_terms(self, g_pat, tangents: list[tuple[str, str, str]], drop_layer: int | None) -> np.ndarray:
        """For each tangent ("out", node, node) or ("in", receiver, sender): the exact change of
        every head's softmax under the change the tangent makes to that head's input
        (propagated linearly with patterns frozen), times dM/dpattern. Returns (P, T)."""
        P, T = len(self.pairs), len(tangents)
        out = np.zeros((P, T))
        if not tangents or not self.heads:
            return out
        jnp = self.jnp
        col_out = {n: k for k, n in enumerate(self.fns["writers"])}
        col_in = {n: k for k, n in enumerate(self.fns["receivers"])}
        n_chunk = _CHUNK
        drop = self._drop(drop_layer)
        ids = jnp.asarray(np.tile(self.pairs.clean, (n_chunk, 1)), jnp.int32)
        vis = np.tile(self.visible, (n_chunk, 1, 1, 1))
        for start in range(0, T, n_chunk):
            chunk = tangents[start:start + n_chunk]
            sel_out = np.zeros((n_chunk * P, len(col_out)), np.float32)
            sel_in = np.zeros((n_chunk * P, len(col_in)), np.float32)
            D = np.zeros((n_chunk * P, *self.pairs.clean.shape[1:], self.dec.config.d_model), np.float32)
            for k, (kind, at, src) in enumerate(chunk):
                if kind == "out":
                    sel_out[k * P:(k + 1) * P, col_out[at]] = 1.0
                else:
                    sel_in[k * P:(k + 1) * P, col_in[at]] = 1.0
                D[k * P:(k + 1) * P] = self.delta[src]
            x, dx = self.fns["head_jvp"](ids, jnp.asarray(sel_out), jnp.asarray(sel_in), jnp.asarray(D), drop)
            total = np.zeros(n_chunk * P)
            for h in self.heads:
                dxh = np.asarray(dx[h.name], np.float64)
                moved = np.abs(dxh).reshape(len(dxh), -1).max(1) > 0
                if not moved.any():
                    continue
                x_new = np.asarray(x[h.name], np.float64)[moved] + dxh[moved]
                with np.errstate(over="ignore", invalid="ignore"):
                    a_new = self.dec.pattern(h, x_new, x_new, vis[moved], np)
                a_old = np.tile(self.rc["pattern:" + h.name], (n_chunk, 1, 1, 1))[moved]
                gp = np.tile(g_pat[h.name], (n_chunk, 1, 1, 1))[moved]
                total[moved] += (gp * (a_new - a_old)).sum((1, 2, 3))
            out[:, start:start + len(chunk)] = total.reshape(n_chunk, P)[:len(chunk)].T
        return out

    def estimate(self, nodes, edges, qk: bool, drop_layer: int | None):
        g_out, g_in, g_pat = self.gradients(freeze_qk=qk, drop_layer=drop_layer)
        node_est, edge_est = self.linear(g_out, g_in, nodes, edges)
        if qk:
            # only tangents that can reach some head's input carry a QK term
            order = {c.name: c.order for c in self.dec.components}
            last_head = max((h.order for h in self.heads), default=-1)
            tangents = [("out", n, n) for n in nodes if order[n] < last_head] + \
                       [("in", r, s) for s, r in edges if order[r] <= last_head]
            terms = dict(zip(tangents, self.qk_terms(g_pat, tangents, drop_layer).T))
            zero = np.zeros(len(self.pairs))
            node_est = node_est + np.stack([terms.get(("out", n, n), zero) for n in nodes], 1)
            if edges:
                edge_est = edge_est + np.stack([terms.get(("in", r, s), zero) for s, r in edges], 1)
        return node_est, edge_est


def attribution(dec: Decomposed, pairs: Pairs, nodes: list[str] | None = None,
                edges: list[tuple[str, str]] | None = None, variants=("atp", "atp_qk", "atp_star")
                ) -> dict[str, Scores]:
    """AtP, AtP with the QK fix, and AtP* (QK fix + GradDrop) for nodes and edges at once.

    Returns Scores under the node names ("atp", "atp_qk", "atp_star") and the edge names
    ("eap", "eap_qk", "eap_star")."""
    nodes = nodes or node_keys(dec)
    edges = edge_keys(dec) if edges is None else edges
    att = _Attribution(dec, pairs)
    gap = float(pairs.gap.mean())
    out: dict[str, Scores] = {}
    if "atp" in variants:
        n_est, e_est = att.estimate(nodes, edges, qk=False, drop_layer=None)
        out["atp"] = Scores("atp", "node", tuple(nodes), n_est, gap)
        if edges:
            out["eap"] = Scores("eap", "edge", tuple(edges), e_est, gap)
    if "atp_qk" in variants or "atp_star" in variants:
        n_est, e_est = att.estimate(nodes, edges, qk=True, drop_layer=None)
        if "atp_qk" in variants:
            out["atp_qk"] = Scores("atp_qk", "node", tuple(nodes), n_est, gap)
            if edges:
                out["eap_qk"] = Scores("eap_qk", "edge", tuple(edges), e_est, gap)
    if "atp_star" in variants:
        L = dec.config.n_layers
        if L == 1:
            n_abs, e_abs = np.abs(n_est), (np.abs(e_est) if edges else None)
        else:
            n_abs = np.zeros_like(n_est)
            e_abs = np.zeros_like(e_est) if edges else None
            for layer in range(L):
                n_l, e_l = att.estimate(nodes, edges, qk=True, drop_layer=layer)
                n_abs += np.abs(n_l) / (L - 1)
                if edges:
                    e_abs += np.abs(e_l) / (L - 1)
        out["atp_star"] = Scores("atp_star", "node", tuple(nodes), n_abs, gap)
        if edges:
            out["eap_star"] = Scores("eap_star", "edge", tuple(edges), e_abs, gap)
    return out


def run_all(dec: Decomposed, pairs: Pairs, edges: bool = True) -> dict[str, Scores]:
    """Every node method, and every edge method when ``edges``."""
    res = {"patching": activation_patching(dec, pairs)}
    if edges:
        res["edge_patching"] = edge_patching(dec, pairs)
    res.update(attribution(dec, pairs, edges=None if edges else []))
    return res
