"""Reference semantics: evaluate a RASP program on one input sequence.

This is the ground truth every compiled model is checked against. Each node is
evaluated once per input (memoised by ``unique_id``); errors name the SOp involved.
"""

from __future__ import annotations

from numbers import Number
from typing import Any, Iterable, Sequence

from rasp_compiler.errors import AggregateError, EvaluationError, InputError, RaspTypeError
from rasp_compiler.rasp import core
from rasp_compiler.rasp.exact import same_exact

Selection = list[list[bool]]  # [query][key]


def evaluate(program: core.RASPExpr, xs: Sequence[Any], vocab: Iterable[Any] | None = None, *,
             strict: bool = False, causal: bool = False) -> list:
    """Values of ``program`` at each position of ``xs`` (a selector gives its [query][key] matrix).

    ``vocab``, when given, is checked: a token outside it raises :class:`InputError`.
    A categorical Aggregate that selects several differing numbers gives their mean, as
    in tracr and Weiss's RASP; with ``strict`` (what the compiler checks, since a head
    that copies one-hot values cannot average) it raises :class:`AggregateError`, also
    for equal values of different types (``0`` and ``0.0``: one head copies one of them).
    ``causal`` masks every selector to key positions <= the query position (tracr's
    ``causal_eval``).
    """
    if not isinstance(program, core.RASPExpr):
        raise RaspTypeError(f"evaluate needs a RASP expression, got {program!r}")
    if isinstance(xs, bytes) or not isinstance(xs, Sequence):  # a str is a sequence of one-letter tokens
        raise InputError(f"input must be a list of tokens, got {xs!r}")
    xs = list(xs)
    if vocab is not None:
        allowed = set(vocab)
        for i, x in enumerate(xs):
            try:
                known = x in allowed
            except TypeError:  # unhashable
                known = False
            if not known:
                raise InputError(f"token {x!r} at position {i} is not in the vocabulary {sorted(map(str, allowed))}")
    return _Evaluator(xs, strict=strict, causal=causal).value(program)


class RASPEvaluator:
    """tracr's evaluator interface: ``evaluate(expr, xs)``."""

    def evaluate(self, expr: core.RASPExpr, xs: Sequence[Any]):
        raise NotImplementedError


class DefaultRASPEvaluator(RASPEvaluator):
    """The reference evaluator as an object (tracr's name); ``evaluate`` is :func:`evaluate`."""

    causal = False

    def evaluate(self, expr: core.RASPExpr, xs: Sequence[Any]):
        return evaluate(expr, xs, causal=self.causal)


