"""tracr's ``causal_eval``: evaluation with every selector masked to the past.

A selector may only select key positions at or before the query position, which is
what a causally masked head sees. Note this is not the same as evaluating each
prefix (``verify.expected_output(..., causal=True)``), which is what a causal model
computes at each position: the two differ for SOps like ``length``.
"""

from __future__ import annotations

from typing import Any, Sequence

from rasp_compiler.rasp import core
from rasp_compiler.rasp.evaluate import DefaultRASPEvaluator
from rasp_compiler.rasp.evaluate import evaluate as _evaluate


class CausalEvaluator(DefaultRASPEvaluator):
    """Evaluates RASP with a causal mask on every selector."""

    causal = True


def evaluate(expr: core.RASPExpr, xs: Sequence[Any]):
    """Values of ``expr`` on ``xs`` with every selector masked to key <= query."""
    return _evaluate(expr, xs, causal=True)
