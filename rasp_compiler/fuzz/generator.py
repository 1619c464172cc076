"""Seeded generator of well-typed, compilable random RASP programs.

    from rasp_compiler.fuzz.generator import generate_program, compile_generated
    gen = generate_program(seed=7, depth=3)
    gen.program          # a rasp.SOp (tracr-compatible objects)
    gen.text             # the same program as text RASP (None for Python-only programs)
    made = compile_generated(seed=7, depth=3)   # regenerates while the compiler refuses
    made.model, made.rejections

How a program is built: a pool starts with ``tokens``, ``indices`` and sometimes a
``Full`` constant and ``length``. Then, for each level 1..depth, one or two operations
are drawn from the *mix* and built on an *anchor* from the previous level (so the
longest chain has ``depth`` operations), with their other inputs drawn from the whole
pool (so SOps are shared, as in real programs). Every SOp carries the exact finite set
of values it can take, computed here independently of the compiler; operations are
only built where they are well typed:

* Select keys and queries are categorical; ``<``-like comparisons only between
  values that Python can order;
* SequenceMap inputs are categorical (a LinearSequenceMap may read numerical ones);
* a numerical Aggregate averages numbers that are never None; Maps reading a numerical
  SOp read a modest value set and do not jump exactly at a value the input can take;
* a categorical Aggregate is valid by construction: it either reads ``indices`` as keys
  under ``==`` (at most one key per query), or aggregates its own key SOp (or a function
  of it) under ``==`` (every selected value is equal), possibly narrowed by ``and``;
* with ``causal=True`` every selector is narrowed to the past (``and`` with
  ``select(indices, indices, <=)``) and composite selectors stay conjunctive.

A program is *printable* (its Maps carry formulas and its predicates are Comparisons,
so :func:`rasp_compiler.dsl.to_text` writes it) or *Python-only* (lookup tables and
index predicates written as lambdas, as tracr users write them; Maps of Maps are
fused by ``rasp.Map``'s default, as in tracr).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from rasp_compiler.dsl import formula as fm
from rasp_compiler.errors import RaspCompilerError, UnsupportedProgramError
from rasp_compiler.fuzz import catalogue as cat
from rasp_compiler.fuzz.catalogue import Function, kind_of, ordered
from rasp_compiler.rasp import core as rasp

C = rasp.Comparison

VOCABS: tuple[tuple, ...] = (("a", "b", "c"), ("a", "b", "c", "d"), ("x", "y", "z"), (0, 1, 2), (1, 2, 3, 4))
MAX_LEN_CHOICES = (4, 5, 6)
OPERATIONS = ("map", "sequence_map", "linear_sequence_map", "numerical_aggregate",
              "categorical_aggregate", "selector_width")

MAX_CATEGORICAL = 30  # values of a categorical SOp
MAX_PAIR_PRODUCT = 150  # value pairs read by a SequenceMap
MAX_MLP_NUMERIC = 600  # values of a numerical SOp read by an MLP
MAX_MEAN_SOURCE = 12  # values of an SOp averaged by a numerical Aggregate
MAX_TRACKED = 20_000  # beyond this a numerical value set is "unbounded" (None)


class GenerationError(RaspCompilerError):
    """The generator could not build a program with the requested shape (try another seed)."""


@dataclass(frozen=True)
class Mix:
    """Relative weights of the operations, and the probabilities of program features."""

    map: float = 3.0
    sequence_map: float = 2.0
    linear_sequence_map: float = 1.0
    numerical_aggregate: float = 2.0
    categorical_aggregate: float = 2.0
    selector_width: float = 1.5
    composite_selector: float = 0.35  # a selector combines two with and/or, or negates one
    full: float = 0.4  # a Full constant is among the inputs
    length: float = 0.3  # `length` is among the inputs (not in causal programs)
    none_default: float = 0.1  # a categorical Aggregate has no default (None where nothing is selected)
    numerical_width: float = 0.15  # a SelectorWidth is numerical
    causal: float = 0.15  # the program is causal (when generate_program's causal is None)
    printable: float = 0.75  # the program is printable (when generate_program's printable is None)

    @classmethod
    def of(cls, mix: "Mix | Mapping[str, float] | None") -> "Mix":
        if mix is None:
            return cls()
        if isinstance(mix, cls):
            return mix
        if isinstance(mix, Mapping):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(mix) - known)
            if unknown:
                raise ValueError(f"unknown mix keys {unknown}; known: {sorted(known)}")
            return dataclasses.replace(cls(), **{k: float(v) for k, v in mix.items()})
        raise TypeError(f"mix must be a Mix, a dict of weights or None, got {mix!r}")

    def operation_weights(self) -> list[float]:
        return [getattr(self, op) for op in OPERATIONS]


@dataclass(frozen=True)
class GeneratedProgram:
    """One random program and how it was made (everything needed to rebuild it)."""

    seed: int
    attempt: int
    program: rasp.SOp
    vocab: tuple
    max_seq_len: int
    causal: bool
    printable: bool
    depth: int  # levels requested
    measured_depth: int  # longest chain of operations from an input to the output
    text: str | None  # text RASP (printable programs)
    print_error: str | None = None  # why a printable program could not be printed (a printer bug)
    notes: tuple[str, ...] = ()  # what building it would have logged (e.g. a SequenceMap of x with itself)

    @property
    def ops(self) -> tuple[str, ...]:
        return describe_ops(self.program)

    def rebuild_args(self) -> dict:
        """Keyword arguments of :func:`generate_program` that rebuild this program."""
        return {"seed": self.seed, "attempt": self.attempt, "depth": self.depth, "vocab": self.vocab,
                "max_seq_len": self.max_seq_len, "causal": self.causal, "printable": self.printable}


@dataclass(frozen=True, eq=False)
class _Node:
    sop: rasp.SOp
    values: frozenset | None  # None: too many numerical values to list
    level: int
    may_be_none: bool = False

    @property
    def numerical(self) -> bool:
        return self.sop.is_numerical

    @property
    def kind(self) -> str:
        return "num" if self.values is None else kind_of(self.values)

    @property
    def numeric_valued(self) -> bool:
        return self.kind in cat.NUMERIC_KINDS


def _means(values: Iterable[Any], n: int, cap: int = MAX_TRACKED) -> frozenset | None:
    """Every mean of 1..n values drawn (with repetition) from ``values``."""
    vals = sorted({Fraction(v) for v in values})
    sums, out = {Fraction(0)}, set()
    for k in range(1, n + 1):
        sums = {s + v for s in sums for v in vals}
        out.update(s / k for s in sums)
        if len(out) > cap:
            return None
    return frozenset(float(m) for m in out)


class _Builder:
    def __init__(self, rng: random.Random, vocab: tuple, n: int, causal: bool, printable: bool, mix: Mix):
        self.rng, self.vocab, self.n, self.causal, self.printable, self.mix = rng, vocab, n, causal, printable, mix
        self.count = 0
        self.pool: list[_Node] = [_Node(rasp.tokens, frozenset(vocab), 0), _Node(rasp.indices, frozenset(range(n)), 0)]
        if rng.random() < mix.full:
            fill = rng.choice([*vocab, 0, 1])
            self.pool.append(_Node(rasp.Full(fill).named(self._name("const")), frozenset([fill]), 0))
        if not causal and rng.random() < mix.length:
            length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE)).named("length")
            # range(0, n + 1), not 1..n: the compiler's value set of any SelectorWidth includes 0,
            # and a Python lookup table must be total on the compiler's set
            self.pool.append(_Node(length, frozenset(range(n + 1)), 1))
        self.prefix = rasp.Select(rasp.indices, rasp.indices, C.LEQ).named("prefix") if causal else None
        self.level: dict[int, int] = {t.sop.unique_id: t.level for t in self.pool}

    # -- helpers ----------------------------------------------------------------------
    def _name(self, what: str) -> str:
        self.count += 1
        return f"n{self.count}_{what}"

    def _add(self, sop: rasp.SOp, values, inputs: Sequence[rasp.SOp], may_be_none: bool = False) -> _Node:
        level = 1 + max((self.level[s.unique_id] for s in inputs), default=0)
        node = _Node(sop, values, level, may_be_none)
        self.level[sop.unique_id] = level
        self.pool.append(node)
        return node

    def _pick(self, cond) -> _Node | None:
        options = [t for t in self.pool if cond(t)]
        return self.rng.choice(options) if options else None

    def _map(self, fn: Function, inner: rasp.SOp, numerical: bool) -> rasp.SOp:
        if self.printable:
            sop = rasp.Map(fn, inner, simplify=False).annotate(**{fm.FORMULA_KEY: fn.formula})
        else:
            sop = rasp.Map(fn, inner)  # tracr's default: a Map of a Map becomes one Map
        sop = sop.named(self._name(fn.name))
        return rasp.numerical(sop) if numerical else sop

    def _sequence_map(self, fn: Function, a: rasp.SOp, b: rasp.SOp, numerical: bool) -> rasp.SOp:
        sop = rasp.SequenceMap(fn, a, b)
        if self.printable:
            sop = sop.annotate(**{fm.FORMULA_KEY: fn.formula})
        sop = sop.named(self._name(fn.name))
        return rasp.numerical(sop) if numerical else sop

    @staticmethod
    def _apply(fn: Function, args_list: Iterable[tuple]) -> frozenset | None:
        try:
            return frozenset(fn(*args) for args in args_list)
        except Exception:  # the function does not suit these values: the caller tries another
            return None

    def _families(self, kind: str) -> list:
        fams = list(cat.MAP_FAMILIES.get(kind, []))
        if not self.printable and kind in ("str", "int", "bool", "mixed"):
            fams += cat.PYTHON_MAP_FAMILIES * 2
        return fams

    # -- operations --------------------------------------------------------------------
    def op_map(self, a: _Node) -> _Node | None:
        rng = self.rng
        if a.numerical:
            if a.values is None or len(a.values) > MAX_MLP_NUMERIC or a.may_be_none:
                return None
            if rng.random() < 0.15 and len(a.values) <= MAX_CATEGORICAL:
                fn = cat.ENCODING_FAMILY(rng, ordered(a.values))  # categorical view of a numerical SOp
            else:
                fn = rng.choice(cat.NUMERICAL_MAP_FAMILIES)(rng, ordered(a.values))
        elif a.numeric_valued and rng.random() < 0.12 and not a.may_be_none:
            fn = cat.ENCODING_FAMILY(rng, ordered(a.values))  # numerical copy of a categorical SOp
        else:
            fams = self._families(a.kind)
            if not fams:
                return None
            fn = rng.choice(fams)(rng, ordered(a.values))
        if fn is None:
            return None
        values = self._apply(fn, ((v,) for v in a.values))
        if not values:
            return None
        numeric_out = kind_of(values) in cat.NUMERIC_KINDS
        if fn.name == "same":
            numerical = not a.numerical
        elif a.numerical:
            numerical = numeric_out and (len(values) > MAX_CATEGORICAL or rng.random() < 0.5)
        else:
            # a numerical encoding has no None: a value that can be None stays categorical
            numerical = numeric_out and rng.random() < 0.3 and not a.may_be_none
        if not numerical and len(values) > MAX_CATEGORICAL:
            return None
        return self._add(self._map(fn, a.sop, numerical), values, [a.sop], a.may_be_none)

    def op_sequence_map(self, a: _Node) -> _Node | None:
        rng = self.rng
        if a.numerical or a.values is None:
            return None
        b = self._pick(lambda t: not t.numerical and t.values is not None and t is not a
                       and len(t.values) * len(a.values) <= MAX_PAIR_PRODUCT)
        if b is None:
            return None
        x, y = (a, b) if rng.random() < 0.5 else (b, a)
        xv, yv = ordered(x.values), ordered(y.values)
        fams = cat.sequence_map_families(x.kind, y.kind)
        if not self.printable:
            fams = fams + cat.PYTHON_SEQUENCE_MAP_FAMILIES
        fn = rng.choice(fams)(rng, xv, yv)
        if fn is None:
            return None
        values = self._apply(fn, itertools.product(xv, yv))
        if not values or len(values) > MAX_CATEGORICAL:
            return None
        may_be_none = x.may_be_none or y.may_be_none
        numerical = kind_of(values) in cat.NUMERIC_KINDS and rng.random() < 0.15 and not may_be_none
        sop = self._sequence_map(fn, x.sop, y.sop, numerical)
        return self._add(sop, values, [x.sop, y.sop], may_be_none)

    def op_linear_sequence_map(self, a: _Node) -> _Node | None:
        rng = self.rng
        ok = lambda t: t.numeric_valued and not t.may_be_none  # noqa: E731
        if not ok(a):
            return None
        b = self._pick(ok)
        if b is None:
            return None
        x, y = (a, b) if rng.random() < 0.5 else (b, a)
        fa, fb = rng.choice(cat.LINEAR_FACTORS)
        numerical = x.numerical or y.numerical or rng.random() < 0.75
        if x.values is None or y.values is None or len(x.values) * len(y.values) > MAX_TRACKED:
            values = None
        else:
            values = frozenset(fa * u + fb * v for u, v in itertools.product(x.values, y.values))
        if not numerical and (values is None or len(values) > MAX_CATEGORICAL):
            return None
        sop = rasp.LinearSequenceMap(x.sop, y.sop, fa, fb).named(self._name(f"lin_{cat.slug(fa)}_{cat.slug(fb)}"))
        if numerical:
            sop = rasp.numerical(sop)
        return self._add(sop, values, [x.sop, y.sop])

    def op_numerical_aggregate(self, a: _Node) -> _Node | None:
        rng = self.rng
        averageable = lambda t: (t.numeric_valued and not t.may_be_none and t.values is not None  # noqa: E731
                                 and len(t.values) <= MAX_MEAN_SOURCE)
        roles = (["value"] if averageable(a) else []) + (["selector"] if not a.numerical else [])
        if not roles:
            return None
        if rng.choice(roles) == "value":
            x, sel, reads = a, *self._selector()
        else:
            x = self._pick(averageable)
            if x is None:
                return None
            sel, reads = self._selector(anchor=a)
        default = 0 if rng.random() < 0.85 else rng.choice([1, -1, 0.5])
        agg = rasp.numerical(rasp.Aggregate(sel, x.sop, default=default).named(self._name("mean")))
        means = _means(x.values, self.n)
        values = None if means is None else means | {default}
        return self._add(agg, values, [x.sop, *reads])

    def op_categorical_aggregate(self, a: _Node) -> _Node | None:
        rng = self.rng
        if a.numerical or a.values is None:
            return None
        copyable = lambda t: not t.numerical and t.values is not None  # noqa: E731
        pattern = rng.choice(["index", "index", "self"])
        if pattern == "index":
            # Select(indices, q, ==): at most one key per query.
            as_query = a.kind == "int" and rng.random() < 0.4
            if as_query:
                q, x = a, self._pick(copyable)
                sel = rasp.Select(rasp.indices, q.sop, C.EQ)
                reads = [q.sop]
            else:
                x = a
                sel, reads = self._one_key_selector()
        else:
            # Select(k, q, ==) aggregating k (or a function of k): every selected value is equal.
            as_key = rng.random() < 0.6
            if as_key:
                k = a
                q = self._pick(lambda t: not t.numerical and t.values is not None and kind_of(t.values) == a.kind)
            else:
                q = a
                k = self._pick(lambda t: not t.numerical and t.values is not None and kind_of(t.values) == a.kind)
            if k is None or q is None:
                return None
            sel, reads = rasp.Select(k.sop, q.sop, C.EQ), [k.sop, q.sop]
            x = k
            if rng.random() < 0.35:
                fams = self._families(k.kind)
                fn = rng.choice(fams)(rng, ordered(k.values)) if fams else None
                values = None if fn is None else self._apply(fn, ((v,) for v in k.values))
                if values and len(values) <= MAX_CATEGORICAL:
                    x = self._add(self._map(fn, k.sop, False), values, [k.sop], k.may_be_none)
        if x is None:
            return None
        if rng.random() < 0.25:  # narrow it further: still at most one key / equal values
            extra, extra_reads = self._leaf()
            sel = rasp.SelectorAnd(sel, extra) if rng.random() < 0.5 else rasp.SelectorAnd(extra, sel)
            reads = reads + extra_reads
        sel = self._causal(sel)
        if rng.random() < self.mix.none_default:
            default = None
        else:
            default = rng.choice(ordered(x.values)) if rng.random() < 0.6 else self._fresh_constant(x.kind)
        agg = rasp.Aggregate(sel, x.sop, default=default).named(self._name("copy"))
        values = x.values | ({default} if default is not None else frozenset())
        return self._add(agg, values, [x.sop, *reads], x.may_be_none or default is None)

    def op_selector_width(self, a: _Node) -> _Node | None:
        if a.numerical:
            return None
        sel, reads = self._selector(anchor=a)
        sop = rasp.SelectorWidth(sel).named(self._name("width"))
        if self.rng.random() < self.mix.numerical_width:
            sop = rasp.numerical(sop)
        return self._add(sop, frozenset(range(self.n + 1)), reads)

    # -- selectors ---------------------------------------------------------------------
    def _fresh_constant(self, kind: str) -> Any:
        return {"str": "z", "bool": False}.get(kind, -1)

    def _one_key_selector(self) -> tuple[rasp.Selector, list[rasp.SOp]]:
        """A selector reading ``indices`` as keys that selects at most one key per query."""
        rng = self.rng
        if not self.printable and rng.random() < 0.4:
            fn = rng.choice([f for f, one in cat.index_predicates(rng, self.n) if one])
            return rasp.Select(rasp.indices, rasp.indices, fn), [rasp.indices]
        q = self._pick(lambda t: not t.numerical and t.kind == "int" and t.sop.unique_id != rasp.indices.unique_id)
        if q is None or rng.random() < 0.5:
            c = rng.choice([1, 2, -1])
            fn = Function(f"plus_{cat.slug(c)}", 1,
                          fm.Op("+", (fm.Arg(0), fm.Const(c))) if c > 0 else fm.Op("-", (fm.Arg(0), fm.Const(-c))))
            shifted = self._map(fn, rasp.indices, False)
            q = self._add(shifted, frozenset(i + c for i in range(self.n)), [rasp.indices])
        return rasp.Select(rasp.indices, q.sop, C.EQ), [q.sop]

    def _leaf(self, anchor: _Node | None = None, keys_queries: tuple | None = None,
              avoid: C | None = None) -> tuple[rasp.Selector, list[rasp.SOp]]:
        rng = self.rng
        if keys_queries is not None:
            k, q = keys_queries
        else:
            if (anchor is None and not self.printable and rng.random() < 0.25):
                fn, _ = rng.choice(cat.index_predicates(rng, self.n))
                return rasp.Select(rasp.indices, rasp.indices, fn), [rasp.indices]
            usable = lambda t: not t.numerical and t.values is not None  # noqa: E731
            other = self._pick(usable)
            first = anchor if anchor is not None else self._pick(usable)
            k, q = (first, other) if rng.random() < 0.5 else (other, first)
        options = [C.EQ, C.EQ, C.NEQ, C.TRUE, C.FALSE]
        if cat.orderable(k.kind, q.kind):
            options += [C.LT, C.LEQ, C.GT, C.GEQ] * 2
        options = [c for c in options if c is not avoid] or [C.TRUE]
        sel = rasp.Select(k.sop, q.sop, rng.choice(options))
        if rng.random() < 0.3:
            sel = sel.named(self._name("select"))
        return sel, [k.sop, q.sop]

    def _selector(self, anchor: _Node | None = None) -> tuple[rasp.Selector, list[rasp.SOp]]:
        rng = self.rng
        sel, reads = self._leaf(anchor)
        if rng.random() < self.mix.composite_selector:
            how = rng.choice(["and", "or", "not"])
            if how == "not":
                sel = rasp.SelectorNot(sel)
            elif how == "and":
                other, more = self._leaf()
                sel, reads = (rasp.SelectorAnd(sel, other) if rng.random() < 0.5 else rasp.SelectorAnd(other, sel),
                              reads + more)
            else:
                if self.causal and isinstance(sel, rasp.Select):
                    # an Or stays one Boolean table (so causality can be checked) when both
                    # sides compare the same SOps
                    k = self._node_of(sel.keys)
                    q = self._node_of(sel.queries)
                    other, more = self._leaf(keys_queries=(k, q), avoid=sel.predicate)
                else:
                    other, more = self._leaf()
                sel, reads = rasp.SelectorOr(sel, other), reads + more
        return self._causal(sel), reads

    def _node_of(self, sop: rasp.SOp) -> _Node:
        return next(t for t in self.pool if t.sop.unique_id == sop.unique_id)

    def _causal(self, sel: rasp.Selector) -> rasp.Selector:
        return rasp.SelectorAnd(sel, self.prefix) if self.causal else sel

    # -- the program ---------------------------------------------------------------------
    def build(self, depth: int) -> _Node:
        rng, weights = self.rng, self.mix.operation_weights()
        if sum(weights) <= 0:
            raise ValueError("the mix gives every operation weight 0")
        last: _Node | None = None
        for level in range(1, depth + 1):
            anchors = [t for t in self.pool if t.level == level - 1] or [t for t in self.pool if t.level < level]
            for _ in range(1 if level == depth else rng.choice([1, 1, 2])):
                for _attempt in range(400):
                    op = rng.choices(OPERATIONS, weights)[0]
                    made = getattr(self, f"op_{op}")(rng.choice(anchors))
                    if made is not None:
                        last = made
                        break
                else:
                    raise GenerationError(f"no operation of the mix could be built at level {level}")
        assert last is not None
        return last


def generate_program(seed: int, depth: int = 3, vocab: Sequence[Any] | None = None,
                     max_seq_len: int | None = None, mix: Mix | Mapping[str, float] | None = None,
                     causal: bool | None = None, printable: bool | None = None,
                     attempt: int = 0) -> GeneratedProgram:
    """A random well-typed program: the same arguments always give the same program.

    ``vocab`` (default: one of :data:`VOCABS`) and ``max_seq_len`` (default 4-6) are drawn
    from the seed when not given, as are ``causal`` and ``printable`` (with the
    probabilities of the mix). ``attempt`` selects another program for the same seed
    (used when the compiler rejects one).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    mix = Mix.of(mix)
    rng = random.Random(f"rasp_compiler.fuzz:{seed}:{attempt}")
    # drawn whether given or not, so that passing the drawn values (``rebuild_args``) rebuilds the same program
    drawn = rng.choice(VOCABS), rng.choice(MAX_LEN_CHOICES), rng.random() < mix.causal, rng.random() < mix.printable
    vocab = tuple(vocab) if vocab is not None else drawn[0]
    if not vocab:
        raise ValueError("vocab is empty")
    n = max_seq_len if max_seq_len is not None else drawn[1]
    causal = drawn[2] if causal is None else bool(causal)
    printable = drawn[3] if printable is None else bool(printable)
    builder = _Builder(rng, vocab, n, causal, printable, mix)
    with rasp.collecting_notes() as notes:  # remarks about code no user wrote: kept, not logged
        out = builder.build(depth)
    text, print_error = None, None
    if printable:
        from rasp_compiler.dsl.printer import to_text
        try:
            text = to_text(out.sop)
        except (UnsupportedProgramError, ValueError, TypeError) as exc:
            print_error = f"{type(exc).__name__}: {exc}"
    return GeneratedProgram(seed=seed, attempt=attempt, program=out.sop, vocab=vocab, max_seq_len=n,
                            causal=causal, printable=printable, depth=depth, measured_depth=out.level,
                            text=text, print_error=print_error, notes=tuple(dict.fromkeys(notes)))


