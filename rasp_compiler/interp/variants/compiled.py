"""The baseline variant: the compiled model itself, its truth read off the weights."""

from __future__ import annotations

from rasp_compiler.interp.ground_truth import ground_truth
from rasp_compiler.interp.variants.base import Variant, measure_exactness


def make(model, seed: int = 0) -> Variant:
    return Variant("compiled", model, ground_truth(model), measure_exactness(model, model), {"seed": seed})
