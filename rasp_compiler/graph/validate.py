"""Reject what cannot be compiled, before any weight is built.

Each error names the SOp, says why, and says what to write instead.
"""

from __future__ import annotations

import itertools
import warnings
from numbers import Number
from typing import Any, Sequence

from rasp_compiler.errors import AggregateError, CausalityError, UnprovenAggregateWarning, UnsupportedProgramError
from rasp_compiler.graph.aggregate_proof import proven_single_valued
from rasp_compiler.graph.nodes import Kind, ProgramGraph
from rasp_compiler.graph.positional import later_key
from rasp_compiler.limits import Limits, default as default_limits
from rasp_compiler.rasp import core
from rasp_compiler.rasp.evaluate import evaluate

# A categorical Aggregate that cannot be proven valid is checked on every input, up to this many.
EXHAUSTIVE_AGGREGATE_INPUTS = 4096


def validate(pg: ProgramGraph, value_sets: dict, vocab: Sequence[Any], max_seq_len: int, causal: bool,
             limits: Limits | None = None, strict: bool = False) -> tuple[str, ...]:
    """Raise for what cannot be compiled; return the labels of the categorical Aggregates
    compiled unproven (each warned about with :class:`UnprovenAggregateWarning`; with
    ``strict`` the first of them is refused instead)."""
    for label in pg.topological():
        node = pg.nodes[label]
        for t in node.terms:
            for side, sop in (("keys", t.key), ("queries", t.query)):
                if pg.nodes[sop].numerical:
                    raise UnsupportedProgramError(
                        f"{node.op} {label}: its selector compares numerical SOp {sop} (as {side}); "
                        f"Select keys and queries must be categorical — use categorical(Map(lambda x: x, {sop}))")
        if node.synthetic:
            for src in node.inputs:
                if None in (value_sets[src] or ()):
                    owner = label.rsplit("_", 1)[0]
                    raise UnsupportedProgramError(
                        f"the selector of {owner} combines SOps with Or/Not, so it is compiled over tuples "
                        f"of them, but {src} can be None (a categorical Aggregate that may select nothing); "
                        f"a tuple with a missing part cannot be told apart — give that Aggregate a default")
        if node.kind is Kind.MLP and isinstance(node.expr, core.SequenceMap):
            for src in node.inputs:
                if pg.nodes[src].numerical:
                    raise UnsupportedProgramError(
                        f"SequenceMap {label} reads numerical SOp {src}; a SequenceMap MLP needs categorical "
                        f"inputs — make {src} categorical (categorical(Map(lambda x: x, {src}))), or use "
                        "LinearSequenceMap for a linear combination of numerical SOps")
        if node.kind is Kind.VIRTUAL and isinstance(node.expr, core.LinearSequenceMap):
            for src in node.inputs:
                if not pg.nodes[src].numerical:
                    _need_numeric_values(src, value_sets[src], f"input of {node.op} {label},")
        if node.kind is Kind.ATTENTION and not node.numerical and pg.nodes[node.aggregated].numerical:
            raise UnsupportedProgramError(
                f"categorical Aggregate {label} aggregates numerical SOp {node.aggregated}; a categorical "
                f"Aggregate copies one-hot values — make the Aggregate numerical(...) for a mean, or "
                f"aggregate a categorical SOp")
        if causal and node.kind in (Kind.ATTENTION, Kind.WIDTH):
            _check_causal(node, max_seq_len, pg, value_sets)
    return _check_categorical_aggregates(pg, value_sets, vocab, max_seq_len, limits or default_limits(), strict)


def _need_numeric_values(label: str, values, what: str) -> None:
    if values is None:
        return
    bad = [v for v in values if not isinstance(v, Number) or v is None]
    if bad:
        raise UnsupportedProgramError(
            f"{what} {label} is numerical but takes non-numeric values {sorted(map(repr, bad))[:5]}; "
            "a numerical SOp must hold numbers — mark it categorical, or map its values to numbers")


def _check_causal(node, n: int, pg: ProgramGraph, value_sets: dict) -> None:
    """Refuse a head that can select a key position after its query position.

    First on the selector's expression: a Select whose keys and queries are both functions
    of position only (Maps of ``indices``/``Full``) is evaluated on every (key, query)
    position pair below ``n``; And/Or/Not combine these bounds, so ``Select(tokens, tokens,
    EQ) & Select(indices, indices, LEQ)`` and a previous-token head ``Select(indices,
    indices - 1, EQ)`` pass. Where that cannot exclude a later key, the per-position value
    sets of :func:`rasp_compiler.graph.positional.later_key` decide, for every length up
    to ``n`` (a key ``(token, index)`` compared by ``k[1] <= q[1]`` passes); the refusal
    names the first query and key positions no rule excludes.
    """
    may = _may_select(node.expr.selector, n)
    if not any(may[q][k] for q in range(n) for k in range(q + 1, n)):
        return
    later = later_key(node, pg, value_sets, n)
    if later is None:
        return
    where = (f"at query position {later.query} it can select key position {later.key} (on inputs of length "
             f"{later.length})" if later.length is not None else
             "no rule excludes it within the analysis' work budget")
    raise CausalityError(
        f"{node.op} {node.label} can select key positions after the query position: {where}, so with causal=True "
        "its output would depend on later tokens; restrict its selector to the past, e.g. "
        "SelectorAnd(selector, Select(indices, indices, LEQ)), or compile with causal=False")


