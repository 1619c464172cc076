"""The RASP expression language: sequence operations (SOps) and selectors.

The surface is tracr's, so a tracr program runs after changing one import. Expressions
are immutable once built; `.named()` and `numerical()` / `categorical()` return copies
that keep the expression's identity (its ``unique_id``), so every copy is the same node
of the program graph.

Never put SOps in a set or test `sop in list`: like tracr, ``==`` on an SOp builds a
new SOp. Key collections by ``unique_id`` instead.
"""

from __future__ import annotations

import collections.abc
import contextlib
import copy
import enum
import itertools
import logging
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, TypeVar, Union

from rasp_compiler.errors import RaspTypeError

_ids = itertools.count(1)
_log = logging.getLogger(__name__)
# Annotation of a program root: "creation" puts the blocks of one layer in the order the
# program created them (text programs: the order of the text; see graph.build).
PROGRAM_ORDER = "program_order"
_collectors: list[list[str]] = []  # innermost last; see collecting_notes


@contextlib.contextmanager
def collecting_notes():
    """Collect the notes made while building expressions (e.g. "SequenceMap of x with itself")
    into the yielded list instead of logging them. For programs a generator makes up: their
    notes are about code no user wrote, so the caller summarises them once or drops them."""
    notes: list[str] = []
    _collectors.append(notes)
    try:
        yield notes
    finally:
        _collectors.remove(notes)


def _note(message: str, *args: Any) -> None:
    """A remark about the program being built: logged as a warning, or collected (collecting_notes)."""
    if _collectors:
        _collectors[-1].append(message % args)
    else:
        _log.warning(message, *args)

# tracr's type names, for annotations in code written against tracr.
Value = Union[None, int, float, str, bool]
NumericValue = Union[int, float]
SelectorValue = List[List[bool]]
VT = TypeVar("VT")
T = TypeVar("T")
RASPExprT = TypeVar("RASPExprT", bound="RASPExpr")
SOpT = TypeVar("SOpT", bound="SOp")


class Annotator(Protocol):
    """Gives the default value of one annotation of an expression."""

    def __call__(self, expr: "RASPExpr") -> Any: ...


class Predicate(Protocol):
    """A Select predicate: called as ``predicate(key, query)``."""

    def __call__(self, key: Any, query: Any) -> bool: ...


#: Default annotations by key, computed when first read (as in tracr): add your own here.
DEFAULT_ANNOTATORS: Dict[str, Annotator] = {}


class Encoding(enum.Enum):
    """How an SOp is laid out in the residual stream."""

    CATEGORICAL = "categorical"  # one direction per value (one-hot)
    NUMERICAL = "numerical"  # one direction whose magnitude is the value


class Comparison(enum.Enum):
    """Predicates for Select; called as ``predicate(key, query)``."""

    EQ = "EQ"
    LT = "LT"
    LEQ = "LEQ"
    GT = "GT"
    GEQ = "GEQ"
    NEQ = "NEQ"
    TRUE = "TRUE"
    FALSE = "FALSE"

    def __call__(self, key: Any, query: Any) -> bool:
        if key is None or query is None:
            return False if self is not Comparison.TRUE else True
        return _COMPARISONS[self](key, query)

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_COMPARISONS: dict[Comparison, Callable[[Any, Any], bool]] = {
    Comparison.EQ: lambda k, q: k == q,
    Comparison.LT: lambda k, q: k < q,
    Comparison.LEQ: lambda k, q: k <= q,
    Comparison.GT: lambda k, q: k > q,
    Comparison.GEQ: lambda k, q: k >= q,
    Comparison.NEQ: lambda k, q: k != q,
    Comparison.TRUE: lambda k, q: True,
    Comparison.FALSE: lambda k, q: False,
}


def comparison_function(comparison: Comparison) -> Callable[[Any, Any], bool]:
    """The plain (key, query) function of a comparison, for values known not to be None."""
    return _COMPARISONS[comparison]


_SYMBOLS = {Comparison.EQ: "==", Comparison.LT: "<", Comparison.LEQ: "<=", Comparison.GT: ">",
            Comparison.GEQ: ">=", Comparison.NEQ: "!=", Comparison.TRUE: "true",
            Comparison.FALSE: "false"}


