"""Run every MLP block on its whole finite input set, in float32, and fail loudly.

This is the compiler checking itself: a wrong value here is a compiler bug, reported
with the node, the input and what came out. The one exception is a Map of a numerical
SOp that is exact in float64 but not in float32: a limit of the number format (too many
input values, too close), refused as such with a ValueSetError.
"""

from __future__ import annotations

import numpy as np

from rasp_compiler.craft.attention import width_fractions
from rasp_compiler.craft.blocks import MLPBlock
from rasp_compiler.craft.build import Blocks, node_function
from rasp_compiler.craft.mlp import output_vector
from rasp_compiler.errors import CompilationCheckError, ValueSetError
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
        rows, cols, vals = [], [], []  # the expected outputs, sparse: one or two entries a row
        for row, value in enumerate(expected):
            for d, v in output_vector(label, node.numerical, value).items():
                if d not in wi:
                    raise CompilationCheckError(f"MLP {label} cannot write {d} (value {value!r})")
                rows.append(row), cols.append(wi[d]), vals.append(v)
        want = (np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(vals, np.float64))
        bad = _wrong_rows(block(x), want)
        if len(bad):
            row = bad[0]
            got = block(x[row:row + 1])[0]
            if _is_numeric_input_map(node, pg) and not len(_wrong_rows(block(x, np.float64), want)):
                raise _float32_limit(node, pg.nodes[node.inputs[0]], value_sets, describe(row), expected[row],
                                     got, block)
            raise CompilationCheckError(
                f"MLP of {node.op} {label} is wrong on input {describe(row)}: expected {expected[row]!r}, "
                f"got {dict(zip(map(str, block.writes), np.round(got, 5)))}")
        checked += len(expected)
    return checked


def _wrong_rows(got: np.ndarray, want: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Rows where some output is off by more than TOLERANCE (relative above 1). ``got`` is
    overwritten: these arrays are cases x outputs, large for big lookups."""
    rows, cols, vals = want
    err = got
    err[rows, cols] -= vals
    np.abs(err, out=err)
    err[rows, cols] /= np.maximum(1.0, np.abs(vals))
    return np.flatnonzero((~(err <= TOLERANCE)).any(axis=1))  # NaN counts as wrong


def _is_numeric_input_map(node, pg: ProgramGraph) -> bool:
    return isinstance(node.expr, core.Map) and pg.nodes[node.inputs[0]].numerical


def _float32_limit(node, src, value_sets: dict, where: str, expected, got, block: MLPBlock) -> ValueSetError:
    """Exact in float64 but not in float32: the input's values are too many and too close
    for one float32 MLP to tell apart (a limit of the number format, not a wrong block)."""
    values = sorted(float(v) for v in value_sets[src.label])
    gap, lo, hi = min((b - a, a, b) for a, b in zip(values, values[1:]))
    return ValueSetError(
        f"Map {node.label} cannot be computed exactly in float32: its input {src.label} takes {len(values)} "
        f"values in [{values[0]:.6g}, {values[-1]:.6g}], some only {gap:.3g} apart ({lo:.6g} and {hi:.6g}), "
        f"and an MLP that separates them all (here {block.n_hidden} neurons) is off by float32 rounding on "
        f"input {where}: expected {expected!r}, got {np.round(got, 5).tolist()}. Give {src.label} fewer or "
        f"farther-apart values (a smaller max_seq_len, or a categorical SOp instead of a mean), or compute "
        f"{node.label} from categorical inputs")


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
    values = [layout.values[src] for src in sources]
    picks = np.indices([len(vs) for vs in values]).reshape(len(sources), -1)  # value index per source, per case
    combos = [[vs[i] for vs, i in zip(values, case)] for case in picks.T.tolist()]
    inputs: dict[Dir, np.ndarray] = {}
    for k, src in enumerate(sources):
        for i, v in enumerate(values[k]):
            inputs[Dir(src, v)] = (picks[k] == i).astype(np.float64)
    return inputs, [f(c) for c in combos], lambda r: ", ".join(f"{s}={v!r}" for s, v in zip(sources, combos[r]))
