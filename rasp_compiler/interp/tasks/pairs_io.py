"""Fixed clean/corrupted pairs of a task on disk: ``pairs.json`` + ``pairs.safetensors``.

The JSON says what a pair is in words any framework can use (the token lists, the
positions whose target value differs, the two values there, and how the metric is
formed); the safetensors file holds the exact arrays (token ids, the metric directions
``U``, the gaps), so a method scored from the files sees the very numbers our own
scoring uses. Target k's tensors are ``t{k}.clean``, ``t{k}.corrupt`` (int64, BOS first,
PAD-padded), ``t{k}.U`` (float64, (P, n_ctx, d_model)), ``t{k}.gap`` and
``t{k}.lengths``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rasp_compiler.export.values import decode_value, printable_value
from rasp_compiler.interp.pairs import Pairs

PAIRS_FORMAT = "rasp_compiler.task.pairs"
PAIRS_VERSION = 1
METRIC = ("M(resid) = sum over positions p of <resid[p], U[p]>, resid the final residual stream "
          "(logits = resid @ W_U); U[p] is the clean value's read-out direction minus the corrupted one's "
          "at positions where they differ (the logit difference for the output), or sign(clean - corrupt) "
          "times the read-out for a numerical target; zero elsewhere. A component's effect: the change of M "
          "when its output on the clean input is replaced by its output on the corrupted one.")


def _values(row) -> list:
    return [printable_value(v) for v in row]


def pairs_to_files(model, entries: list[tuple[Pairs, bool, bool]], n_pairs: int, seed: int,
                   skipped: list[str]) -> tuple[dict, dict[str, np.ndarray]]:
    """(pairs.json data, tensors) for ``entries``: (pairs, is_output, same_length) per target."""
    toks = model.config.input_tokens
    targets, tensors = [], {}
    for k, (p, is_output, same_length) in enumerate(entries):
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
        targets.append({"target": p.target, "is_output": is_output, "same_length": same_length,
                        "tensors": f"t{k}", "pairs": rows})
        tensors.update({f"t{k}.clean": np.ascontiguousarray(p.clean, np.int64),
                        f"t{k}.corrupt": np.ascontiguousarray(p.corrupt, np.int64),
                        f"t{k}.U": np.ascontiguousarray(p.U, np.float64),
                        f"t{k}.gap": np.ascontiguousarray(p.gap, np.float64),
                        f"t{k}.lengths": np.ascontiguousarray(p.lengths, np.int64)})
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


def pairs_from_files(data: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Pairs]:
    """target -> :class:`Pairs`, in the order they were written (the output first)."""
    if data.get("format") != PAIRS_FORMAT:
        raise ValueError(f"not a pairs file (format {data.get('format')!r}, expected {PAIRS_FORMAT!r})")
    out = {}
    for t in data["targets"]:
        k = t["tensors"]
        dec = lambda key: _object_array([[decode_value(v) for v in row[key]] for row in t["pairs"]])
        out[t["target"]] = Pairs(t["target"], tensors[f"{k}.clean"], tensors[f"{k}.corrupt"], tensors[f"{k}.U"],
                                 dec("clean_values"), dec("corrupt_values"), tensors[f"{k}.lengths"],
                                 tensors[f"{k}.gap"])
    return out
