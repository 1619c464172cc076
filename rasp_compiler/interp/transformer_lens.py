"""Export a compiled model to TransformerLens, so its tools run on a known circuit.

``to_hooked_transformer(model)`` builds a ``HookedTransformer`` whose weights are the
compiled ones, loaded by state dict (the parameter names and shapes already follow
TransformerLens; the biases b_Q, b_K, b_V, b_O and b_U are zero). Config: no
LayerNorm (``normalization_type=None``), ReLU MLPs, standard learned positional
embedding, ``use_attn_scale=False`` (our attention scores are not divided by
sqrt(d_head)), ``default_prepend_bos=False`` (our token lists already start with BOS),
``d_vocab`` = BOS, PAD and the vocabulary in ``config.input_tokens`` order,
``d_vocab_out`` = the number of outputs (1 for a numerical output).

Attention direction: TransformerLens masks attention causally by default, which would
silently change a non-causal compiled model (``reverse`` reads later positions). We
set ``attention_dir="bidirectional"`` for non-causal models and ``"causal"`` for causal
ones. Padding: run TransformerLens on the real tokens only (no PAD); our model masks
PAD keys, so the outputs at real positions are the same.

Requires the optional extra: ``pip install 'rasp_compiler[tl]'`` (torch and
transformer-lens). ``HookedTransformer`` was removed in transformer-lens 4.0, so this
needs transformer-lens < 4 (tested with 3.9.0).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

INSTALL_HINT = ("needs torch and transformer-lens<4 (HookedTransformer was removed in 4.0): "
                "pip install torch==2.13.0 'transformer-lens<4'")


def _import():
    try:
        import torch
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as e:  # transformer-lens 4 raises ImportError for HookedTransformer too
        raise ImportError(f"to_hooked_transformer {INSTALL_HINT} ({e})") from e
    return torch, HookedTransformer, HookedTransformerConfig


def hooked_transformer_config(model) -> Any:
    """The HookedTransformerConfig of a compiled model (see the module docstring)."""
    torch, _, HookedTransformerConfig = _import()
    c = model.config
    return HookedTransformerConfig(
        n_layers=c.n_layers, d_model=c.d_model, n_ctx=c.n_ctx, d_head=c.d_head, n_heads=c.n_heads,
        d_mlp=c.d_mlp, d_vocab=len(c.input_tokens), d_vocab_out=int(model.params["unembed.W_U"].shape[1]),
        act_fn="relu", normalization_type=None, attn_only=False, positional_embedding_type="standard",
        default_prepend_bos=False, use_attn_scale=False, attn_scale=1.0,
        attention_dir="causal" if c.causal else "bidirectional", original_architecture="rasp_compiler",
        model_name=f"rasp_compiler:{c.output}", init_weights=False, dtype=torch.float32, device="cpu",
    )


def state_dict(model) -> dict:
    """Our parameters as torch tensors under TransformerLens names, zero biases added."""
    torch, _, _ = _import()
    c, p = model.config, model.params
    sd = {k: torch.tensor(np.asarray(v, np.float32)) for k, v in p.items()}
    for l in range(c.n_layers):
        for b in ("b_Q", "b_K", "b_V"):
            sd[f"blocks.{l}.attn.{b}"] = torch.zeros(c.n_heads, c.d_head)
        sd[f"blocks.{l}.attn.b_O"] = torch.zeros(c.d_model)
    sd["unembed.b_U"] = torch.zeros(p["unembed.W_U"].shape[1])
    return sd


def to_hooked_transformer(model):
    """A TransformerLens HookedTransformer computing exactly what ``model`` computes."""
    torch, HookedTransformer, _ = _import()
    import warnings

    cfg = hooked_transformer_config(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tl = HookedTransformer(cfg)
    missing, unexpected = tl.load_state_dict(state_dict(model), strict=False)
    missing = [k for k in missing if not k.endswith(("IGNORE", "mask"))]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {list(unexpected)}")
    tl.eval()
    return tl


def tl_tokens(model, tokens: Sequence[Any]):
    """Token ids (1, n) for a token list starting with BOS, without padding."""
    torch, _, _ = _import()
    return torch.tensor(model.encode(tokens)[: len(tokens)][None].astype(np.int64))


def tl_decode(model, logits) -> list:
    """Decode TransformerLens logits (n, n_out) or (1, n, n_out) as ``model.apply`` does."""
    out = logits.detach().cpu().numpy() if hasattr(logits, "detach") else np.asarray(logits)
    if out.ndim == 3:
        out = out[0]
    return model._decode(out)


def run_tl(model, tl, batch: Sequence[Sequence[Any]]) -> list[np.ndarray]:
    """TransformerLens logits (n, n_out) for token lists starting with BOS, batched by length."""
    torch, _, _ = _import()
    out: list = [None] * len(batch)
    by_len: dict[int, list[int]] = {}
    for i, t in enumerate(batch):
        by_len.setdefault(len(t), []).append(i)
    with torch.no_grad():
        for n, idx in by_len.items():
            ids = torch.tensor(np.stack([model.encode(batch[i])[:n] for i in idx]).astype(np.int64))
            logits = tl(ids).numpy()
            for k, i in enumerate(idx):
                out[i] = logits[k]
    return out
