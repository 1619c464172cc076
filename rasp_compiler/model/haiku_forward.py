"""A haiku-transformed forward pass with tracr's module names (optional extra: ``pip install dm-haiku``).

Over the tree of :mod:`rasp_compiler.model.tracr_params` it computes what tracr's compiled
transformer computes — embeddings, then per layer an attention block (scores divided by
sqrt(key_size), PAD keys and, if causal, later keys masked out) and a ReLU MLP, each added
to the residual — and so it gives our logits. Its output has tracr's fields
(``unembedded_output``: the argmax for a categorical output, the number for a numerical
one; ``transformer_output``: residuals, layer outputs, attention logits) plus ``logits``.
The unembedding is a constant, as in tracr. ``forward.init`` gives the model's own tree.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from rasp_compiler.model.tracr_params import to_haiku


class TransformerOutput(NamedTuple):
    residuals: list  # after every attention and MLP block
    layer_outputs: list  # what every block added
    attn_logits: list  # per layer (batch, heads, query, key), after the 1/sqrt(key_size) scale
    output: Any  # the last residual (no final layer norm: there is none)
    input_embeddings: Any


class ForwardOutput(NamedTuple):
    transformer_output: TransformerOutput
    unembedded_output: Any  # (batch, positions): argmax ids, or the numerical output
    logits: Any  # (batch, positions, outputs): what CompiledModel's forward pass gives


def haiku_forward(model):
    """``hk.Transformed`` (no rng) of ``model``'s forward pass under tracr's module names:
    ``forward.apply(params, ids)`` with ``params`` = ``model.haiku_params``, ``ids`` (batch,
    positions) from ``model.input_encoder``."""
    try:
        import haiku as hk
    except ImportError as exc:  # the optional extra
        raise ImportError("the haiku forward pass needs dm-haiku: pip install 'rasp_compiler[haiku]'") from exc
    import jax
    import jax.numpy as jnp

    c = model.config
    tree = to_haiku(model.params, c)
    unembed = np.asarray(model.params["unembed.W_U"], np.float32)
    pad_id = model.input_encoder.pad_encoding

    def linear(x, tree_path: str, name: str):
        w, b = tree[tree_path]["w"], tree[tree_path]["b"]
        return hk.Linear(w.shape[1], name=name, w_init=hk.initializers.Constant(w),
                         b_init=hk.initializers.Constant(b))(x)

    def attention(x, mask, path: str):
        with hk.experimental.name_scope("attn"):
            batch, n, _ = x.shape
            q, k, v = (linear(x, f"{path}/attn/{part}", part).reshape(batch, n, c.n_heads, c.d_head)
                       for part in ("query", "key", "value"))
            logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(c.d_head)
            logits = jnp.where(mask, logits, -1e30)
            z = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v).reshape(batch, n, -1)
            return linear(z, f"{path}/attn/linear", "linear"), logits

    def mlp(x, path: str):
        with hk.experimental.name_scope("mlp"):
            return linear(jax.nn.relu(linear(x, f"{path}/mlp/linear_1", "linear_1")), f"{path}/mlp/linear_2",
                          "linear_2")

    def forward(ids):
        ids = jnp.asarray(ids)
        n = ids.shape[1]
        tok = hk.Embed(embedding_matrix=tree["token_embed"]["embeddings"], name="token_embed")(ids)
        pos = hk.Embed(embedding_matrix=tree["pos_embed"]["embeddings"], name="pos_embed")(
            jnp.broadcast_to(jnp.arange(n), ids.shape))
        x = embeddings = tok + pos
        mask = (ids != pad_id)[:, None, None, :]
        if c.causal:
            mask = mask & jnp.tril(jnp.ones((n, n), bool))[None, None]
        residuals, outputs, attn_logits = [], [], []
        with hk.experimental.name_scope("transformer"):
            for l in range(c.n_layers):
                with hk.experimental.name_scope(f"layer_{l}"):
                    out, logits = attention(x, mask, f"transformer/layer_{l}")
                    x = x + out
                    residuals.append(x), outputs.append(out), attn_logits.append(logits)
                    out = mlp(x, f"transformer/layer_{l}")
                    x = x + out
                    residuals.append(x), outputs.append(out)
        logits = x @ unembed
        unembedded = logits[..., 0] if c.output_numerical else jnp.argmax(logits, axis=-1)
        return ForwardOutput(TransformerOutput(residuals, outputs, attn_logits, x, embeddings), unembedded, logits)

    return hk.without_apply_rng(hk.transform(forward))
