"""Attention heads for Aggregate and SelectorWidth.

A head's score is ``c`` times the number of its Boolean tables that hold, so with m
tables a key is selected exactly when it scores ``m*c``. BOS, which every query can
always see, scores ``(m - 1/2) c``: above every unselected key, below every selected
one, so it takes all the weight only when nothing is selected (giving the default).
``c`` comes from max_seq_len: the weight that leaks to the losing keys,
``n * exp(-c/2)``, is below ``2**-30``, under float32's resolution of 1.

Selector width puts BOS *above* the selected keys by ``ln(n)``: the BOS weight is then
``n / (n + w)``, and an MLP reads the width ``w`` from it. Spread over [1/2, 1] the
possible weights are at least ~1/(4n) apart, so the MLP's slopes stay gentle.
"""

from __future__ import annotations

import math
import operator
from numbers import Number
from typing import Any

import numpy as np

from rasp_compiler.craft.blocks import AttentionHead, index_run, matrix
from rasp_compiler.errors import UnsupportedProgramError
from rasp_compiler.graph.nodes import Node, Term
from rasp_compiler.graph.residual import BOS, FRACTION, ONE, Dir, ResidualLayout
from rasp_compiler.rasp.core import Comparison

LEAK_BITS = 30


def sharpness(max_seq_len: int) -> float:
    return 2.0 * (math.log(max_seq_len + 2) + LEAK_BITS * math.log(2))


def width_bias(max_seq_len: int) -> float:
    """B in the selector-width BOS weight B / (B + w)."""
    return float(max_seq_len)


def width_fractions(max_seq_len: int) -> list[tuple[float, int]]:
    """(BOS weight, width) for every possible width: what the selector-width MLP reads."""
    b = width_bias(max_seq_len)
    return [(b / (b + w), w) for w in range(max_seq_len + 1)]


def aggregate_head(node: Node, layout: ResidualLayout, max_seq_len: int) -> AttentionHead:
    c = sharpness(max_seq_len)
    m = len(node.terms)
    qk, tables = _tables(node.terms, layout, c)
    _add(qk, (ONE, BOS), (m - 0.5) * c)
    _add(qk, (BOS, BOS), (2 * m + 1) * c)  # the BOS query itself looks only at BOS
    ov: dict[tuple[Dir, Dir], float] = {}
    default = node.expr.default
    if node.numerical:
        out = Dir(node.label)
        for d, w in layout.numeric_readout(node.aggregated).items():
            ov[(d, out)] = w
        ov[(BOS, out)] = float(0 if default is None else default)
    else:
        mine = layout.onehot(node.label)
        for v, d in layout.onehot(node.aggregated).items():
            ov[(d, mine[v])] = 1.0
        if default is not None:
            ov[(BOS, mine[default])] = 1.0
    return _head(node.label, qk, tables, ov, c)


def width_head(node: Node, layout: ResidualLayout, max_seq_len: int) -> AttentionHead:
    c = sharpness(max_seq_len)
    m = len(node.terms)
    qk, tables = _tables(node.terms, layout, c)
    _add(qk, (ONE, BOS), m * c + math.log(width_bias(max_seq_len)))
    _add(qk, (BOS, BOS), (2 * m + 1) * c)
    ov = {(BOS, Dir(node.label, FRACTION)): 1.0}
    return _head(node.label, qk, tables, ov, c)


def _add(qk: dict, pair: tuple[Dir, Dir], weight: float) -> None:
    qk[pair] = qk.get(pair, 0.0) + weight


def _head(label: str, qk: dict, tables: list, ov: dict, c: float) -> AttentionHead:
    """``tables``: (query dirs, key dirs, weight matrix) blocks; ``qk``: single entries."""
    qdirs = tuple(dict.fromkeys([d for q, _, _ in tables for d in q] + [a for a, _ in qk]))
    kdirs = tuple(dict.fromkeys([d for _, k, _ in tables for d in k] + [b for _, b in qk]))
    if len(tables) == 1 and not qk:  # one Select: its table is the whole matrix, no copy
        w_qk = tables[0][2]
    else:
        w_qk = matrix(qdirs, kdirs, qk)
        qi, ki = {d: i for i, d in enumerate(qdirs)}, {d: i for i, d in enumerate(kdirs)}
        for q, k, block in tables:
            rows, cols = index_run([qi[d] for d in q]), index_run([ki[d] for d in k])
            both_arrays = not (isinstance(rows, slice) or isinstance(cols, slice))
            w_qk[np.ix_(rows, cols) if both_arrays else (rows, cols)] += block
    vdirs = tuple(dict.fromkeys(a for a, _ in ov))
    odirs = tuple(dict.fromkeys(b for _, b in ov))
    return AttentionHead(label, qdirs, kdirs, w_qk, vdirs, odirs, matrix(vdirs, odirs, ov), c)


