"""Stage 2: the finite set of values every node can take.

Categorical nodes need their value set for one-hot directions; numerical nodes need
it wherever an MLP must tell values apart (slopes come from the gaps between them)
and to decode outputs. A numerical mean's set is every achievable mean of up to
``max_seq_len`` values; when a set grows past ``MAX_VALUES`` it is recorded as
``None`` (unbounded) and only an MLP that must read it fails.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from numbers import Number, Real
from typing import Any, Iterable

from rasp_compiler.errors import ValueSetError
from rasp_compiler.graph.nodes import Kind, Node, ProgramGraph
from rasp_compiler.rasp import core

MAX_VALUES = 200_000
MAX_PRODUCT = 2_000_000

ValueSet = frozenset | None


def infer_value_sets(pg: ProgramGraph, vocab: Iterable[Any], max_seq_len: int) -> dict[str, ValueSet]:
    """Value set of every SOp node (``None`` for a numerical set too large to list)."""
    sets: dict[str, ValueSet] = {}
    for label in pg.topological():
        node = pg.nodes[label]
        try:
            values = _node_values(node, pg, sets, frozenset(vocab), max_seq_len)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
            raise ValueSetError(
                f"{node.op} {node.label} produces unhashable values ({exc}); categorical values must be "
                "hashable: use tuples instead of lists, frozensets instead of sets") from exc
        if node.numerical and values is not None:
            _need_finite_reals(node, values)
        if values is not None and node.numerical and None in values:
            values = _no_none_in_numbers(node, values)
        sets[label] = None if values is None else _tidy(values)
    return sets


def _no_none_in_numbers(node: Node, values: frozenset) -> frozenset:
    """A numerical SOp cannot hold "no value": its direction would read 0 there."""
    if isinstance(node.expr, core.Aggregate):
        return values - {None}  # a numerical Aggregate gives its default instead
    raise ValueSetError(
        f"numerical {node.op} {node.label} can be None (an input of it comes from a categorical "
        "Aggregate that may select nothing, default None), which no number in the residual stream "
        "can stand for; give that Aggregate a default, or keep this SOp categorical")


def _tidy(values: frozenset) -> frozenset:
    """Merge floats that differ only by rounding (1.9999999999999998 and 2.0): no MLP could
    tell them apart, and they are the same value to the program's author. Each group keeps
    its shortest spelling; every other value is kept as it is."""
    floats = sorted(v for v in values if isinstance(v, float))
    if len(floats) < 2:
        return values
    keep, group = [], [floats[0]]
    for x in floats[1:]:
        if abs(x - group[-1]) <= 1e-12 * max(1.0, abs(x)):
            group.append(x)
        else:
            keep.append(min(group, key=lambda v: len(repr(v))))
            group = [x]
    keep.append(min(group, key=lambda v: len(repr(v))))
    return frozenset([v for v in values if not isinstance(v, float)] + keep)


def sorted_values(values: Iterable[Any]) -> list[Any]:
    """A deterministic order for mixed-type values (numbers by size, then others by repr)."""
    def key(v):
        if isinstance(v, Number) and not isinstance(v, complex):
            return (0, float(v), "")
        return (1, 0.0, f"{type(v).__name__}:{v!r}")
    return sorted(values, key=key)


def _node_values(node: Node, pg: ProgramGraph, sets, vocab, n_max) -> ValueSet:
    e = node.expr
    if isinstance(e, core.TokensType):
        return vocab
    if isinstance(e, core.IndicesType):
        return frozenset(range(n_max))
    if isinstance(e, core.Full):
        return frozenset([e.fill])
    if isinstance(e, core.ConstantSOp):
        short = len(e.value) < n_max and not e.check_length
        return frozenset(e.value[:n_max]) | ({None} if short else frozenset())
    if isinstance(e, core.Map):  # None ("no value") passes through every Map unchanged
        src = _finite(sets, node.inputs[0], node)
        return frozenset(_apply(node, e.f, (x,)) for x in src if x is not None) | (src & {None})
    if isinstance(e, core.SequenceMap):
        if isinstance(e, core.LinearSequenceMap) and node.numerical:
            shared = _shared_mean(e, pg, sets, n_max)
            if shared is not None:
                return shared
            if sets[node.inputs[0]] is None or sets[node.inputs[1]] is None:
                return None
        a, b = (_finite(sets, x, node) for x in node.inputs)
        nothing = frozenset({None}) if None in a or None in b else frozenset()
        a, b = a - {None}, b - {None}
        if len(a) * len(b) > MAX_PRODUCT:
            raise ValueSetError(
                f"SequenceMap {node.label} combines {len(a)} x {len(b)} input values, more than "
                f"{MAX_PRODUCT}; reduce the value sets of {node.inputs[0]} and {node.inputs[1]}")
        out = frozenset(_apply(node, e.f, (x, y)) for x, y in itertools.product(a, b)) | nothing
        return out if len(out) <= MAX_VALUES or not node.numerical else None
    if isinstance(e, core.SelectorWidth):
        return frozenset(range(n_max + 1))
    if isinstance(e, core.Aggregate):
        src = sets[node.aggregated]
        if not node.numerical:  # None: nothing selected and no default
            return (src or frozenset()) | {e.default}
        default = 0 if e.default is None else e.default
        if src is None:
            return None
        _need_numbers(src, node)
        if _selects_at_most_one(node, sets):
            return frozenset(float(v) for v in src) | {default}
        means = mean_set(src, n_max)
        return None if means is None else means | {default}
    raise ValueSetError(f"no value-set rule for {node.op} {node.label}")


def mean_set(values: Iterable[Any], n_max: int, cap: int = MAX_VALUES) -> frozenset | None:
    """Every mean of a multiset of 1..n_max elements of ``values`` (exact, as floats)."""
    vals = sorted({Fraction(v) for v in values})
    if not vals:
        return frozenset()
    scale = 1
    for v in vals:
        scale = scale * v.denominator // _gcd(scale, v.denominator)
    ints = sorted({int(v * scale) for v in vals})
    sums, means = {0}, set()
    for k in range(1, n_max + 1):
        sums = {s + v for s in sums for v in ints}
        means.update(Fraction(s, k * scale) for s in sums)
        if len(means) > cap:
            return None
    return frozenset(float(m) for m in means)


def _shared_mean(e: core.LinearSequenceMap, pg: ProgramGraph, sets, n_max) -> ValueSet:
    """a*mean(X) + b*mean(Y) over one selector is mean(a*X + b*Y): a far smaller, exact set.

    Works through chains of LinearSequenceMaps, and for selectors built separately but
    alike (same SOps, same comparison).
    """
    form = _mean_form(e)
    if form is None:
        return None
    _, default, terms = form
    combined = {Fraction(0)}
    for coef, sop in terms:
        values = sets[_label(pg, sop)]
        if values is None or len(combined) * len(values) > MAX_PRODUCT:
            return None
        combined = {c + Fraction(coef) * Fraction(v) for c in combined for v in values}
    means = mean_set(combined, n_max)
    return None if means is None else means | {float(default)}


def _mean_form(e: core.SOp):
    """(selector signature, default, [(coefficient, aggregated SOp)]) when e is a linear
    combination of numerical Aggregates that all use the same selector."""
    if isinstance(e, core.Aggregate) and e.is_numerical:
        return _selector_signature(e.selector), Fraction(0 if e.default is None else e.default), [(1, e.sop)]
    if isinstance(e, core.LinearSequenceMap) and e.is_numerical:
        a, b = _mean_form(e.fst), _mean_form(e.snd)
        if a is None or b is None or a[0] != b[0]:
            return None
        return (a[0], e.fst_fac * a[1] + e.snd_fac * b[1],
                [(e.fst_fac * c, s) for c, s in a[2]] + [(e.snd_fac * c, s) for c, s in b[2]])
    return None


def _selector_signature(sel: core.Selector) -> tuple:
    if isinstance(sel, core.Select):
        pred = sel.predicate.value if isinstance(sel.predicate, core.Comparison) else id(sel.predicate)
        return ("select", sel.keys.unique_id, sel.queries.unique_id, pred)
    return (type(sel).__name__, *(_selector_signature(c) for c in sel.children))


def _label(pg: ProgramGraph, sop: core.SOp) -> str:
    for node in pg.nodes.values():
        if node.expr.unique_id == sop.unique_id:
            return node.label
    raise KeyError(sop.label)


def _selects_at_most_one(node: Node, sets) -> bool:
    """True when the head's key is `indices` under a predicate true for one key per query."""
    for t in node.terms:
        if t.key != "indices":
            continue
        keys, queries = sets[t.key], sets[t.query]
        if keys is None or queries is None or len(queries) > 4096:
            continue
        if all(sum(1 for k in keys if t.predicate(k, q)) <= 1 for q in queries):
            return True
    return False