# --------------------------------------------------------------------------- compiling
@dataclass(frozen=True)
class Rejection:
    """A generated program the compiler refused (before any weight was built)."""

    seed: int
    attempt: int
    error: str  # exception class name
    message: str

    @property
    def reason(self) -> str:
        """The message with node names and numbers removed, to group alike rejections."""
        return rejection_reason(self.error, self.message)


@dataclass(frozen=True)
class CompiledProgram:
    generated: GeneratedProgram
    model: Any  # CompiledModel
    rejections: tuple[Rejection, ...]  # earlier attempts for the same seed that the compiler refused
    compile_seconds: float


def rejection_reason(error: str, message: str) -> str:
    import re
    text = message.split("\n")[0]
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\[[^\]]*\]", "[…]", text)
    text = re.sub(r"\b(n\d+_\w+|selector_\w+|select_\d+|aggregate_\d+|map_\d+)\b", "<sop>", text)
    text = re.sub(r"-?\d+(\.\d+)?", "<n>", text)
    return f"{error}: {text[:160]}"


def compile_generated(seed: int, depth: int = 3, *, max_attempts: int = 30, strict: bool = False,
                      **options: Any) -> CompiledProgram:
    """Generate and compile; a program the compiler rejects (UnsupportedProgramError) is
    replaced by the next attempt for the same seed, and the rejection is recorded.
    ``strict`` is the compiler's (refuse unproven categorical Aggregates)."""
    import time

    from rasp_compiler.compiler import compile_rasp_to_model

    rejections: list[Rejection] = []
    for attempt in range(max_attempts):
        try:
            gen = generate_program(seed, depth, attempt=attempt, **options)
        except GenerationError as exc:
            rejections.append(Rejection(seed, attempt, "GenerationError", str(exc)))
            continue
        start = time.perf_counter()
        try:
            model = compile_rasp_to_model(gen.program, gen.vocab, gen.max_seq_len, causal=gen.causal, strict=strict)
        except UnsupportedProgramError as exc:
            rejections.append(Rejection(seed, attempt, type(exc).__name__, str(exc)))
            continue
        return CompiledProgram(gen, model, tuple(rejections), time.perf_counter() - start)
    raise GenerationError(f"seed {seed}: {max_attempts} generated programs in a row were rejected; the last "
                          f"reason: {rejections[-1].error}: {rejections[-1].message}")


