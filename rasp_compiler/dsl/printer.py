"""rasp objects -> text RASP, such that parsing the text evaluates identically.

Printable: tokens, indices, length, ``Full``, ``ConstantSOp``, ``Select`` with a
``Comparison``, selector and/or/not, ``Aggregate``, ``SelectorWidth``,
``LinearSequenceMap``, and ``Map`` / ``SequenceMap`` carrying a formula (annotation
``dsl_formula``, which every elementwise node built by :func:`rasp_compiler.dsl.parse`
has). A Map built from an arbitrary Python function has no text form: it raises
:class:`UnsupportedProgramError` naming the SOp.

Every named node, every node used more than once and the program itself become an
assignment ``name = ...;`` (names are the labels, made into valid identifiers); other
nodes are written inline. Encodings are written out (``numerical(...)`` /
``categorical(...)``) wherever the parser's default would differ.
"""

from __future__ import annotations

import re
from typing import Any

from rasp_compiler.errors import UnsupportedProgramError
from rasp_compiler.rasp import core
from rasp_compiler.dsl import formula as fm
from rasp_compiler.dsl.parser import RESERVED

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_INLINE_DEPTH = 40  # nodes nested deeper inline are written as named assignments


def to_text(program: core.RASPExpr) -> str:
    """Text RASP for ``program`` (an SOp or selector); the last assignment is the program."""
    if not isinstance(program, core.RASPExpr):
        raise TypeError(f"to_text needs a RASP expression, got {program!r}")
    return _Printer(program).text()


def _unsupported(node: core.RASPExpr, why: str) -> UnsupportedProgramError:
    return UnsupportedProgramError(
        f"{type(node).__name__} {node.label} cannot be written as text RASP: {why}")


def _is_length(node: core.RASPExpr) -> bool:
    if not isinstance(node, core.SelectorWidth) or node.label != "length":
        return False
    sel = node.selector
    return (type(sel) is core.Select and isinstance(sel.keys, core.TokensType)
            and isinstance(sel.queries, core.TokensType) and sel.predicate is core.Comparison.TRUE)


def _is_pair(node: core.RASPExpr) -> bool:
    f = node.annotations.get(fm.FORMULA_KEY)
    return isinstance(f, fm.Op) and f.op == "pair" and isinstance(node, core.SequenceMap)


def _is_view(node: core.RASPExpr) -> bool:
    """A categorical view of a numerical SOp added by the parser: written as the SOp itself."""
    f = node.annotations.get(fm.FORMULA_KEY)
    return type(node) is core.Map and isinstance(f, fm.Op) and f.op == "id" and f.args == (fm.Arg(0),)


def _through_views(node: core.RASPExpr) -> core.RASPExpr:
    while _is_view(node):
        node = node.inner
    return node


def _is_leaf(node: core.RASPExpr) -> bool:
    return isinstance(node, (core.TokensType, core.IndicesType)) or _is_length(node)


