"""Reject what cannot be compiled, before any weight is built.

Each error names the SOp, says why, and says what to write instead.
"""

from __future__ import annotations

import itertools
import random
from numbers import Number
from typing import Any, Sequence

from rasp_compiler.errors import AggregateError, CausalityError, UnsupportedProgramError
from rasp_compiler.graph.nodes import Kind, ProgramGraph
from rasp_compiler.rasp import core
from rasp_compiler.rasp.evaluate import evaluate

# How many inputs the categorical-Aggregate check evaluates (exhaustive up to this count).
AGGREGATE_CHECK_INPUTS = 256


def validate(pg: ProgramGraph, value_sets: dict, vocab: Sequence[Any], max_seq_len: int, causal: bool) -> None:
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
            _check_causal(node, max_seq_len)
    _check_categorical_aggregates(pg, vocab, max_seq_len, causal)


def _need_numeric_values(label: str, values, what: str) -> None:
    if values is None:
        return
    bad = [v for v in values if not isinstance(v, Number) or v is None]
    if bad:
        raise UnsupportedProgramError(
            f"{what} {label} is numerical but takes non-numeric values {sorted(map(repr, bad))[:5]}; "
            "a numerical SOp must hold numbers — mark it categorical, or map its values to numbers")


def _check_causal(node, n: int) -> None:
    for t in node.terms:
        if t.key == "indices" and t.query == "indices":
            if all(not t.predicate(k, q) for q in range(n) for k in range(q + 1, n)):
                return
    raise CausalityError(
        f"{node.op} {node.label} can select key positions after the query position, so with causal=True "
        "its output would depend on later tokens; restrict its selector to the past, e.g. "
        "SelectorAnd(selector, Select(indices, indices, LEQ)), or compile with causal=False")


def _check_categorical_aggregates(pg: ProgramGraph, vocab, n: int, causal: bool) -> None:
    """Evaluate on a bounded set of inputs: a categorical Aggregate that averages differing values fails."""
    if not any(node.kind is Kind.ATTENTION and not node.numerical for node in pg.nodes.values()):
        return
    for xs in _check_inputs(sorted(vocab, key=repr), n):
        try:
            for end in (range(1, len(xs) + 1) if causal else [len(xs)]):
                evaluate(pg.nodes[pg.output].expr, xs[:end])
        except AggregateError as exc:
            raise UnsupportedProgramError(
                f"{exc} (on input {xs!r}); it cannot be compiled to a head that copies one value") from exc
        except Exception:  # other evaluation errors are the user's to see when running
            continue


def _check_inputs(vocab: list, n: int):
    budget = AGGREGATE_CHECK_INPUTS
    for length in range(1, n + 1):
        count = len(vocab) ** length
        if count > budget:
            break
        yield from (list(p) for p in itertools.product(vocab, repeat=length))
        budget -= count
    rng = random.Random(0)
    for _ in range(3):
        yield [rng.choice(vocab) for _ in range(n)]
