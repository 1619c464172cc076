"""No weight axis-aligned with a feature: random bases everywhere a basis is free.

Three exact changes of basis, each leaving every product the forward pass forms unchanged:

* the residual stream: a Haar-random orthogonal Q (:func:`rasp_compiler.interp.rotate.rotate_residual`);
  feature i's direction becomes row i of ``model.residual_basis``;
* inside every head: its query/key space by an orthogonal R (``W_Q R``, ``W_K R``: the
  scores ``x W_Q R Rᵀ W_Kᵀ x`` are unchanged) and its value/output space by another, S
  (``W_V S``, ``Sᵀ W_O``), so ``hook_z`` is no longer a list of named values;
* the MLP hidden units: each neuron scaled by a random positive factor c (``W_in c``,
  ``b_in c``, ``W_out / c``), the only change a ReLU lets through.

Rotation alone changes no score of a basis-free method (patching and attribution see the
same numbers), and every non-circuit component of a compiled model would still score
exactly 0. So by default the dense variant starts from the distractors variant
(:mod:`.distractors`): active, cancelling components, now also spread over every
direction. Truth: the ground truth read back through ``residual_basis`` (the same graph
as before the change of basis; tests check it).
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.interp.ground_truth import ground_truth
from rasp_compiler.interp.rotate import random_orthogonal, rotate_residual
from rasp_compiler.interp.variants.base import Variant, check_inputs, measure_exactness


def rotate_heads_and_neurons(model, seed: int = 0):
    """``model`` with every head's QK and OV space rotated and every neuron rescaled (in place
    on a copy of the params; the function is unchanged)."""
    rng = np.random.default_rng(seed)
    c = model.config
    p = {k: np.asarray(v, np.float64).copy() for k, v in model.params.items()}
    for l in range(c.n_layers):
        pre = f"blocks.{l}."
        for h in range(c.n_heads):
            R = random_orthogonal(c.d_head, int(rng.integers(2**31)))
            S = random_orthogonal(c.d_head, int(rng.integers(2**31)))
            p[pre + "attn.W_Q"][h] = p[pre + "attn.W_Q"][h] @ R
            p[pre + "attn.W_K"][h] = p[pre + "attn.W_K"][h] @ R
            p[pre + "attn.W_V"][h] = p[pre + "attn.W_V"][h] @ S
            p[pre + "attn.W_O"][h] = S.T @ p[pre + "attn.W_O"][h]
        scale = np.exp(rng.uniform(-1.0, 1.0, c.d_mlp))
        p[pre + "mlp.W_in"] *= scale[None, :]
        p[pre + "mlp.b_in"] *= scale
        p[pre + "mlp.W_out"] /= scale[:, None]
    from rasp_compiler.model.compiled import CompiledModel
    new = CompiledModel(c, {k: v.astype(np.float32) for k, v in p.items()}, model.labels,
                        compilation=model.compilation, source=model.source)
    for attr in ("residual_basis", "rotation", "noise"):
        if hasattr(model, attr):
            setattr(new, attr, getattr(model, attr))
    return new


def make_dense(model, seed: int = 0, distractors: bool = True, **distractor_settings) -> Variant:
    """The (distractors) variant of ``model`` in random bases (see the module docstring)."""
    if distractors:
        from rasp_compiler.interp.variants.distractors import make_distractors
        base = make_distractors(model, seed=seed, **distractor_settings).model
    else:
        base = model
    dense = rotate_heads_and_neurons(rotate_residual(base, seed=seed), seed=seed + 1)
    inputs, how = check_inputs(model)
    return Variant("dense", dense, ground_truth(dense), measure_exactness(dense, model, inputs, how),
                   {"seed": seed, "distractors": distractors, **distractor_settings})


make = make_dense
