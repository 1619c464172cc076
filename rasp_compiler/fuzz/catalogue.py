"""A catalogue of named elementwise functions and selector predicates for random programs.

Every function is a :class:`Function`: a name that says what it computes (``plus_1``,
``above_0.75``, ``rank_bca``), an arity, and, for the printable ones, a
:mod:`rasp_compiler.dsl.formula` tree, which is both how the Python function is built
(``formula.compile_formula``) and how :func:`rasp_compiler.dsl.to_text` writes it back
as text. Python-only functions (lookup tables, index predicates written as lambdas,
the way tracr users write them) have no formula, so programs using them cannot be
printed.

A *family* is a function ``(rng, values...) -> Function | None`` that picks the
constants of one kind of function from the values its inputs can take (a threshold
between two values a mean can take, a token the input can hold), or gives ``None``
when the inputs do not suit it. Families are grouped by the *kind* of their inputs
(see :func:`kind_of`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

from rasp_compiler.dsl import formula as fm

X, Y = fm.Arg(0), fm.Arg(1)
NUMERIC_KINDS = frozenset({"bool", "int", "num"})


def _c(v: Any) -> fm.Const:
    return fm.Const(v)


def _op(name: str, *args: fm.Formula) -> fm.Op:
    return fm.Op(name, tuple(args))


@dataclass(frozen=True, eq=False)
class Function:
    """A named elementwise function (or selector predicate), callable like the Python one."""

    name: str
    arity: int
    formula: fm.Formula | None = None
    python: Callable | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.python is None:
            if self.formula is None:
                raise ValueError(f"function {self.name} needs a formula or a Python function")
            object.__setattr__(self, "python", fm.compile_formula(self.formula, self.arity))

    @property
    def printable(self) -> bool:
        return self.formula is not None

    def __call__(self, *args: Any) -> Any:
        return self.python(*args)

    def __repr__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- values
def value_key(v: Any) -> tuple:
    """A deterministic order for mixed values (no reliance on set iteration order)."""
    if isinstance(v, bool):
        return (0, float(v), "")
    if isinstance(v, (int, float, Fraction)):
        return (1, float(v), "")
    return (2, 0.0, f"{type(v).__name__}:{v!r}")


def ordered(values: Iterable[Any]) -> list:
    return sorted(values, key=value_key)


def kind_of(values: Iterable[Any]) -> str:
    """``bool``, ``int`` (ints, maybe with bools), ``num`` (any numbers), ``str``, ``mixed`` or ``empty``."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "empty"
    if all(isinstance(v, bool) for v in vals):
        return "bool"
    if all(isinstance(v, int) for v in vals):
        return "int"
    if all(isinstance(v, (int, float)) for v in vals):
        return "num"
    if all(isinstance(v, str) for v in vals):
        return "str"
    return "mixed"


def orderable(k1: str, k2: str) -> bool:
    """Whether ``<`` between values of the two kinds is defined."""
    return (k1 in NUMERIC_KINDS and k2 in NUMERIC_KINDS) or (k1 == k2 == "str")


def slug(v: Any) -> str:
    """A short identifier-safe rendering of a constant, for function names."""
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, float):
        v = f"{v:g}"
    text = re.sub(r"[^A-Za-z0-9]", "_", str(v).replace("-", "m").replace(".", "p"))
    return text or "x"


def nice_split(rng: random.Random, values: Sequence[float]) -> float | None:
    """A threshold strictly between two adjacent values (short when possible), so that
    values computed with float rounding fall clearly on one side."""
    nums = sorted({float(v) for v in values})
    if len(nums) < 2:
        return None
    i = rng.randrange(len(nums) - 1)
    lo, hi = nums[i], nums[i + 1]
    for digits in (1, 2, 3, 4, 6):
        t = round((lo + hi) / 2, digits)
        if lo < t < hi and min(t - lo, hi - t) > 1e-3 * (hi - lo):
            return t
    return (lo + hi) / 2


# --------------------------------------------------------------------------- one input
Family = Callable[..., "Function | None"]


def _is_value(rng, vals):
    c = rng.choice(vals)
    return Function(f"is_{slug(c)}", 1, _op("==", X, _c(c)))


def _in_set(rng, vals):
    if len(vals) < 3:
        return None
    sub = tuple(ordered(rng.sample(vals, 2)))
    return Function(f"in_{'_'.join(slug(v) for v in sub)}", 1, _op("in", X, _c(sub)))


def _rank(rng, vals):
    if not 2 <= len(vals) <= 6:
        return None
    outs = [rng.randrange(3) for _ in vals]
    f: fm.Formula = _c(outs[-1])
    for v, o in reversed(list(zip(vals[:-1], outs[:-1]))):
        f = _op("cond", _op("==", X, _c(v)), _c(o), f)
    return Function("rank_" + "".join(str(o) for o in outs), 1, f)