def _tables(terms: tuple[Term, ...], layout: ResidualLayout, c: float) -> tuple[dict, list]:
    """Each term's truth table as one block of weights (c where the predicate holds), plus
    single entries for the rows and columns of None."""
    qk: dict[tuple[Dir, Dir], float] = {}
    tables = []
    for t in terms:
        keys, queries = layout.values[t.key], layout.values[t.query]
        table = _checked_table(t, keys, queries)
        tables.append(([Dir(t.query, q) for q in queries], [Dir(t.key, k) for k in keys], c * table))
        if t.key in layout.nullable or t.query in layout.nullable:
            _none_rows(t, layout, keys, queries, c, qk)
    return qk, tables


def _none_rows(t: Term, layout: ResidualLayout, keys: tuple, queries: tuple, c: float, qk: dict) -> None:
    """Where a key or query holds None (no direction active) the evaluator still applies the
    predicate (Comparison.TRUE, SelectorNot). Its indicator ``one - bos - sum(one-hot)`` is
    linear in the residual, so those table entries stay bilinear and exact; it is 0 at BOS."""
    def features(node: str, value) -> dict[Dir, float]:
        if value is not None:
            return {Dir(node, value): 1.0}
        return {ONE: 1.0, BOS: -1.0, **{Dir(node, v): -1.0 for v in layout.values[node]}}

    key_items = list(keys) + ([None] if t.key in layout.nullable else [])
    query_items = list(queries) + ([None] if t.query in layout.nullable else [])
    for q in query_items:
        for k in key_items:
            if (q is not None and k is not None) or not _holds(t.predicate, k, q):
                continue
            for dq, wq in features(t.query, q).items():
                for dk, wk in features(t.key, k).items():
                    _add(qk, (dq, dk), c * wq * wk)


def _holds(predicate, key, query) -> bool:
    try:
        return bool(predicate(key, query))
    except Exception:  # the evaluator would fail on None here too; the model selects nothing
        return False


def _checked_table(t: Term, keys: tuple, queries: tuple) -> np.ndarray:
    try:
        return truth_table(t.predicate, keys, queries)
    except Exception as exc:
        for q in queries:  # find the pair, to name it
            for k in keys:
                try:
                    t.predicate(k, q)
                except Exception:
                    raise UnsupportedProgramError(
                        f"the predicate of selector {t.source} raised {type(exc).__name__}: {exc} on key "
                        f"{t.key}={k!r}, query {t.query}={q!r}, values the program can produce; make it "
                        "total over those values (e.g. compare values of one type)") from exc
        raise


_NUMPY_OPS = {Comparison.EQ: operator.eq, Comparison.NEQ: operator.ne, Comparison.LT: operator.lt,
              Comparison.LEQ: operator.le, Comparison.GT: operator.gt, Comparison.GEQ: operator.ge}


def truth_table(predicate, keys: tuple, queries: tuple) -> np.ndarray:
    """table[q, k] = predicate(keys[k], queries[q]); vectorised for comparisons of numbers."""
    if isinstance(predicate, Comparison) and predicate in (Comparison.TRUE, Comparison.FALSE):
        return np.full((len(queries), len(keys)), predicate is Comparison.TRUE)
    if predicate in _NUMPY_OPS and _numbers(keys) and _numbers(queries):
        k = np.asarray(keys, float)[None, :]
        q = np.asarray(queries, float)[:, None]
        return _NUMPY_OPS[predicate](k, q)
    return np.array([[bool(predicate(k, q)) for k in keys] for q in queries], dtype=bool).reshape(
        len(queries), len(keys))


def _numbers(values: tuple[Any, ...]) -> bool:
    return all(isinstance(v, Number) and not isinstance(v, complex) for v in values)
