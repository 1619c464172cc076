"""Formulas: the elementwise computation of a Map or SequenceMap built from text.

Every Map / SequenceMap the text parser builds carries its formula in the annotation
``dsl_formula``. The formula is the single source of truth for that node: the Python
function handed to ``rasp.Map`` / ``rasp.SequenceMap`` is compiled from it (nested
closures, no ``eval``), the printer writes it back as text, and fusing two elementwise
steps into one MLP is substitution of one formula into another.

A formula is a small tree over the node's inputs: ``Arg(0)`` is the Map's input (or a
SequenceMap's first input), ``Arg(1)`` a SequenceMap's second input.

The inference helpers at the end (:func:`encoding`, :func:`numeric_valued`,
:func:`infer_numerical_aggregate`) are shared by the parser and the printer so that a
printed program is parsed back with the same encodings.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Union

from rasp_compiler.rasp import core

FORMULA_KEY = "dsl_formula"


@dataclass(frozen=True)
class Arg:
    """The value of input ``index`` of the node."""

    index: int


@dataclass(frozen=True)
class Const:
    """A constant: bool, int, float, str, or a tuple of those (a list literal)."""

    value: Any


@dataclass(frozen=True)
class Op:
    """An operation applied to sub-formulas.

    ``op`` is one of the keys of :data:`BINARY` or :data:`UNARY`, or ``"and"``, ``"or"``,
    ``"in"``, ``"not in"``, ``"cond"`` (args: condition, then, else), ``"pair"`` and
    ``"get"`` (internal: a SequenceMap pairing two values so that a conditional over
    three sequences can be split into two steps), and ``"id"`` (internal: a categorical
    Map reading a numerical SOp where a categorical input is needed; written as its
    argument).
    """

    op: str
    args: tuple["Formula", ...]


Formula = Union[Arg, Const, Op]


@dataclass(frozen=True)
class Table:
    """A constant dictionary (``{"a": 1, "b": 2}`` in text): immutable and hashable, so it
    can sit in a formula. Iterating it gives its keys, as in the reference interpreter."""

    items: tuple[tuple[Any, Any], ...]

    def __getitem__(self, key: Any) -> Any:
        for k, v in self.items:
            if k == key:  # as a Python dict: 1 and True are the same key
                return v
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self):
        return iter(k for k, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)


def lookup(container: Any, key: Any) -> Any:
    """``container[key]`` for a constant list, string or dictionary, with the reference's errors."""
    if isinstance(container, Table):
        if key not in container:
            raise KeyError(f"index [{key!r}] not in the dictionary")
        return container[key]
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"an index into a list or string must be an integer, got {key!r}")
    if key >= len(container) or -key > len(container):
        raise IndexError(f"index {key} out of range for a list or string of length {len(container)}")
    return container[key]

BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "%": operator.mod, "^": operator.pow, "[]": lookup, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    ">": operator.gt, "<=": operator.le, ">=": operator.ge,
}
UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": operator.neg,
    "not": operator.not_,
    "indicator": lambda x: 1 if x else 0,
    "round": round,
    "abs": abs,
    "id": lambda x: x,  # a categorical view of a numerical SOp (written as the SOp itself)
}
COMPARISONS = frozenset({"==", "!=", "<", ">", "<=", ">="})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "neg", "round", "abs"})
BOOLEAN = COMPARISONS | {"and", "or", "not", "in", "not in", "indicator"}


# --------------------------------------------------------------------------- evaluation
def compile_formula(f: Formula, arity: int) -> Callable:
    """The Python function computing ``f`` on ``arity`` inputs (0, 1 or 2)."""
    g = _closure(f)
    if arity == 0:
        return lambda: g(())
    if arity == 1:
        return lambda x: g((x,))
    if arity == 2:
        return lambda x, y: g((x, y))
    raise ValueError(f"a formula has at most two inputs, got {arity}")


def _closure(f: Formula) -> Callable[[tuple], Any]:
    if isinstance(f, Arg):
        i = f.index
        return lambda a: a[i]
    if isinstance(f, Const):
        v = f.value
        return lambda a: v
    op = f.op
    subs = [_closure(x) for x in f.args]
    if op == "cond":
        c, t, e = subs
        return lambda a: t(a) if c(a) else e(a)
    if op == "and":
        left, right = subs
        return lambda a: bool(left(a)) and bool(right(a))
    if op == "or":
        left, right = subs
        return lambda a: bool(left(a)) or bool(right(a))
    if op == "in":
        x, seq = subs
        return lambda a: x(a) in seq(a)
    if op == "not in":
        x, seq = subs
        return lambda a: x(a) not in seq(a)
    if op == "pair":
        left, right = subs
        return lambda a: (left(a), right(a))
    if op == "get":
        x, k = subs
        return lambda a: x(a)[k(a)]
    if op in BINARY:
        fn = BINARY[op]
        left, right = subs
        return lambda a: fn(left(a), right(a))
    if op in UNARY:
        fn1 = UNARY[op]
        (x,) = subs
        return lambda a: fn1(x(a))
    raise ValueError(f"unknown formula operation {op!r}")


