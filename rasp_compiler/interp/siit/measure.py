"""How well training worked: task accuracy, IIA and strict IIA.

* accuracy: share of checked inputs (every input up to max_seq_len when there are at
  most 2,000, else 500 random) whose whole decoded output equals the compiled model's.
* IIA (interchange-intervention accuracy): over random (base, source, mapped component)
  triples, the share whose whole intervened output (every position) equals the compiled
  model's under the same intervention.
* strict IIA: over random (base, source) pairs, the share whose output is unchanged
  (equals the program's output on the base) when *every* unmapped component at once
  takes its value from the source: stricter than resampling them one at a time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rasp_compiler.interp.siit.batches import INTERCHANGE, STRICT, make_batch
from rasp_compiler.interp.siit.intervene import classes, swapped_logits
from rasp_compiler.interp.siit.mapping import Mapping, slot_masks
from rasp_compiler.interp.variants.base import measure_exactness


@dataclass(frozen=True)
class SiitScores:
    accuracy: float
    checked_inputs: int
    how: str
    iia: float
    strict_iia: float
    n_interventions: int


@functools.lru_cache(maxsize=None)
def _jitted(n_layers: int, causal: bool):
    import jax
    return jax.jit(functools.partial(swapped_logits, n_layers=n_layers, causal=causal))


def _classes(model, base, source, heads, neurons, n_values: int) -> np.ndarray:
    run = _jitted(model.config.n_layers, model.config.causal)
    return np.asarray(classes(run(model.jax_params, base, source, heads, neurons), n_values))


def _agree(trained, compiled, mapping: Mapping, batch) -> np.ndarray:
    n_values = len(mapping.config.output_values)
    high = _classes(compiled, batch.base, batch.source, batch.high_heads, batch.high_neurons, n_values)
    low = _classes(trained, batch.base, batch.source, batch.low_heads, batch.low_neurons, n_values)
    valid = (batch.base != 1) & (np.arange(batch.base.shape[1]) > 0)[None]
    return np.all((np.asarray(high) == np.asarray(low)) | ~valid, axis=1)


def measure(trained, compiled, mapping: Mapping, n: int = 2048, seed: int = 12345) -> SiitScores:
    """Accuracy, IIA and strict IIA of ``trained`` against ``compiled`` (see module doc)."""
    exact = measure_exactness(trained, compiled)
    rng = np.random.default_rng(seed)
    iia = _agree(trained, compiled, mapping, make_batch(rng, mapping, compiled.config, n, kinds=(INTERCHANGE,)))
    strict = make_batch(rng, mapping, compiled.config, n, kinds=(STRICT,))
    everything = slot_masks(mapping.unmapped, mapping.config)
    strict.low_heads[:], strict.low_neurons[:] = everything
    strict_iia = _agree(trained, compiled, mapping, strict)
    return SiitScores(exact.accuracy, exact.checked_inputs, exact.how, float(iia.mean()), float(strict_iia.mean()), n)
