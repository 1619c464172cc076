"""Per-length, per-position value sets: proving that a selector picks one position at most.

The rules of :mod:`rasp_compiler.graph.aggregate_proof` look at value sets across all
positions and lengths. Many programs select one position for reasons that only show at a
given input length ``n`` and position ``i``: ``n - i - 1`` (a reverse) takes one value at
each position for each ``n``, though every value at some. So, for each length
``n = 2..max_seq_len`` (one position cannot conflict), this module follows the program
in topological order and gives every SOp an *abstract value*:

* ``at[i]``: a superset of the values it can hold at position ``i`` of a length-``n``
  input (``None``: unknown), and
* ``constant``: on any one input it holds the same value at every position.

An Aggregate is proven, for one length, when at every query its selector's candidate
positions (those whose key set has a value the predicate accepts) number at most one,
or its aggregated SOp is position-constant. The joint values of position-constant SOps
are split into cases (each case fixes one value at every position), which keeps values
that are the same at every position together: ``a + d * (i - a)`` with ``d`` in {1, -1}
is one value per position in each case, though two in the union. Every rule is written
out, with why it is sound, in docs/reliability.md ("Categorical Aggregates").

Bounded: at most ``MAX_CASES`` cases per length (past that, values stay merged: weaker,
never wrong) and ``MAX_WORK`` steps (calls of the program's functions, predicate
look-ups) per Aggregate (past that: not proven).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import networkx as nx

from rasp_compiler.graph.nodes import Kind, Node, ProgramGraph, Term
from rasp_compiler.graph.value_sets import exact_key
from rasp_compiler.rasp import core

MAX_CASES = 256  # cases (joint values of position-constant SOps) per length
MAX_WORK = 200_000  # steps (function calls, predicate look-ups) per Aggregate
MAX_PAIRS = 4_096  # value pairs one SequenceMap combines at one position
MAX_QUERY_TUPLES = 256  # query-value tuples of a conjunction at one position

Values = dict  # {exact key: value}; a dict, so values equal in Python but of other types stay apart
NEVER, MAY, MUST = 0, 1, 2  # what a selector does with one (query, key) position pair


def _values(items) -> Values:
    return {exact_key(v): v for v in items}


@dataclass(frozen=True)
class Abstract:
    """What is known of one SOp at one length, in one case."""

    at: tuple[Values, ...] | None  # per position: every value it can hold there (None: unknown)
    constant: bool  # the same value at every position, on any one input


class _GiveUp(Exception):
    """The work budget is spent: not proven."""


def selects_single_values(node: Node, pg: ProgramGraph, sets: dict, max_seq_len: int | None = None) -> bool:
    """True when, on every input, each query of categorical Aggregate ``node`` selects at
    most one position or only positions of a position-constant aggregated SOp."""
    n_max = max_seq_len if max_seq_len is not None else infer_max_seq_len(pg, sets)
    if n_max is None:
        return False
    sides = set()
    for t in node.terms:
        for label in (t.key, t.query):
            sides |= nx.ancestors(pg.graph, label) | {label}
    relevant = sides | nx.ancestors(pg.graph, node.aggregated) | {node.aggregated}
    order = [label for label in pg.topological() if label in relevant]
    shared = _Shared()
    try:
        for n in range(2, n_max + 1):
            length = _Length(pg, sets, n, shared)
            if not (length.proves(node, order, split_on=frozenset())
                    or length.proves(node, order, split_on=frozenset(sides))):
                return False
    except _GiveUp:
        return False
    return True


@dataclass(frozen=True)
class LaterKey:
    """A key position after its query position that a selector may pick on inputs of
    ``length`` (all None: the work budget ran out before anything was proven)."""

    length: int | None
    query: int | None
    key: int | None


def later_key(node: Node, pg: ProgramGraph, sets: dict, max_seq_len: int) -> LaterKey | None:
    """None when the selector of head ``node`` picks no key position after its query
    position on any input of length <= ``max_seq_len``, else the first (length, query,
    key) it may pick. The causal check: per-position values see, e.g., that a key
    ``(token, index)`` compared by ``k[1] <= q[1]`` never reaches a later position."""
    relevant: set = set()
    for t in node.terms:
        for label in (t.key, t.query):
            relevant |= nx.ancestors(pg.graph, label) | {label}
    order = [label for label in pg.topological() if label in relevant]
    shared = _Shared()
    try:
        for n in range(2, max_seq_len + 1):
            length = _Length(pg, sets, n, shared)
            for split_on in (frozenset(), frozenset(relevant)):  # split cases only if the merged values fail
                witness = next((w for state in length.cases(order, split_on)
                                for w in _later_cells(length, node, state)), None)
                if witness is None:
                    break
            if witness is not None:
                return LaterKey(n, *witness)
    except _GiveUp:
        return LaterKey(None, None, None)
    return None


def _later_cells(length: "_Length", node: Node, state: dict):
    for q in range(length.n):
        for k in range(q + 1, length.n):
            if length._cell(node.terms, k, q, state) != NEVER:
                yield q, k


def abstract_cases(pg: ProgramGraph, sets: dict, n: int, split: bool = True):
    """The abstract values of every SOp on inputs of length ``n``, one dict per case
    (every position-constant SOp split by value when ``split``). For tests and debugging:
    every input of length n must fit one of them."""
    order = pg.topological()
    shared = _Shared()
    shared.work = math.inf  # no budget: the caller asked for every case
    yield from _Length(pg, sets, n, shared).cases(order, frozenset(order) if split else frozenset())


def infer_max_seq_len(pg: ProgramGraph, sets: dict) -> int | None:
    """max_seq_len from the value sets: ``indices`` is 0..n-1, a SelectorWidth 0..n."""
    try:
        for label, node in pg.nodes.items():
            if isinstance(node.expr, core.IndicesType):
                return max(sets[label]) + 1
            if node.kind is Kind.WIDTH:
                return max(sets[label])
    except (KeyError, TypeError, ValueError):
        pass
    return None


class _Shared:
    """State of one Aggregate's proof across lengths: the work left, predicate results."""

    def __init__(self) -> None:
        self.work = MAX_WORK
        self.outcomes: dict = {}

    def spend(self, k: int = 1) -> None:
        self.work -= k
        if self.work < 0:
            raise _GiveUp

    def outcome(self, term: Term, kx, k, qx, q) -> bool | None:
        """predicate(k, q) as the evaluator sees it; None if it raises (then: either)."""
        self.spend()  # every look-up counts, so the loops around it are bounded too
        key = (id(term), kx, qx)
        if key not in self.outcomes:
            try:
                self.outcomes[key] = bool(term.predicate(k, q))
            except Exception:  # noqa: BLE001 — the user's predicate failed: it may select or not
                self.outcomes[key] = None
        return self.outcomes[key]