# --------------------------------------------------------------------------- rewriting
def substitute(f: Formula, mapping: Callable[[int], Formula]) -> Formula:
    """``f`` with every ``Arg(i)`` replaced by ``mapping(i)``; ``get(pair(a, b), k)`` simplified."""
    if isinstance(f, Arg):
        return mapping(f.index)
    if isinstance(f, Const):
        return f
    args = tuple(substitute(x, mapping) for x in f.args)
    if f.op == "get" and isinstance(args[0], Op) and args[0].op == "pair" and isinstance(args[1], Const):
        return args[0].args[args[1].value]
    return Op(f.op, args)


MAX_FUSED_DEPTH = 48  # deeper formulas are left as separate Maps (keeps closures shallow)


def depth(f: Formula) -> int:
    """Nesting depth of ``f`` (an input or constant has depth 0)."""
    if isinstance(f, Op):
        return 1 + max((depth(x) for x in f.args), default=0)
    return 0


def arg_indices(f: Formula) -> list[int]:
    """Indices of the inputs ``f`` reads, with multiplicity, in reading order."""
    if isinstance(f, Arg):
        return [f.index]
    if isinstance(f, Const):
        return []
    out: list[int] = []
    for x in f.args:
        out.extend(arg_indices(x))
    return out


def formula_of(sop: core.RASPExpr) -> Formula | None:
    """The formula of an elementwise node: its annotation, or derived for LinearSequenceMap."""
    f = sop.annotations.get(FORMULA_KEY)
    if f is not None:
        return f
    if type(sop) is core.LinearSequenceMap:
        return linear_formula(sop.fst_fac, sop.snd_fac)
    return None


def linear_formula(a: float, b: float) -> Formula:
    """``a * x + b * y`` written as simply as possible (``x - 2 * y`` for ``b = -2``; both
    forms compute the same floats, as ``(-c) * y == -(c * y)`` exactly)."""
    def term(fac, i):
        if fac == 1:
            return Arg(i)
        return Op("neg", (Arg(i),)) if fac == -1 else Op("*", (Const(fac), Arg(i)))
    if b < 0:
        return Op("-", (term(a, 0), term(-b, 1)))
    if a == -1 and b == 1:
        return Op("-", (Arg(1), Arg(0)))
    return Op("+", (term(a, 0), term(b, 1)))


# --------------------------------------------------------------------------- inference
def is_number(v: Any) -> bool:
    """bool, int or finite-or-not float (bools count: they average to fractions)."""
    return isinstance(v, (bool, int, float))


def encoding(f: Formula, arg_numerical: list[bool]) -> bool:
    """Whether the parser makes a node computing ``f`` numerical.

    Arithmetic (``+ - * / %``, unary ``-``, ``round``, ``abs``) is numerical when any of
    its operands is; everything else (comparisons, logic, ``in``, ``indicator``,
    conditionals) is categorical.
    """
    if isinstance(f, Arg):
        return arg_numerical[f.index]
    if isinstance(f, Const):
        return False
    if f.op in ARITHMETIC:
        return any(encoding(x, arg_numerical) for x in f.args)
    if f.op == "id":  # a view is written as the SOp it reads
        return encoding(f.args[0], arg_numerical)
    return False


def formula_numeric_valued(f: Formula, arg_numeric: list[bool]) -> bool:
    """Whether ``f`` yields numbers or booleans (so it can be averaged)."""
    if isinstance(f, Arg):
        return arg_numeric[f.index]
    if isinstance(f, Const):
        return is_number(f.value)
    if f.op in BOOLEAN:
        return True
    if f.op in ARITHMETIC:
        return all(formula_numeric_valued(x, arg_numeric) for x in f.args)
    if f.op == "[]" and isinstance(f.args[0], Const):
        table = f.args[0].value
        values = [table[k] for k in table] if isinstance(table, Table) else list(table)
        return all(is_number(v) for v in values)
    if f.op == "cond":
        return all(formula_numeric_valued(x, arg_numeric) for x in f.args[1:])
    if f.op == "id":
        return formula_numeric_valued(f.args[0], arg_numeric)
    return False


