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


def map_lookup(node: str, numerical: bool, inputs: dict[Any, Dir], f: Callable[[Any], Any]) -> MLPBlock:
    """Categorical -> anything: neuron v is relu(x[input=v])."""
    reads = list(inputs.values())
    hidden, w_in, outs = [], {}, []
    for i, (v, d) in enumerate(inputs.items()):
        hidden.append(f"{node}: {d}")
        w_in[(d, i)] = 1.0
        outs.append(output_vector(node, numerical, f(v)))
    return _assemble(node, reads, hidden, w_in, [0.0] * len(hidden), outs)


def pair_lookup(node: str, numerical: bool, fst: dict[Any, Dir], snd: dict[Any, Dir],
                f: Callable[[Any, Any], Any]) -> MLPBlock:
    """Categorical x categorical -> anything: neuron (a, b) is relu(x[a] + x[b] - 1)."""
    reads = list(dict.fromkeys(list(fst.values()) + list(snd.values())))
    hidden, w_in, outs = [], {}, []
    for a, da in fst.items():
        for b, db in snd.items():
            i = len(hidden)
            hidden.append(f"{node}: {da} & {db}")
            w_in[(da, i)] = w_in.get((da, i), 0.0) + 1.0
            w_in[(db, i)] = w_in.get((db, i), 0.0) + 1.0
            outs.append(output_vector(node, numerical, f(a, b)))
    return _assemble(node, reads, hidden, w_in, [-1.0] * len(hidden), outs)


def staircase(node: str, numerical: bool, readout: dict[Dir, float],
              points: Sequence[tuple[float, Any]], what: str = "x") -> MLPBlock:
    """Numerical input -> anything, exact on the given (input value, output) points."""
    points = sorted({float(x): y for x, y in points}.items())
    reads = list(readout)
    hidden: list[str] = [f"{node}: constant ({what}={points[0][0]:.6g} -> {points[0][1]!r})"]
    w_in: dict = {}
    b_in = [1.0]
    outs = [output_vector(node, numerical, points[0][1])]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if _same(y0, y1):
            continue
        gap = x1 - x0
        slope = 2.0 / gap  # the step rises over the middle half of the gap
        mid = (x0 + x1) / 2
        delta = _difference(output_vector(node, numerical, y1), output_vector(node, numerical, y0))
        for sign, offset in ((1.0, 0.5), (-1.0, -0.5)):
            i = len(hidden)
            hidden.append(f"{node}: step {what}>{mid:.6g} ({y0!r}->{y1!r}) {'rise' if sign > 0 else 'cap'}")
            for d, w in readout.items():
                w_in[(d, i)] = slope * w
            b_in.append(-slope * mid + offset)
            outs.append({d: sign * w for d, w in delta.items()})
    return _assemble(node, reads, hidden, w_in, b_in, outs)


def _same(a: Any, b: Any) -> bool:
    return bool(a == b)


def _difference(a: dict[Dir, float], b: dict[Dir, float]) -> dict[Dir, float]:
    out = dict(a)
    for d, w in b.items():
        out[d] = out.get(d, 0.0) - w
    return {d: w for d, w in out.items() if w != 0.0}
