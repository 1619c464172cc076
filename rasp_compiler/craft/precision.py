"""Can float32 carry every number the program computes? Decided from the value sets.

The model runs in float32. A number is carried with an error that grows with the
magnitudes around it: rounding of the weights and the residual sums (a few units of
2**-24 of the largest value involved), and for an attention mean the weight that leaks
to unselected positions (below 2**-30, see :mod:`craft.attention`) times the largest
value there. This module follows an upper bound of that error through every numerical
node, in topological order, and refuses the program (``ValueSetError``, naming the SOp,
its values and what to change) wherever the error could change a result:

* a number whose magnitude float32 cannot hold with room for sums (``MAX_MAGNITUDE``);
* a numerical Map whose input may be off by a quarter of the gap between two input
  values that it maps differently (its steps sit in the middle half of each gap);
* a numerical output off by half the gap between two output values (decoding snaps
  to the nearest) and by more than ``OUTPUT_TOLERANCE``.

The MLPs themselves are checked case by case in float32 by :mod:`craft.check`; this
adds what that check cannot see: how inexact their inputs can be.
"""

from __future__ import annotations

import math
from numbers import Real

from rasp_compiler.errors import ValueSetError
from rasp_compiler.graph.nodes import Kind, ProgramGraph
from rasp_compiler.graph.value_sets import sorted_values
from rasp_compiler.rasp import core

EPS = 2.0 ** -24  # float32 unit roundoff
LEAK = 2.0 ** -30  # attention weight on unselected positions and BOS (see craft.attention.sharpness)
MAX_MAGNITUDE = 1e30  # float32 holds up to 3.4e38; sums of max_seq_len values need the room
OUTPUT_TOLERANCE = 2e-6  # absolute error of a numerical output that is always acceptable


def check_precision(pg: ProgramGraph, value_sets: dict, max_seq_len: int) -> dict[str, float]:
    """Bound the float32 error of every numerical node; refuse where it could change a result.
    Returns {node: error bound} for numerical nodes."""
    err: dict[str, float] = {}
    for label in pg.topological():
        node = pg.nodes[label]
        values = _numbers(value_sets.get(label))
        if isinstance(node.expr, core.Aggregate) and node.numerical:
            src = _numbers(value_sets.get(node.aggregated))
            if src:
                _need_magnitude(pg.nodes[node.aggregated], src, f"averaged by {label}")
        if node.numerical and values:
            _need_magnitude(node, values)
        if not node.numerical:
            if isinstance(node.expr, core.Map) and pg.nodes[node.inputs[0]].numerical:
                _need_separable(node, pg, value_sets, err)
            continue
        err[label] = _error(node, pg, value_sets, err, values, max_seq_len)
    out = pg.nodes[pg.output]
    if out.numerical:
        _need_output(out, value_sets.get(out.label), err[out.label])
    return err


def _numbers(values) -> list[float]:
    if values is None:
        return []
    return [float(v) for v in values if isinstance(v, Real)]


def _biggest(values: list[float]) -> float:
    return max((abs(v) for v in values), default=0.0)


def _need_magnitude(node, values: list[float], what: str = "") -> None:
    big = _biggest(values)
    if big > MAX_MAGNITUDE:
        raise ValueSetError(
            f"numerical {node.op} {node.label}{' (' + what + ')' if what else ''} can take "
            f"{max(values, key=abs):.6g}, beyond what float32 can carry with room for sums (|x| <= "
            f"{MAX_MAGNITUDE:.0e}; float32 overflows at 3.4e38); rescale it (e.g. divide by a constant) or make it "
            f"categorical")