def _swap(rng, vals):
    if len(vals) < 2:
        return None
    a, b = rng.sample(vals, 2)
    return Function(f"swap_{slug(a)}_{slug(b)}", 1,
                    _op("cond", _op("==", X, _c(a)), _c(b), _op("cond", _op("==", X, _c(b)), _c(a), X)))


def _plus(rng, vals):
    c = rng.choice([1, 2, -1, -2])
    return Function(f"plus_{slug(c)}", 1, _op("+", X, _c(c)) if c > 0 else _op("-", X, _c(-c)))


def _times(rng, vals):
    c = rng.choice([2, 3])
    return Function(f"times_{c}", 1, _op("*", X, _c(c)))


def _mod(rng, vals):
    c = rng.choice([2, 3])
    return Function(f"mod_{c}", 1, _op("%", X, _c(c)))


def _clip(rng, vals):
    c = rng.choice(vals)
    return Function(f"clip_{slug(c)}", 1, _op("cond", _op("<", X, _c(c)), X, _c(c)))


def _above_int(rng, vals):
    c = rng.choice(vals)
    return Function(f"above_{slug(c)}", 1, _op(">", X, _c(c)))


def _dist_int(rng, vals):
    c = rng.choice(vals)
    return Function(f"dist_{slug(c)}", 1, _op("abs", _op("-", X, _c(c))))


def _even(rng, vals):
    return Function("is_even", 1, _op("==", _op("%", X, _c(2)), _c(0)))


def _not(rng, vals):
    return Function("negate", 1, _op("not", X))


def _indicator(rng, vals):
    return Function("indicator", 1, _op("indicator", X))


def _yes_no(rng, vals):
    return Function("yes_no", 1, _op("cond", X, _c("y"), _c("n")))


def _same(rng, vals):
    """The identity: used to change an encoding (numerical(Map(id, x)), categorical(Map(id, x)))."""
    return Function("same", 1, X)


# numerical inputs (means, scaled values): functions that are smooth or split between values
def _above(rng, vals):
    t = nice_split(rng, vals)
    return None if t is None else Function(f"above_{slug(t)}", 1, _op(">", X, _c(t)))


def _below(rng, vals):
    t = nice_split(rng, vals)
    return None if t is None else Function(f"below_{slug(t)}", 1, _op("<", X, _c(t)))


def _bucket(rng, vals):
    t1, t2 = nice_split(rng, vals), nice_split(rng, vals)
    if t1 is None or t2 is None or t1 == t2:
        return None
    t1, t2 = sorted((t1, t2))
    return Function(f"bucket_{slug(t1)}_{slug(t2)}", 1,
                    _op("cond", _op("<", X, _c(t1)), _c(0), _op("cond", _op("<", X, _c(t2)), _c(1), _c(2))))


def _scale(rng, vals):
    c = rng.choice([2, 3, 0.5, -1])
    return Function(f"scale_{slug(c)}", 1, _op("*", X, _c(c)) if c != -1 else _op("neg", X))


def _shift(rng, vals):
    c = rng.choice([1, -1, 0.5])
    return Function(f"shift_{slug(c)}", 1, _op("+", X, _c(c)) if c > 0 else _op("-", X, _c(-c)))


def _square(rng, vals):
    return Function("square", 1, _op("*", X, X))


def _dist(rng, vals):
    t = nice_split(rng, vals)
    return None if t is None else Function(f"dist_{slug(t)}", 1, _op("abs", _op("-", X, _c(t))))


# python-only (no text form): lookup tables, as tracr programs are usually written
def _table(rng, vals):
    if not 2 <= len(vals) <= 12:
        return None
    outputs = rng.choice([[0, 1, 2], ["x", "y"], [True, False]])
    table = {v: rng.choice(outputs) for v in vals}
    name = "table_" + "".join(slug(table[v])[0] for v in vals)
    return Function(name, 1, None, lambda x, _t=table: _t[x])


MAP_FAMILIES: dict[str, list[Family]] = {
    "str": [_is_value, _in_set, _rank, _swap],
    "mixed": [_is_value, _in_set, _rank],
    "int": [_plus, _times, _mod, _clip, _above_int, _is_value, _dist_int, _even, _rank],
    "bool": [_not, _indicator, _yes_no],
    "num": [_above, _below, _bucket, _scale, _shift, _dist, _rank],
}
# Maps reading a numerical SOp: only functions that do not jump exactly at a value the
# input can take (so the float rounding of a mean cannot flip the answer).
NUMERICAL_MAP_FAMILIES: list[Family] = [_above, _below, _bucket, _scale, _shift, _square, _dist]
PYTHON_MAP_FAMILIES: list[Family] = [_table]
ENCODING_FAMILY: Family = _same