# --------------------------------------------------------------------------- describing
def describe_ops(program: rasp.RASPExpr) -> tuple[str, ...]:
    """The operations a program uses (one entry per node, sorted), e.g. ``Map[num->cat]``,
    ``Select[LT]``, ``Aggregate[categorical]``: for coverage statistics."""
    out: list[str] = []
    for e in rasp.walk(program):
        enc = lambda s: "num" if s.is_numerical else "cat"  # noqa: E731
        if isinstance(e, rasp.LinearSequenceMap):
            out.append(f"LinearSequenceMap[{enc(e)}]")
        elif isinstance(e, rasp.SequenceMap):
            out.append(f"SequenceMap[{enc(e)}]")
        elif isinstance(e, rasp.Map):
            out.append(f"Map[{enc(e.inner)}->{enc(e)}]")
        elif isinstance(e, rasp.Aggregate):
            out.append(f"Aggregate[{'numerical' if e.is_numerical else 'categorical'}]")
        elif isinstance(e, rasp.SelectorWidth):
            out.append(f"SelectorWidth[{enc(e)}]")
        elif isinstance(e, rasp.Select):
            p = e.predicate
            out.append(f"Select[{p.value if isinstance(p, C) else 'python'}]")
        elif isinstance(e, (rasp.SelectorAnd, rasp.SelectorOr, rasp.SelectorNot, rasp.Full)):
            out.append(type(e).__name__ + (f"[{enc(e)}]" if isinstance(e, rasp.Full) else ""))
    return tuple(sorted(out))


__all__ = ["Mix", "GeneratedProgram", "CompiledProgram", "Rejection", "GenerationError", "generate_program",
           "compile_generated", "describe_ops", "rejection_reason", "VOCABS", "OPERATIONS"]
