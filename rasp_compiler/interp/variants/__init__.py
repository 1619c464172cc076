"""Variants of a compiled model that keep its known circuit but make methods work for it.

A compiled model is too clean to rank interpretability methods: every component outside
the circuit is silent. A *variant* takes a compiled model and returns a model of the same
public type (it runs, hooks, saves and exports like any other) together with its own
ground truth and a statement of how exact it stayed::

    from rasp_compiler.interp.variants import make_variant
    v = make_variant(model, "noise", seed=0, scale=0.01)
    v.model, v.truth, v.exactness.accuracy

Each kind lives in its own module of this package and exposes
``make(model, seed=0, **settings) -> Variant``; :data:`KINDS` maps a kind to its module.
"""

from __future__ import annotations

import importlib
from typing import Any

from rasp_compiler.interp.variants.base import Exactness, Variant, measure_exactness

__all__ = ["Exactness", "Variant", "KINDS", "available", "make_variant", "measure_exactness"]

# kind -> module of this package that builds it (its ``make`` function)
KINDS: dict[str, str] = {
    "compiled": "compiled",  # the model as compiled: the baseline
    "noise": "noise",  # Gaussian weight noise at a stated scale
    "rotated": "noise",  # random orthogonal residual basis (plus optional noise)
    "distractors": "distractors",  # active but irrelevant heads/neurons: hard negatives
    "backups": "distractors",  # redundant copies of true components: hard positives
    "dense": "dense",  # no weight axis-aligned with a feature
    "trained": "trained",  # trained from scratch with strict interchange-intervention training
}


def _module(kind: str):
    if kind not in KINDS:
        raise ValueError(f"unknown variant {kind!r}; known: {', '.join(KINDS)}")
    return importlib.import_module(f"rasp_compiler.interp.variants.{KINDS[kind]}")


def available() -> list[str]:
    """The kinds whose module is present in this installation."""
    out = []
    for kind in KINDS:
        try:
            _module(kind)
        except ModuleNotFoundError:
            continue
        out.append(kind)
    return out


def make_variant(model, kind: str, seed: int = 0, **settings: Any) -> Variant:
    """The ``kind`` variant of a compiled ``model`` (see :data:`KINDS`)."""
    module = _module(kind)
    maker = getattr(module, f"make_{kind}", None) or module.make
    return maker(model, seed=seed, **settings)
