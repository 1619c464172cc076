"""Proving that a categorical Aggregate never selects differing values, for every input.

A head copies one value, so a categorical Aggregate is compilable only if, on every
input and at every query, the selected positions hold equal values. Sampling inputs
cannot show that (a conflict may need a rare input), so it is proven from the selector
and the value sets. One of its selector's terms (the selector is their conjunction)
must satisfy, for every query value, "at most one key value is selected" and either

* the key SOp is *injective over positions* (no two positions ever hold equal keys), so
  at most one position is selected; or
* the key SOp *determines* the aggregated SOp (it is a function of the key alone), so
  all selected positions hold one key value and thus one aggregated value;

or the aggregated SOp takes at most one value. Injective over positions: ``indices``; a
Map injective on its input's values; a SequenceMap of which one input is injective and
whose function keeps that input recoverable; a SelectorWidth counting the keys smaller
(or larger) than one's own, over injective keys (a rank); and the stable rank of
``make_sort`` (keys before + earlier equal keys); an occurrence pair ``(x, number of
earlier positions holding x)``. A rank also determines its key (equal
ranks only for equal keys), and a tuple key its parts. Where these fail, the per-length,
per-position analysis of :mod:`rasp_compiler.graph.positional` is tried (a reverse
``n - i - 1``, values the same at every position). Anything else is not proven, and the
validator falls back to trying every input when there are few.
"""

from __future__ import annotations

from numbers import Real

from rasp_compiler.graph.nodes import Kind, Node, ProgramGraph
from rasp_compiler.graph.positional import selects_single_values
from rasp_compiler.graph.value_sets import at_most_one_key
from rasp_compiler.limits import Limits
from rasp_compiler.rasp import core

_ORDERS = (core.Comparison.LT, core.Comparison.GT, core.Comparison.LEQ, core.Comparison.GEQ)
_STRICT = (core.Comparison.LT, core.Comparison.GT)


def proven_single_valued(node: Node, pg: ProgramGraph, sets: dict, lim: Limits,
                         max_seq_len: int | None = None) -> bool:
    """True when, on every input, each query of this Aggregate selects equal values only.

    The rules below hold for every length at once; where they fail, the per-length,
    per-position analysis of :mod:`rasp_compiler.graph.positional` is tried
    (``max_seq_len``, when not given, is read off the value sets)."""
    values = sets.get(node.aggregated)
    if values is not None and len(values) <= 1:
        return True
    facts = _Facts(pg, sets, lim)
    for t in node.terms:
        if not _none_never_selected(t, sets) or not at_most_one_key(t, sets, lim):
            continue
        if facts.injective(t.key) or facts.determines(t.key, node.aggregated):
            return True
    return selects_single_values(node, pg, sets, max_seq_len)


def _none_never_selected(t, sets: dict) -> bool:
    """The rules below reason about non-None values only (a None key "no value" is not
    injective: it can sit at many positions). That is sound when the predicate never
    holds for a None key or query: a Comparison other than TRUE. A Python predicate (or
    TRUE) may select None, so the rules apply to it only where neither side can be None."""
    if isinstance(t.predicate, core.Comparison) and t.predicate is not core.Comparison.TRUE:
        return True
    return all(sets.get(side) is not None and None not in sets[side] for side in (t.key, t.query))


