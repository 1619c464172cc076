"""Seeded random programs whose categorical Aggregates select by position, some validly,
some not: the soundness test of :mod:`rasp_compiler.graph.positional`.

Unlike :mod:`rasp_compiler.fuzz.generator` (valid by construction), these Aggregates
may select differing values: keys are built from ``indices``, the length, counts and
tokens by arithmetic that is sometimes injective over positions (``n - i - 1``,
``a + d * (i - a)``, a swap) and sometimes not (``i // 2``, ``(i + c) % n``). The test
runs every input and checks that no Aggregate the analysis proves ever conflicts.

    prog = random_position_program(seed=3)
    prog.program, prog.vocab, prog.max_seq_len
    check_position_program(3).failures   # () unless a proof is wrong
    compile_position_program(3)          # "exact", "refused" or "mismatch on ..."

Used by tests/test_positional_proof.py and benchmarks/position_proof.py.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass

from rasp_compiler.errors import AggregateError, RaspCompilerError
from rasp_compiler.rasp import core as rasp
from rasp_compiler.rasp.evaluate import evaluate

C = rasp.Comparison


@dataclass(frozen=True)
class PositionProgram:
    program: rasp.SOp
    vocab: tuple
    max_seq_len: int


def _maps(rng: random.Random):
    c = rng.randint(-2, 3)
    m = rng.randint(2, 4)
    table = tuple(rng.randint(-1, 4) for _ in range(m))
    return rng.choice([
        lambda x: x + c, lambda x: x - c, lambda x: c - x, lambda x: x * c, lambda x: x % m,
        lambda x: x // 2, lambda x: table[int(x) % m], lambda x: c, lambda x: 1 if x > c else -1,
        lambda x: abs(x - c), lambda x: x / 2 - 0.5, lambda x: 0,
    ])


def _swap(x, y):
    if x == 0:
        return y - 1
    if x + 1 == y:
        return 0
    return x


def _sequence_maps(rng: random.Random):
    c = rng.randint(-1, 2)
    m = rng.randint(2, 5)
    table = tuple(rng.randint(-1, 4) for _ in range(m))
    return rng.choice([
        lambda x, y: x + y, lambda x, y: x - y, lambda x, y: y - x - 1, lambda x, y: x * y,
        lambda x, y: x if y == 1 else -1, lambda x, y: y if x == 1 else -1, _swap, lambda x, y: _swap(y, x),
        lambda x, y: x * y + c, lambda x, y: table[int(x + 2 * y) % m], lambda x, y: max(x, y),
        lambda x, y: (x + y) % m, lambda x, y: x if x == y else -1,
    ])


def _predicate(rng: random.Random):
    c = rng.randint(-1, 2)
    m = rng.randint(2, 3)
    return rng.choice([
        C.EQ, C.EQ, C.EQ, C.LT, C.LEQ, C.GT, C.GEQ, C.NEQ, C.TRUE, C.FALSE,
        lambda k, q: k == q + c, lambda k, q: k == q - 1 or (k == 0 and q == 0),
        lambda k, q: (k - q) % m == 0, lambda k, q: k == 0, lambda k, q: k in (0, 2),
    ])


def _pair_predicate(rng: random.Random):
    return rng.choice([
        lambda k, q: k[0] == q[0] and k[1] <= q[1], lambda k, q: k[0] == q[0] and k[1] < q[1],
        lambda k, q: k == q, lambda k, q: k[1] == q[1],
    ])


def random_position_program(seed: int, steps: int | None = None) -> PositionProgram:
    """A program of int-valued categorical SOps (and pairs for one kind of Select)."""
    rng = random.Random(seed)
    vocab = tuple(range(rng.choice([2, 3])))
    max_seq_len = rng.choice([3, 4])
    length = rasp.SelectorWidth(rasp.Select(rasp.indices, rasp.indices, C.TRUE))
    ints: list[rasp.SOp] = [rasp.tokens, rasp.indices, rasp.indices, length]
    pairs: list[rasp.SOp] = []
    aggregates = 0
    for _ in range(steps or rng.randint(3, 7)):
        kind = rng.choice(["map", "seqmap", "seqmap", "width", "aggregate", "aggregate", "pair", "constant"])
        pick = lambda: rng.choice(ints)  # noqa: E731
        if kind == "map":
            ints.append(rasp.Map(_maps(rng), pick()))
        elif kind == "seqmap":
            a, b = pick(), pick()
            if a.unique_id != b.unique_id:
                ints.append(rasp.SequenceMap(_sequence_maps(rng), a, b))
        elif kind == "constant":  # the same value at every position, from indices
            ints.append(rasp.Map(lambda x, c=rng.randint(0, 2): c, rasp.indices))
        elif kind == "pair":
            pairs.append(rasp.SequenceMap(lambda x, y: (x, y), pick(), rasp.indices))
        elif kind == "width":
            ints.append(rasp.SelectorWidth(_select(rng, ints, pairs)))
        else:
            default = rng.choice([None, -1, 0])
            agg = rasp.Aggregate(_select(rng, ints, pairs), pick(), default=default)
            ints.append(agg)
            aggregates += 1
    if not aggregates:
        ints.append(rasp.Aggregate(_select(rng, ints, pairs), rasp.tokens))
    return PositionProgram(ints[-1], vocab, max_seq_len)


def _select(rng: random.Random, ints: list, pairs: list) -> rasp.Selector:
    if pairs and rng.random() < 0.3:
        k, q = rng.choice(pairs), rng.choice(pairs)
        sel = rasp.Select(k, q, _pair_predicate(rng))
    else:
        sel = rasp.Select(rng.choice(ints), rng.choice(ints), _predicate(rng))
    if rng.random() < 0.25:
        other = rasp.Select(rng.choice(ints), rng.choice(ints), _predicate(rng))
        sel = rasp.SelectorAnd(sel, other) if rng.random() < 0.7 else rasp.SelectorOr(sel, other)
    return sel


@dataclass(frozen=True)
class PositionCheck:
    """Every input of one random program, against what the analysis claims."""

    aggregates: int  # categorical Aggregates
    proven: int  # proven by any rule (aggregate_proof.proven_single_valued)
    by_positions: int  # proven by the per-position analysis (graph/positional.py)
    conflicting: int  # selecting differing values on some input
    inputs: int  # inputs whose values at every SOp were checked against the analysis' cases
    slowest: float  # seconds of the slowest per-position proof of one Aggregate
    failures: tuple[str, ...]  # a proven Aggregate that conflicts; an input that fits no case


def check_position_program(seed: int, steps: int | None = None) -> PositionCheck:
    """Evaluate every input (strict): no proven categorical Aggregate may conflict, and
    every input's values must fit one case of the abstract values, at every length."""
    from rasp_compiler.graph import positional
    from rasp_compiler.graph.aggregate_proof import proven_single_valued
    from rasp_compiler.graph.build import build_graph
    from rasp_compiler.graph.nodes import Kind
    from rasp_compiler.graph.value_sets import infer_value_sets
    from rasp_compiler.limits import default

    prog = random_position_program(seed, steps)
    try:
        pg = build_graph(prog.program)
        sets = infer_value_sets(pg, prog.vocab, prog.max_seq_len)
    except RaspCompilerError:
        return PositionCheck(0, 0, 0, 0, 0, 0.0, ())
    heads = [pg.nodes[x] for x in pg.topological() if pg.nodes[x].kind is Kind.ATTENTION and not pg.nodes[x].numerical]
    proven = {h.label for h in heads if proven_single_valued(h, pg, sets, default())}
    by_positions, slowest = 0, 0.0
    for h in heads:
        start = time.perf_counter()
        by_positions += positional.selects_single_values(h, pg, sets, prog.max_seq_len)
        slowest = max(slowest, time.perf_counter() - start)
    failures, conflicting = [], 0
    inputs = [list(xs) for n in range(1, prog.max_seq_len + 1) for xs in itertools.product(prog.vocab, repeat=n)]
    for h in heads:
        for xs in inputs:
            try:
                evaluate(h.expr, xs, strict=True)
            except AggregateError as exc:
                if f"categorical Aggregate {h.label} selects" in str(exc):  # not an earlier one's
                    conflicting += 1
                    if h.label in proven:
                        failures.append(f"seed {seed}: {h.label} is proven but on {xs}: {exc}")
                    break
            except RaspCompilerError:  # e.g. a predicate failing on None: no output at all
                continue
    checked = 0
    for n in range(2, prog.max_seq_len + 1):
        cases = list(positional.abstract_cases(pg, sets, n))
        for xs in (x for x in inputs if len(x) == n):
            try:
                actual = {x: evaluate(pg.nodes[x].expr, xs, strict=True) for x in pg.nodes}
            except RaspCompilerError:
                continue
            checked += 1
            if not any(_fits(case, actual, positional.exact_key) for case in cases):
                failures.append(f"seed {seed}: the values on input {xs} fit no case of the analysis")
    return PositionCheck(len(heads), len(proven), by_positions, conflicting, checked, slowest, tuple(failures))


def _fits(case: dict, actual: dict, exact_key) -> bool:
    for label, values in actual.items():
        a = case[label]
        if a.constant and len({exact_key(v) for v in values}) > 1:
            return False
        if a.at is not None and any(exact_key(v) not in a.at[i] for i, v in enumerate(values)):
            return False
    return True


def compile_position_program(seed: int, steps: int | None = None) -> str:
    """Compile it and compare with rasp.evaluate on every input it evaluates on:
    "exact", "refused" (a compiler error) or "mismatch on ..."."""
    from rasp_compiler.compiler import compile_rasp_to_model
    from rasp_compiler.verify import check_model

    prog = random_position_program(seed, steps)
    try:
        model = compile_rasp_to_model(prog.program, prog.vocab, prog.max_seq_len)
    except RaspCompilerError:
        return "refused"
    inputs = []
    for n in range(1, prog.max_seq_len + 1):
        for xs in itertools.product(prog.vocab, repeat=n):
            try:
                evaluate(prog.program, list(xs))
            except RaspCompilerError:
                continue
            inputs.append(list(xs))
    report = check_model(model, prog.program, inputs)
    return "exact" if report.exact else f"mismatch on {report.examples[0].input!r} (seed {seed})"