def _error(node, pg: ProgramGraph, sets: dict, err: dict, values: list[float], n: int) -> float:
    """Upper bound of |model value - exact value| for a numerical node."""
    e = node.expr
    big = _biggest(values)
    if node.kind is Kind.EMBED:
        return big * EPS
    if isinstance(e, core.Aggregate):
        src = _numbers(sets.get(node.aggregated))
        default = abs(float(e.default or 0))
        return err.get(node.aggregated, _biggest(src) * 2 * EPS) + (_biggest(src) + default) * (LEAK + 4 * EPS)
    if isinstance(e, core.LinearSequenceMap) and node.kind is Kind.VIRTUAL:
        total = 0.0
        for coef, src in ((e.fst_fac, node.inputs[0]), (e.snd_fac, node.inputs[1])):
            vals = _numbers(sets.get(src))
            total += abs(coef) * (err.get(src, _biggest(vals) * 2 * EPS) + _biggest(vals) * 2 * EPS)
        return total + big * 2 * EPS
    if node.kind is Kind.VIRTUAL:  # a numerical read-out of a categorical SOp
        return big * 2 * EPS
    if node.kind is Kind.WIDTH:
        return (n + 1) * 4 * EPS
    if isinstance(e, core.Map) and pg.nodes[node.inputs[0]].numerical:
        _need_separable(node, pg, sets, err)
        src = node.inputs[0]
        xs = sorted(_numbers(sets.get(src)))
        ys = [float(e.f(x)) for x in xs]
        slope = max((abs((b - a) / (x1 - x0)) for (x0, a), (x1, b) in zip(zip(xs, ys), zip(xs[1:], ys[1:]))
                     if x1 > x0), default=0.0)
        return (len(xs) + 2) * max(1.0, big) * EPS + slope * err.get(src, 0.0)
    return (len(node.inputs) + 2) * big * EPS  # a lookup MLP: exact one-hot inputs


def _need_separable(node, pg: ProgramGraph, sets: dict, err: dict) -> None:
    """A Map of a numerical SOp steps between input values it maps differently, in the middle
    half of the gap: its input must be within a quarter of that gap."""
    src = node.inputs[0]
    e_in = err.get(src, 0.0)
    xs = sorted_values(v for v in (sets.get(src) or ()) if isinstance(v, Real))
    if len(xs) < 2 or e_in == 0.0:
        return
    try:
        ys = [node.expr.f(x) for x in xs]
    except Exception:
        return  # value sets already refused a function that fails on its inputs
    steps = [(float(b) - float(a), a, b) for (a, ya), (b, yb) in zip(zip(xs, ys), zip(xs[1:], ys[1:])) if ya != yb]
    if not steps:
        return
    gap, lo, hi = min(steps)
    if e_in >= gap / 4:
        raise ValueSetError(
            f"Map {node.label} cannot be computed exactly in float32: its input {src} takes values as close as "
            f"{lo!r} and {hi!r} ({gap:.3g} apart) that it maps differently, but {src} is carried with an error "
            f"of up to {e_in:.3g} (float32 rounding of values as large as {_biggest(_numbers(sets.get(src))):.3g}), "
            f"more than a quarter of that gap. Rescale the values {src} is computed from so they are of similar "
            f"size, space them further apart, or compute {node.label} from categorical inputs")


def _need_output(node, values, e_out: float) -> None:
    if values is None:  # too many values to list: decoding cannot snap, the error itself must be small
        gap_free = 5 * OUTPUT_TOLERANCE
        if e_out <= gap_free:
            return
        raise ValueSetError(
            f"numerical output {node.op} {node.label} cannot be read exactly from float32: it is carried with an "
            f"error of up to {e_out:.3g}, more than {gap_free:g}; rescale the values it is computed from")
    xs = sorted(set(_numbers(values)))
    gap = min((b - a for a, b in zip(xs, xs[1:])), default=math.inf)
    if e_out < gap / 2 or e_out <= OUTPUT_TOLERANCE:
        return
    near = min(zip(xs, xs[1:]), key=lambda p: p[1] - p[0]) if len(xs) > 1 else (xs[0], xs[0])
    raise ValueSetError(
        f"numerical output {node.op} {node.label} cannot be read exactly from float32: it is carried with an error "
        f"of up to {e_out:.3g} (rounding of values as large as {_biggest(xs):.3g}), more than half the gap "
        f"between its values {near[0]!r} and {near[1]!r}; rescale the values it is computed from so they are "
        "of similar size (e.g. divide the large ones), or make it categorical")
