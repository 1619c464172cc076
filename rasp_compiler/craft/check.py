"""Run every MLP block on its whole finite input set, in float32, and fail loudly.

This is the compiler checking itself: a wrong value here is a compiler bug, reported
with the node, the input and what came out.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.craft.attention import width_fractions
from rasp_compiler.craft.blocks import MLPBlock
from rasp_compiler.craft.build import Blocks
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
        cases = list(_cases(node, pg, value_sets, layout, max_seq_len))
        if not cases:
            continue
        x = np.zeros((len(cases), len(block.reads)), np.float32)
        want = np.zeros((len(cases), len(block.writes)))
        ri = {d: i for i, d in enumerate(block.reads)}
        wi = {d: i for i, d in enumerate(block.writes)}
        for row, (inputs, expected, _) in enumerate(cases):
            for d, v in inputs.items():
                x[row, ri[d]] += v
            for d, v in output_vector(label, node.numerical, expected).items():
                if d not in wi:
                    raise CompilationCheckError(f"MLP {label} cannot write {d} (value {expected!r})")
                want[row, wi[d]] = v
        got = block(x)
        err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
        bad = np.argwhere(err > TOLERANCE)
        if len(bad):
            row = bad[0][0]
            raise CompilationCheckError(
                f"MLP of {node.op} {label} is wrong on input {cases[row][2]}: expected {cases[row][1]!r}, "
                f"got {dict(zip(map(str, block.writes), np.round(got[row], 5)))}")
        checked += len(cases)
    return checked


def _cases(node, pg: ProgramGraph, value_sets, layout: ResidualLayout, n: int):
    """(residual inputs, expected output, description) for every input the block can see."""
    e = node.expr
    if node.kind is Kind.WIDTH:
        for frac, w in width_fractions(n):
            yield {Dir(node.label, FRACTION): frac}, w, f"bos weight {frac:.6g} (width {w})"
        return
    if isinstance(e, core.Map):
        src = node.inputs[0]
        if pg.nodes[src].numerical:
            readout = layout.numeric_readout(src)
            d, w = next((d, w) for d, w in readout.items() if w != 0)
            for v in value_sets[src]:
                yield {d: float(v) / w}, e.f(v), f"{src}={v!r}"
        else:
            for v, d in layout.onehot(src).items():
                yield {d: 1.0}, e.f(v), f"{src}={v!r}"
        return
    if isinstance(e, core.SequenceMap):
        a, b = node.inputs
        if a == b:
            for v, d in layout.onehot(a).items():
                yield {d: 1.0}, e.f(v, v), f"{a}={v!r}"
            return
        for va, da in layout.onehot(a).items():
            for vb, db in layout.onehot(b).items():
                yield {da: 1.0, db: 1.0}, e.f(va, vb), f"{a}={va!r}, {b}={vb!r}"


__all__ = ["check_blocks", "MLPBlock"]