class _Facts:
    def __init__(self, pg: ProgramGraph, sets: dict, lim: Limits):
        self.pg, self.sets, self.lim = pg, sets, lim
        self._injective: dict[str, bool] = {}

    # injective over positions ---------------------------------------------------
    def injective(self, label: str) -> bool:
        if label not in self._injective:
            self._injective[label] = False  # no cycles in a DAG, but be safe
            self._injective[label] = self._is_injective(self.pg.nodes[label])
        return self._injective[label]

    def _is_injective(self, node: Node) -> bool:
        e = node.expr
        if isinstance(e, core.IndicesType):
            return True
        if isinstance(e, core.Map):
            return self.injective(node.inputs[0]) and self._map_injective(node)
        if isinstance(e, core.LinearSequenceMap) and node.numerical and self._stable_rank(node):
            return True
        if isinstance(e, core.SequenceMap):
            a, b = node.inputs
            return (self.injective(b) and self._recovers(e.f, a, b, second=True)) or \
                   (self.injective(a) and self._recovers(e.f, a, b, second=False)) or \
                   self._occurrence_pair(node)
        if node.kind is Kind.WIDTH and len(node.terms) == 1:
            t = node.terms[0]
            return (t.key == t.query and t.predicate in _ORDERS and self._totally_ordered(t.key)
                    and self.injective(t.key))
        return False

    def _occurrence_pair(self, node: Node) -> bool:
        """``f(x, c)`` where c counts the earlier (or later) positions holding my x, and f keeps
        both: the c-th occurrence of a value is one position, so no two positions share it."""
        a, b = node.inputs
        for x, count in ((a, b), (b, a)):
            width = self.pg.nodes[count]
            if width.kind is not Kind.WIDTH or len(width.terms) != 2:
                continue
            pairs = {(t.key, t.query): t.predicate for t in width.terms}
            if pairs.get((x, x)) is core.Comparison.EQ and pairs.get(("indices", "indices")) in _STRICT \
                    and self._joint_injective(node.expr.f, a, b):
                return True
        return False

    def _joint_injective(self, f, a: str, b: str) -> bool:
        """f(x, y) differs for different (x, y) pairs of non-None values."""
        return self._determines(f, a, b, lambda x, y: (x, y))

    def _map_injective(self, node: Node) -> bool:
        src = self.sets.get(node.inputs[0])
        if src is None:
            return False
        src = [v for v in src if v is not None]
        try:
            out = {node.expr.f(v) for v in src}
        except Exception:
            return False
        return len(out) == len(src) and None not in out

    def _recovers(self, f, a: str, b: str, second: bool) -> bool:
        """f(x, y) determines y (second) or x: equal outputs only for one value of it."""
        return self._determines(f, a, b, (lambda x, y: y) if second else (lambda x, y: x))

    def _determines(self, f, a: str, b: str, part) -> bool:
        """Over every pair of non-None values of ``a`` and ``b``, f(x, y) is never None and
        equal outputs always come from the same ``part(x, y)``."""
        xs, ys = self.sets.get(a), self.sets.get(b)
        if xs is None or ys is None or len(xs) * len(ys) > self.lim.max_pairs:
            return False
        owner: dict = {}
        try:
            for x in xs:
                for y in ys:
                    if x is None or y is None:
                        continue
                    out, key = f(x, y), part(x, y)
                    if out is None or owner.setdefault(out, key) != key:
                        return False
        except Exception:
            return False
        return True

    def _totally_ordered(self, label: str) -> bool:
        values = self.sets.get(label)
        if values is None or None in values:  # None is below nothing: it would share the lowest rank
            return False
        return all(isinstance(v, Real) for v in values) or all(isinstance(v, str) for v in values)

    def _stable_rank(self, node: Node) -> bool:
        """#{keys before mine} + #{earlier positions with my key} (make_sort's target)."""
        e = node.expr
        if e.fst_fac != 1 or e.snd_fac != 1:
            return False
        widths = [self.pg.nodes[x] for x in node.inputs]
        if any(w.kind is not Kind.WIDTH for w in widths):
            return False
        for before, ties in (widths, widths[::-1]):
            if len(before.terms) != 1 or len(ties.terms) != 2:
                continue
            t = before.terms[0]
            if t.key != t.query or t.predicate not in _STRICT or not self._totally_ordered(t.key):
                continue
            pairs = {(x.key, x.query): x.predicate for x in ties.terms}
            if pairs.get((t.key, t.key)) is core.Comparison.EQ and \
                    pairs.get(("indices", "indices")) in _STRICT:
                return True
        return False

    # determined by -------------------------------------------------------------------
    def determines(self, key: str, value: str) -> bool:
        """``value`` at a position is a function of ``key`` at that position."""
        return value in self._determined(key)

    def _determined(self, key: str) -> set[str]:
        known = {key}
        stack = [key]
        while stack:  # a tuple key (synthetic) determines its parts; an injective Map its input
            node = self.pg.nodes[stack.pop()]
            parts = []
            if node.synthetic:
                parts = list(node.inputs)
            elif isinstance(node.expr, core.Map) and self._map_injective(node):
                parts = list(node.inputs)
            elif node.kind is Kind.WIDTH and len(node.terms) == 1:  # a rank: equal ranks, equal keys
                t = node.terms[0]
                if t.key == t.query and t.predicate in _ORDERS and self._totally_ordered(t.key):
                    parts = [t.key]
            for p in parts:
                if p not in known:
                    known.add(p)
                    stack.append(p)
        for label in self.pg.topological():  # then everything computed position-wise from those
            if label in known:
                continue
            node = self.pg.nodes[label]
            e = node.expr
            if isinstance(e, core.Full) or (
                    isinstance(e, (core.Map, core.SequenceMap)) and node.inputs and all(i in known for i in node.inputs)):
                known.add(label)
        return known