def numeric_valued(sop: core.SOp, _memo: dict[int, bool] | None = None) -> bool:
    """Whether ``sop`` holds numbers or booleans by construction.

    True for numerical SOps, for Maps/SequenceMaps whose formula is a comparison,
    logic, ``in``, ``indicator``, or arithmetic/conditionals over numeric values, and for
    ``Full`` of a number. False for tokens, indices, selector widths, categorical
    aggregates and Maps without a formula (nothing is known about their values).
    """
    return _numeric(sop, counts=False, memo={} if _memo is None else _memo)


def holds_numbers(sop: core.SOp) -> bool:
    """Whether every value of ``sop`` is a number or a boolean, by construction.

    Like :func:`numeric_valued`, and also true for ``indices``, selector widths (``length``)
    and arithmetic over them, which always hold integers (``numeric_valued`` leaves them
    out because ``aggregate`` copies them rather than averaging them). Used to decide
    that a sum can be a numerical LinearSequenceMap, which reads such an SOp linearly.
    """
    return _numeric(sop, counts=True, memo={})


def _numeric(sop: core.SOp, counts: bool, memo: dict[int, bool], numeric_tokens: bool = False) -> bool:
    def needs_children(node) -> bool:
        return (not node.is_numerical and isinstance(node, (core.Map, core.SequenceMap))
                and formula_of(node) is not None)

    stack = [sop]  # iterative post-order: deep programs must not exhaust the Python stack
    while stack:
        node = stack[-1]
        if node.unique_id in memo:
            stack.pop()
            continue
        if needs_children(node):
            pending = [c for c in node.children if c.unique_id not in memo]
            if pending:
                stack.extend(pending)
                continue
        stack.pop()
        if node.is_numerical:
            result = True
        elif isinstance(node, core.Full):
            result = is_number(node.fill)
        elif counts and isinstance(node, (core.IndicesType, core.SelectorWidth)):
            result = True
        elif numeric_tokens and isinstance(node, core.TokensType):
            result = True
        elif needs_children(node):
            result = formula_numeric_valued(formula_of(node), [memo[c.unique_id] for c in node.children])
        else:
            result = False
        memo[node.unique_id] = result
    return memo[sop.unique_id]


def explicitly_categorical(sop: core.SOp) -> bool:
    """``categorical(...)`` was applied: the SOp is never averaged implicitly."""
    return sop.annotations.get("encoding") is core.Encoding.CATEGORICAL


def selects_at_most_one(sel: core.Selector) -> bool:
    """Whether every query selects at most one key, by construction: ``select(indices, q, ==)``
    (positions are distinct), or an ``and`` with such a selector."""
    if isinstance(sel, core.SelectorAnd):
        return selects_at_most_one(sel.fst) or selects_at_most_one(sel.snd)
    return (isinstance(sel, core.Select) and sel.predicate is core.Comparison.EQ
            and isinstance(sel.keys, core.IndicesType))


def copies_numbers(sop: core.SOp, numeric_tokens: bool = False) -> bool:
    """Whether ``sop`` is a categorical sequence of numbers that are never booleans
    (positions, widths, number tokens, arithmetic, lookups of numbers)."""
    if sop.is_numerical or explicitly_categorical(sop):
        return False
    if isinstance(sop, (core.IndicesType, core.SelectorWidth)) or (numeric_tokens and isinstance(sop, core.TokensType)):
        return True
    f = formula_of(sop)
    return (isinstance(f, Op) and (f.op in ARITHMETIC or f.op == "[]")
            and _numeric(sop, counts=True, memo={}, numeric_tokens=numeric_tokens))


def infer_numerical_aggregate(sop: core.SOp, numeric_tokens: bool = False,
                              selector: core.Selector | None = None) -> bool:
    """Whether ``aggregate(sel, sop)`` (no explicit mode) is a numerical (mean) aggregate.

    The reference interpreter averages whenever several numbers are selected, so every
    number-valued sequence is averaged (one selected value is its own mean): numerical
    ones, number-valued ones by construction, indices, selector widths, and the tokens
    when the program reads them as numbers (``numeric_tokens``, ``tokens = tokens_int;``),
    except that numbers are copied when ``selector`` selects at most one position.
    """
    if sop.is_numerical:
        return True
    if explicitly_categorical(sop):
        return False
    if selector is not None and selects_at_most_one(selector) and copies_numbers(sop, numeric_tokens):
        return False  # one selected number is its own mean: a copy computes the same, more cheaply
    return _numeric(sop, counts=True, memo={}, numeric_tokens=numeric_tokens)


