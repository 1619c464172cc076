"""Stage 1: RASP program -> ProgramGraph.

Selectors are not nodes: each Aggregate / SelectorWidth carries its selector as a
conjunction of Boolean tables (``Term``s), which one attention head can score
exactly by adding them up. A composite selector that is not such a conjunction
(an Or or Not over different SOps) is given product key/query spaces: synthetic
categorical SOps holding tuples of the SOps it compares, built by an MLP, so the
selector becomes one Boolean table over the tuples.
"""

from __future__ import annotations

from typing import Any, Callable

import networkx as nx

from rasp_compiler.errors import RaspTypeError, UnsupportedProgramError
from rasp_compiler.graph.nodes import Kind, Node, ProgramGraph, Term
from rasp_compiler.rasp import core


class _NotConjunctive(Exception):
    pass


def build_graph(program: core.SOp) -> ProgramGraph:
    """The program's SOps as a DAG, each with how it will be realised."""
    if not isinstance(program, core.SOp):
        what = "a selector" if isinstance(program, core.Selector) else repr(program)
        raise RaspTypeError(f"the program to compile must be an SOp, got {what}")
    builder = _Builder()
    if program.annotations.get(core.PROGRAM_ORDER) == "creation":
        # An expression is made after its inputs, so creation order is a topological order:
        # heads and MLPs of a layer come out numbered as the program text reads. (Programs
        # built in Python keep the depth-first order, which saved weights depend on.)
        for sop in sorted(_reachable(program), key=lambda s: s.unique_id):
            builder.add(sop)
    out = builder.add(program)
    return ProgramGraph(graph=builder.g, nodes=builder.nodes, output=out)


def _reachable(root: core.SOp) -> list[core.SOp]:
    seen: dict[int, core.SOp] = {}
    stack = [root]
    while stack:
        sop = stack.pop()
        if sop.unique_id not in seen:
            seen[sop.unique_id] = sop
            stack.extend(_sop_inputs(sop))
    return list(seen.values())


