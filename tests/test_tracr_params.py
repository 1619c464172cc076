"""tracr's parameter tree over a compiled model (model.haiku_params, model.as_tracr()) and the
haiku forward pass with tracr's module names (skipped without dm-haiku)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.lib import LIBRARY
from rasp_compiler.verify import expected_output, random_inputs, same_value


@functools.cache
def compiled(name: str, causal: bool = False):
    e = LIBRARY[name]
    return compile_rasp_to_model(e.build(), e.vocab, 5, causal=causal), e


def tracr_names(n_layers: int) -> set[str]:
    """Module names as tracr's assembled model has them (written out from tracr's docs)."""
    names = {"token_embed", "pos_embed"}
    for l in range(n_layers):
        names |= {f"transformer/layer_{l}/attn/{p}" for p in ("query", "key", "value", "linear")}
        names |= {f"transformer/layer_{l}/mlp/{p}" for p in ("linear_1", "linear_2")}
    return names


def tracr_style_forward_numpy(tree, ids, n_layers, n_heads, causal, pad_id, unembed):
    """tracr's compiled-transformer forward pass, from its definition, in plain numpy:
    hk.Linear is x @ w + b, attention scores are divided by sqrt(key_size)."""
    lin = lambda x, p: x @ tree[p]["w"] + tree[p]["b"]  # noqa: E731
    b, n = ids.shape
    x = tree["token_embed"]["embeddings"][ids] + tree["pos_embed"]["embeddings"][np.arange(n)][None]
    mask = (ids != pad_id)[:, None, None, :]
    if causal:
        mask = mask & np.tril(np.ones((n, n), bool))[None, None]
    for l in range(n_layers):
        t = f"transformer/layer_{l}/"
        q, k, v = (lin(x, t + "attn/" + p).reshape(b, n, n_heads, -1) for p in ("query", "key", "value"))
        key_size = q.shape[-1]
        s = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(key_size)
        s = np.where(mask, s, -1e30)
        w = np.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        x = x + lin(np.einsum("bhqk,bkhd->bqhd", w, v).reshape(b, n, -1), t + "attn/linear")
        x = x + lin(np.maximum(lin(x, t + "mlp/linear_1"), 0), t + "mlp/linear_2")
    return x @ unembed


def batch_ids(model, entry, n=24, seed=0):
    xs = random_inputs(entry.vocab, 5, n, seed=seed, full_length=4)
    return xs, np.stack([model.encode([model.config.bos, *x]) for x in xs])


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_tree_has_tracr_names_and_tracr_forward_gives_our_logits(name):
    model, entry = compiled(name)
    tree = model.haiku_params
    c = model.config
    assert set(tree) == tracr_names(c.n_layers)
    assert tree["transformer/layer_0/attn/query"]["w"].shape == (c.d_model, c.n_heads * c.d_head)
    assert tree["transformer/layer_0/mlp/linear_1"]["w"].shape == (c.d_model, c.d_mlp)
    # head h's query columns are our W_Q[h] times sqrt(key_size); keys unscaled
    for h in range(c.n_heads):
        cols = slice(h * c.d_head, (h + 1) * c.d_head)
        np.testing.assert_allclose(tree["transformer/layer_0/attn/query"]["w"][:, cols],
                                   model.params["blocks.0.attn.W_Q"][h] * math.sqrt(c.d_head), rtol=1e-6)
        np.testing.assert_array_equal(tree["transformer/layer_0/attn/key"]["w"][:, cols],
                                      model.params["blocks.0.attn.W_K"][h])
    xs, ids = batch_ids(model, entry)
    got = tracr_style_forward_numpy(tree, ids, c.n_layers, c.n_heads, c.causal, model.input_encoder.pad_encoding,
                                    model.params["unembed.W_U"])
    ours = model._run(ids, backend="numpy")
    np.testing.assert_allclose(got, ours, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ours).max())))


def test_tree_is_a_copy():
    model, entry = compiled("reverse")
    _, ids = batch_ids(model, entry, 4)
    before = model._run(ids, backend="numpy")
    tree = model.haiku_params
    for leaf in tree.values():
        for a in leaf.values():
            a[...] = 0
    np.testing.assert_array_equal(model._run(ids, backend="numpy"), before)


# ---------------------------------------------------------------------------- with dm-haiku
CAUSAL = ("frac_prevs", "running_max", "shift_by")


@pytest.mark.parametrize("name,causal", [(n, False) for n in sorted(LIBRARY)] + [(n, True) for n in CAUSAL])
def test_haiku_forward_gives_our_logits_and_outputs(name, causal):
    pytest.importorskip("haiku")
    model, entry = compiled(name, causal)
    import jax

    tm = model.as_tracr()
    xs, ids = batch_ids(model, entry)
    out = jax.jit(tm.forward)(tm.params, ids)  # one XLA compile rather than one per op
    ours = model._run(ids, backend="numpy")
    np.testing.assert_allclose(np.asarray(out.logits), ours, rtol=1e-4,
                               atol=1e-4 * max(1.0, float(np.abs(ours).max())))
    assert len(out.transformer_output.residuals) == 2 * model.config.n_layers
    assert len(out.transformer_output.attn_logits) == model.config.n_layers
    if not model.config.output_numerical:
        np.testing.assert_array_equal(np.asarray(out.unembedded_output), ours.argmax(-1))
    x = xs[0]  # full length; apply runs tracr's way (eager, unpadded)
    got = tm.apply([model.config.bos, *x]).decoded
    want = expected_output(entry.build(), x, causal)
    assert got[0] == model.config.bos and all(same_value(g, w) for g, w in zip(got[1:], want)), (x, got, want)


def test_haiku_init_gives_the_model_tree():
    pytest.importorskip("haiku")
    import jax.numpy as jnp

    model, _ = compiled("hist")
    init = model.as_tracr().get_compiled_model().init(None, jnp.zeros((1, 3), jnp.int32))
    tree = model.haiku_params
    assert set(init) == set(tree)
    for k in tree:
        assert set(init[k]) == set(tree[k])
        for n in tree[k]:
            np.testing.assert_array_equal(np.asarray(init[k][n]), tree[k][n])


def finetune_tracr_style(model, inputs, target, steps=10, lr=1e-2):
    """A fine-tuning loop written against tracr's API only (model.forward, model.params,
    model.input_encoder): regress a numerical output onto ``target``. Returns the losses."""
    import jax
    import jax.numpy as jnp
    import optax

    ids = jnp.array([model.input_encoder.encode(x) for x in inputs])
    target = jnp.array(target)

    def loss_fn(params):
        out = model.forward(params, ids).unembedded_output[:, 1:]
        return jnp.mean((out - target) ** 2)

    opt = optax.adam(lr)
    params = jax.tree_util.tree_map(jnp.asarray, model.params)
    state = opt.init(params)
    step = jax.jit(jax.value_and_grad(loss_fn))
    losses = []
    for _ in range(steps):
        loss, grads = step(params)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
    model.params = params
    return losses


def _frac_x(r):
    bools = r.numerical(r.Map(lambda t: 1 if t == "x" else 0, r.tokens))
    return r.numerical(r.Aggregate(r.Select(r.indices, r.indices, r.Comparison.LEQ), bools, default=0))


FINETUNE_INPUTS = [["BOS", *x] for x in ("xyzx", "yyxz", "zzzz", "xxyy", "xzxz")]


def _targets(r, program):
    return [[2 * v for v in r.evaluate(program, x[1:])] for x in FINETUNE_INPUTS]  # twice the fraction


def test_tracr_style_finetuning_runs_unchanged_on_a_compiled_model():
    pytest.importorskip("haiku")
    pytest.importorskip("optax")
    program = _frac_x(rasp)
    model = compile_rasp_to_model(program, {"x", "y", "z"}, 4)
    before = {k: v.copy() for k, v in model.params.items()}
    tm = model.as_tracr()
    keys = set(tm.params)
    losses = finetune_tracr_style(tm, FINETUNE_INPUTS, _targets(rasp, program))
    assert len(losses) == 10 and losses[-1] < losses[0]
    assert set(tm.params) == keys
    for k, v in before.items():  # the compiled model itself is untouched
        np.testing.assert_array_equal(model.params[k], v)
    tuned = tm.apply(FINETUNE_INPUTS[0]).unembedded[0]
    assert not np.allclose(np.asarray(tuned), model.apply(FINETUNE_INPUTS[0]).output[:, 0], atol=1e-3)


@pytest.mark.slow  # a tracr compile: tens of seconds
def test_the_same_snippet_runs_on_tracr():
    """The control: the snippet is tracr code (it runs on tracr's own compiled model)."""
    pytest.importorskip("haiku")
    compiling = pytest.importorskip("tracr.compiler.compiling")
    trasp = pytest.importorskip("tracr.rasp.rasp")
    program = _frac_x(trasp)
    model = compiling.compile_rasp_to_model(program, {"x", "y", "z"}, 4, compiler_bos="BOS", compiler_pad="PAD")
    losses = finetune_tracr_style(model, FINETUNE_INPUTS, _targets(trasp, program))
    assert len(losses) == 10 and losses[-1] < losses[0]
