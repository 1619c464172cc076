"""One method on one model or task, scored against the truth, as plain JSON.

This is what ``rasp-compiler testbed score`` prints and what every sweep job writes. A
task folder is scored with its stored truth and on its stored pairs (the testbed makes
the same pairs from the same seed; a difference is reported, never hidden); a plain
weight file with the truth read off its weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rasp_compiler.interp.tasks.sources import TaskSetError


def method_names() -> list[str]:
    """Every method ``score`` accepts: the registry ``rasp_compiler.interp.methods.METHODS``."""
    from rasp_compiler.interp.methods import METHODS

    return list(METHODS)


def method_level(method: str) -> str:
    from rasp_compiler.interp.methods import METHODS

    return METHODS[method].level


@dataclass(frozen=True)
class Scored:
    """A method's result on one model: ``data`` is the JSON a sweep job writes; ``result`` the
    testbed's ModelResult (for plots)."""

    data: dict
    result: Any


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _clean(x.item())
    return x


def _key(k) -> str:
    return k if isinstance(k, str) else f"{k[0]} -> {k[1]}"


def score_model(model, truth, method: str, n_pairs: int = 16, seed: int = 0,
                name: str = "", pairs: dict | None = None, pair_set: str | None = None) -> Scored:
    """Run ``method`` on every target of ``model`` and score it against ``truth``; with ``pairs``
    (target -> pairs: a task's pair set ``pair_set``) on those pairs and targets only."""
    from rasp_compiler.interp.testbed import evaluate

    if method not in method_names():
        raise TaskSetError(f"unknown method {method!r}; known: {', '.join(method_names())}")
    level = method_level(method)
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        result = evaluate(model, name, n_pairs=n_pairs, seed=seed, gt=truth, methods=(method,),
                          edges=("output" if level == "edge" else False), pairs=pairs)
    seconds = time.perf_counter() - start
    targets = []
    for t in result.targets:
        scores = t.scores.get(method)
        if scores is None:
            continue
        views = t.edge if level == "edge" else t.node
        positives = t.circuit_edges if level == "edge" else t.circuit_nodes
        active = t.active_edges if level == "edge" else t.active_nodes
        exercised = t.exercised_edges if level == "edge" else t.exercised_nodes
        targets.append({
            "target": t.target, "is_output": t.is_output, "same_length": t.same_length,
            "n_pairs": len(t.pairs), "gap": float(t.pairs.gap.mean()),
            "circuit": [_key(k) for k in positives], "active": [_key(k) for k in active],
            "exercised": [_key(k) for k in exercised],
            "scores": {_key(k): v for k, v in scores.score.items()},
            "views": {view: scored[method].as_row() for view, scored in views.items() if method in scored},
        })
    data = {"method": method, "level": level, "n_pairs": n_pairs, "seed": seed,
            **({"pair_set": pair_set} if pair_set is not None else {}), "targets": targets,
            "skipped_targets": list(result.skipped),
            "summary": summary(targets), "seconds": round(seconds, 3)}
    return Scored(_clean(data), result)


SUMMARY_FIELDS = ("auc", "pr_auc", "f1", "faithfulness")  # averaged over targets by ``summary``
VIEWS = ("structural", "active", "exercised")


def summary(targets: list[dict]) -> dict:
    """Means over targets of ROC AUC, PR AUC, F1 at k and faithfulness, per view
    (``auc_active``, ``pr_auc_structural``, ...), and the output's own (``auc_active_output``)."""
    out = {}
    for view in VIEWS:
        for f in SUMMARY_FIELDS:
            vals = [t["views"][view].get(f) for t in targets if view in t["views"]]
            vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
            out[f"{f}_{view}"] = float(np.mean(vals)) if vals else None
            outs = [t["views"][view].get(f) for t in targets if t["is_output"] and view in t["views"]]
            out[f"{f}_{view}_output"] = outs[0] if outs and outs[0] is not None else None
    return out


def score_path(path, method: str, n_pairs: int | None = None, seed: int | None = None,
               pair_set: str | None = None) -> tuple[Scored, dict]:
    """Score a task folder (its truth and pairs) or a weight file (truth from its weights).
    ``pair_set`` (a task folder only): score on that stored pair set (e.g. ``lengths``), the
    targets that have it; default: the stored ``main`` set (labelled by the program, so a noisy
    model's own pairs would differ); with ``seed`` or ``n_pairs``: fresh pairs from the model.
    Returns the result and a description of what was scored."""
    from rasp_compiler.interp.tasks.load import is_task, load_task

    path = Path(path)
    if is_task(path):
        task = load_task(path)
        if pair_set is not None:
            chosen = {t: sets[pair_set] for t, sets in task.pair_sets.items() if pair_set in sets}
            if not chosen:
                known = sorted({n for sets in task.pair_sets.values() for n in sets})
                raise TaskSetError(f"{path}: no target has pair set {pair_set!r}; pair sets: {', '.join(known)}")
            s = score_model(task.model, task.truth, method, task.info["n_pairs"], task.info["pair_seed"],
                            task.name, pairs=chosen, pair_set=pair_set)
            return s, {"task": task.name, "program": task.info["program"]["name"], "variant": task.kind,
                       "task_seed": task.seed, "model": task.model}
        if seed is None and n_pairs is None:  # the stored main set: the pairs the task was published with
            s = score_model(task.model, task.truth, method, task.info["n_pairs"], task.info["pair_seed"],
                            task.name, pairs=task.pairs)
        else:  # fresh pairs from another seed or count, made from the task's own model
            s = score_model(task.model, task.truth, method, n_pairs or task.info["n_pairs"],
                            task.info["pair_seed"] if seed is None else seed, task.name)
        return s, {"task": task.name, "program": task.info["program"]["name"], "variant": task.kind,
                   "task_seed": task.seed, "model": task.model}
    if path.is_dir():
        raise TaskSetError(f"{path}: not a task folder (no task.json) and not a weight file")
    from rasp_compiler.export import load_model
    from rasp_compiler.interp.ground_truth import ground_truth

    model = load_model(path)
    s = score_model(model, ground_truth(model), method, n_pairs or 16, seed or 0, path.stem)
    return s, {"task": path.stem, "program": model.config.output, "variant": "file", "task_seed": None,
               "model": model}
