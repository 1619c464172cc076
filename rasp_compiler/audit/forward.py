"""The documented forward pass in numpy float64, as a sum of unit outputs with hooks.

Written from docs/testbed_format.md ("The model"): embed + position, then per layer every
attention head (scores ``q·k`` not scaled, PAD keys masked, causal when task.json says so,
softmax) and the ReLU MLP, each added to the residual stream; logits ``resid @ W_U``.
Nothing is skipped: a head or neuron that no listed component owns (and ``b_out``) is
still computed, as the 15-line torch loader computes it, and forms the layer's ``rest``
unit (``L{l}.attn:rest``, ``L{l}.mlp:rest``) when it can write anything, so that weight
outside every listed component shows up as a component outside the circuit.

``run(ids, patch)`` replaces the output of each unit named in ``patch`` by the given array
(e.g. its output on another input); later units then read the changed stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .files import PAD, AuditFileError, TaskFiles, get


@dataclass(frozen=True)
class Unit:
    name: str
    kind: str  # embed | attn | mlp (a head or head group, a neuron range, or a layer's rest)
    layer: int
    heads: tuple = ()
    neurons: tuple = ()
    bias: bool = False  # the MLP rest carries b_out
    listed: bool = True  # a circuit.json component (False: a rest unit)


@dataclass(frozen=True)
class Run:
    resid: np.ndarray  # final residual stream (B, n_ctx, d_model)
    outs: dict = field(default_factory=dict)  # unit name -> its output (B, n_ctx, d_model)


def units_of(files: TaskFiles) -> list[Unit]:
    """The units of the forward pass, in forward order: circuit.json's components plus rest units."""
    cfile = files.at("circuit.json")
    W, H = files.weights, int(files.config["n_heads"])
    by_layer: dict[int, list[Unit]] = {}
    embed = None
    for i, c in enumerate(get(files.circuit, "components", cfile)):
        where = f"components[{i}]"
        kind, name = get(c, "kind", cfile, where), get(c, "name", cfile, where)
        layer = get(c, "layer", cfile, where)
        if kind == "embed":
            embed = Unit(name, "embed", -1)
        elif kind in ("head", "attn"):
            heads = (get(c, "head", cfile, where),) if kind == "head" else tuple(get(c, "heads", cfile, where))
            if not all(isinstance(h, int) and 0 <= h < H for h in heads) or not 0 <= layer < files.n_layers:
                raise AuditFileError(cfile, where, f"head {heads} of layer {layer} is not in the model")
            by_layer.setdefault(layer, []).append(Unit(name, "attn", layer, heads=heads))
        elif kind in ("mlp", "mlp_layer"):
            lo, hi = get(c, "lo", cfile, where), get(c, "hi", cfile, where)
            m = W[f"blocks.{layer}.mlp.W_in"].shape[1] if 0 <= layer < files.n_layers else -1
            if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= m):
                raise AuditFileError(cfile, where, f"neurons {lo}..{hi} of layer {layer} are not in the model")
            by_layer.setdefault(layer, []).append(Unit(name, "mlp", layer, neurons=tuple(range(lo, hi))))
        elif kind != "unembed":
            raise AuditFileError(cfile, f"{where}.kind", f"unknown component kind {kind!r}")
    if embed is None:
        raise AuditFileError(cfile, "components", "no embed component")
    out = [embed]
    for l in range(files.n_layers):
        mine = by_layer.get(l, [])
        attn = [u for u in mine if u.kind == "attn"]
        mlp = [u for u in mine if u.kind == "mlp"]
        b = f"blocks.{l}."
        owned = {h for u in attn for h in u.heads}
        rest = tuple(h for h in range(H) if h not in owned
                     and np.abs(W[b + "attn.W_V"][h]).max(initial=0) > 0 and np.abs(W[b + "attn.W_O"][h]).max(initial=0) > 0)
        out += attn + ([Unit(f"L{l}.attn:rest", "attn", l, heads=rest, listed=False)] if rest else [])
        owned = {i for u in mlp for i in u.neurons}
        rest = tuple(i for i in range(W[b + "mlp.W_in"].shape[1])
                     if i not in owned and np.abs(W[b + "mlp.W_out"][i]).max(initial=0) > 0)
        bias = bool(np.abs(W[b + "mlp.b_out"]).max(initial=0) > 0)
        out += mlp + ([Unit(f"L{l}.mlp:rest", "mlp", l, neurons=rest, bias=bias, listed=False)]
                      if rest or bias else [])
    return out


class Forward:
    """The model of a task folder, run in float64 from its stored weights."""

    def __init__(self, files: TaskFiles):
        self.W = files.weights
        self.causal = bool(files.task.get("causal", files.config.get("causal", False)))
        self.n_layers = files.n_layers
        self.units = units_of(files)

    def run(self, ids: np.ndarray, patch: dict | None = None) -> Run:
        """Final residual and every unit's output on token ids (B, n) (BOS = 0 first, PAD = 1)."""
        W, patch = self.W, patch or {}
        ids = np.asarray(ids, np.int64)
        B, n = ids.shape
        outs = {}

        def put(unit: Unit, value: np.ndarray) -> np.ndarray:
            value = patch.get(unit.name, value)
            outs[unit.name] = value
            return value

        layers: dict[int, list[Unit]] = {}
        for u in self.units[1:]:
            layers.setdefault(u.layer, []).append(u)
        x = put(self.units[0], W["embed.W_E"][ids] + W["pos_embed.W_pos"][:n][None])
        allowed = (ids != PAD)[:, None, None, :]
        if self.causal:
            allowed = allowed & np.tril(np.ones((n, n), bool))[None, None]
        for l in range(self.n_layers):
            b = f"blocks.{l}."
            units = layers.get(l, [])
            q, k, v = (np.einsum("bpd,hde->bhpe", x, W[b + "attn.W_" + s]) for s in "QKV")
            scores = np.where(allowed, q @ k.transpose(0, 1, 3, 2), -np.inf)
            scores = scores - scores.max(-1, keepdims=True)
            a = np.exp(scores)
            a = a / a.sum(-1, keepdims=True)
            heads = np.einsum("bhpe,hed->bhpd", a @ v, W[b + "attn.W_O"])
            delta = np.zeros_like(x)
            for u in units:
                if u.kind == "attn":
                    delta = delta + put(u, heads[:, list(u.heads)].sum(1))
            x = x + delta
            post = np.maximum(x @ W[b + "mlp.W_in"] + W[b + "mlp.b_in"], 0.0)
            delta = np.zeros_like(x)
            for u in units:
                if u.kind == "mlp":
                    idx = list(u.neurons)
                    out = post[..., idx] @ W[b + "mlp.W_out"][idx]
                    if u.bias:
                        out = out + W[b + "mlp.b_out"]
                    delta = delta + put(u, out)
            x = x + delta
        return Run(x, outs)

    def logits(self, resid: np.ndarray) -> np.ndarray:
        return resid @ self.W["unembed.W_U"]
