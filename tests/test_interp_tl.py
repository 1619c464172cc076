"""TransformerLens export: same logits and outputs as the compiled model (optional extra)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="optional extra: pip install torch==2.13.0 'transformer-lens<4'")
tl_lib = pytest.importorskip("transformer_lens", reason="optional extra: pip install 'transformer-lens<4'")
try:
    from transformer_lens import HookedTransformer  # noqa: F401  (removed in transformer-lens 4.0)
except ImportError:
    pytest.skip("HookedTransformer was removed in transformer-lens 4.0: pip install 'transformer-lens<4'",
                allow_module_level=True)

from rasp_compiler import compile_rasp_to_model, rasp  # noqa: E402
from rasp_compiler.interp.transformer_lens import run_tl, tl_decode, to_hooked_transformer  # noqa: E402
from rasp_compiler.lib import LIBRARY  # noqa: E402
from rasp_compiler.verify import exhaustive_inputs  # noqa: E402


@pytest.mark.parametrize("name", ["reverse", "frac_prevs", "sort", "hist"])
def test_export_matches_on_exhaustive_inputs(name):
    e = LIBRARY[name]
    model = compile_rasp_to_model(e.build(), e.vocab, 5)
    tl = to_hooked_transformer(model)
    assert tl.cfg.attention_dir == "bidirectional" and tl.cfg.d_vocab == len(model.config.input_tokens)
    batch = [[model.config.bos, *xs] for xs in exhaustive_inputs(e.vocab, 4)]
    ours = [model.apply(t) for t in batch]
    theirs = run_tl(model, tl, batch)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(b, a.output, atol=1e-4)
        assert tl_decode(model, b) == a.decoded


def test_hooks_and_cache_names_line_up():
    e = LIBRARY["sort"]
    model = compile_rasp_to_model(e.build(), e.vocab, 5)
    tl = to_hooked_transformer(model)
    toks = [model.config.bos, 4, 2, 3, 1]
    ours = model.run_with_cache(toks).cache
    ids = torch.tensor(model.encode(toks)[: len(toks)][None].astype(np.int64))
    _, cache = tl.run_with_cache(ids)
    for name in ("blocks.0.attn.hook_pattern", "blocks.2.attn.hook_z", "blocks.1.mlp.hook_post",
                 "blocks.2.hook_resid_post"):
        np.testing.assert_allclose(cache[name][0].numpy(), ours[name], atol=1e-4)


def test_causal_attention_is_a_real_mismatch_for_non_causal_models():
    """TransformerLens' default (causal) attention breaks `reverse`; we export bidirectional."""
    e = LIBRARY["reverse"]
    model = compile_rasp_to_model(e.build(), e.vocab, 5)
    tl = to_hooked_transformer(model)
    tl.cfg.attention_dir = "causal"
    for block in tl.blocks:
        block.attn.cfg.attention_dir = "causal"
    toks = [model.config.bos, "a", "b", "c"]
    assert tl_decode(model, run_tl(model, tl, [toks])[0]) != model.apply(toks).decoded


def test_causal_model_exports_causal():
    prog = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ),
                                         rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, rasp.tokens)),
                                         default=0)).named("frac_a")
    model = compile_rasp_to_model(prog, {"a", "b"}, 4, causal=True)
    tl = to_hooked_transformer(model)
    assert tl.cfg.attention_dir == "causal"
    batch = [[model.config.bos, *xs] for xs in exhaustive_inputs({"a", "b"}, 4)]
    for t, logits in zip(batch, run_tl(model, tl, batch)):
        np.testing.assert_allclose(logits, model.apply(t).output, atol=1e-4)
