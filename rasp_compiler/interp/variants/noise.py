"""Weight noise and residual rotation (:mod:`rasp_compiler.interp.rotate`) as variants.

The truth is the clean model's: noise moves every weight a little but adds no path, and
a rotation changes the basis, not the function. The accuracy cost is measured, not assumed.
"""

from __future__ import annotations

from rasp_compiler.interp.ground_truth import aligned_truth, ground_truth
from rasp_compiler.interp.rotate import rotate_residual
from rasp_compiler.interp.variants.base import Variant, measure_exactness


def make_noise(model, seed: int = 0, scale: float = 0.01) -> Variant:
    """Gaussian noise of std ``scale`` x each array's RMS entry, in the original basis."""
    from rasp_compiler.interp.rotate import add_noise
    from rasp_compiler.model.compiled import CompiledModel

    noisy = CompiledModel(model.config, add_noise(model.params, scale, seed), model.labels,
                          compilation=model.compilation, source=model.source, metadata=model.metadata)
    return Variant("noise", noisy, ground_truth(model), measure_exactness(noisy, model),
                   {"seed": seed, "scale": scale})


def make_rotated(model, seed: int = 0, scale: float = 0.0) -> Variant:
    """A random orthogonal residual basis, plus noise of relative std ``scale``."""
    rotated = rotate_residual(model, seed=seed, noise=scale)
    truth = aligned_truth(ground_truth(model), rotated)  # the clean circuit, its directions in the new basis
    return Variant("rotated", rotated, truth, measure_exactness(rotated, model),
                   {"seed": seed, "scale": scale})