def _finite(sets, label: str, reader: Node) -> frozenset:
    values = sets[label]
    if values is None:
        raise ValueSetError(
            f"{reader.op} {reader.label} reads numerical SOp {label}, which can take more than "
            f"{MAX_VALUES} values, so no MLP can tell them apart exactly; reduce the values it averages "
            "or read it only linearly (LinearSequenceMap, numerical Aggregate)")
    return values


def _apply(node: Node, f, args: tuple) -> Any:
    try:
        return f(*args)
    except Exception as exc:
        raise ValueSetError(
            f"the function of {node.op} {node.label} raised {type(exc).__name__}: {exc} on "
            f"{', '.join(map(repr, args))}, a value its inputs can take; make it total over its "
            "inputs' values (e.g. guard the case) so every value can be compiled") from exc


def _not_finite_reals(values: frozenset) -> list:
    return [v for v in values if v is not None and (not isinstance(v, Real) or not math.isfinite(v))]


def _need_finite_reals(node: Node, values: frozenset) -> None:
    """Every numerical node (value sets of them are checked here, before validation)."""
    bad = _not_finite_reals(values)
    if bad:
        raise ValueSetError(
            f"numerical {node.op} {node.label} can take {sorted(map(repr, bad))[:5]}, not finite real "
            "numbers; a residual direction can only hold finite reals — bound or guard the values")


def _need_numbers(values: frozenset, node: Node) -> None:
    """What a numerical Aggregate averages (which may itself be categorical)."""
    bad = _not_finite_reals(values)
    if bad:
        raise ValueSetError(
            f"numerical Aggregate {node.label} averages {node.aggregated}, whose values include "
            f"non-numbers {sorted(map(repr, bad))[:5]}; aggregate a numerical SOp (numerical(Map(...)))")


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


__all__ = ["infer_value_sets", "mean_set", "sorted_values", "ValueSet", "Kind"]