class _Evaluator:
    def __init__(self, xs: list, strict: bool = False, causal: bool = False):
        self.xs = xs
        self.strict, self.causal = strict, causal
        self.memo: dict[int, Any] = {}

    def value(self, expr: core.RASPExpr):
        # Iterative post-order so deep programs do not hit Python's recursion limit.
        stack = [expr]
        while stack:
            node = stack[-1]
            if node.unique_id in self.memo:
                stack.pop()
                continue
            pending = [c for c in node.children if c.unique_id not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            value = self._eval(node)
            if self.causal and isinstance(node, core.Selector):
                value = [[hit and k <= q for k, hit in enumerate(row)] for q, row in enumerate(value)]
            self.memo[node.unique_id] = value
        return self.memo[expr.unique_id]

    def _eval(self, e: core.RASPExpr):
        n = len(self.xs)
        v = lambda c: self.memo[c.unique_id]  # noqa: E731
        if isinstance(e, core.TokensType):
            return list(self.xs)
        if isinstance(e, core.IndicesType):
            return list(range(n))
        if isinstance(e, core.Full):
            return [e.fill] * n
        if isinstance(e, core.ConstantSOp):
            if e.check_length and len(e.value) != n:
                raise EvaluationError(
                    f"Constant len {len(e.value)} doesn't match input len {n} (ConstantSOp {e.label}); "
                    "give it one value per token, or check_length=False")
            return [e.value[i] if i < len(e.value) else None for i in range(n)]
        if isinstance(e, core.ConstantSelector):
            rows = [list(map(bool, row)) for row in e.value]
            if e.check_length and (len(rows) != n or any(len(r) != n for r in rows)):
                raise EvaluationError(
                    f"Constant len {len(rows)} doesn't match input len {n} (ConstantSelector {e.label}); "
                    "give it an n x n matrix, or check_length=False")
            return rows
        if isinstance(e, core.Map):
            f = e.f
            return _guarded(e, lambda: [None if x is None else f(x) for x in v(e.inner)],
                            lambda: [None if x is None else _call(e, f, x) for x in v(e.inner)])
        if isinstance(e, core.SequenceMap):
            f = e.f
            pairs = list(zip(v(e.fst), v(e.snd)))
            return _guarded(e, lambda: [None if (x is None or y is None) else f(x, y) for x, y in pairs],
                            lambda: [None if (x is None or y is None) else _call(e, f, x, y) for x, y in pairs])
        if isinstance(e, core.Select):
            keys, queries = v(e.keys), v(e.queries)
            pred = e.predicate
            if isinstance(pred, core.Comparison) and None not in keys and None not in queries:
                pred = core.comparison_function(pred)  # skip the per-call None handling
            return _guarded(e, lambda: [[bool(pred(k, q)) for k in keys] for q in queries],
                            lambda: [[bool(_call(e, pred, k, q)) for k in keys] for q in queries])
        if isinstance(e, core.SelectorAnd):
            a, b = v(e.fst), v(e.snd)
            return [[x and y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
        if isinstance(e, core.SelectorOr):
            a, b = v(e.fst), v(e.snd)
            return [[x or y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
        if isinstance(e, core.SelectorNot):
            return [[not x for x in row] for row in v(e.inner)]
        if isinstance(e, core.SelectorWidth):
            return [sum(row) for row in v(e.selector)]
        if isinstance(e, core.Aggregate):
            return self._aggregate(e, v(e.selector), v(e.sop))
        raise RaspTypeError(f"cannot evaluate {e!r}: unknown expression type {type(e).__name__}")

    def _aggregate(self, e: core.Aggregate, selection: Selection, values: list) -> list:
        out = []
        for q, row in enumerate(selection):
            chosen = [values[k] for k, hit in enumerate(row) if hit]
            if e.is_numerical:
                if not chosen:
                    out.append(0 if e.default is None else e.default)
                    continue
                for x in chosen:
                    if not isinstance(x, Number) or x is None:
                        raise EvaluationError(
                            f"numerical Aggregate {e.label} averages non-numeric value {x!r} of "
                            f"{e.sop.label}; aggregate a numerical SOp or mark the Aggregate categorical")
                out.append(sum(float(x) for x in chosen) / len(chosen))
            else:
                if not chosen:
                    out.append(e.default)
                    continue
                first = chosen[0]
                if any(x != first for x in chosen[1:]):
                    if not self.strict and all(isinstance(x, Number) for x in chosen):
                        out.append(sum(chosen) / len(chosen))
                        continue
                    raise AggregateError(
                        f"categorical Aggregate {e.label} selects differing values "
                        f"{sorted(set(map(repr, chosen)))} of {e.sop.label} at query position {q}; "
                        "a categorical Aggregate must select one position (or equal values) — "
                        "use a numerical Aggregate for a mean, or a narrower selector")
                if self.strict and any(not same_exact(x, first) for x in chosen[1:]):
                    raise AggregateError(
                        f"categorical Aggregate {e.label} selects values "
                        f"{sorted({f'{x!r} ({type(x).__name__})' for x in chosen})} of {e.sop.label} at query "
                        f"position {q}, equal in Python but of different types; a head that copies one "
                        "value cannot say which type to output — give them one type, or a narrower selector")
                out.append(first)
        return out


def _guarded(e: core.RASPExpr, fast, careful):
    """Run the fast loop; if the user's function raises, rerun carefully to name the value."""
    try:
        return fast()
    except Exception:
        return careful()


def _call(e: core.RASPExpr, f, *args):
    try:
        return f(*args)
    except Exception as exc:  # the user's function failed: say which SOp and value
        raise EvaluationError(
            f"the function of {type(e).__name__} {e.label} raised {type(exc).__name__}: {exc} "
            f"on {', '.join(map(repr, args))}") from exc