class RASPExpr:
    """Base of every expression: a name, a stable identity and annotations.

    ``name`` is the given name or tracr's default for the class (``"map"``,
    ``"aggregate"`` ...); ``label`` is the key of the node in the compiled model: the
    given name, or the default name with the expression's id (``"map_12"``) so that
    unnamed expressions never collide.
    """

    _default_name = "expr"

    def __init__(self) -> None:
        self._unique_id = next(_ids)
        self._annotations: dict[str, Any] = {}

    def __call__(self, xs: Sequence[Any]):
        """The value of this expression on input ``xs`` (``rasp.evaluate(self, xs)``)."""
        from rasp_compiler.rasp.evaluate import evaluate
        return evaluate(self, xs)

    # identity -----------------------------------------------------------------
    @property
    def unique_id(self) -> int:
        return self._unique_id

    @property
    def label(self) -> str:
        return self._annotations.get("name") or f"{self._default_name}_{self._unique_id}"

    @property
    def name(self) -> str:
        return self.annotations["name"]

    @property
    def annotations(self) -> "Annotations":
        """Read-only view; keys missing here come from DEFAULT_ANNOTATORS (``name``, ``encoding``)."""
        return Annotations(self, self._annotations)

    @annotations.setter
    def annotations(self, annotations: collections.abc.Mapping) -> None:
        self._annotations = dict(annotations)

    @property
    def children(self) -> tuple["RASPExpr", ...]:
        return ()

    def copy(self: RASPExprT) -> RASPExprT:
        """A shallow copy that is a new node of the graph (a new ``unique_id``)."""
        new = copy.copy(self)
        new._unique_id = next(_ids)
        new._annotations = dict(self._annotations)
        return new

    def named(self: RASPExprT, name: str) -> RASPExprT:
        """A copy of this expression labelled ``name`` (same node of the graph)."""
        if not isinstance(name, str) or not name:
            raise RaspTypeError(f"name of {self.label} must be a non-empty string, got {name!r}")
        return self.annotate(name=name)

    def annotate(self: RASPExprT, **annotations: Any) -> RASPExprT:
        """A copy with these annotations added (same node of the graph)."""
        new = copy.copy(self)
        new._annotations = {**self._annotations, **annotations}
        return new

    annotated = annotate  # tracr's name

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label})"


class Annotations(collections.abc.Mapping):
    """An expression's annotations; ``annotations[key]`` fills a missing key from DEFAULT_ANNOTATORS."""

    def __init__(self, expr: RASPExpr, given: dict[str, Any]):
        self._expr, self._given = expr, given

    def __getitem__(self, key: str) -> Any:
        if key in self._given:
            return self._given[key]
        if key in DEFAULT_ANNOTATORS:
            return DEFAULT_ANNOTATORS[key](self._expr)
        raise KeyError(f"{self._expr.label} has no annotation {key!r}; known: "
                       f"{sorted(set(self._given) | set(DEFAULT_ANNOTATORS))}")

    # ``in`` and ``get`` see only the given annotations: they tell what was set explicitly.
    def __contains__(self, key: object) -> bool:
        return key in self._given

    def get(self, key: str, default: Any = None) -> Any:
        return self._given.get(key, default)

    def __iter__(self):
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)

    def __repr__(self) -> str:
        return repr(self._given)