class _Length:
    """The abstract values of the program's SOps on inputs of length ``n``."""

    def __init__(self, pg: ProgramGraph, sets: dict, n: int, shared: _Shared):
        self.pg, self.sets, self.n, self.shared = pg, sets, n, shared
        self.leaves = 1
        self._fallbacks: dict[str, Abstract] = {}
        self._memo: dict = {}
        self._interned: dict = {}

    def _intern(self, values: Values) -> Values:
        """One object per distinct value set, so that work keyed by id is shared."""
        return self._interned.setdefault(frozenset(values), values)

    # cases ---------------------------------------------------------------------------
    def proves(self, x: Node, order: list[str], split_on: frozenset) -> bool:
        return all(self._proven_here(x, state) for state in self.cases(order, split_on))

    def cases(self, order: list[str], split_on: frozenset):
        """The abstract values of ``order`` (topological, closed under inputs) in each case:
        position-constant SOps of ``split_on`` are split by value (lazily: a caller that
        stops early stops the work). Together the cases cover every input of length n."""
        self.leaves = 1
        yield from self._run(order, 0, {}, split_on)

    def _run(self, order: list[str], start: int, state: dict, split_on: frozenset):
        for pos in range(start, len(order)):
            label = order[pos]
            a = self._abstract(self.pg.nodes[label], state)
            if a.constant and a.at is not None:
                common = {k: v for k, v in a.at[0].items() if all(k in s for s in a.at[1:])}
                if not common:
                    return  # no input of this length is in this case
                if len(common) > 1 and label in split_on and self.leaves + len(common) - 1 <= MAX_CASES:
                    self.leaves += len(common) - 1
                    for k, v in common.items():
                        branch = dict(state)
                        branch[label] = Abstract(({k: v},) * self.n, True)
                        yield from self._run(order, pos + 1, branch, split_on)
                    return
                a = Abstract((common,) * self.n, True)
            state[label] = a
        yield state

    def _proven_here(self, x: Node, state: dict) -> bool:
        if state[x.aggregated].constant:  # every position holds the same value: no conflict
            return True
        if any(self._one_position(t, state) for t in x.terms):
            return True
        return len(x.terms) > 1 and self._one_position_jointly(x.terms, state)

    # the rule ----------------------------------------------------------------------------
    def _one_position(self, t: Term, state: dict) -> bool:
        """For every query value q, at most one position's key set has a k with pred(k, q)."""
        if t.predicate is core.Comparison.FALSE:
            return True
        keys, queries = state[t.key].at, state[t.query].at
        if keys is None or queries is None:
            return False
        every_query: Values = {}
        for s in queries:
            every_query.update(s)
        for qx, q in every_query.items():
            hits = 0
            for i in range(self.n):
                if any(self.shared.outcome(t, kx, k, qx, q) is not False for kx, k in keys[i].items()):
                    hits += 1
                    if hits > 1:
                        return False
        return True

    def _one_position_jointly(self, terms: tuple[Term, ...], state: dict) -> bool:
        """The conjunction: at each query position, for each tuple of its terms' query
        values, at most one position passes every term."""
        keys = [state[t.key].at for t in terms]
        queries = [state[t.query].at for t in terms]
        if any(s is None for s in keys + queries):
            return False
        for j in range(self.n):
            sizes = [len(q[j]) for q in queries]
            if math.prod(sizes) > MAX_QUERY_TUPLES:
                return False
            for combo in itertools.product(*(q[j].items() for q in queries)):
                hits = 0
                for i in range(self.n):
                    if all(any(self.shared.outcome(t, kx, k, qx, q) is not False for kx, k in ks[i].items())
                           for t, ks, (qx, q) in zip(terms, keys, combo)):
                        hits += 1
                        if hits > 1:
                            return False
        return True

    # abstract values ----------------------------------------------------------------
    def _abstract(self, node: Node, state: dict) -> Abstract:
        inputs = tuple(state[x] for x in node.inputs)
        memo_key = (node.label, tuple(map(id, inputs)))
        if memo_key not in self._memo:  # the same inputs as in an earlier case: the same result
            self._memo[memo_key] = (self._checked(node, state), inputs)  # (inputs kept: ids stay unique)
        return self._memo[memo_key][0]

    def _checked(self, node: Node, state: dict) -> Abstract:
        a = self._transfer(node, state)
        if a.at is not None:
            a = Abstract(tuple(self._intern(s) for s in a.at), a.constant)
        if not a.constant and a.at is not None and all(len(s) == 1 for s in a.at) \
                and len({next(iter(s)) for s in a.at}) == 1:
            return Abstract(a.at, True)  # one value, the same, at every position
        return a

    def _transfer(self, node: Node, state: dict) -> Abstract:
        e, n = node.expr, self.n
        if isinstance(e, core.TokensType):
            return Abstract(self._fallback(node).at, False)
        if isinstance(e, core.IndicesType):
            return Abstract(tuple(_values([i]) for i in range(n)), False)
        if isinstance(e, core.Full):
            return Abstract((_values([e.fill]),) * n, True)
        if isinstance(e, core.ConstantSOp):
            if e.check_length and len(e.value) != n:  # evaluation raises at this length
                return self._fallback(node)
            return Abstract(tuple(_values([e.value[i] if i < len(e.value) else None]) for i in range(n)), False)
        if isinstance(e, core.Map):
            inner = state[node.inputs[0]]
            return self._pointwise(node, (inner,), lambda xs, f=e.f: [f(x) for (x,) in xs])
        if isinstance(e, core.SequenceMap):
            a, b = (state[label] for label in node.inputs)
            same = node.inputs[0] == node.inputs[1]  # one SOp: the same value in both arguments
            out = self._pointwise(node, (a, b), lambda pairs, f=e.f: [f(x, y) for x, y in pairs], same)
            if node.synthetic and (out.at is None or any(None in s.values() for s in out.at)):
                # a tuple the compiler made for an Or/Not selector: where a part is None the
                # evaluator still compares the parts, so the tuple's values say nothing
                return Abstract(None, out.constant)
            return out
        if node.kind in (Kind.ATTENTION, Kind.WIDTH):
            return self._head(node, state)
        return self._fallback(node)

    def _fallback(self, node: Node) -> Abstract:
        """The node's value set at every position (unknown for a numerical one: merged floats)."""
        if node.label not in self._fallbacks:
            values = self.sets.get(node.label)
            at = None if values is None or node.numerical else (_values(values),) * self.n
            self._fallbacks[node.label] = Abstract(at, False)
        return self._fallbacks[node.label]

    def _pointwise(self, node: Node, inputs: tuple, apply, same: bool = False) -> Abstract:
        """f applied to every combination of its inputs' values at each position; None
        (no value) in any input gives None, as in the evaluator."""
        constant = all(a.constant for a in inputs)
        if any(a.at is None for a in inputs):
            return Abstract(self._fallback(node).at, constant)
        out, done = [], {}
        try:
            for i in range(self.n):
                sets = [a.at[i] for a in inputs]
                key = tuple(id(s) for s in sets)
                if key not in done:
                    combos = [(v, v) for v in sets[0].values()] if same else \
                        list(itertools.product(*(s.values() for s in sets)))
                    if len(combos) > MAX_PAIRS:
                        return Abstract(self._fallback(node).at, constant)
                    self.shared.spend(len(combos))
                    live = [c for c in combos if None not in c]
                    results = apply(live) + ([None] if len(live) < len(combos) else [])
                    done[key] = _values(results)
                out.append(done[key])
        except _GiveUp:
            raise
        except Exception:  # noqa: BLE001 — a function failed (or gave an unhashable value): unknown here
            return Abstract(self._fallback(node).at, constant)
        return Abstract(tuple(out), constant)

    def _head(self, node: Node, state: dict) -> Abstract:
        """A SelectorWidth or an Aggregate, from what its selector does at each (query, key)."""
        cells = [[self._cell(node.terms, i, j, state) for i in range(self.n)] for j in range(self.n)]
        queries_constant = all(state[t.query].constant for t in node.terms
                               if t.predicate not in (core.Comparison.TRUE, core.Comparison.FALSE))
        decided_alike = all(MAY not in row for row in cells) and all(row == cells[0] for row in cells)
        constant = queries_constant or decided_alike  # every query position selects the same keys
        if node.kind is Kind.WIDTH:
            at = []
            for row in cells:
                must = row.count(MUST)
                at.append(_values(range(must, must + row.count(MAY) + 1)))
            return Abstract(tuple(at), constant)
        self.shared.spend(self.n * self.n)
        values = state[node.aggregated].at
        if node.numerical or values is None:
            return Abstract(self._fallback(node).at, constant)
        at = []
        for row in cells:
            here: Values = {}
            for i, c in enumerate(row):
                if c is not NEVER:
                    self.shared.spend(len(values[i]))
                    here.update(values[i])
            if MUST not in row:  # may select nothing: the default
                here.update(_values([node.expr.default]))
            at.append(here)
        return Abstract(tuple(at), constant)

    def _cell(self, terms: tuple[Term, ...], i: int, j: int, state: dict) -> int:
        """NEVER, MAY or MUST: does the selector pick key position i for query position j."""
        result = MUST
        for t in terms:
            if t.predicate is core.Comparison.TRUE:
                continue
            if t.predicate is core.Comparison.FALSE:
                return NEVER
            keys, queries = state[t.key].at, state[t.query].at
            if keys is None or queries is None:
                result = MAY
                continue
            if t.key == t.query and i == j:  # one SOp at one position: key and query are one value
                pairs = [((kx, k), (kx, k)) for kx, k in keys[i].items()]
            else:
                pairs = itertools.product(keys[i].items(), queries[j].items())
            seen = set()
            for (kx, k), (qx, q) in pairs:
                seen.add(self.shared.outcome(t, kx, k, qx, q))
                if len(seen) > 1 or None in seen:
                    break
            if seen <= {False}:
                return NEVER
            if seen != {True}:
                result = MAY
        return result

