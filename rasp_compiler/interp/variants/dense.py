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

``compress_to=d'`` (with ``program``) first squeezes the residual stream into d' < d_model
dimensions with the learned compression of
:mod:`rasp_compiler.interp.superposition.compress` (tracr's superposition study): features
then share dimensions and interfere, the function is only approximately kept (the
accuracy is measured), and the truth is the uncompressed model's graph with each feature's
direction ``W e_i`` (then rotated) as its direction.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rasp_compiler.interp.ground_truth import FeatureDictionary, ground_truth, residual_basis
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


def make_dense(model, seed: int = 0, distractors: bool = True, compress_to: int | None = None,
               program=None, compress_steps: int = 1000, **distractor_settings) -> Variant:
    """The (distractors) variant of ``model`` in random bases, optionally compressed to
    ``compress_to`` residual dimensions (see the module docstring)."""
    if distractors:
        from rasp_compiler.interp.variants.distractors import make_distractors
        base = make_distractors(model, seed=seed, **distractor_settings).model
    else:
        base = model
    settings = {"seed": seed, "distractors": distractors, **distractor_settings}
    truth = None
    if compress_to is not None:
        base, truth = _compress(base, program, compress_to, compress_steps, seed)
        settings.update(compress_to=compress_to, compress_steps=compress_steps)
    dense = rotate_heads_and_neurons(rotate_residual(base, seed=seed), seed=seed + 1)
    if truth is None:
        truth = ground_truth(dense)
    else:  # the features' directions through W, then through the rotation
        basis = residual_basis(dense)
        truth = dataclasses.replace(truth, features=FeatureDictionary(
            tuple(dataclasses.replace(f, direction=basis[f.index].copy()) for f in truth.features.features),
            truth.features.neurons))
    inputs, how = check_inputs(model)
    return Variant("dense", dense, truth, measure_exactness(dense, model, inputs, how), settings)


def _compress(model, program, d: int, steps: int, seed: int):
    """The model with its residual stream learned into d dimensions, and its (uncompressed) truth."""
    from rasp_compiler.errors import VariantError
    from rasp_compiler.interp.superposition.compress import compressed_model, train_compression
    if program is None:
        raise VariantError("compress_to needs the program (program=...): the compression is trained on "
                           "the evaluator's outputs")
    if not 0 < d < model.config.d_model:
        raise VariantError(f"compress_to must be in 1..{model.config.d_model - 1} (d_model), got {d}")
    truth = ground_truth(model)
    result = train_compression(model, program, d, steps=steps, seed=seed)
    small = compressed_model(model, result.W)
    small.residual_basis = residual_basis(model) @ np.asarray(result.W, np.float64).T  # row i: W e_i
    return small, truth


make = make_dense