def _may_select(sel: core.Selector, n: int) -> list[list[bool]]:
    """[query][key]: False only where ``sel`` selects nothing on every input of length <= n."""
    if isinstance(sel, core.Select):
        keys, queries = _positional_values(sel.keys, n), _positional_values(sel.queries, n)
        if keys is not None and queries is not None:
            try:
                return [[bool(sel.predicate(k, q)) for k in keys] for q in queries]
            except Exception:  # noqa: BLE001 — the predicate failed on a value: assume the worst
                pass
    elif isinstance(sel, core.SelectorAnd):
        a, b = _may_select(sel.fst, n), _may_select(sel.snd, n)
        return [[x and y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    elif isinstance(sel, core.SelectorOr):
        a, b = _may_select(sel.fst, n), _may_select(sel.snd, n)
        return [[x or y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    elif isinstance(sel, core.SelectorNot) and isinstance(sel.inner, core.Select):
        keys, queries = _positional_values(sel.inner.keys, n), _positional_values(sel.inner.queries, n)
        if keys is not None and queries is not None:
            inner = _may_select(sel.inner, n)  # exact here, so its complement is exact too
            return [[not x for x in row] for row in inner]
    return [[True] * n for _ in range(n)]


def _positional_values(sop: core.SOp, n: int) -> list | None:
    """The values of ``sop`` at positions 0..n-1 when they depend on the position alone, else None."""
    stack, seen = [sop], set()
    while stack:
        e = stack.pop()
        if e.unique_id in seen:
            continue
        seen.add(e.unique_id)
        if isinstance(e, (core.IndicesType, core.Full)):
            continue
        if not isinstance(e, (core.Map, core.SequenceMap)):
            return None
        stack.extend(e.children)
    try:
        return evaluate(sop, [None] * n)
    except Exception:  # noqa: BLE001 — a function failed on some position: not decidable here
        return None


def _check_categorical_aggregates(pg: ProgramGraph, value_sets: dict, vocab, n: int, lim: Limits,
                                  strict: bool = False) -> tuple[str, ...]:
    """A categorical Aggregate compiles to a head that copies one value, so it must never
    select positions holding different values. Proven from the selector and value sets
    (see :mod:`rasp_compiler.graph.aggregate_proof`); where that fails, every input is
    evaluated if there are at most ``EXHAUSTIVE_AGGREGATE_INPUTS`` of them (a conflict
    found is refused). Otherwise the Aggregate is unproven: never sampled (a conflict on a
    rare input would slip through), it compiles with a warning and the run-time one-hot
    guard catches a blend; ``strict`` refuses it."""
    unproven = [pg.nodes[label] for label in pg.topological()
                if pg.nodes[label].kind is Kind.ATTENTION and not pg.nodes[label].numerical
                and not proven_single_valued(pg.nodes[label], pg, value_sets, lim)]
    if not unproven:
        return ()
    tokens = sorted(vocab, key=repr)
    count = _input_count(len(tokens), n, EXHAUSTIVE_AGGREGATE_INPUTS)
    if count > EXHAUSTIVE_AGGREGATE_INPUTS:
        if strict:
            raise UnsupportedProgramError(_unproven_reason(unproven[0]) + (
                ". Make it numerical (a mean), select one position (e.g. Select(indices, q, EQ)), or aggregate "
                "the key SOp itself (or a function of it) under EQ"))
        for node in unproven:
            warnings.warn(UnprovenAggregateWarning(
                f"{_unproven_reason(node)}; compiled unproven: recorded in the model's "
                f"config.unproven_aggregates and guarded at run time (apply raises BlendedValueError on an "
                f"input where it blends values); strict=True refuses it. To have it proven, make it numerical "
                f"(a mean) or select one position (e.g. Select(indices, q, EQ))", label=node.label),
                stacklevel=4)
        return tuple(node.label for node in unproven)
    for length in range(1, n + 1):  # every input: causal prefixes are inputs too
        for xs in itertools.product(tokens, repeat=length):
            try:
                evaluate(pg.nodes[pg.output].expr, list(xs), strict=True)
            except AggregateError as exc:
                raise UnsupportedProgramError(
                    f"{exc} (on input {list(xs)!r}); it cannot be compiled to a head that copies one value"
                ) from exc
            except Exception:  # other evaluation errors are the user's to see when running
                continue
    return ()


def _unproven_reason(node) -> str:
    return (f"categorical Aggregate {node.label} may select positions of {node.aggregated} holding different "
            f"values, which one head cannot copy: its selector is not known to select at most one position, "
            f"nor only positions whose {node.aggregated} values are equal, and there are too many inputs "
            f"(more than {EXHAUSTIVE_AGGREGATE_INPUTS}) to try them all")


def _input_count(n_tokens: int, n: int, cap: int) -> int:
    """Inputs of length 1..n, counted only up to just past ``cap`` (never a huge integer)."""
    total, per_length = 0, 1
    for _ in range(n):
        per_length *= n_tokens
        total += per_length
        if total > cap:
            return total
    return total


