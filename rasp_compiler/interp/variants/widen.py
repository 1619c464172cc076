"""Adding heads and MLP neurons to a compiled model: the same model type, wider weights.

Variants that add components (distractors, backups) append heads after a layer's last
head and neuron blocks after its last neuron; the compiled components keep their
indices, so every hook and label of the original still means the same thing. Every new
head and block carries a label (``labels.heads`` / ``labels.mlps`` / ``labels.neurons``)
so :func:`rasp_compiler.interp.ground_truth.components` lists it like any other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from rasp_compiler.model.compiled import CompiledModel
from rasp_compiler.model.config import ModelLabels


@dataclass(frozen=True)
class NewHead:
    """One head to add: ``W_Q``/``W_K``/``W_V`` (d_model, k), ``W_O`` (k, d_model), k <= d_head."""

    layer: int
    label: str
    W_Q: np.ndarray
    W_K: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray


@dataclass(frozen=True)
class NewBlock:
    """One MLP block to add: ``W_in`` (d_model, n), ``b_in`` (n,), ``W_out`` (n, d_model)."""

    layer: int
    label: str
    W_in: np.ndarray
    b_in: np.ndarray
    W_out: np.ndarray
    neuron_labels: tuple[str, ...] = field(default=())


def widen(model: CompiledModel, heads: list[NewHead] = (), blocks: list[NewBlock] = ()) -> CompiledModel:
    """``model`` with the given heads and MLP blocks appended (the function is unchanged
    exactly when the new parts' writes cancel or are read by nothing)."""
    c, p, labels = model.config, model.params, model.labels
    L = c.n_layers
    per_layer_heads = [[h for h in heads if h.layer == l] for l in range(L)]
    per_layer_blocks = [[b for b in blocks if b.layer == l] for l in range(L)]
    n_heads = c.n_heads + max((len(hs) for hs in per_layer_heads), default=0)
    d_mlp = c.d_mlp + max((sum(b.W_in.shape[1] for b in bs) for bs in per_layer_blocks), default=0)
    d_head = max([c.d_head] + [h.W_Q.shape[1] for h in heads])
    out = {k: np.asarray(v, np.float32) for k, v in p.items() if not k.startswith("blocks.")}
    head_labels, mlp_labels, neuron_labels = [], [], []
    for l in range(L):
        pre = f"blocks.{l}."
        for w in ("W_Q", "W_K", "W_V"):
            a = np.zeros((n_heads, c.d_model, d_head), np.float32)
            a[:c.n_heads, :, :c.d_head] = p[pre + "attn." + w]
            for i, h in enumerate(per_layer_heads[l]):
                m = getattr(h, w)
                a[c.n_heads + i, :, :m.shape[1]] = m
            out[pre + "attn." + w] = a
        o = np.zeros((n_heads, d_head, c.d_model), np.float32)
        o[:c.n_heads, :c.d_head] = p[pre + "attn.W_O"]
        for i, h in enumerate(per_layer_heads[l]):
            o[c.n_heads + i, :h.W_O.shape[0]] = h.W_O
        out[pre + "attn.W_O"] = o
        hl = list(labels.heads[l]) + [h.label for h in per_layer_heads[l]]
        head_labels.append(tuple(hl + [""] * (n_heads - len(hl))))

        w_in = np.zeros((c.d_model, d_mlp), np.float32)
        b_in = np.zeros(d_mlp, np.float32)
        w_out = np.zeros((d_mlp, c.d_model), np.float32)
        w_in[:, :c.d_mlp] = p[pre + "mlp.W_in"]
        b_in[:c.d_mlp] = p[pre + "mlp.b_in"]
        w_out[:c.d_mlp] = p[pre + "mlp.W_out"]
        ml, nl = list(labels.mlps[l]), list(labels.neurons[l]) + [""] * (d_mlp - c.d_mlp)
        at = c.d_mlp
        for b in per_layer_blocks[l]:
            n = b.W_in.shape[1]
            w_in[:, at:at + n], b_in[at:at + n], w_out[at:at + n] = b.W_in, b.b_in, b.W_out
            ml.append((b.label, at, at + n))
            for i in range(n):
                nl[at + i] = b.neuron_labels[i] if b.neuron_labels else f"{b.label}[{i}]"
            at += n
        out[pre + "mlp.W_in"], out[pre + "mlp.b_in"], out[pre + "mlp.W_out"] = w_in, b_in, w_out
        out[pre + "mlp.b_out"] = np.asarray(p[pre + "mlp.b_out"], np.float32)
        mlp_labels.append(tuple(ml))
        neuron_labels.append(tuple(nl))
    config = dataclasses.replace(c, n_heads=n_heads, d_head=d_head, d_mlp=d_mlp)
    new_labels = ModelLabels(labels.residual, tuple(head_labels), tuple(mlp_labels), tuple(neuron_labels))
    new = CompiledModel(config, out, new_labels, compilation=model.compilation, source=model.source,
                        metadata=model.metadata)
    basis = getattr(model, "residual_basis", None)
    if basis is not None:
        new.residual_basis = basis
    return new
