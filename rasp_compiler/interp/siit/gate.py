"""The bar a trained (SIIT) model must meet to be published as a task, and its measurement.

Training gives no guarantee, so the truth of a trained model (the mapped circuit) is only
as good as what is measured. Two kinds of figures, both computed from the model alone:

* from :mod:`.measure`: task accuracy, IIA, strict IIA (random interventions);
* on the task's own clean/corrupted pairs (the ones ``pairs.json`` stores, main set of
  every target), with the metric ``M`` of :mod:`rasp_compiler.interp.pairs`:
  ``outside_effect_max`` — the largest ``|M(clean) − M(clean, c from corrupted)| / gap``
  over pairs and over components ``c`` outside the target's circuit (the unmapped ones),
  one component at a time; ``faithfulness_min``/``_max`` — the range over pairs of
  ``(M(clean, every outside component from corrupted) − M(corrupted)) / gap``.
  "c from corrupted" replaces that component's output (its heads' ``hook_z`` @ ``W_O``,
  its neurons' ``hook_post`` @ ``W_out``) with its output on the corrupted input; the
  components after it run on the changed residual stream (a replacement, not an added
  difference, so several replaced components do not compound).

A model is exported only when every figure meets :data:`BAR` (docs/trained.md states it
and why); the bounds go into ``task.json`` next to the figures, so an outside audit can
re-measure the figures from the task's files and check them against the same bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasp_compiler.interp.forward import Decomposed


@dataclass(frozen=True)
class Bar:
    """Thresholds a trained model must meet (each figure is defined in the module doc)."""

    accuracy: float = 0.99  # share of checked inputs decoded exactly as the program
    iia: float = 0.95
    strict_iia: float = 0.95
    # outside_effect_max <= unmapped_bound; |faithfulness - 1| <= faithfulness_bound on every pair.
    # On the committed models that meet the three rates above: outside effect at most 0.18,
    # |faithfulness - 1| at most 0.19 (both detect_pattern); the two that miss the rates
    # reach 1.02 and 0.58, and 1.00 and 1.09 (benchmarks/trained_gate.py, docs/trained.md).
    unmapped_bound: float = 0.25
    faithfulness_bound: float = 0.25


BAR = Bar()


def pair_figures(model, truth, pairs_of_targets) -> dict[str, float]:
    """``outside_effect_max``, ``faithfulness_min`` and ``faithfulness_max`` over the given
    ``(pairs, is_output)`` of every target (see the module doc)."""
    dec = Decomposed(model)
    worst, f_lo, f_hi = 0.0, np.inf, -np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        for pairs, is_output in pairs_of_targets:
            members = truth.circuit(None if is_output else pairs.target).nodes
            clean, corrupt = {}, {}
            m_clean = pairs.metric(dec.run(pairs.clean, record=clean))
            m_corrupt = pairs.metric(dec.run(pairs.corrupt, record=corrupt))
            gap = m_clean - m_corrupt
            outside = [c.name for c in dec.writers if c.name not in members and c.kind != "embed"]
            ablated = {c.name: corrupt["out:" + c.name] for c in dec.writers}

            def replaced(names):  # M(clean) with the outputs of ``names`` replaced by their corrupted ones
                mask = np.array([0.0 if c.name in names else 1.0 for c in dec.writers])
                return pairs.metric(dec.run(pairs.clean, node_mask=mask, ablated=ablated))

            for n in outside:
                worst = max(worst, float(np.max(np.abs(m_clean - replaced({n})) / gap)))
            faith = (replaced(set(outside)) - m_corrupt) / gap
            f_lo, f_hi = min(f_lo, float(faith.min())), max(f_hi, float(faith.max()))
    return {"outside_effect_max": worst, "faithfulness_min": f_lo, "faithfulness_max": f_hi}


def misses(accuracy: float, metrics: dict, bar: Bar = BAR) -> list[str]:
    """Each figure that misses ``bar``, in words (empty: the model meets it)."""
    out = []
    if not accuracy >= bar.accuracy:  # written so that a NaN misses the bar
        out.append(f"accuracy {accuracy:.4f} < {bar.accuracy}")
    for key in ("iia", "strict_iia"):
        if not metrics[key] >= getattr(bar, key):
            out.append(f"{key} {metrics[key]:.4f} < {getattr(bar, key)}")
    if not metrics["outside_effect_max"] <= bar.unmapped_bound:
        out.append(f"outside_effect_max {metrics['outside_effect_max']:.3f} > {bar.unmapped_bound} "
                   f"(an unmapped component moves the metric by that share of the gap)")
    if not max(1 - metrics["faithfulness_min"], metrics["faithfulness_max"] - 1) <= bar.faithfulness_bound:
        out.append(f"faithfulness {metrics['faithfulness_min']:.3f}..{metrics['faithfulness_max']:.3f} "
                   f"outside 1 ± {bar.faithfulness_bound}")
    return out
