"""Train a transformer from random weights with SIIT: behaviour + interchange + strictness.

Loss per row (see :mod:`.batches`): cross-entropy of the trained model's (possibly
intervened) output against the compiled model's output under the same intervention,
over every position after BOS. The classes are the output values plus *None*: the
logits get a constant 0.5 appended as the None logit, which is exactly how a model
decodes (largest logit when above 0.5, else None), so a low loss means right decodings.
The three row kinds are averaged separately and summed with their weights.
Plain JAX and optax: the same code runs on CPU or GPU.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from rasp_compiler.interp.siit.batches import BEHAVIOUR, INTERCHANGE, STRICT, make_batch
from rasp_compiler.interp.siit.intervene import classes, swapped_logits
from rasp_compiler.interp.siit.mapping import Mapping
from rasp_compiler.model.config import ModelConfig
from rasp_compiler.export.metadata import expected_shapes

KINDS = {"behaviour": BEHAVIOUR, "interchange": INTERCHANGE, "strict": STRICT}


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]  # float32 numpy, the compiled models' names and shapes
    history: list[dict] = field(default_factory=list)  # per logged step: step, loss per kind
    seconds: float = 0.0


def init_params(config: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Gaussian weights with std 1/sqrt(fan in), zero biases (no LayerNorm: keep activations O(1))."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith(("b_in", "b_out")):
            params[name] = np.zeros(shape, np.float32)
        elif name in ("embed.W_E", "pos_embed.W_pos"):
            params[name] = rng.normal(0, 1 / np.sqrt(2), shape).astype(np.float32)
        else:
            fan_in = shape[-2]
            params[name] = rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32)
    return params


def _losses(params, high_params, batch, *, mapping: Mapping, high_layers: int, causal: bool):
    """Per-kind mean losses (3,) and per-row mean cross-entropy (B,) for one batch."""
    import jax
    import jax.numpy as jnp

    n_values = len(mapping.config.output_values)
    high = swapped_logits(high_params, batch["base"], batch["source"], batch["high_heads"], batch["high_neurons"],
                          n_layers=high_layers, causal=causal)
    target = jax.lax.stop_gradient(classes(high, n_values))
    low = swapped_logits(params, batch["base"], batch["source"], batch["low_heads"], batch["low_neurons"],
                         n_layers=mapping.config.n_layers, causal=causal)
    low = jnp.concatenate([low, jnp.full(low.shape[:-1] + (1,), 0.5, low.dtype)], -1)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(low, -1), target[..., None], -1)[..., 0]
    valid = (batch["base"] != 1) & (jnp.arange(batch["base"].shape[1]) > 0)[None]
    row = (ce * valid).sum(1) / jnp.maximum(valid.sum(1), 1)
    onehot = jax.nn.one_hot(batch["kind"], 3)
    per_kind = (onehot * row[:, None]).sum(0) / jnp.maximum(onehot.sum(0), 1)
    return per_kind, row


def train(compiled, mapping: Mapping, steps: int = 3000, batch_size: int = 256, lr: float = 1e-2,
          weights: tuple[float, float, float] = (1.0, 1.0, 1.0), seed: int = 0, log_every: int = 100,
          progress: bool = False, log=None) -> TrainResult:
    """Train the architecture of ``mapping`` against ``compiled`` (the high-level model).

    ``weights``: behaviour, interchange and strictness loss weights. ``log``: a callable
    receiving each logged history entry (e.g. to print to a log file).
    """
    import jax
    import jax.numpy as jnp
    import optax

    start = time.perf_counter()
    params = {k: jnp.asarray(v) for k, v in init_params(mapping.config, seed).items()}
    high_params = compiled.jax_params
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(200, steps // 10 + 1), steps, lr / 20)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-4))
    state = opt.init(params)
    w = jnp.asarray(weights, jnp.float32)
    loss_fn = functools.partial(_losses, mapping=mapping, high_layers=compiled.config.n_layers,
                                causal=compiled.config.causal)

    @jax.jit
    def step(params, state, high_params, batch):  # high_params an argument: constants would be folded slowly
        def total(p):
            per_kind, _ = loss_fn(p, high_params, batch)
            return (w * per_kind).sum(), per_kind
        (_, per_kind), grads = jax.value_and_grad(total, has_aux=True)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, per_kind

    rng = np.random.default_rng(seed)
    history: list[dict] = []
    running = np.zeros(3)
    count = 0
    bar = _progress(progress, steps, compiled.config.output)
    for i in range(1, steps + 1):
        b = make_batch(rng, mapping, compiled.config, batch_size)
        batch = {k: jnp.asarray(getattr(b, k)) for k in
                 ("base", "source", "kind", "low_heads", "low_neurons", "high_heads", "high_neurons")}
        params, state, per_kind = step(params, state, high_params, batch)
        running += np.asarray(per_kind)
        count += 1
        if i % log_every == 0 or i == steps:
            entry = {"step": i, **{k: float(running[j] / count) for k, j in KINDS.items()}}
            history.append(entry)
            running[:], count = 0, 0
            if log is not None:
                log(entry)
        if bar is not None:
            bar[0].update(bar[1], advance=1)
    if bar is not None:
        bar[0].stop()
    out = {k: np.asarray(v, np.float32) for k, v in params.items()}
    return TrainResult(out, history, time.perf_counter() - start)


def _progress(show: bool, steps: int, name: str):
    if not show:
        return None
    from rich.progress import Progress
    p = Progress(transient=True)
    p.start()
    return p, p.add_task(f"SIIT training {name}", total=steps)
