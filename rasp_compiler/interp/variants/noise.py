"""Weight noise and residual rotation (:mod:`rasp_compiler.interp.rotate`) as variants.

**Noise** moves every weight the compiled model uses and nothing else: Gaussian noise of
std ``scale`` x the array's RMS entry on each *nonzero* entry of a weight slice that a
listed component owns (:func:`owned_slices`: ``embed`` its W_E/W_pos, a head its
W_Q/W_K/W_V/W_O, an MLP block its neurons' W_in columns, b_in entries and W_out rows,
``unembed`` W_U). Padding heads and neurons (no component), ``b_out`` and every zero entry
stay exactly 0. So the noise adds no path: the structural graph read off the noisy weights
is the clean one, every component outside a target's circuit writes nothing the circuit or
the target's read-out reads, and the clean model's circuits stay true — checked, not
assumed: the task export measures it per target (:mod:`rasp_compiler.interp.tasks.truth_gate`).
The noisy model is not exact, so its pairs are labelled by the compiled model (the
variant's ``reference``, which equals ``rasp.evaluate``), never by the noisy one; its
accuracy is measured, overall and balanced per output class.

**Rotated**: a random orthogonal residual basis (plus optional noise); same function.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.ground_truth import aligned_truth, components, ground_truth
from rasp_compiler.interp.rotate import rotate_residual
from rasp_compiler.interp.variants.base import Variant, measure_exactness


def owned_slices(model) -> dict[str, list[tuple[str, tuple]]]:
    """Component name -> the (parameter, index) slices it owns (node granularity)."""
    out: dict[str, list[tuple[str, tuple]]] = {}
    for c in components(model, "node"):
        if c.kind == "embed":
            out[c.name] = [("embed.W_E", ()), ("pos_embed.W_pos", ())]
        elif c.kind == "unembed":
            out[c.name] = [("unembed.W_U", ())]
        elif c.kind == "head":
            out[c.name] = [(f"blocks.{c.layer}.attn.W_{m}", (c.head,)) for m in "QKVO"]
        else:
            pre, sl = f"blocks.{c.layer}.mlp.", slice(c.lo, c.hi)
            out[c.name] = [(pre + "W_in", (slice(None), sl)), (pre + "b_in", (sl,)), (pre + "W_out", (sl,))]
    return out


def owned_noise(model, scale: float, seed: int = 0) -> dict[str, np.ndarray]:
    """The model's parameters with noise on the nonzero owned entries only (module doc)."""
    rng = np.random.default_rng(seed)
    params = {k: np.array(v, np.float32) for k, v in model.params.items()}
    rms = {k: float(np.sqrt(np.mean(np.square(v, dtype=np.float64)))) if v.size else 0.0 for k, v in params.items()}
    for _, slices in owned_slices(model).items():
        for name, index in slices:
            w = params[name][index]
            on = w != 0
            w[on] += (rng.standard_normal(int(on.sum())) * scale * rms[name]).astype(np.float32)
            params[name][index] = w
    return params


def make_noise(model, seed: int = 0, scale: float = 0.01) -> Variant:
    """Noise of std ``scale`` x each array's RMS entry on the weights components own (module doc)."""
    from rasp_compiler.model.compiled import CompiledModel

    noisy = CompiledModel(model.config, owned_noise(model, scale, seed), model.labels,
                          compilation=model.compilation, source=model.source, metadata=model.metadata)
    return Variant("noise", noisy, ground_truth(model), measure_exactness(noisy, model),
                   {"seed": seed, "scale": scale}, reference=model)


def make_rotated(model, seed: int = 0, scale: float = 0.0) -> Variant:
    """A random orthogonal residual basis, plus noise of relative std ``scale``."""
    rotated = rotate_residual(model, seed=seed, noise=scale)
    truth = aligned_truth(ground_truth(model), rotated)  # the clean circuit, its directions in the new basis
    return Variant("rotated", rotated, truth, measure_exactness(rotated, model),
                   {"seed": seed, "scale": scale})
