"""Fine-tune a compiled model the way tracr code does: haiku forward + optax on tracr's parameter tree.

    pip install dm-haiku        # the optional haiku extra: pip install 'rasp_compiler[haiku]'
    python examples/tracr_finetune.py

``model.as_tracr()`` gives tracr's ``AssembledTransformerModel`` names over a compiled
model: ``params`` is tracr's nested tree (``params["transformer/layer_0/attn/query"]["w"]``),
``forward(params, ids)`` a haiku forward pass with tracr's module names whose logits are
ours. The loop below uses nothing but those names, so it runs on a tracr model too.
"""

import jax
import jax.numpy as jnp
import optax

from rasp_compiler import compile_rasp_to_model, rasp

# the fraction of "x" tokens so far (numerical output)
bools = rasp.numerical(rasp.Map(lambda t: 1 if t == "x" else 0, rasp.tokens))
program = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ), bools,
                                        default=0))
model = compile_rasp_to_model(program, {"x", "y", "z"}, max_seq_len=4).as_tracr()
print({name: {k: v.shape for k, v in leaf.items()} for name, leaf in list(model.params.items())[:3]}, "...")

inputs = [["BOS", *x] for x in ("xyzx", "yyxz", "zzzz", "xxyy", "xzxz")]
ids = jnp.array([model.input_encoder.encode(x) for x in inputs])
target = jnp.array([[2 * v for v in rasp.evaluate(program, x[1:])] for x in inputs])  # learn twice the fraction


def loss_fn(params):
    return jnp.mean((model.forward(params, ids).unembedded_output[:, 1:] - target) ** 2)


opt = optax.adam(1e-2)
params = jax.tree_util.tree_map(jnp.asarray, model.params)
state = opt.init(params)
step = jax.jit(jax.value_and_grad(loss_fn))
for i in range(10):
    loss, grads = step(params)
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    print(f"step {i}: loss {float(loss):.4f}")
print("before:", model.apply(inputs[0]).decoded)
print("after: ", model.apply(inputs[0], params).unembedded[0].round(3).tolist())