# --------------------------------------------------------------------------- text
# Precedence levels of the grammar (higher binds tighter), those of the reference interpreter.
(PREC_IN, PREC_COND, PREC_LOGIC, PREC_CMP, PREC_SUM, PREC_MOD, PREC_PRODUCT, PREC_POW, PREC_UNARY,
 PREC_ATOM) = range(1, 11)
PREC_AND = PREC_OR = PREC_LOGIC  # one level: "a or b and c" is "(a or b) and c"
PREC_NOT = PREC_UNARY            # "not a == b" is "(not a) == b"
_BINARY_PREC = {"+": PREC_SUM, "-": PREC_SUM, "%": PREC_MOD, "*": PREC_PRODUCT, "/": PREC_PRODUCT,
                "^": PREC_POW, **{c: PREC_CMP for c in COMPARISONS}, "and": PREC_LOGIC, "or": PREC_LOGIC}


def constant_text(v: Any) -> tuple[str, int]:
    """Source text of a constant and its precedence; ValueError if not expressible."""
    if isinstance(v, bool):
        return ("True" if v else "False"), PREC_ATOM
    if isinstance(v, int):
        return str(v), (PREC_UNARY if v < 0 else PREC_ATOM)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"the float {v!r} has no text form")
        text = repr(v)
        return text, (PREC_UNARY if text.startswith("-") else PREC_ATOM)
    if isinstance(v, str):
        return quote(v), PREC_ATOM
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(constant_text(x)[0] for x in v) + "]", PREC_ATOM
    if isinstance(v, Table):
        return "{" + ", ".join(f"{constant_text(k)[0]}: {constant_text(x)[0]}" for k, x in v.items) + "}", PREC_ATOM
    if v is None:
        return "None", PREC_ATOM
    raise ValueError(f"the constant {v!r} ({type(v).__name__}) has no text form")


def quote(s: str) -> str:
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render(f: Formula, arg_text: Callable[[int], tuple[str, int]],
           get_text: Callable[[int, int], tuple[str, int]] | None = None) -> tuple[str, int]:
    """Source text of ``f`` and its precedence.

    ``arg_text(i)`` gives the text of input i; ``get_text(i, k)`` the text of component k
    of input i when that input is an internal pair (see :class:`Op`).
    """
    def paren(part: tuple[str, int], need: int) -> str:
        text, prec = part
        return text if prec >= need else f"({text})"

    def go(g: Formula) -> tuple[str, int]:
        if isinstance(g, Arg):
            return arg_text(g.index)
        if isinstance(g, Const):
            return constant_text(g.value)
        op, args = g.op, g.args
        if op == "get":
            if get_text is None or not isinstance(args[0], Arg) or not isinstance(args[1], Const):
                raise ValueError("a pair component outside a conditional has no text form")
            return get_text(args[0].index, args[1].value)
        if op == "pair":
            raise ValueError("an internal pair has no text form of its own")
        if op in _BINARY_PREC:
            prec = _BINARY_PREC[op]
            left_need = prec + 1 if op in COMPARISONS else prec
            return f"{paren(go(args[0]), left_need)} {op} {paren(go(args[1]), prec + 1)}", prec
        if op == "[]":
            return f"{paren(go(args[0]), PREC_ATOM)}[{go(args[1])[0]}]", PREC_ATOM
        if op in ("in", "not in"):
            return f"{paren(go(args[0]), PREC_COND)} {op} {paren(go(args[1]), PREC_COND)}", PREC_IN
        if op == "not":
            return f"not {paren(go(args[0]), PREC_NOT)}", PREC_NOT
        if op == "neg":
            inner = paren(go(args[0]), PREC_UNARY)
            return ("- " if inner.startswith("-") else "-") + inner, PREC_UNARY
        if op == "id":
            return go(args[0])
        if op in ("indicator", "round", "abs"):
            return f"{op}({go(args[0])[0]})", PREC_ATOM
        if op == "cond":
            c, t, e = (go(x) for x in args)
            return f"{paren(t, PREC_LOGIC)} if {paren(c, PREC_LOGIC)} else {paren(e, PREC_LOGIC)}", PREC_COND
        raise ValueError(f"unknown formula operation {op!r}")

    return go(f)
