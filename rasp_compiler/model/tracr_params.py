"""A compiled model's weights in tracr's haiku parameter tree, and back.

tracr code reads ``params["transformer/layer_0/attn/query"]["w"]`` and fine-tunes that
nested dict; ours is a flat dict with TransformerLens names (``blocks.0.attn.W_Q``). The
tree here holds the same weights under tracr's module names:

* ``token_embed`` / ``pos_embed``: ``embeddings`` (rows: our token ids, positions);
* ``transformer/layer_{l}/attn/{query,key,value}``: ``w`` (d_model, heads * key_size) and ``b``;
  ``.../attn/linear``: ``w`` (heads * key_size, d_model) and ``b``;
* ``transformer/layer_{l}/mlp/linear_1``, ``linear_2``: ``w`` and ``b``.

tracr's attention divides its scores by sqrt(key_size) and ours does not (a compiled head's
scale is already in its weights), so the query weights here are ours times sqrt(key_size):
tracr's forward pass over this tree computes our scores. Our attention has no biases (their
``b`` are zeros). The unembedding is not a parameter in tracr (a fixed projection), so it
is not in the tree either. Arrays are copies: changing the tree never changes the model.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from rasp_compiler.model.config import ModelConfig

_HEAD_PARTS = (("query", "attn.W_Q"), ("key", "attn.W_K"), ("value", "attn.W_V"))


def to_haiku(params: Mapping[str, np.ndarray], config: ModelConfig) -> dict[str, dict[str, np.ndarray]]:
    """tracr's nested layout of our flat parameters (see the module docstring)."""
    h, d, dh = config.n_heads, config.d_model, config.d_head
    f32 = np.float32
    tree = {"token_embed": {"embeddings": np.array(params["embed.W_E"], f32)},
            "pos_embed": {"embeddings": np.array(params["pos_embed.W_pos"], f32)}}
    for l in range(config.n_layers):
        p, t = f"blocks.{l}.", f"transformer/layer_{l}/"
        for name, ours in _HEAD_PARTS:
            w = np.asarray(params[p + ours], f32).transpose(1, 0, 2).reshape(d, h * dh)  # heads side by side
            scale = math.sqrt(dh) if name == "query" else 1.0
            tree[t + "attn/" + name] = {"w": (w * f32(scale)).astype(f32), "b": np.zeros(h * dh, f32)}
        tree[t + "attn/linear"] = {"w": np.array(params[p + "attn.W_O"], f32).reshape(h * dh, d),
                                   "b": np.zeros(d, f32)}
        tree[t + "mlp/linear_1"] = {"w": np.array(params[p + "mlp.W_in"], f32),
                                    "b": np.array(params[p + "mlp.b_in"], f32)}
        tree[t + "mlp/linear_2"] = {"w": np.array(params[p + "mlp.W_out"], f32),
                                    "b": np.array(params[p + "mlp.b_out"], f32)}
    return tree
