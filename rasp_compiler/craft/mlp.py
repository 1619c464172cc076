"""MLP blocks for Map and SequenceMap.

* Categorical input: a lookup table, one hidden neuron per input value (per pair of
  values for a SequenceMap) that fires exactly when that value is present.
* Numerical input: a staircase. Between consecutive input values whose outputs
  differ, two ReLUs make a step that rises from 0 to 1 within the middle half of the
  gap; its slope comes from that gap, so inputs that are close get steep steps and
  far ones gentle steps (gentle steps keep float32 rounding small).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from rasp_compiler.craft.blocks import MLPBlock, matrix
from rasp_compiler.graph.residual import Dir
from rasp_compiler.rasp.exact import same_exact


def output_vector(node: str, numerical: bool, value: Any) -> dict[Dir, float]:
    """The residual write that encodes ``value`` of ``node`` (empty for None)."""
    if value is None:
        return {}
    if numerical:
        return {Dir(node): float(value)}
    return {Dir(node, value): 1.0}


def _assemble(node: str, reads: list[Dir], hidden: list[str], w_in: dict, b_in: list[float],
              outs: list[dict[Dir, float]]) -> MLPBlock:
    writes = list(dict.fromkeys(d for o in outs for d in o))
    w_out = np.zeros((len(hidden), len(writes)))
    col = {d: j for j, d in enumerate(writes)}
    for i, o in enumerate(outs):
        for d, w in o.items():
            w_out[i, col[d]] += w
    hidden_dirs = [Dir(f"#{i}") for i in range(len(hidden))]
    w = matrix(reads, hidden_dirs, {(r, hidden_dirs[h]): v for (r, h), v in w_in.items()})
    return MLPBlock(node, tuple(reads), tuple(writes), tuple(hidden), w, np.asarray(b_in, float), w_out)


def _doubled(out: dict[Dir, float]) -> dict[Dir, float]:
    return {d: 2.0 * w for d, w in out.items()}


def map_lookup(node: str, numerical: bool, inputs: dict[Any, Dir], f: Callable[[Any], Any]) -> MLPBlock:
    """Categorical -> anything: neuron v is 2 relu(x[input=v] - 1/2). Its pre-activation is
    +-1/2 on a one-hot input, never 0, so a gradient does not depend on ReLU'(0)."""
    reads = list(inputs.values())
    hidden, w_in, outs = [], {}, []
    for i, (v, d) in enumerate(inputs.items()):
        hidden.append(f"{node}: {d}")
        w_in[(d, i)] = 1.0
        outs.append(_doubled(output_vector(node, numerical, f(v))))
    return _assemble(node, reads, hidden, w_in, [-0.5] * len(hidden), outs)


def pair_lookup(node: str, numerical: bool, fst: dict[Any, Dir], snd: dict[Any, Dir],
                f: Callable[[Any, Any], Any]) -> MLPBlock:
    """Categorical x categorical -> anything: neuron (a, b) is 2 relu(x[a] + x[b] - 3/2)
    (pre-activation 1/2, -1/2 or -3/2 on one-hot inputs: never 0)."""
    reads = list(dict.fromkeys(list(fst.values()) + list(snd.values())))
    hidden, w_in, outs = [], {}, []
    for a, da in fst.items():
        for b, db in snd.items():
            i = len(hidden)
            hidden.append(f"{node}: {da} & {db}")
            w_in[(da, i)] = w_in.get((da, i), 0.0) + 1.0
            w_in[(db, i)] = w_in.get((db, i), 0.0) + 1.0
            outs.append(_doubled(output_vector(node, numerical, f(a, b))))
    return _assemble(node, reads, hidden, w_in, [-1.5] * len(hidden), outs)


def numeric_input_map(node: str, numerical: bool, readout: dict[Dir, float],
                      points: Sequence[tuple[float, Any]], what: str = "x") -> MLPBlock:
    """Numerical input -> anything: a staircase, or for a number output the
    interpolation when that keeps float32 rounding smaller (a function that is linear
    on long runs of inputs needs few interpolation neurons but a step per value)."""
    stairs = staircase(node, numerical, readout, points, what)
    if not numerical or any(y is None for _, y in points):
        return stairs
    line = interpolation(node, readout, points, what)
    return min((line, stairs), key=lambda b: _rounding_scale(b, readout, points))