class _Printer:
    def __init__(self, root: core.RASPExpr):
        self.root = root
        self.nodes: dict[int, core.RASPExpr] = {}
        self.refs: dict[int, int] = {}
        self.order: list[int] = []  # children before parents
        self._collect()
        self.names: dict[int, str] = {}
        self.forced: set[int] = set()
        self._choose_names()

    # -- graph ------------------------------------------------------------------------
    def _occurrences(self, node: core.RASPExpr) -> list[core.RASPExpr]:
        """The nodes written inside ``node``'s text, with multiplicity (pairs expanded)."""
        if _is_leaf(node):
            return []
        f = fm.formula_of(node) if isinstance(node, (core.Map, core.SequenceMap)) else None
        if f is None:
            return [_through_views(c) for c in node.children]
        return self._formula_occurrences(f, list(node.children))

    def _formula_occurrences(self, f: fm.Formula, children: list[core.RASPExpr]) -> list[core.RASPExpr]:
        out: list[core.RASPExpr] = []

        def walk(g: fm.Formula) -> None:
            if isinstance(g, fm.Arg):
                out.append(_through_views(children[g.index]))
            elif isinstance(g, fm.Op):
                if (g.op == "get" and isinstance(g.args[0], fm.Arg) and isinstance(g.args[1], fm.Const)
                        and _is_pair(children[g.args[0].index])):
                    pair = children[g.args[0].index]
                    component = fm.formula_of(pair).args[g.args[1].value]
                    out.extend(self._formula_occurrences(component, list(pair.children)))
                    return
                for x in g.args:
                    walk(x)
        walk(f)
        return out

    def _collect(self) -> None:
        # Iterative post-order over the occurrence graph, counting references.
        self.refs[self.root.unique_id] = 0
        stack: list[tuple[core.RASPExpr, bool]] = [(self.root, False)]
        visited: set[int] = set()
        while stack:
            node, expanded = stack.pop()
            uid = node.unique_id
            if expanded:
                self.order.append(uid)
                continue
            if uid in visited:
                continue
            visited.add(uid)
            self._remember(node)
            stack.append((node, True))
            for child in reversed(self._occurrences(node)):
                self.refs[child.unique_id] = self.refs.get(child.unique_id, 0) + 1
                if child.unique_id not in visited:
                    stack.append((child, False))

    def _remember(self, node: core.RASPExpr) -> None:
        # Several copies of one node may exist (named() keeps the identity): prefer a named one.
        old = self.nodes.get(node.unique_id)
        if old is None or ("name" not in old.annotations and "name" in node.annotations):
            self.nodes[node.unique_id] = node

    def _emitted(self, uid: int) -> bool:
        node = self.nodes[uid]
        if uid == self.root.unique_id:
            return True
        if _is_leaf(node) or _is_pair(node) or _is_view(node):
            return False
        return "name" in node.annotations or self.refs.get(uid, 0) > 1 or uid in self.forced

    def _choose_names(self) -> None:
        taken: set[str] = set()
        inline_depth: dict[int, int] = {}
        for uid in self.order:
            node = self.nodes[uid]
            below = [inline_depth.get(c.unique_id, 0) for c in self._occurrences(node)]
            inline_depth[uid] = 1 + max(below, default=0)
            if not self._emitted(uid):
                if inline_depth[uid] <= _MAX_INLINE_DEPTH or _is_leaf(node) or _is_pair(node):
                    continue
                self.forced.add(uid)  # too deep to write inline: give it a name
            inline_depth[uid] = 0
            node = self.nodes[uid]
            base = re.sub(r"[^A-Za-z0-9_]", "_", node.label) or "value"
            if not _IDENTIFIER.match(base):
                base = "_" + base
            if base in RESERVED:
                base = base + "_"
            name, k = base, 2
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            self.names[uid] = name

    # -- text -------------------------------------------------------------------------
    def text(self) -> str:
        lines = []
        for uid in self.order:
            if uid in self.names:
                body, _ = self._expr(self.nodes[uid])
                lines.append(f"{self.names[uid]} = {body};")
        root_name = self.names[self.root.unique_id]
        if isinstance(self.root, core.SOp):
            lines.append(f"# output: {root_name}")
        return "\n".join(lines) + "\n"

    def _ref(self, node: core.RASPExpr) -> tuple[str, int]:
        """Text of a node where it is used: its name, or its expression inline."""
        node = _through_views(node)
        if _is_leaf(node) and self._encoding_wrapper(node) == "categorical":
            return f"categorical({self._bare(node)[0]})", fm.PREC_ATOM  # the leaf as marked here
        uid = node.unique_id
        if uid in self.names:
            return self.names[uid], fm.PREC_ATOM
        return self._expr(self.nodes.get(uid, node))

    def _expr(self, node: core.RASPExpr) -> tuple[str, int]:
        """The defining text of a node (with its encoding written where needed)."""
        text, prec = self._bare(node)
        if isinstance(node, core.SOp):
            wrapper = self._encoding_wrapper(node)
            if wrapper:
                return f"{wrapper}({text})", fm.PREC_ATOM
        return text, prec

    def _encoding_wrapper(self, node: core.SOp) -> str | None:
        if _is_leaf(node) and not node.is_numerical:
            # categorical(indices): the parser would average the numbers of a bare leaf.
            return "categorical" if fm.explicitly_categorical(node) and fm.holds_numbers(node) else None
        inferred = self._inferred_numerical(node)
        if node.is_numerical and not inferred:
            return "numerical"
        if not node.is_numerical and inferred:
            return "categorical"
        if (isinstance(node, core.Aggregate) and not node.is_numerical and node.default is None
                and fm.copies_numbers(_through_views(node.sop))):
            return "categorical"  # bare, the parser would copy these numbers with the reference's default 0
        if (not node.is_numerical and fm.explicitly_categorical(node)
                and not isinstance(node, core.Aggregate) and fm.holds_numbers(node)):
            return "categorical"
        return None

    def _inferred_numerical(self, node: core.SOp) -> bool:
        """The encoding the parser gives this node's text when no wrapper is written."""
        if isinstance(node, core.Aggregate):
            sop = _through_views(node.sop)
            if not sop.is_numerical and self._encoding_wrapper(sop) == "categorical":
                # Written categorical(...) (here or where it is assigned), the parser sees an
                # explicitly categorical SOp and makes the aggregate a copy, whatever the values.
                return False
            return fm.infer_numerical_aggregate(sop, selector=_through_views(node.selector))
        if isinstance(node, (core.Map, core.SequenceMap)):
            f = self._printed_formula(node)
            if f is not None:
                return fm.encoding(f, [_through_views(c).is_numerical for c in node.children])
        return False

    @staticmethod
    def _printed_formula(node: core.SOp) -> fm.Formula | None:
        """The formula written for an elementwise node.

        An identity Map that changes the encoding of an Aggregate is written ``x * 1``:
        ``categorical(agg)`` / ``numerical(agg)`` would switch the aggregate between copy
        and mean (a different program), while ``categorical(agg * 1)`` is a Map of
        ``agg`` computing the same values (``* 1`` is exact on numbers and strings).
        """
        f = fm.formula_of(node)
        if (type(node) is core.Map and f in (fm.Arg(0), fm.Op("id", (fm.Arg(0),)))
                and isinstance(_through_views(node.inner), core.Aggregate)
                and _through_views(node.inner).is_numerical != node.is_numerical):
            return fm.Op("*", (fm.Arg(0), fm.Const(1)))
        return f

    def _bare(self, node: core.RASPExpr) -> tuple[str, int]:
        atom = fm.PREC_ATOM
        if isinstance(node, core.TokensType):
            return "tokens", atom
        if isinstance(node, core.IndicesType):
            return "indices", atom
        if _is_length(node):
            return "length", atom
        if isinstance(node, core.Full):
            return f"full({self._const(node, node.fill)})", atom
        if isinstance(node, core.ConstantSOp):
            if not node.check_length:
                raise _unsupported(node, "constant() always checks the input length (check_length=False)")
            return f"constant({self._const(node, tuple(node.value))})", atom
        if isinstance(node, core.Select):
            if not isinstance(node.predicate, core.Comparison):
                raise _unsupported(node, "its predicate is a Python function, not a Comparison")
            keys, queries = self._ref(node.keys)[0], self._ref(node.queries)[0]
            return f"select({keys}, {queries}, {node.predicate.symbol})", atom
        if isinstance(node, core.SelectorAnd):
            return self._selector_binary(node, "and", fm.PREC_AND)
        if isinstance(node, core.SelectorOr):
            return self._selector_binary(node, "or", fm.PREC_OR)
        if isinstance(node, core.SelectorNot):
            inner = self._ref(node.inner)
            return f"not {self._paren(inner, fm.PREC_NOT)}", fm.PREC_NOT
        if isinstance(node, core.SelectorWidth):
            return f"selector_width({self._ref(node.selector)[0]})", atom
        if isinstance(node, core.Aggregate):
            args = [self._ref(node.selector)[0], self._ref(node.sop)[0]]
            implied = node.default is None or (node.is_numerical and node.default == 0
                                               and not isinstance(node.default, bool))
            if not implied:
                args.append(self._const(node, node.default))
            return f"aggregate({', '.join(args)})", atom
        if isinstance(node, (core.Map, core.SequenceMap)):
            f = self._printed_formula(node)
            if f is None:
                raise _unsupported(node, "it applies a Python function with no text form; build it from "
                                         "text RASP or annotate it with a formula "
                                         "(annotation 'dsl_formula', see rasp_compiler.dsl.formula)")
            if _is_pair(node):
                raise _unsupported(node, "it is an internal pair used outside a conditional")
            return self._formula_text(node, f, list(node.children))
        raise _unsupported(node, "this kind of expression has no text form")

    def _formula_text(self, node, f: fm.Formula, children: list[core.RASPExpr]) -> tuple[str, int]:
        def arg_text(i: int) -> tuple[str, int]:
            return self._ref(children[i])

        def get_text(i: int, k: int) -> tuple[str, int]:
            pair = children[i]
            if not _is_pair(pair):
                raise _unsupported(node, "its formula takes a component of a value that is not a pair")
            return self._formula_text(pair, fm.formula_of(pair).args[k], list(pair.children))

        try:
            return fm.render(f, arg_text, get_text)
        except ValueError as exc:
            raise _unsupported(node, str(exc)) from None

    def _selector_binary(self, node, word: str, prec: int) -> tuple[str, int]:
        left = self._paren(self._ref(node.fst), prec)
        right = self._paren(self._ref(node.snd), prec + 1)
        return f"{left} {word} {right}", prec

    @staticmethod
    def _paren(part: tuple[str, int], need: int) -> str:
        text, prec = part
        return text if prec >= need else f"({text})"

    @staticmethod
    def _const(node: core.RASPExpr, value: Any) -> str:
        try:
            return fm.constant_text(value)[0]
        except ValueError as exc:
            raise _unsupported(node, str(exc)) from None
