"""Trained tasks for export: weights from the repository or a cache before any training, and the bar.

Training an SIIT model takes minutes, so :func:`trained_variant` looks for weights first:

1. **committed**: ``benchmarks/results/trained/NAME.safetensors`` of a source checkout,
   for library program ``lib:NAME`` at the seed it was trained with (its own settings);
2. **cached**: ``CACHE/trained/SOURCE__sSEED__HASH.safetensors``, where ``CACHE`` is
   ``$RASP_COMPILER_CACHE`` (default ``~/.cache/rasp_compiler``) and ``HASH`` covers the
   compiled program (config, labels, every weight), the seed and the training settings;
3. otherwise it trains (with :data:`LIBRARY_SETTINGS` for a library program, else the
   defaults) and writes the result to that cache path.

:func:`gate` then measures the bar of :mod:`rasp_compiler.interp.siit.gate` on the pairs the
task stores and refuses a model that misses it (:class:`TrainedBarError`, with one
warning line naming the task and the figures); a model that meets it carries every figure
and the bounds in ``exactness.metrics`` (written to ``task.json``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable

from rasp_compiler.interp.siit.gate import BAR, misses, pair_figures
from rasp_compiler.interp.tasks.sources import Source, TaskSetError
from rasp_compiler.interp.variants.base import Variant

COMMITTED_DIR = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "trained"  # source checkouts


class TrainedBarError(TaskSetError):
    """A trained model misses the bar of docs/trained.md: it is not exported."""


class TrainedBarWarning(UserWarning):
    """Emitted (one line) for each trained task the export refuses."""


def cache_dir() -> Path:
    return Path(os.environ.get("RASP_COMPILER_CACHE") or Path.home() / ".cache" / "rasp_compiler") / "trained"


def training_settings(source: Source, seed: int) -> dict:
    """The settings of :func:`rasp_compiler.interp.variants.trained.make` the export trains with."""
    from rasp_compiler.interp.variants.trained import LIBRARY_SETTINGS

    lib = source.origin[4:] if source.origin.startswith("lib:") else None
    return {**LIBRARY_SETTINGS.get(lib, {}), "seed": seed}


def cache_path(source: Source, model, settings: dict) -> Path:
    """Where the weights trained for ``model`` (compiled ``source``) with ``settings`` are cached."""
    h = hashlib.sha256()
    h.update(repr((model.config, model.labels)).encode())
    for name in sorted(model.params):
        h.update(name.encode())
        h.update(model.params[name].tobytes())
    h.update(json.dumps(settings, sort_keys=True, default=list).encode())
    return cache_dir() / f"{source.name}__s{settings['seed']}__{h.hexdigest()[:16]}.safetensors"


def committed_path(source: Source, seed: int) -> Path | None:
    """The repository's weights for ``source`` at ``seed``, if there are any."""
    from rasp_compiler.export import load_model

    if not source.origin.startswith("lib:"):
        return None
    path = COMMITTED_DIR / f"{source.origin[4:]}.safetensors"
    if not path.is_file():
        return None
    extra = (load_model(path).metadata or {}).get("extra") or {}
    return path if (extra.get("settings") or {}).get("seed") == seed else None


def trained_variant(source: Source, model, seed: int, say: Callable[[str], object] | None = None) -> Variant:
    """The trained variant of compiled ``source`` (``model``) at ``seed``: committed weights,
    else cached ones, else trained now (``say`` gets a progress line every 100 steps)."""
    from rasp_compiler.interp.variants import trained

    committed = committed_path(source, seed)
    if committed is not None:
        return trained.from_cache(model, committed)
    settings = training_settings(source, seed)
    path = cache_path(source, model, settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        steps = settings.get("steps", 3000)
        if say is not None:
            say(f"{source.name}: SIIT training, {steps} steps (cached in {path})")
        log = None if say is None else (lambda e: say(
            f"{source.name}: SIIT step {e['step']}/{steps}, loss " +
            " / ".join(f"{e[k]:.3f}" for k in ("behaviour", "interchange", "strict"))))
        return trained.make(model, cache=path, log=log, **settings)
    return trained.make(model, cache=path, **settings)


def gate(name: str, variant: Variant, truth, entries) -> Variant:
    """``variant`` with the bar's figures in ``exactness.metrics`` when it meets the bar (the
    pairs are the task's ``entries`` as :func:`~rasp_compiler.interp.tasks.export.task_pairs`
    makes them); other kinds pass unchanged. Raises :class:`TrainedBarError` otherwise."""
    if variant.kind != "trained":
        return variant
    ex = variant.exactness
    metrics = {"iia": float(ex.metrics["iia"]), "strict_iia": float(ex.metrics["strict_iia"]),
               **pair_figures(variant.model, truth, [(p, is_output) for p, is_output, _ in entries]),
               "unmapped_bound": BAR.unmapped_bound, "faithfulness_bound": BAR.faithfulness_bound}
    missed = misses(ex.accuracy, metrics)
    if missed:
        why = f"not exported, the trained model misses the bar of docs/trained.md: {'; '.join(missed)}"
        warnings.warn(f"{name}: {why}", TrainedBarWarning, stacklevel=2)
        raise TrainedBarError(why)
    return dataclasses.replace(variant, exactness=dataclasses.replace(ex, metrics=metrics))