class _Builder:
    def __init__(self) -> None:
        self.g = nx.DiGraph()
        self.nodes: dict[str, Node] = {}
        self.label_of: dict[int, str] = {}
        self.encoding_of: dict[int, core.Encoding] = {}

    def add(self, root: core.SOp) -> str:
        # Iterative post-order over SOps (selectors are looked through).
        stack = [root]
        while stack:
            sop = stack[-1]
            if sop.unique_id in self.label_of:
                self._check_same(sop)
                stack.pop()
                continue
            pending = [c for c in _sop_inputs(sop) if c.unique_id not in self.label_of]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self._add_node(sop)
        return self.label_of[root.unique_id]

    def _check_same(self, sop: core.SOp) -> None:
        if self.encoding_of[sop.unique_id] is not sop.encoding:
            raise UnsupportedProgramError(
                f"SOp {sop.label} is used both as {self.encoding_of[sop.unique_id].value} and as "
                f"{sop.encoding.value}; give each encoding its own SOp (e.g. numerical(Map(lambda x: x, {sop.label})))")

    def _register(self, sop: core.SOp, label: str | None = None) -> str:
        label = label or sop.label
        if label in self.nodes:  # another SOp has this name: as tracr, both compile (told apart by id)
            label = f"{label}_{sop.unique_id}"
        self.label_of[sop.unique_id] = label
        self.encoding_of[sop.unique_id] = sop.encoding
        return label

    def _put(self, node: Node) -> None:
        self.nodes[node.label] = node
        self.g.add_node(node.label, order=len(self.g))
        for src in node.inputs:
            self.g.add_edge(src, node.label)

    def _add_node(self, sop: core.SOp) -> None:
        lab = lambda x: self.label_of[x.unique_id]  # noqa: E731
        numerical = sop.is_numerical
        terms: tuple[Term, ...] = ()
        aggregated = lab(sop.sop) if isinstance(sop, core.Aggregate) else None
        if isinstance(sop, (core.TokensType, core.IndicesType, core.Full, core.ConstantSOp)):
            kind, inputs = Kind.EMBED, ()
        elif isinstance(sop, core.Map):
            kind = Kind.VIRTUAL if numerical and not sop.inner.is_numerical else Kind.MLP
            inputs = (lab(sop.inner),)
        elif isinstance(sop, core.LinearSequenceMap) and numerical:
            kind, inputs = Kind.VIRTUAL, (lab(sop.fst), lab(sop.snd))
        elif isinstance(sop, core.SequenceMap):
            kind, inputs = Kind.MLP, (lab(sop.fst), lab(sop.snd))
        elif isinstance(sop, (core.Aggregate, core.SelectorWidth)):
            label = sop.label
            terms = self._terms(sop.selector, owner=label)
            inputs = tuple(dict.fromkeys(
                [t.key for t in terms] + [t.query for t in terms]
                + ([lab(sop.sop)] if isinstance(sop, core.Aggregate) else [])))
            kind = Kind.ATTENTION if isinstance(sop, core.Aggregate) else Kind.WIDTH
        else:
            raise RaspTypeError(f"cannot compile {sop!r}: unknown SOp type {type(sop).__name__}")
        label = self._register(sop)
        self._put(Node(label, sop, kind, numerical, inputs, terms, aggregated))

    # selectors ------------------------------------------------------------------
    def _terms(self, selector: core.Selector, owner: str) -> tuple[Term, ...]:
        try:
            return tuple(self._conjunction(selector))
        except _NotConjunctive:
            return (self._product_term(selector, owner),)

    def _conjunction(self, sel: core.Selector) -> list[Term]:
        lab = lambda x: self.label_of[x.unique_id]  # noqa: E731
        if isinstance(sel, core.Select):
            return [Term(lab(sel.keys), lab(sel.queries), sel.predicate, sel.label)]
        if isinstance(sel, core.SelectorAnd):
            merged: dict[tuple[str, str], Term] = {}
            for t in self._conjunction(sel.fst) + self._conjunction(sel.snd):
                old = merged.get((t.key, t.query))
                merged[(t.key, t.query)] = t if old is None else Term(
                    t.key, t.query, lambda k, q, a=old.predicate, b=t.predicate: bool(a(k, q)) and bool(b(k, q)),
                    f"{old.source} & {t.source}")
            return list(merged.values())
        if isinstance(sel, core.SelectorNot):
            inner = self._conjunction(sel.inner)
            if len(inner) == 1:
                t = inner[0]
                return [Term(t.key, t.query, lambda k, q, a=t.predicate: not a(k, q), f"not {t.source}")]
            raise _NotConjunctive
        if isinstance(sel, core.SelectorOr):
            a, b = self._conjunction(sel.fst), self._conjunction(sel.snd)
            if len(a) == 1 and len(b) == 1 and (a[0].key, a[0].query) == (b[0].key, b[0].query):
                return [Term(a[0].key, a[0].query,
                             lambda k, q, x=a[0].predicate, y=b[0].predicate: bool(x(k, q)) or bool(y(k, q)),
                             f"{a[0].source} | {b[0].source}")]
            raise _NotConjunctive
        raise RaspTypeError(f"unknown selector type {type(sel).__name__} in {sel.label}")

    def _product_term(self, selector: core.Selector, owner: str) -> Term:
        leaves = list(_select_leaves(selector))
        key_sops = list({s.keys.unique_id: s.keys for s in leaves}.values())
        query_sops = list({s.queries.unique_id: s.queries for s in leaves}.values())
        for sop in key_sops + query_sops:
            if sop.is_numerical:
                raise UnsupportedProgramError(
                    f"selector {selector.label} (used by {owner}) compares numerical SOp {sop.label}; "
                    f"Select keys and queries must be categorical: use categorical(Map(lambda x: x, {sop.label}))")
        key_label = self._tuple_sop(key_sops, f"{owner}_keys")
        query_label = self._tuple_sop(query_sops, f"{owner}_queries")
        key_pos = {s.unique_id: i for i, s in enumerate(key_sops)}
        query_pos = {s.unique_id: i for i, s in enumerate(query_sops)}
        wrap_k = (lambda v: (v,)) if len(key_sops) == 1 else (lambda v: v)
        wrap_q = (lambda v: (v,)) if len(query_sops) == 1 else (lambda v: v)

        def predicate(k: Any, q: Any) -> bool:
            return _eval_selector(selector, wrap_k(k), wrap_q(q), key_pos, query_pos)

        return Term(key_label, query_label, predicate, selector.label)

    def _tuple_sop(self, sops: list[core.SOp], label: str) -> str:
        if len(sops) == 1:
            return self.label_of[sops[0].unique_id]
        acc: core.SOp = sops[0]
        first = True
        for i, nxt in enumerate(sops[1:], start=2):
            f: Callable = (lambda a, b: (a, b)) if first else (lambda a, b: a + (b,))
            acc_new = core.SequenceMap(f, acc, nxt).named(label if i == len(sops) else f"{label}_{i}")
            lab = self._register(acc_new)
            self._put(Node(lab, acc_new, Kind.MLP, False,
                           (self.label_of[acc.unique_id], self.label_of[nxt.unique_id]), synthetic=True))
            acc, first = acc_new, False
        return self.label_of[acc.unique_id]


def _sop_inputs(sop: core.SOp) -> list[core.SOp]:
    out: list[core.SOp] = []
    for child in sop.children:
        if isinstance(child, core.SOp):
            out.append(child)
        else:
            out.extend(s for leaf in _select_leaves(child) for s in (leaf.keys, leaf.queries))
    return out


def _select_leaves(sel: core.Selector):
    if isinstance(sel, core.Select):
        yield sel
    else:
        for child in sel.children:
            yield from _select_leaves(child)


def _eval_selector(sel, kt, qt, key_pos, query_pos) -> bool:
    if isinstance(sel, core.Select):
        return bool(sel.predicate(kt[key_pos[sel.keys.unique_id]], qt[query_pos[sel.queries.unique_id]]))
    if isinstance(sel, core.SelectorAnd):
        return _eval_selector(sel.fst, kt, qt, key_pos, query_pos) and _eval_selector(sel.snd, kt, qt, key_pos, query_pos)
    if isinstance(sel, core.SelectorOr):
        return _eval_selector(sel.fst, kt, qt, key_pos, query_pos) or _eval_selector(sel.snd, kt, qt, key_pos, query_pos)
    if isinstance(sel, core.SelectorNot):
        return not _eval_selector(sel.inner, kt, qt, key_pos, query_pos)
    raise RaspTypeError(f"unknown selector type {type(sel).__name__}")

