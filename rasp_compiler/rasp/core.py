"""The RASP expression language: sequence operations (SOps) and selectors.

The surface is tracr's, so a tracr program runs after changing one import. Expressions
are immutable once built; `.named()` and `numerical()` / `categorical()` return copies
that keep the expression's identity (its ``unique_id``), so every copy is the same node
of the program graph.

Never put SOps in a set or test `sop in list`: like tracr, ``==`` on an SOp builds a
new SOp. Key collections by ``unique_id`` instead.
"""

from __future__ import annotations

import copy
import enum
import itertools
from typing import Any, Callable, Sequence

from rasp_compiler.errors import RaspTypeError

_ids = itertools.count(1)


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
    """Base of every expression: a label, a stable identity and annotations."""

    _default_prefix = "expr"

    def __init__(self) -> None:
        self._unique_id = next(_ids)
        self._annotations: dict[str, Any] = {}

    # identity -----------------------------------------------------------------
    @property
    def unique_id(self) -> int:
        return self._unique_id

    @property
    def label(self) -> str:
        return self._annotations.get("name") or f"{self._default_prefix}_{self._unique_id}"

    @property
    def name(self) -> str:
        return self.label

    @property
    def annotations(self) -> dict[str, Any]:
        return dict(self._annotations)

    @property
    def children(self) -> tuple["RASPExpr", ...]:
        return ()

    def named(self, name: str) -> "RASPExpr":
        """A copy of this expression labelled ``name`` (same node of the graph)."""
        if not isinstance(name, str) or not name:
            raise RaspTypeError(f"name of {self.label} must be a non-empty string, got {name!r}")
        return self.annotate(name=name)

    def annotate(self, **annotations: Any) -> "RASPExpr":
        new = copy.copy(self)
        new._annotations = {**self._annotations, **annotations}
        return new

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label})"


# --------------------------------------------------------------------------- selectors
class Selector(RASPExpr):
    """A boolean matrix over (query position, key position)."""

    _default_prefix = "selector"

    def __and__(self, other: "Selector") -> "SelectorAnd":
        return SelectorAnd(self, other)

    def __or__(self, other: "Selector") -> "SelectorOr":
        return SelectorOr(self, other)

    def __invert__(self) -> "SelectorNot":
        return SelectorNot(self)


class Select(Selector):
    """Selects key position k for query position q when predicate(keys[k], queries[q])."""

    _default_prefix = "select"

    def __init__(self, keys: "SOp", queries: "SOp", predicate: Callable[[Any, Any], bool]):
        super().__init__()
        _need_sop(keys, "Select", "keys")
        _need_sop(queries, "Select", "queries")
        if not callable(predicate):
            raise RaspTypeError(f"Select predicate must be a Comparison or a function (key, query) -> bool, got {predicate!r}")
        self.keys, self.queries, self.predicate = keys, queries, predicate

    @property
    def children(self):
        return (self.keys, self.queries)


class SelectorAnd(Selector):
    _default_prefix = "selector_and"

    def __init__(self, fst: Selector, snd: Selector):
        super().__init__()
        _need_selector(fst, "SelectorAnd", "first")
        _need_selector(snd, "SelectorAnd", "second")
        self.fst, self.snd = fst, snd

    @property
    def children(self):
        return (self.fst, self.snd)


class SelectorOr(Selector):
    _default_prefix = "selector_or"

    def __init__(self, fst: Selector, snd: Selector):
        super().__init__()
        _need_selector(fst, "SelectorOr", "first")
        _need_selector(snd, "SelectorOr", "second")
        self.fst, self.snd = fst, snd

    @property
    def children(self):
        return (self.fst, self.snd)


class SelectorNot(Selector):
    _default_prefix = "selector_not"

    def __init__(self, inner: Selector):
        super().__init__()
        _need_selector(inner, "SelectorNot", "argument")
        self.inner = inner

    @property
    def children(self):
        return (self.inner,)


# --------------------------------------------------------------------------- SOps
class SOp(RASPExpr):
    """A sequence operation: one value per position."""

    _default_prefix = "sop"

    @property
    def encoding(self) -> Encoding:
        return self._annotations.get("encoding", Encoding.CATEGORICAL)

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

    @property
    def label(self) -> str:
        return "tokens"


class IndicesType(SOp):
    """The position of each token, counting from 0 at the first token after BOS."""

    @property
    def label(self) -> str:
        return "indices"


class Map(SOp):
    """Applies ``f`` to each value of ``inner``.

    With ``simplify`` (tracr's default), a Map of a Map becomes one Map of the
    composed function, so it costs one MLP rather than two.
    """

    _default_prefix = "map"

    def __init__(self, f: Callable[[Any], Any], inner: SOp, simplify: bool = True):
        super().__init__()
        _need_sop(inner, "Map", "input")
        if not callable(f):
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

    _default_prefix = "sequencemap"

    def __init__(self, f: Callable[[Any, Any], Any], fst: SOp, snd: SOp):
        super().__init__()
        _need_sop(fst, "SequenceMap", "first input")
        _need_sop(snd, "SequenceMap", "second input")
        if not callable(f):
            raise RaspTypeError(f"SequenceMap needs a function, got {f!r}")
        self.f, self.fst, self.snd = f, fst, snd

    @property
    def children(self):
        return (self.fst, self.snd)


class LinearSequenceMap(SequenceMap):
    """``fst_fac * fst + snd_fac * snd``: linear, so it costs no MLP when numerical."""

    _default_prefix = "linearsequencemap"

    def __init__(self, fst: SOp, snd: SOp, fst_fac: float, snd_fac: float):
        for fac in (fst_fac, snd_fac):
            if isinstance(fac, bool) or not isinstance(fac, (int, float)):
                raise RaspTypeError(f"LinearSequenceMap factors must be numbers, got {fac!r}")
        super().__init__(lambda x, y: fst_fac * x + snd_fac * y, fst, snd)
        self.fst_fac, self.snd_fac = fst_fac, snd_fac


class Full(SOp):
    """The same value ``fill`` at every position."""

    _default_prefix = "full"

    def __init__(self, fill: Any):
        super().__init__()
        self.fill = fill


class ConstantSOp(SOp):
    """A fixed sequence of values; the input must have the same length when ``check_length``."""

    _default_prefix = "constant"

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

    _default_prefix = "aggregate"

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

    _default_prefix = "selectorwidth"

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
    return sop.encoding


def _need_sop(x: Any, where: str, role: str) -> None:
    if not isinstance(x, SOp):
        what = f"selector {x.label}" if isinstance(x, Selector) else repr(x)
        raise RaspTypeError(f"{where}: the {role} must be an SOp (a sequence), got {what}")


def _need_selector(x: Any, where: str, role: str) -> None:
    if not isinstance(x, Selector):
        what = f"SOp {x.label}" if isinstance(x, SOp) else repr(x)
        raise RaspTypeError(f"{where}: the {role} must be a selector (built with Select), got {what}")
