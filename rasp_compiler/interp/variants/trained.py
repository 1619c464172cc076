"""A transformer trained from random weights to run the compiled program's circuit (SIIT).

The compiled model is the high-level model; :mod:`rasp_compiler.interp.siit` trains a
model of a chosen width whose mapped heads and MLP neuron ranges implement the compiled
components under interchange interventions, and whose unmapped components are made
causally irrelevant. The truth is the mapped circuit; exactness is *measured*: task
accuracy, IIA and strict IIA (``exactness.metrics``). Unlike the compiled model, the
weights are dense and learned, every unmapped component is active, and methods have
something to get wrong.

Training takes minutes; pass ``cache`` (a .safetensors path) to reuse weights: when the
file exists it is loaded instead of training (it must have been trained with the same
settings: a mismatch is an error, never a silent overwrite), otherwise the trained
weights are written there. :func:`from_cache` loads a file with the settings it was
trained with (e.g. the ones ``benchmarks/train_siit.py`` leaves in
``benchmarks/results/trained/``)::

    v = from_cache(compiled, "benchmarks/results/trained/reverse.safetensors")

Task export does not call this module directly: :mod:`rasp_compiler.interp.tasks.trained_gate`
picks committed or cached weights first and exports only models that meet the bar.
"""

from __future__ import annotations

from pathlib import Path

from rasp_compiler.interp.siit.mapping import make_mapping, mapped_truth
from rasp_compiler.interp.siit.measure import measure
from rasp_compiler.interp.siit.train import train
from rasp_compiler.interp.variants.base import Exactness, Variant
from rasp_compiler.model.compiled import CompiledModel

# Library program -> settings beyond make()'s defaults that train it (benchmarks/train_siit.py
# trains with these, and task export uses them when it has to train): programs with an
# ``lr`` did not converge at the default 1e-2; wider ones needed the room.
LIBRARY_SETTINGS: dict[str, dict] = {
    "length": {"steps": 1000},
    "count": {"steps": 1500},
    "hist": {"steps": 1500},
    "shift_by": {"steps": 1000},
    "reverse": {"steps": 2000},
    "detect_pattern": {"steps": 2500, "lr": 3e-3},
    "first_occurrence": {"steps": 4000, "lr": 3e-3},
    "sort_unique": {"steps": 4000},
    "running_max": {"steps": 2000, "d_model": 48},
    "dyck1": {"steps": 5000, "d_model": 64},
}


def make(model, seed: int = 0, steps: int = 3000, d_model: int = 32, d_head: int = 8, extra_heads: int = 1,
         neurons_per_node: int = 16, unmapped_neurons: int = 8, batch_size: int = 256, lr: float = 1e-2,
         weights: tuple[float, float, float] = (1.0, 1.0, 1.0), cache: str | Path | None = None,
         progress: bool = False, log=None) -> Variant:
    """Train (or load from ``cache``) the SIIT model of compiled ``model``; see the module doc."""
    mapping = make_mapping(model, d_model=d_model, d_head=d_head, extra_heads=extra_heads,
                           neurons_per_node=neurons_per_node, unmapped_neurons=unmapped_neurons)
    settings = {"seed": seed, "steps": steps, "d_model": d_model, "d_head": d_head, "extra_heads": extra_heads,
                "neurons_per_node": neurons_per_node, "unmapped_neurons": unmapped_neurons,
                "batch_size": batch_size, "lr": lr, "weights": tuple(weights)}
    trained = _load(cache, mapping, settings)
    if trained is None:
        result = train(model, mapping, steps=steps, batch_size=batch_size, lr=lr, weights=weights, seed=seed,
                       progress=progress, log=log)
        trained = CompiledModel(mapping.config, result.params, mapping.labels,
                                metadata={"extra": {"variant": "trained", "settings": settings,
                                                    "program": (model.metadata or {}).get("program"),
                                                    "history": result.history,
                                                    "seconds": round(result.seconds, 1)}})
        if cache is not None:
            from rasp_compiler.export import save_model
            save_model(trained, cache)
    scores = measure(trained, model, mapping)
    exactness = Exactness(scores.accuracy, scores.checked_inputs, scores.how,
                          {"iia": scores.iia, "strict_iia": scores.strict_iia})
    return Variant("trained", trained, mapped_truth(trained, model, mapping), exactness, settings)


def from_cache(model, cache: str | Path, **overrides) -> Variant:
    """The trained variant of ``model`` stored in ``cache``, with the settings it was trained with."""
    saved = _saved_settings(_read(cache), cache)
    return make(model, cache=cache, **{**saved, **overrides})


def _read(cache) -> CompiledModel:
    from rasp_compiler.export import load_model
    return load_model(cache)


def _saved_settings(loaded: CompiledModel, cache) -> dict:
    extra = (loaded.metadata or {}).get("extra") or {}
    if extra.get("variant") != "trained" or "settings" not in extra:
        raise ValueError(f"{cache}: not a trained-variant weight file (no SIIT settings in its metadata)")
    saved = dict(extra["settings"])
    saved["weights"] = tuple(saved.get("weights", (1.0, 1.0, 1.0)))
    return saved


def _load(cache, mapping, settings) -> CompiledModel | None:
    """The cached model when ``cache`` exists (None when it does not); it must match."""
    if cache is None or not Path(cache).exists():
        return None
    loaded = _read(cache)
    saved = _saved_settings(loaded, cache)
    if saved != settings or loaded.config != mapping.config or loaded.labels != mapping.labels:
        diff = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
        raise ValueError(f"{cache} holds a model trained with other settings or for another program "
                         f"(file vs asked: {diff or 'same settings, other architecture'}); pass the file's "
                         f"settings (trained.from_cache does), or give another cache path")
    return loaded
