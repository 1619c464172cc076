"""Fixed clean/corrupted pairs of a task on disk: ``pairs.json`` + ``pairs.safetensors``.

The JSON says what a pair is in words any framework can use (the token lists, the
positions whose target value differs, the two values there, and how the metric is
formed); the safetensors file holds the exact arrays (token ids, the metric directions
``U``, the gaps), so a method scored from the files sees the very numbers our own
scoring uses. Target k's tensors are ``t{k}.clean``, ``t{k}.corrupt`` (int64, BOS first,
PAD-padded), ``t{k}.U`` (float64, (P, n_ctx, d_model)), ``t{k}.gap`` and
``t{k}.lengths``.

Version 2 adds further named pair sets per target (``pair_sets``: each with its name, e.g.
``lengths``, and its own ``pairs`` rows and tensors ``t{k}.{name}.clean`` ...): the target's
first set (``main``, the fields above) can leave structural members silent
(:mod:`rasp_compiler.interp.coverage`). Version 1 files (no ``pair_sets``) still load.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rasp_compiler.export.values import decode_value, printable_value
from rasp_compiler.interp.pairs import Pairs

PAIRS_FORMAT = "rasp_compiler.task.pairs"
PAIRS_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAIN = "main"
METRIC = ("M(resid) = sum over positions p of <resid[p], U[p]>, resid the final residual stream "
          "(logits = resid @ W_U); U[p] is the clean value's read-out direction minus the corrupted one's "
          "at positions where they differ (the logit difference for the output), or sign(clean - corrupt) "
          "times the read-out for a numerical target; zero elsewhere. A component's effect: the change of M "
          "when its output on the clean input is replaced by its output on the corrupted one.")


def _values(row) -> list:
    return [printable_value(v) for v in row]


def _rows(p: Pairs, toks) -> list[dict]:
    rows = []
    for i in range(len(p)):
        n_clean, n_corrupt = int((p.clean[i] != 1).sum()), int((p.corrupt[i] != 1).sum())
        positions = np.nonzero(np.abs(p.U[i]).sum(-1) > 0)[0]
        rows.append({"clean": [printable_value(toks[j]) for j in p.clean[i][:n_clean]],
                     "corrupt": [printable_value(toks[j]) for j in p.corrupt[i][:n_corrupt]],
                     "positions": [int(q) for q in positions],
                     "clean_values": _values(p.clean_values[i]),
                     "corrupt_values": _values(p.corrupt_values[i]),
                     "gap": float(p.gap[i])})
    return rows


def _tensors(prefix: str, p: Pairs) -> dict[str, np.ndarray]:
    return {f"{prefix}.clean": np.ascontiguousarray(p.clean, np.int64),
            f"{prefix}.corrupt": np.ascontiguousarray(p.corrupt, np.int64),
            f"{prefix}.U": np.ascontiguousarray(p.U, np.float64),
            f"{prefix}.gap": np.ascontiguousarray(p.gap, np.float64),
            f"{prefix}.lengths": np.ascontiguousarray(p.lengths, np.int64)}


def pairs_to_files(model, entries: list[tuple[Pairs, bool, bool]], n_pairs: int, seed: int,
                   skipped: list[str], extra_sets: list[dict[str, Pairs]] | None = None
                   ) -> tuple[dict, dict[str, np.ndarray]]:
    """(pairs.json data, tensors) for ``entries``: (pairs, is_output, same_length) per target;
    ``extra_sets[k]``: entry k's further named pair sets (name -> pairs; ``main`` is skipped)."""
    toks = model.config.input_tokens
    targets, tensors = [], {}
    for k, (p, is_output, same_length) in enumerate(entries):
        more = []
        for name, q in (extra_sets[k] if extra_sets else {}).items():
            if name == MAIN:
                continue
            more.append({"name": name, "same_length": q.same_length, "tensors": f"t{k}.{name}", "pairs": _rows(q, toks)})
            tensors.update(_tensors(f"t{k}.{name}", q))
        targets.append({"target": p.target, "is_output": is_output, "same_length": same_length,
                        "tensors": f"t{k}", "pairs": _rows(p, toks), "pair_set": MAIN, "pair_sets": more})
        tensors.update(_tensors(f"t{k}", p))
    data = {"format": PAIRS_FORMAT, "version": PAIRS_VERSION, "n_pairs": n_pairs, "seed": seed,
            "metric": METRIC, "token_ids": [printable_value(t) for t in toks], "targets": targets,
            "skipped": skipped}
    return data, tensors


def _object_array(rows: list[list]) -> np.ndarray:
    """(P, n_ctx) object array; filled cell by cell so tuple values stay whole."""
    out = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            out[i, j] = v
    return out


def _pairs(target: str, entry: dict, tensors: dict[str, np.ndarray]) -> Pairs:
    k = entry["tensors"]
    n_ctx = tensors[f"{k}.clean"].shape[1]
    # a blind folder's pairs.json carries no values (docs/testbed_format.md): None throughout
    dec = lambda key: _object_array([[decode_value(v) for v in row[key]] if key in row else [None] * n_ctx
                                     for row in entry["pairs"]])
    return Pairs(target, tensors[f"{k}.clean"], tensors[f"{k}.corrupt"], tensors[f"{k}.U"],
                 dec("clean_values"), dec("corrupt_values"), tensors[f"{k}.lengths"], tensors[f"{k}.gap"])


def pair_sets_from_files(data: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, dict[str, Pairs]]:
    """target -> pair set name -> :class:`Pairs` (``main`` first; targets in written order)."""
    if data.get("format") != PAIRS_FORMAT:
        raise ValueError(f"not a pairs file (format {data.get('format')!r}, expected {PAIRS_FORMAT!r})")
    if data.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"pairs file version {data.get('version')!r}; this reader knows {READABLE_VERSIONS}")
    out = {}
    for t in data["targets"]:
        sets = {MAIN: _pairs(t["target"], t, tensors)}
        for extra in t.get("pair_sets", []):
            sets[extra["name"]] = _pairs(t["target"], extra, tensors)
        out[t["target"]] = sets
    return out


def pairs_from_files(data: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Pairs]:
    """target -> its ``main`` :class:`Pairs`, in the order they were written (the output first)."""
    return {t: sets[MAIN] for t, sets in pair_sets_from_files(data, tensors).items()}