def walk(root: RASPExpr):
    """Every expression ``root`` depends on, itself included, each once (shared sub-programs
    are visited once, however many parents they have)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        e = stack.pop()
        if e.unique_id in seen:
            continue
        seen.add(e.unique_id)
        yield e
        stack.extend(e.children)


def annotate(expr: RASPExprT, **annotations: Any) -> RASPExprT:
    """A copy of ``expr`` with these annotations added (tracr's function form)."""
    return expr.annotate(**annotations)


# --------------------------------------------------------------------------- selectors
class Selector(RASPExpr):
    """A boolean matrix over (query position, key position)."""

    _default_name = "selector"

    # The operators keep the combinator (same value as tracr's merged Select, and it keeps
    # Comparison predicates printable as text); selector_and/or/not merge as tracr does.
    def __and__(self, other: "Selector") -> "SelectorAnd":
        return SelectorAnd(self, other)

    def __rand__(self, other: "Selector") -> "SelectorAnd":
        return SelectorAnd(other, self)

    def __or__(self, other: "Selector") -> "SelectorOr":
        return SelectorOr(self, other)

    def __ror__(self, other: "Selector") -> "SelectorOr":
        return SelectorOr(other, self)

    def __invert__(self) -> "SelectorNot":
        return SelectorNot(self)


class Select(Selector):
    """Selects key position k for query position q when predicate(keys[k], queries[q])."""

    _default_name = "select"

    def __init__(self, keys: "SOp", queries: "SOp", predicate: Callable[[Any, Any], bool]):
        super().__init__()
        _need_sop(keys, "Select", "keys")
        _need_sop(queries, "Select", "queries")
        if not callable(predicate) or isinstance(predicate, RASPExpr):  # expressions are callable too
            raise RaspTypeError(f"Select predicate must be a Comparison or a function (key, query) -> bool, got {predicate!r}")
        self.keys, self.queries, self.predicate = keys, queries, predicate

    @property
    def children(self):
        return (self.keys, self.queries)


class SelectorAnd(Selector):
    _default_name = "selector_and"

    def __init__(self, fst: Selector, snd: Selector):
        super().__init__()
        _need_selector(fst, "SelectorAnd", "first")
        _need_selector(snd, "SelectorAnd", "second")
        self.fst, self.snd = fst, snd

    @property
    def children(self):
        return (self.fst, self.snd)


class SelectorOr(Selector):
    _default_name = "selector_or"

    def __init__(self, fst: Selector, snd: Selector):
        super().__init__()
        _need_selector(fst, "SelectorOr", "first")
        _need_selector(snd, "SelectorOr", "second")
        self.fst, self.snd = fst, snd

    @property
    def children(self):
        return (self.fst, self.snd)


class SelectorNot(Selector):
    _default_name = "selector_not"

    def __init__(self, inner: Selector):
        super().__init__()
        _need_selector(inner, "SelectorNot", "argument")
        self.inner = inner

    @property
    def children(self):
        return (self.inner,)


class ConstantSelector(Selector):
    """A fixed [query][key] matrix, for tests; the input must match its size when ``check_length``.

    It evaluates, but cannot be compiled: a head's pattern must come from the residual stream.
    """

    _default_name = "constant_selector"

    def __init__(self, value: Sequence[Sequence[bool]], check_length: bool = True):
        super().__init__()
        self.value, self.check_length = value, check_length


def selector_and(fst: Selector, snd: Selector, simplify: bool = True) -> Selector:
    """``fst & snd``; one Select when both compare the same keys and queries (or Fulls)."""
    merged = _merge_selects(fst, snd, lambda a, b: a and b) if simplify else None
    return merged or SelectorAnd(fst, snd)


def selector_or(fst: Selector, snd: Selector, simplify: bool = True) -> Selector:
    """``fst | snd``; one Select when both compare the same keys and queries (or Fulls)."""
    merged = _merge_selects(fst, snd, lambda a, b: a or b) if simplify else None
    return merged or SelectorOr(fst, snd)


def selector_not(inner: Selector, simplify: bool = True) -> Selector:
    """``~inner``; a Select with the negated predicate when ``inner`` is a Select."""
    if simplify and isinstance(inner, Select):
        return Select(inner.keys, inner.queries, lambda k, q, p=inner.predicate: not p(k, q))
    return SelectorNot(inner)


def _merge_selects(fst: Selector, snd: Selector, combine) -> "Select | None":
    """One Select equal to ``combine(fst, snd)``, when the two read the same SOps.

    A Full side matches anything: its constant is put into the predicate, so the
    merged Select reads the other Select's SOp there.
    """
    if not (isinstance(fst, Select) and isinstance(snd, Select)):
        return None
    keys = _shared_side(fst.keys, snd.keys)
    queries = _shared_side(fst.queries, snd.queries)
    if keys is None or queries is None:
        return None
    pf = _predicate_over(fst, keys, queries)
    ps = _predicate_over(snd, keys, queries)
    return Select(keys, queries, lambda k, q: combine(pf(k, q), ps(k, q)))


def _shared_side(a: "SOp", b: "SOp") -> "SOp | None":
    if a.unique_id == b.unique_id:
        return a
    if isinstance(b, Full):
        return a
    if isinstance(a, Full):
        return b
    return None


def _predicate_over(sel: Select, keys: "SOp", queries: "SOp"):
    """``sel``'s predicate as a function of (``keys``, ``queries``) values."""
    p = sel.predicate
    own_key = sel.keys.unique_id == keys.unique_id
    own_query = sel.queries.unique_id == queries.unique_id
    k_fill = None if own_key else sel.keys.fill
    q_fill = None if own_query else sel.queries.fill
    return lambda k, q: p(k if own_key else k_fill, q if own_query else q_fill)


# --------------------------------------------------------------------------- SOps
class SOp(RASPExpr):
    """A sequence operation: one value per position."""

    _default_name = "sop"

    @property
    def encoding(self) -> Encoding:
        given = self._annotations.get("encoding")  # fast path: read on every node in every stage
        return given if given is not None else self.annotations["encoding"]

    @property
    def is_numerical(self) -> bool:
        return self.encoding is Encoding.NUMERICAL

    # Arithmetic and comparisons build Maps (with a constant) or SequenceMaps.
    def _binary(self, other, fn, name):
        if isinstance(other, SOp):
            return SequenceMap(fn, self, other)
        if isinstance(other, RASPExpr):
            raise RaspTypeError(f"cannot apply {name} to SOp {self.label} and selector {other.label}")
        return Map(lambda x, _o=other: fn(x, _o), self)

    def _rbinary(self, other, fn, name):
        if isinstance(other, RASPExpr):
            raise RaspTypeError(f"cannot apply {name} to {other!r} and SOp {self.label}")
        return Map(lambda x, _o=other: fn(_o, x), self)

    def __add__(self, o): return self._binary(o, lambda a, b: a + b, "+")
    def __radd__(self, o): return self._rbinary(o, lambda a, b: a + b, "+")
    def __sub__(self, o): return self._binary(o, lambda a, b: a - b, "-")
    def __rsub__(self, o): return self._rbinary(o, lambda a, b: a - b, "-")
    def __mul__(self, o): return self._binary(o, lambda a, b: a * b, "*")
    def __rmul__(self, o): return self._rbinary(o, lambda a, b: a * b, "*")
    def __truediv__(self, o): return self._binary(o, lambda a, b: a / b, "/")
    def __rtruediv__(self, o): return self._rbinary(o, lambda a, b: a / b, "/")
    def __mod__(self, o): return self._binary(o, lambda a, b: a % b, "%")
    def __lt__(self, o): return self._binary(o, lambda a, b: a < b, "<")
    def __le__(self, o): return self._binary(o, lambda a, b: a <= b, "<=")
    def __gt__(self, o): return self._binary(o, lambda a, b: a > b, ">")
    def __ge__(self, o): return self._binary(o, lambda a, b: a >= b, ">=")
    def __eq__(self, o): return self._binary(o, lambda a, b: a == b, "==")  # type: ignore[override]
    def __ne__(self, o): return self._binary(o, lambda a, b: a != b, "!=")  # type: ignore[override]
    def __and__(self, o): return self._binary(o, lambda a, b: a and b, "and")
    def __rand__(self, o): return self._rbinary(o, lambda a, b: a and b, "and")
    def __or__(self, o): return self._binary(o, lambda a, b: a or b, "or")
    def __ror__(self, o): return self._rbinary(o, lambda a, b: a or b, "or")
    def __invert__(self): return Map(lambda x: not x, self)
    def __neg__(self): return Map(lambda x: -x, self)

    __hash__ = RASPExpr.__hash__


class TokensType(SOp):
    """The input tokens."""

    _default_name = "tokens"

    @property
    def label(self) -> str:
        return "tokens"


class IndicesType(SOp):
    """The position of each token, counting from 0 at the first token after BOS."""

    _default_name = "indices"

    @property
    def label(self) -> str:
        return "indices"


class Map(SOp):
    """Applies ``f`` to each value of ``inner``.

    With ``simplify`` (tracr's default), a Map of a Map becomes one Map of the
    composed function, so it costs one MLP rather than two.
    """

    _default_name = "map"

    def __init__(self, f: Callable[[Any], Any], inner: SOp, simplify: bool = True):
        super().__init__()
        _need_sop(inner, "Map", "input")
        if not callable(f) or isinstance(f, RASPExpr):
            raise RaspTypeError(f"Map needs a function, got {f!r}")
        if simplify and isinstance(inner, Map) and type(inner) is Map:
            inner_f, f_outer = inner.f, f
            f = lambda x, _g=inner_f, _f=f_outer: _f(_g(x))  # noqa: E731
            inner = inner.inner
        self.f, self.inner = f, inner

    @property
    def children(self):
        return (self.inner,)


class SequenceMap(SOp):
    """Applies ``f`` to the pair of values at each position of ``fst`` and ``snd``."""

    _default_name = "sequence_map"

    def __init__(self, f: Callable[[Any, Any], Any], fst: SOp, snd: SOp):
        super().__init__()
        _need_sop(fst, "SequenceMap", "first input")
        _need_sop(snd, "SequenceMap", "second input")
        if not callable(f) or isinstance(f, RASPExpr):
            raise RaspTypeError(f"SequenceMap needs a function, got {f!r}")
        if fst.unique_id == snd.unique_id:
            _note("SequenceMap of %s with itself: both inputs are the same SOp; a Map of it "
                         "computes the same with a smaller MLP", fst.label)
        self.f, self.fst, self.snd = f, fst, snd

    @property
    def children(self):
        return (self.fst, self.snd)


class LinearSequenceMap(SequenceMap):
    """``fst_fac * fst + snd_fac * snd``: linear, so it costs no MLP when numerical."""

    _default_name = "linear_sequence_map"

    def __init__(self, fst: SOp, snd: SOp, fst_fac: float, snd_fac: float):
        for fac in (fst_fac, snd_fac):
            if isinstance(fac, bool) or not isinstance(fac, (int, float)):
                raise RaspTypeError(f"LinearSequenceMap factors must be numbers, got {fac!r}")
        super().__init__(lambda x, y: fst_fac * x + snd_fac * y, fst, snd)
        self.fst_fac, self.snd_fac = fst_fac, snd_fac


class Full(SOp):
    """The same value ``fill`` at every position."""

    _default_name = "full"

    def __init__(self, fill: Any):
        super().__init__()
        self.fill = fill


class ConstantSOp(SOp):
    """A fixed sequence of values; the input must have the same length when ``check_length``."""

    _default_name = "constant_sop"

    def __init__(self, value: Sequence[Any], check_length: bool = True):
        super().__init__()
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise RaspTypeError(f"ConstantSOp needs a list of values, got {value!r}")
        self.value, self.check_length = tuple(value), check_length


class Aggregate(SOp):
    """For each query, combines the values of ``sop`` at the selected key positions.

    Categorical (default): the one value held by every selected position (``default``
    when none is selected). Numerical: the mean of the selected values (``default``,
    0 unless given, when none is selected).
    """

    _default_name = "aggregate"

    def __init__(self, selector: Selector, sop: SOp, default: Any = None):
        super().__init__()
        _need_selector(selector, "Aggregate", "selector")
        _need_sop(sop, "Aggregate", "aggregated sequence")
        self.selector, self.sop, self.default = selector, sop, default

    @property
    def children(self):
        return (self.selector, self.sop)


class SelectorWidth(SOp):
    """The number of key positions selected for each query."""

    _default_name = "selector_width"

    def __init__(self, selector: Selector):
        super().__init__()
        _need_selector(selector, "SelectorWidth", "selector")
        self.selector = selector

    @property
    def children(self):
        return (self.selector,)


tokens = TokensType()
indices = IndicesType()




def numerical(sop: SOp) -> SOp:
    """Mark ``sop`` numerical: one residual direction holding its value."""
    _need_sop(sop, "numerical", "argument")
    return sop.annotate(encoding=Encoding.NUMERICAL)


def categorical(sop: SOp) -> SOp:
    """Mark ``sop`` categorical (the default): one residual direction per value."""
    _need_sop(sop, "categorical", "argument")
    return sop.annotate(encoding=Encoding.CATEGORICAL)


def is_numerical(sop: SOp) -> bool:
    return isinstance(sop, SOp) and sop.is_numerical


def is_categorical(sop: SOp) -> bool:
    return isinstance(sop, SOp) and not sop.is_numerical


def get_encoding(sop: SOp) -> Encoding:
    return sop.annotations["encoding"]


def _need_sop(x: Any, where: str, role: str) -> None:
    if not isinstance(x, SOp):
        what = f"selector {x.label}" if isinstance(x, Selector) else repr(x)
        raise RaspTypeError(f"{where}: the {role} must be an SOp (a sequence), got {what}")


def _need_selector(x: Any, where: str, role: str) -> None:
    if not isinstance(x, Selector):
        what = f"SOp {x.label}" if isinstance(x, SOp) else repr(x)
        raise RaspTypeError(f"{where}: the {role} must be a selector (built with Select), got {what}")


def sop_not(sop: SOp) -> SOp:
    """Logical not of each value (tracr's helper; same as ``~sop``)."""
    return Map(lambda t: not t, sop)


def default_name(expr: RASPExpr) -> str:
    """tracr's default name of an expression: its class's (``"map"``, ``"select"`` ...)."""
    return expr._default_name


def default_encoding(expr: RASPExpr) -> Encoding:
    """SOps are categorical unless marked numerical; selectors have no encoding."""
    if not isinstance(expr, SOp):
        raise TypeError(f"expr {expr.label} is not an SOp, so it has no encoding")
    return Encoding.CATEGORICAL


DEFAULT_ANNOTATORS["name"] = default_name
DEFAULT_ANNOTATORS["encoding"] = default_encoding


class LengthType(SelectorWidth):
    """The number of tokens, at every position: the width of a select-all selector.

    Under causal masking it is the length of the prefix, which is what a causal
    model can know at each position.
    """

    _default_name = "length"

    def __init__(self) -> None:
        super().__init__(Select(tokens, tokens, Comparison.TRUE))

    @property
    def label(self) -> str:
        return self._annotations.get("name") or "length"


length = LengthType()
