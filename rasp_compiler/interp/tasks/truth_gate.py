"""The per-target truth check of variants whose truth is claimed exact but whose model is not.

A noisy model keeps the clean model's circuits only if nothing outside a circuit moves the
target; :mod:`rasp_compiler.interp.variants.noise` is built so, and this module measures it
on the pairs the task stores (every pair set of every target), in float64 on the stored
weights, with the figures of :func:`rasp_compiler.interp.siit.gate.pair_figures`:

* ``faithfulness_min``/``_max``: ``(M(clean, every component outside the circuit from the
  corrupted run) − M(corrupted)) / gap`` over the pairs — must lie in :data:`FAITHFULNESS`;
* ``outside_effect_max``: the largest ``|M(clean) − M(clean, one outside component from
  the corrupted run)| / gap`` — at most :data:`OUTSIDE_EFFECT`.

A target that misses either is dropped from the task (``dropped_targets`` in ``task.json``,
with the reason and the figures); a task whose output target misses is not written. The
bounds and every kept target's figures go into ``task.json`` as ``truth_check``.
"""

from __future__ import annotations

from rasp_compiler.interp.coverage import exact
from rasp_compiler.interp.forward import Decomposed
from rasp_compiler.interp.siit.gate import pair_figures
from rasp_compiler.interp.tasks.sources import TaskSetError

GATED = ("noise",)  # kinds checked here (the exact kinds are checked by the tests and the audit)
FAITHFULNESS = (0.99, 1.01)
OUTSIDE_EFFECT = 0.01


class TruthCheckError(TaskSetError):
    """The output target's claimed circuit fails the truth check: the task is not written."""


def bounds() -> dict:
    return {"faithfulness": list(FAITHFULNESS), "outside_effect_max": OUTSIDE_EFFECT,
            "how": "every pair set of the target, float64 on the stored weights; outside components' outputs "
                   "replaced by their corrupted-run outputs (all at once: faithfulness; one at a time: "
                   "outside effect, as a share of the pair's gap)"}


def figures(model, truth, sets: dict, is_output: bool) -> dict[str, float]:
    """The figures of one target over its pair sets (name -> Pairs)."""
    model64 = exact(Decomposed(model)).model
    got = [pair_figures(model64, truth, [(p, is_output)]) for p in sets.values()]
    return {"faithfulness_min": min(g["faithfulness_min"] for g in got),
            "faithfulness_max": max(g["faithfulness_max"] for g in got),
            "outside_effect_max": max(g["outside_effect_max"] for g in got)}


def misses(fig: dict[str, float]) -> list[str]:
    """Each bound ``fig`` misses, in words (a NaN misses)."""
    lo, hi = FAITHFULNESS
    out = []
    if not (lo <= fig["faithfulness_min"] and fig["faithfulness_max"] <= hi):
        out.append(f"faithfulness {fig['faithfulness_min']:.4f}..{fig['faithfulness_max']:.4f} outside [{lo}, {hi}]")
    if not fig["outside_effect_max"] <= OUTSIDE_EFFECT:
        out.append(f"an out-of-circuit component moves the metric by {fig['outside_effect_max']:.4f} of the gap "
                   f"(> {OUTSIDE_EFFECT})")
    return out


def check(kind: str, model, truth, entries: list, sets: list[dict]):
    """``(entries, sets, truth_check, dropped)`` with the failing targets removed (module doc);
    ``truth_check`` is None for kinds not gated. Raises :class:`TruthCheckError` when the
    output target fails."""
    if kind not in GATED:
        return entries, sets, None, []
    kept, kept_sets, dropped, measured = [], [], [], {}
    for entry, by_name in zip(entries, sets):
        pairs, is_output, _ = entry
        fig = figures(model, truth, by_name, is_output)
        missed = misses(fig)
        if missed and is_output:
            raise TruthCheckError(f"the clean circuit of the output does not hold in the {kind} model: "
                                  f"{'; '.join(missed)}")
        if missed:
            dropped.append({"target": pairs.target, "reason": "; ".join(missed), **fig})
            continue
        measured[pairs.target] = fig
        kept.append(entry)
        kept_sets.append(by_name)
    return kept, kept_sets, {**bounds(), "targets": measured}, dropped