# --------------------------------------------------------------------------- two inputs
def _sum(rng, a, b):
    return Function("sum", 2, _op("+", X, Y))


def _diff(rng, a, b):
    return Function("diff", 2, _op("-", X, Y))


def _max(rng, a, b):
    return Function("max", 2, _op("cond", _op(">", X, Y), X, Y))


def _min(rng, a, b):
    return Function("min", 2, _op("cond", _op("<", X, Y), X, Y))


def _less(rng, a, b):
    return Function("less", 2, _op("<", X, Y))


def _equal(rng, a, b):
    return Function("equal", 2, _op("==", X, Y))


def _differ(rng, a, b):
    return Function("differ", 2, _op("!=", X, Y))


def _sum_mod(rng, a, b):
    c = rng.choice([2, 3])
    return Function(f"sum_mod_{c}", 2, _op("%", _op("+", X, Y), _c(c)))


def _concat(rng, a, b):
    return Function("concat", 2, _op("+", X, Y))


def _and(rng, a, b):
    return Function("both", 2, _op("and", X, Y))


def _or(rng, a, b):
    return Function("either", 2, _op("or", X, Y))


def _pick_second(rng, a, b):
    """``y if x else c``: x is a flag."""
    c = rng.choice(b)
    return Function(f"pick_or_{slug(c)}", 2, _op("cond", X, Y, _c(c)))


def _pick_first(rng, a, b):
    c = rng.choice(a)
    return Function(f"pick_or_{slug(c)}", 2, _op("cond", Y, X, _c(c)))


def _flag(rng, a, b):
    ca, cb = rng.choice(a), rng.choice(b)
    return Function(f"flag_{slug(ca)}_{slug(cb)}", 2, _op("and", _op("==", X, _c(ca)), _op("==", Y, _c(cb))))


def _keep_if(rng, a, b):
    """``x if y == c else d``."""
    cb, d = rng.choice(b), rng.choice(a)
    return Function(f"keep_if_{slug(cb)}_else_{slug(d)}", 2, _op("cond", _op("==", Y, _c(cb)), X, _c(d)))


def _python_pair_table(rng, a, b):
    if len(a) * len(b) > 36:
        return None
    outputs = rng.choice([[0, 1, 2], ["x", "y"]])
    table = {(x, y): rng.choice(outputs) for x in a for y in b}
    return Function("pair_table", 2, None, lambda x, y, _t=table: _t[(x, y)])


def sequence_map_families(ka: str, kb: str) -> list[Family]:
    out: list[Family] = []
    if ka in ("int", "num") and kb in ("int", "num"):
        out += [_sum, _diff, _max, _min, _less, _equal]
        if ka == kb == "int":
            out.append(_sum_mod)
    if ka == kb == "str":
        out += [_equal, _differ, _concat]
    if ka == kb == "bool":
        out += [_and, _or, _differ]
    if ka == "bool" and kb != "empty":
        out.append(_pick_second)
    if kb == "bool" and ka != "empty":
        out.append(_pick_first)
    if ka != kb or ka == "mixed":
        out += [_flag, _keep_if]
    if not out:
        out.append(_equal)
    return out


PYTHON_SEQUENCE_MAP_FAMILIES: list[Family] = [_python_pair_table]

LINEAR_FACTORS: list[tuple[float, float]] = [(1, 1), (1, -1), (-1, 1), (2, 1), (0.5, 0.5), (1, 3)]


# --------------------------------------------------------------------------- predicates
def index_predicates(rng: random.Random, n: int) -> list[tuple[Function, bool]]:
    """Python predicates over (key index, query index), tracr style; the flag says whether
    each query selects at most one key (so a categorical Aggregate may use it)."""
    c = rng.choice([1, 2])
    return [
        (Function(f"shift_{c}", 2, None, lambda k, q, _c=c: k == q - _c), True),
        (Function(f"ahead_{c}", 2, None, lambda k, q, _c=c: k == q + _c), True),
        (Function(f"mirror_{n}", 2, None, lambda k, q, _n=n: k == _n - 1 - q), True),
        (Function("near", 2, None, lambda k, q: abs(k - q) <= 1), False),
        (Function("same_parity", 2, None, lambda k, q: k % 2 == q % 2), False),
    ]


__all__ = ["Function", "MAP_FAMILIES", "NUMERICAL_MAP_FAMILIES", "PYTHON_MAP_FAMILIES", "ENCODING_FAMILY",
           "sequence_map_families", "PYTHON_SEQUENCE_MAP_FAMILIES", "LINEAR_FACTORS", "index_predicates",
           "kind_of", "orderable", "ordered", "value_key", "slug", "nice_split", "NUMERIC_KINDS"]
