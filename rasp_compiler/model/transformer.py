"""The forward pass of a compiled decoder-only transformer.

One function serves two array libraries: ``jax.numpy`` (jitted, the model proper,
differentiable for attribution methods) and ``numpy`` (no compilation at all, used
for checks and one-off runs). No LayerNorm; attention scores are not divided by
sqrt(d_head) (the compiled scales already say how sharp each head is).

``hooks`` maps an activation name to a function that may replace it (patching,
ablation); activation names follow TransformerLens: ``blocks.{l}.hook_resid_pre``,
``blocks.{l}.attn.hook_pattern``, ``blocks.{l}.hook_attn_out``,
``blocks.{l}.hook_resid_mid``, ``blocks.{l}.mlp.hook_post``,
``blocks.{l}.hook_mlp_out``, ``blocks.{l}.hook_resid_post``, plus ``hook_embed``,
``hook_pos_embed`` and, per head, ``blocks.{l}.attn.hook_z`` (n_heads axis 2).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

Hooks = Mapping[str, Callable[[Any], Any]]
Widths = tuple[int, int, int]  # heads, d_head and d_mlp a layer uses


def forward(params: Mapping[str, Any], ids, *, xp, n_layers: int, causal: bool, pad_id: int = 1,
            hooks: Hooks | None = None, cache: dict | None = None, widths: Sequence[Widths] | None = None,
            with_residual: bool = False):
    """Logits (batch, positions, outputs) for token ids (batch, positions); with
    ``with_residual``, the pair (logits, final residual stream) (for the one-hot guard).

    ``widths`` (per layer: heads, d_head and d_mlp in use) lets the forward pass skip the
    padding of a layer whose parts are narrower than the model's uniform shapes; only
    valid when every weight beyond them is exactly zero, and only without hooks or cache
    (activations would lose their documented shapes).
    """
    hooks = hooks or {}
    assert widths is None or not (hooks or cache is not None), "widths skip activations that hooks expect"

    def hook(name, value):
        if name in hooks:
            value = hooks[name](value)
        if cache is not None:
            cache[name] = value
        return value

    n = ids.shape[1]
    tok = hook("hook_embed", params["embed.W_E"][ids])
    pos = hook("hook_pos_embed", params["pos_embed.W_pos"][:n][None])
    x = tok + pos
    visible = (ids != pad_id)[:, None, None, :]  # (batch, 1, 1, key)
    if causal:
        visible = visible & xp.tril(xp.ones((n, n), dtype=bool))[None, None]
    for l in range(n_layers):
        p = f"blocks.{l}."
        n_heads, d_head, d_mlp = (None, None, None) if widths is None else widths[l]
        x = hook(p + "hook_resid_pre", x)
        if d_head != 0:
            w_q, w_k, w_v = (params[p + w][:n_heads, :, :d_head] for w in ("attn.W_Q", "attn.W_K", "attn.W_V"))
            w_o = params[p + "attn.W_O"][:n_heads, :d_head]
            # matmuls rather than einsum: numpy's einsum does not reach BLAS, and these
            # matrices are as wide as the biggest value set (thousands of dimensions).
            xh = x[:, None]  # (batch, 1, pos, d) against (heads, d, d_head)
            q, k, v = xh @ w_q, xh @ w_k, xh @ w_v  # (batch, heads, pos, d_head)
            scores = q @ xp.swapaxes(k, -1, -2)  # (batch, heads, query, key)
            scores = xp.where(visible, scores, -xp.inf)
            scores = scores - scores.max(axis=-1, keepdims=True)
            weights = xp.exp(scores)
            pattern = hook(p + "attn.hook_pattern", weights / weights.sum(axis=-1, keepdims=True))
            z = hook(p + "attn.hook_z", xp.swapaxes(pattern @ v, 1, 2))  # (batch, query, heads, d_head)
            attn_out = hook(p + "hook_attn_out", z.reshape(z.shape[:2] + (-1,)) @ w_o.reshape(-1, w_o.shape[-1]))
            x = hook(p + "hook_resid_mid", x + attn_out)
        if d_mlp != 0:
            pre = x @ params[p + "mlp.W_in"][:, :d_mlp] + params[p + "mlp.b_in"][:d_mlp]
            post = hook(p + "mlp.hook_post", xp.maximum(pre, 0))
            mlp_out = hook(p + "hook_mlp_out", post @ params[p + "mlp.W_out"][:d_mlp] + params[p + "mlp.b_out"])
            x = hook(p + "hook_resid_post", x + mlp_out)
    logits = hook("logits", x @ params["unembed.W_U"])
    return (logits, x) if with_residual else logits