def interpolation(node: str, readout: dict[Dir, float], points: Sequence[tuple[float, Any]],
                  what: str = "x") -> MLPBlock:
    """Numerical input -> number: the piecewise-linear interpolation through the points,
    y0 + s0 (x - x0) + sum_k (s_k - s_k-1) relu(x - x_k), with a neuron only where the
    slope changes. Exact on the points; x - x0 >= 0 on every one of them."""
    points = sorted({float(x): float(y) for x, y in points}.items())
    reads = list(readout)
    (x0, y0) = points[0]
    hidden = [f"{node}: constant ({what}={x0:.6g} -> {y0!r})"]
    w_in: dict = {}
    b_in = [1.0]
    outs = [output_vector(node, True, y0)]
    before = 0.0
    for (xa, ya), (xb, yb) in zip(points, points[1:]):
        slope = (yb - ya) / (xb - xa)
        if abs(slope - before) <= 1e-12 * max(1.0, abs(slope)):  # the same slope up to float64 rounding
            continue
        i = len(hidden)
        hidden.append(f"{node}: slope {slope:.6g} from {what}={xa:.6g}")
        for d, w in readout.items():
            w_in[(d, i)] = w
        b_in.append(-xa)
        outs.append({Dir(node): slope - before})
        before = slope
    return _assemble(node, reads, hidden, w_in, b_in, outs)


def _rounding_scale(block: MLPBlock, readout: dict[Dir, float], points) -> float:
    """How large the terms get that the output sum cancels (float32 rounds in proportion):
    the largest sum of |hidden activation * output weight|, which is reached at an end
    of the input range."""
    xs = [min(float(x) for x, _ in points), max(float(x) for x, _ in points)]
    d, w = next(((d, w) for d, w in readout.items() if w != 0), (None, 0.0))
    x = np.zeros((2, len(block.reads)))
    if d is not None:
        x[:, block.reads.index(d)] = np.asarray(xs) / w
    hidden = np.maximum(x @ block.w_in + block.b_in, 0)
    return float((hidden @ np.abs(block.w_out)).max()) if block.w_out.size else 0.0


def staircase(node: str, numerical: bool, readout: dict[Dir, float],
              points: Sequence[tuple[float, Any]], what: str = "x") -> MLPBlock:
    """Numerical input -> anything, exact on the given (input value, output) points.

    A step's two ReLUs are both active on one side of it, where they grow with the
    distance to the step and cancel only in the sum; float32 rounds that sum. So each
    step is turned to be active on its nearer end of the input range (a step above the
    middle rises, one below falls from an "on" default): no active ReLU is more than
    half the range away from its step.
    """
    points = sorted({float(x): y for x, y in points}.items())
    reads = list(readout)
    hidden: list[str] = [f"{node}: constant ({what}={points[0][0]:.6g} -> {points[0][1]!r})"]
    w_in: dict = {}
    b_in = [1.0]
    outs = [output_vector(node, numerical, points[0][1])]
    centre = (points[0][0] + points[-1][0]) / 2
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if _same(y0, y1, numerical):
            continue
        gap = x1 - x0
        slope = 2.0 / gap  # the step rises over the middle half of the gap
        mid = (x0 + x1) / 2
        delta = _difference(output_vector(node, numerical, y1), output_vector(node, numerical, y0))
        turn = 1.0 if mid >= centre else -1.0  # -1: active below the step, on by default
        if turn < 0:
            outs[0] = _sum(outs[0], delta)
        for sign, offset in ((1.0, 0.5), (-1.0, -0.5)):
            i = len(hidden)
            hidden.append(f"{node}: step {what}>{mid:.6g} ({y0!r}->{y1!r}) "
                          f"{'rise' if sign > 0 else 'cap'}{'' if turn > 0 else ' (falling side)'}")
            for d, w in readout.items():
                w_in[(d, i)] = turn * slope * w
            b_in.append(-turn * slope * mid + offset)
            outs.append({d: turn * sign * w for d, w in delta.items()})
    return _assemble(node, reads, hidden, w_in, b_in, outs)


def _sum(a: dict[Dir, float], b: dict[Dir, float]) -> dict[Dir, float]:
    return _difference(a, {d: -w for d, w in b.items()})


def _same(a: Any, b: Any, numerical: bool) -> bool:
    """One output: equal numbers, or for a categorical output one direction (0 is not 0.0)."""
    return bool(a == b) if numerical else same_exact(a, b)


def _difference(a: dict[Dir, float], b: dict[Dir, float]) -> dict[Dir, float]:
    out = dict(a)
    for d, w in b.items():
        out[d] = out.get(d, 0.0) - w
    return {d: w for d, w in out.items() if w != 0.0}
