"""Run every MLP block on its whole finite input set, in float32, and fail loudly.

This is the compiler checking itself: a wrong value here is a compiler bug, reported
with the node, the input and what came out.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.craft.attention import width_fractions
from rasp_compiler.craft.blocks import MLPBlock
from rasp_compiler.craft.build import Blocks, node_function
from rasp_compiler.craft.mlp import output_vector
from rasp_compiler.errors import CompilationCheckError
from rasp_compiler.graph.nodes import Kind, ProgramGraph
from rasp_compiler.graph.residual import FRACTION, Dir, ResidualLayout
from rasp_compiler.rasp import core

TOLERANCE = 1e-3  # on every output coordinate; decoding and later blocks have margins far larger


def check_blocks(pg: ProgramGraph, value_sets: dict, layout: ResidualLayout, blocks: Blocks,
                 max_seq_len: int) -> int:
    """Returns the number of (block, input) cases checked."""
    checked = 0
    for label, block in blocks.mlps.items():
        node = pg.nodes[label]
        inputs, expected, describe = _cases(node, pg, value_sets, layout, max_seq_len)
        if not expected:
            continue
        ri = {d: i for i, d in enumerate(block.reads)}
        wi = {d: i for i, d in enumerate(block.writes)}
        x = np.zeros((len(expected), len(block.reads)), np.float32)
        for d, column in inputs.items():
            x[:, ri[d]] += column
        want = np.zeros((len(expected), len(block.writes)))
        for row, value in enumerate(expected):
            for d, v in output_vector(label, node.numerical, value).items():
                if d not in wi:
                    raise CompilationCheckError(f"MLP {label} cannot write {d} (value {value!r})")
                want[row, wi[d]] = v
        got = block(x)
        err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
        bad = np.argwhere(err > TOLERANCE)
        if len(bad):
            row = bad[0][0]
            raise CompilationCheckError(
                f"MLP of {node.op} {label} is wrong on input {describe(row)}: expected {expected[row]!r}, "
                f"got {dict(zip(map(str, block.writes), np.round(got[row], 5)))}")
        checked += len(expected)
    return checked


def _cases(node, pg: ProgramGraph, value_sets, layout: ResidualLayout, n: int):
    """Every input the block can see: ({direction: column of inputs}, expected outputs, describe(row))."""
    e = node.expr
    if node.kind is Kind.WIDTH:
        points = width_fractions(n)
        return ({Dir(node.label, FRACTION): np.array([p for p, _ in points])}, [w for _, w in points],
                lambda r: f"bos weight {points[r][0]:.6g} (width {points[r][1]})")
    f = node_function(node, layout) if isinstance(e, (core.Map, core.SequenceMap)) else None
    if isinstance(e, core.Map):
        src = node.inputs[0]
        if pg.nodes[src].numerical:
            values = sorted(value_sets[src], key=float)
            nonzero = [(d, w) for d, w in layout.numeric_readout(src).items() if w != 0]
            if not nonzero:  # the input reads as 0 whatever happens: check that one case
                at_zero = min(values, key=lambda v: abs(float(v)))
                return {}, [f(at_zero)], lambda r: f"{src}=0 (its read-out is identically zero)"
            d, w = nonzero[0]
            return ({d: np.array([float(v) for v in values]) / w}, [f(v) for v in values],
                    lambda r: f"{src}={values[r]!r}")
        return _onehot_cases(layout, [src], lambda v: f(*v))
    if isinstance(e, core.SequenceMap):
        a, b = node.inputs
        if a == b:
            return _onehot_cases(layout, [a], lambda v: f(v[0], v[0]))
        return _onehot_cases(layout, [a, b], lambda v: f(*v))
    return {}, [], str


def _onehot_cases(layout: ResidualLayout, sources: list[str], f):
    """All combinations of one value per categorical source, as one-hot input columns."""
    combos = [[]]
    for src in sources:
        combos = [c + [v] for c in combos for v in layout.values[src]]
    inputs: dict[Dir, np.ndarray] = {}
    for k, src in enumerate(sources):
        for v in layout.values[src]:
            inputs[Dir(src, v)] = np.array([1.0 if c[k] == v else 0.0 for c in combos])
    return inputs, [f(c) for c in combos], lambda r: ", ".join(f"{s}={v!r}" for s, v in zip(sources, combos[r]))
