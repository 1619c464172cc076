"""The forward pass written as a sum of component outputs, for patching and attribution.

With no LayerNorm the residual stream is exactly the sum of what the components wrote
(embedding, each head, each MLP block, the MLP output bias), so each component can be
run on its *own* copy of the residual. :class:`Decomposed` does that and exposes the
knobs the methods need, for numpy and jax.numpy alike:

* ``out_delta[name]`` is added to a component's output (patching a node: the corrupted
  output minus the clean one; differentiating with respect to it: AtP);
* ``in_delta[name]`` is added to the residual one receiver reads, and to no one else's
  (patching an edge sender -> receiver; the sink that reads the final residual is
  ``"unembed"``);
* ``freeze_qk`` stops gradients into the query/key side of every head (the AtP* QK fix
  replaces those paths with an exact recomputation of the softmax); a traced 0/1 scalar
  works too (so one jitted function serves both);
* ``grad_drop`` stops gradients into the inputs of chosen components (GradDrop, one
  sublayer at a time): a (n_components,) or (batch, n_components) array of 0/1 weights
  indexed like ``components`` (traced weights work; the values are unchanged);
* ``edge_mask`` with ``ablated``: a (W, R) or (batch, W, R) array (W = ``writers``,
  R = ``receivers``); receiver r reads ``ablated[s]`` in place of sender s's output in
  proportion ``1 - edge_mask[s, r]`` (1 keeps the edge, 0 resample-ablates it). What
  ACDC, path patching, EAP-IG and mask learning need;
* ``node_mask`` with ``ablated``: a (W,) or (batch, W) array; each writer's output
  becomes ``ablated + node_mask * (output - ablated)``, for every reader at once;
* ``pattern_delta[name]`` is added to a head's attention pattern (gradients w.r.t. the
  pattern);
* ``record`` (a dict) receives every component's input (``in:``), output (``out:``) and
  attention pattern (``pattern:``; (batch, heads, query, key)).

``run`` returns the final residual stream (batch, positions, d_model); logits are
``resid @ W_U``. It reproduces the model's own forward pass (tests check this).

ReLU's derivative at exactly 0 is ``relu_at_zero`` (default 1/2, ``jnp.maximum``'s; torch,
TransformerLens and ``jax.nn.relu`` take 0). Constructed and compiled lookup blocks keep every
pre-activation clear of 0 on real inputs, so there the choice changes no score; compiled
numerical interpolations still have kinks on input values.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from rasp_compiler.interp.ground_truth import Component, components


class Decomposed:
    def __init__(self, model, granularity: str = "node", relu_at_zero: float = 0.5):
        self.model = model
        self.relu_at_zero = float(relu_at_zero)
        self.config = model.config
        self.granularity = granularity
        self.components: list[Component] = components(model, granularity)
        self.by_name = {c.name: c for c in self.components}
        self.pad_id = 1  # row of PAD in config.input_tokens
        self._jax_params = None

    # parameters ------------------------------------------------------------------------------
    def params(self, xp):
        if xp is np:
            return self.model.params
        if self._jax_params is None:
            self._jax_params = self.model.jax_params
        return self._jax_params

    @property
    def writers(self) -> list[Component]:
        return [c for c in self.components if c.kind != "unembed"]

    @property
    def receivers(self) -> list[Component]:
        """Every component that reads the residual (the sink ``unembed`` last)."""
        return [c for c in self.components if c.kind != "embed"]

    @property
    def heads(self) -> list[Component]:
        return [c for c in self.components if c.kind in ("head", "attn")]

    def head_indices(self, comp: Component) -> list[int]:
        return [comp.head] if comp.kind == "head" else list(comp.heads)

    # the pass --------------------------------------------------------------------------------
    def visible(self, ids, xp):
        n = ids.shape[1]
        vis = (ids != self.pad_id)[:, None, None, :]
        if self.config.causal:
            vis = vis & xp.tril(xp.ones((n, n), dtype=bool))[None, None]
        return vis

    def pattern(self, comp: Component, x_q, x_k, visible, xp, params=None):
        """Attention pattern (batch, heads, query, key) of a head component on given inputs."""
        p = params if params is not None else self.params(xp)
        hs = self.head_indices(comp)
        pre = f"blocks.{comp.layer}.attn."
        wq, wk = p[pre + "W_Q"][np.asarray(hs)], p[pre + "W_K"][np.asarray(hs)]
        q = xp.einsum("btd,hde->bthe", x_q, wq)
        k = xp.einsum("btd,hde->bthe", x_k, wk)
        scores = xp.einsum("bqhe,bkhe->bhqk", q, k)
        scores = xp.where(visible, scores, -xp.inf)
        scores = scores - scores.max(axis=-1, keepdims=True)
        w = xp.exp(scores)
        return w / w.sum(axis=-1, keepdims=True)

    def run(self, ids, *, xp=np, out_delta: Mapping[str, Any] | None = None,
            in_delta: Mapping[str, Any] | None = None, pattern_delta: Mapping[str, Any] | None = None,
            freeze_qk: bool = False, grad_drop=None, edge_mask=None, node_mask=None,
            ablated: Mapping[str, Any] | None = None, record: dict | None = None):
        """Final residual stream (batch, positions, d_model) for token ids (batch, positions)."""
        out_delta, in_delta, pattern_delta = out_delta or {}, in_delta or {}, pattern_delta or {}
        if (edge_mask is not None or node_mask is not None) and ablated is None:
            raise ValueError("edge_mask/node_mask need `ablated`: the output each writer is replaced by "
                             "(e.g. the corrupted run's record, {name: record['out:' + name]})")
        p = self.params(xp)
        if xp is np:
            stop = lambda a: a
        else:
            import jax
            stop = jax.lax.stop_gradient
        n = ids.shape[1]
        vis = self.visible(ids, xp)
        index = {c.name: i for i, c in enumerate(self.components)}
        w_index = {c.name: i for i, c in enumerate(self.writers)}
        r_index = {c.name: i for i, c in enumerate(self.receivers)}
        n_before = {c.name: sum(w.order < c.order for w in self.writers) for c in self.receivers}
        removed = []  # ablated[s] - out[s] per writer so far, in writer order (edge masks)

        def finish(comp, out):
            if comp.name in out_delta:
                out = out + out_delta[comp.name]
            if node_mask is not None:
                m = node_mask[..., w_index[comp.name]]
                m = m[:, None, None] if getattr(m, "ndim", 0) else m
                out = ablated[comp.name] + m * (out - ablated[comp.name])
            if edge_mask is not None:
                removed.append(ablated[comp.name] - out)
            if record is not None:
                record["out:" + comp.name] = out
            return out

        def receive(comp, resid):
            x = resid
            if edge_mask is not None:
                k = n_before[comp.name]
                w = 1 - edge_mask[..., :k, r_index[comp.name]]
                if xp is not np or w.any():
                    D = xp.stack(removed[:k])
                    x = x + (xp.tensordot(w, D, 1) if w.ndim == 1 else xp.einsum("bk,kbtd->btd", w, D))
            if grad_drop is not None:
                g = grad_drop[..., index[comp.name]]
                g = g[:, None, None] if getattr(g, "ndim", 0) else g
                x = x + g * (stop(x) - x)  # value unchanged, gradient scaled by 1 - g
            if comp.name in in_delta:
                x = x + in_delta[comp.name]
            if record is not None:
                record["in:" + comp.name] = x
            return x

        by_layer: dict[int, list[Component]] = {}
        for c in self.components:
            by_layer.setdefault(c.layer, []).append(c)
        emb = self.by_name["embed"]
        resid = finish(emb, p["embed.W_E"][ids] + p["pos_embed.W_pos"][:n][None])
        for l in range(self.config.n_layers):
            pre = f"blocks.{l}."
            outs = []
            for comp in by_layer.get(l, []):
                if comp.kind not in ("head", "attn"):
                    continue
                x = receive(comp, resid)
                if isinstance(freeze_qk, bool):
                    xqk = stop(x) if freeze_qk else x
                else:
                    xqk = x + freeze_qk * (stop(x) - x)
                pat = self.pattern(comp, xqk, xqk, vis, xp, p)
                if comp.name in pattern_delta:
                    pat = pat + pattern_delta[comp.name]
                if record is not None:
                    record["pattern:" + comp.name] = pat
                hs = np.asarray(self.head_indices(comp))
                v = xp.einsum("btd,hde->bthe", x, p[pre + "attn.W_V"][hs])
                z = xp.einsum("bhqk,bkhe->bqhe", pat, v)
                outs.append(finish(comp, xp.einsum("bqhe,hed->bqd", z, p[pre + "attn.W_O"][hs])))
            mid = resid + sum(outs) if outs else resid
            outs = []
            for comp in by_layer.get(l, []):
                if comp.kind not in ("mlp", "mlp_layer"):
                    continue
                x = receive(comp, mid)
                sl = slice(comp.lo, comp.hi)
                h = x @ p[pre + "mlp.W_in"][:, sl] + p[pre + "mlp.b_in"][sl]
                post = xp.where(h > 0, h, 0)  # derivative 0 at 0 ...
                if self.relu_at_zero and xp is not np:  # ... or relu_at_zero (the value is unchanged)
                    post = post + self.relu_at_zero * xp.where(h == 0, h, 0)
                out = post @ p[pre + "mlp.W_out"][sl]
                if comp.kind == "mlp_layer":
                    out = out + p[pre + "mlp.b_out"]
                outs.append(finish(comp, out))
            resid = mid + sum(outs) if outs else mid
            if self.granularity == "node":
                resid = resid + p[pre + "mlp.b_out"]  # zero in compiled models; kept for exactness
        return receive(self.by_name["unembed"], resid)

    def logits(self, ids, xp=np, **kw):
        return self.run(ids, xp=xp, **kw) @ self.params(xp)["unembed.W_U"]
