"""The run-time one-hot guard: every categorical SOp holds one value at every real position.

A compiled categorical SOp is a one-hot vector over its values' residual directions (all
zero for ``None``). An Aggregate that no rule proved to copy one value (see
``config.unproven_aggregates``) may, on some input, select positions holding different
values; its head then writes their average, e.g. 0.5 on two directions, and everything
downstream reads nonsense. The guard tests the final residual stream (each subspace is
written once, so it still holds what was written) and raises :class:`BlendedValueError`
naming the SOp, the position and the input, instead of decoding a wrong output.

Only a model in its compiled basis has these subspaces: a compiled model, or one loaded
from a file that records them (``one_hot_guard`` metadata). Variants (rotated, noisy,
trained ...) are not one-hot and carry no guard.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from rasp_compiler.errors import BlendedValueError
from rasp_compiler.graph.residual import Dir, ResidualLayout

# An attention head that averages k >= 2 selected positions holding different one-hot values
# puts a weight of at least 1/k >= 1/max_seq_len on some direction and at most 1 - 1/max_seq_len
# on any: a direction between TOLERANCE_FRACTION / max_seq_len and 1 minus that is a blend. A
# compiled model is far more precise: its error there is below 1e-6 on the library programs
# at lengths 5 to 200 (and tests/test_unproven.py checks the margin).
TOLERANCE_FRACTION = 0.25


@dataclass(frozen=True)
class OneHotGuard:
    """The categorical subspaces of the residual stream: (SOp, first dimension, end, nullable)."""

    groups: tuple[tuple[str, int, int, bool], ...]
    tolerance: float

    @classmethod
    def from_layout(cls, layout: ResidualLayout, max_seq_len: int) -> "OneHotGuard":
        groups = []
        for node, values in layout.values.items():
            dims = [layout.index[Dir(node, v)] for v in values if Dir(node, v) in layout.index]
            if not dims:  # a virtual node: no directions of its own
                continue
            assert dims == list(range(dims[0], dims[0] + len(values))), f"{node}: directions not contiguous"
            groups.append((node, dims[0], dims[0] + len(dims), node in layout.nullable))
        groups.sort(key=lambda g: g[1])  # residual order: producers before their readers
        return cls(tuple(groups), tolerance_for(max_seq_len))

    def to_json(self) -> dict:
        return {"tolerance": self.tolerance, "groups": [list(g) for g in self.groups]}

    @classmethod
    def from_json(cls, data: Any, d_model: int) -> "OneHotGuard":
        """From :meth:`to_json` output; ``ValueError`` saying what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
            raise ValueError("expected an object with a 'groups' list")
        tol = data.get("tolerance")
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 0.5:
            raise ValueError(f"'tolerance' must be a number between 0 and 0.5, got {tol!r}")
        groups = []
        for g in data["groups"]:
            ok = (isinstance(g, list) and len(g) == 4 and isinstance(g[0], str)
                  and all(isinstance(x, int) and not isinstance(x, bool) for x in g[1:3])
                  and isinstance(g[3], bool) and 0 <= g[1] < g[2] <= d_model)
            if not ok:
                raise ValueError(f"group {g!r} is not [SOp label, first, end, nullable] within d_model={d_model}")
            groups.append((g[0], g[1], g[2], g[3]))
        return cls(tuple(groups), float(tol))

    @functools.cached_property
    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Residual columns of every group, the group membership matrix (columns x groups), nullable."""
        cols = np.concatenate([np.arange(a, b) for _, a, b, _ in self.groups]) if self.groups else np.zeros(0, int)
        member = np.zeros((len(cols), len(self.groups)), np.float32)
        at = 0
        for g, (_, a, b, _) in enumerate(self.groups):
            member[at:at + b - a, g] = 1.0
            at += b - a
        return cols, member, np.array([n for *_, n in self.groups], bool)

    def violations(self, resid, xp=np):
        """(batch, positions, groups): where a group is not one-hot (a direction neither near 0
        nor near 1, two near 1, or none near 1 for an SOp that cannot be None). ``xp`` is numpy
        or jax.numpy, so the jitted forward pass returns this small mask, not the residual."""
        cols, member, nullable = self._columns
        x = resid[..., cols]
        off = (xp.minimum(xp.abs(x), xp.abs(x - 1.0)) > self.tolerance).astype(xp.float32) @ member
        hot = (x > 0.5).astype(xp.float32) @ member
        return (off > 0) | (hot > 1.5) | ((hot < 0.5) & ~nullable)

    def raise_first(self, bad: np.ndarray, n_real: Sequence[int], batch: Sequence[Sequence[Any]],
                    residual_of: Callable[[int], np.ndarray], residual_labels: Sequence[str],
                    unproven: Sequence[str] = ()) -> None:
        """Raise :class:`BlendedValueError` for the first sequence of ``batch`` (token lists with
        BOS) that ``bad`` (from :meth:`violations`) flags at a real position (1 .. n_real - 1),
        naming the earliest SOp; ``residual_of(b)`` gives that sequence's residual for the message."""
        bad = np.asarray(bad)[: len(n_real)]
        real = np.arange(bad.shape[1])[None, :] < np.asarray(n_real)[:, None]
        real[:, 0] = False  # BOS holds defaults, not values
        bad = bad & real[..., None]
        if not bad.any():
            return
        b = int(np.flatnonzero(bad.any(axis=(1, 2)))[0])
        g = int(np.flatnonzero(bad[b].any(axis=0))[0])
        p = int(np.flatnonzero(bad[b, :, g])[0])
        node, a, end, _ = self.groups[g]
        row = np.asarray(residual_of(b)[p, a:end], np.float64)
        shown = [f"{residual_labels[a + i]}={row[i]:.3g}" for i in np.argsort(-np.abs(row))[:6]
                 if abs(row[i]) > self.tolerance] or ["every direction 0"]
        tokens = list(batch[b])
        why = (f"{node} is a categorical Aggregate compiled unproven (config.unproven_aggregates): on this input "
               f"it selects positions holding different values, and its head averages them. Check with "
               f"rasp.evaluate(program, xs, strict=True); make the Aggregate numerical (a mean) or its selector "
               f"narrower, or compile with strict=True to refuse it") if node in unproven else (
               f"the model is not exact on this input (its weights were changed after compiling, or a compiler "
               f"bug: please report it)")
        raise BlendedValueError(
            f"categorical SOp {node} holds no single value at position {p} (token {tokens[p]!r}) of input "
            f"{tokens!r}: its directions read {', '.join(shown)} (one value is one direction within "
            f"{self.tolerance:.3g} of 1, the others within {self.tolerance:.3g} of 0); {why}. guard=False "
            f"(--no-guard) skips this check", sop=node, position=p, input=tokens)


def tolerance_for(max_seq_len: int) -> float:
    return TOLERANCE_FRACTION / max(1, max_seq_len)
