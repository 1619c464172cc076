"""Stage 5 artifacts: each block is matrices between named residual directions.

A block never sees residual indices: it reads and writes ``Dir``s, which is what
makes every weight's label free. Assembly places the blocks into the residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse  # at import, not in the first big compile (~0.3 s)

from rasp_compiler.graph.residual import Dir


@dataclass(frozen=True)
class MLPBlock:
    """out = relu(x[reads] @ w_in + b_in) @ w_out, written to ``writes``."""

    node: str
    reads: tuple[Dir, ...]
    writes: tuple[Dir, ...]
    hidden: tuple[str, ...]  # what each hidden neuron detects
    w_in: np.ndarray  # (len(reads), n_hidden)
    b_in: np.ndarray  # (n_hidden,)
    w_out: np.ndarray  # (n_hidden, len(writes))

    @property
    def n_hidden(self) -> int:
        return len(self.hidden)

    def __call__(self, x: np.ndarray, dtype=np.float32) -> np.ndarray:
        """Apply to rows of x over ``reads`` in float32, as the model does (or in ``dtype``).

        Lookup tables are large and sparse (each neuron reads one or two directions), so
        neurons with a non-positive bias are evaluated only where an input reaches them.
        """
        x = np.asarray(x, dtype)
        w_in, b_in, w_out = (a.astype(dtype) for a in (self.w_in, self.b_in, self.w_out))
        if x.shape[0] * self.n_hidden < 1_000_000:
            return np.maximum(x @ w_in + b_in, 0) @ w_out
        pre = (sparse.csr_matrix(x) @ sparse.csc_matrix(w_in)).tocsr()
        pre.data += b_in[pre.indices]
        pre.data = np.maximum(pre.data, 0)
        pre.eliminate_zeros()  # inputs that reach a neuron without making it fire
        out = np.asarray(pre @ w_out)
        on = np.flatnonzero(b_in > 0)  # neurons that fire without input: dense, with the stored part undone
        if len(on):
            dense = np.maximum(x @ w_in[:, on] + b_in[on], 0)
            out += (dense - pre[:, on].toarray()) @ w_out[on]
        return out


@dataclass(frozen=True)
class AttentionHead:
    """score(q, k) = x_q[query_dirs] @ w_qk @ x_k[key_dirs]; value x_k[value_dirs] @ w_ov -> output_dirs."""

    node: str
    query_dirs: tuple[Dir, ...]
    key_dirs: tuple[Dir, ...]
    w_qk: np.ndarray
    value_dirs: tuple[Dir, ...]
    output_dirs: tuple[Dir, ...]
    w_ov: np.ndarray
    sharpness: float  # score gap between a selected and an unselected key


def matrix(rows: list[Dir] | tuple[Dir, ...], cols: list[Dir] | tuple[Dir, ...],
           entries: dict[tuple[Dir, Dir], float]) -> np.ndarray:
    """Dense matrix from {(row_dir, col_dir): weight}."""
    r = {d: i for i, d in enumerate(rows)}
    c = {d: i for i, d in enumerate(cols)}
    m = np.zeros((len(rows), len(cols)))
    for (a, b), w in entries.items():
        m[r[a], c[b]] += w
    return m


def index_run(indices) -> slice | np.ndarray:
    """A slice when the indices are one increasing run (the usual case, as a node's
    directions sit together): indexing with it is a view, not a gather and scatter of a
    block that can have millions of entries. Otherwise the indices as an array."""
    indices = np.asarray(indices, np.int64)
    if len(indices) == 0:
        return slice(0, 0)
    if (np.diff(indices) == 1).all():
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices

