"""tracr's ``compiler.validating``: which parts of a program the compiler would refuse.

``validate(program, xs)`` lists the expressions that stop compilation, each with the
reason, without building weights. It asks *our* compiler's checks (so it reports what
rasp_compiler refuses, which is less than tracr refuses), with the input's tokens as the
vocabulary and its length as ``max_seq_len``; with ``xs`` it also evaluates the program
and reports a categorical Aggregate that would have to average differing values there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from rasp_compiler.errors import AggregateError, RaspCompilerError
from rasp_compiler.rasp import core
from rasp_compiler.rasp.evaluate import DefaultRASPEvaluator, evaluate


@dataclass
class TracrUnsupportedExpr:
    """An expression the compiler refuses, and why."""

    expr: core.RASPExpr
    reason: str


def _named(program: core.RASPExpr, text: str) -> core.RASPExpr:
    """The sub-expression whose label the error message names first (else the program)."""
    found = []
    for e in core.walk(program):
        m = re.search(rf"(?<![\w]){re.escape(e.label)}(?![\w])", text)
        if m:
            found.append((m.start(), -len(e.label), e.unique_id, e))
    return min(found)[3] if found else program


def static_validate(program: core.RASPExpr) -> list[TracrUnsupportedExpr]:
    """Problems found without an input: the program's structure (graph building)."""
    from rasp_compiler.graph.build import build_graph

    for e in core.walk(program):
        if isinstance(e, core.ConstantSelector):
            return [TracrUnsupportedExpr(e, "a ConstantSelector is a test fixture: its pattern does not "
                                            "come from the residual stream, so no head computes it")]
    try:
        build_graph(program)
    except RaspCompilerError as exc:
        return [TracrUnsupportedExpr(_named(program, str(exc)), str(exc))]
    return []


class DynamicValidationEvaluator(DefaultRASPEvaluator):
    """Evaluates like the compiler checks: a categorical Aggregate must not average."""

    def __init__(self) -> None:
        self.unsupported_exprs: list[TracrUnsupportedExpr] = []

    def evaluate(self, expr: core.RASPExpr, xs: Sequence[Any]):
        try:
            return evaluate(expr, xs, strict=True)
        except AggregateError as exc:
            self.unsupported_exprs.append(TracrUnsupportedExpr(_named(expr, str(exc)), str(exc)))
            return evaluate(expr, xs)


def dynamic_validate(program: core.RASPExpr, xs: Sequence[Any] | None = None) -> list[TracrUnsupportedExpr]:
    """Problems found on input ``xs``: value sets, encodings and Aggregates over its tokens."""
    if xs is None:
        return []
    from rasp_compiler.graph.build import build_graph
    from rasp_compiler.graph.validate import validate as check
    from rasp_compiler.graph.value_sets import infer_value_sets

    evaluator = DynamicValidationEvaluator()
    evaluator.evaluate(program, xs)
    found = evaluator.unsupported_exprs
    if found or not isinstance(program, core.SOp) or not xs:
        return found
    try:
        graph = build_graph(program)
        vocab = set(xs)
        value_sets = infer_value_sets(graph, vocab, len(xs))
        check(graph, value_sets, vocab, len(xs), causal=False)
    except RaspCompilerError as exc:
        found.append(TracrUnsupportedExpr(_named(program, str(exc)), str(exc)))
    return found


def validate(program: core.RASPExpr, xs: Sequence[Any] | None = None) -> list[TracrUnsupportedExpr]:
    """Every problem found: structural ones, and with ``xs`` those that show on that input."""
    static = static_validate(program)
    return static or dynamic_validate(program, xs)
