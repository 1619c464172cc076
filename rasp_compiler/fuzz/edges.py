"""Programs at the edges of number formats, value sets and sizes, where a compiler is
most likely to be silently wrong.

The main generator (:mod:`.generator`) writes well-behaved programs; these generators
aim at the edges instead: numbers of extreme or mixed magnitude, floats that differ
only by rounding, ``True``/``1``/``1.0`` mixes, categorical Aggregates that conflict
only on rare inputs, and sizes around (overridden, small) resource limits. Each case
must end one of two ways: *refused* before building with a compiler error
(``UnsupportedProgramError`` and its kinds, ``InputError``), or *exact*: the compiled
model agrees with ``rasp.evaluate`` on every input (every input up to ``max_seq_len``
where that is few, else random ones), including inputs where the evaluator raises
(the model must not compile then); a categorical output must also have the evaluator's
type (``1`` is not ``True`` or ``1.0``). Anything else is a mismatch.

    from rasp_compiler.fuzz.edges import KINDS, generate_edge, check_edge
    result = check_edge(generate_edge("near_equal", seed=3))
    result.status   # "exact" | "refused" | "mismatch"
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass

from rasp_compiler import errors
from rasp_compiler.limits import Limits
from rasp_compiler.rasp import core as rasp

C = rasp.Comparison
KINDS = ("magnitudes", "near_equal", "bool_int", "rare_aggregate", "sizes")
EXHAUSTIVE = 400  # inputs: every input when there are at most this many
RANDOM = 60  # otherwise this many random ones (a third of them of the full length; 10 past length 500)


@dataclass(frozen=True)
class EdgeCase:
    kind: str
    seed: int
    description: str
    program: rasp.SOp
    vocab: tuple
    max_seq_len: int
    limits: Limits | None = None


@dataclass(frozen=True)
class EdgeResult:
    case: EdgeCase
    status: str  # exact | refused | mismatch
    detail: str  # the refusal message, or the first mismatch
    checked: int  # inputs compared
    seconds: float


def generate_edge(kind: str, seed: int) -> EdgeCase:
    if kind not in KINDS:
        raise ValueError(f"unknown edge kind {kind!r}; kinds: {', '.join(KINDS)}")
    rng = random.Random(f"edge:{kind}:{seed}")
    return _GENERATORS[kind](rng, seed)


# ---------------------------------------------------------------------------- generators
def _letters(rng: random.Random, lo: int = 2, hi: int = 4) -> tuple:
    return tuple("abcdef"[: rng.randint(lo, hi)])


def _table(rng: random.Random, vocab: tuple, pool: list) -> dict:
    return {t: rng.choice(pool) for t in vocab}


def _selector(rng: random.Random, a: rasp.SOp, b: rasp.SOp) -> rasp.Selector:
    choice = rng.randrange(4)
    if choice == 0:
        return rasp.Select(rasp.indices, rasp.indices, C.LEQ)  # prefix mean
    if choice == 1:
        return rasp.Select(a, b, C.EQ)
    if choice == 2:
        return rasp.Select(rasp.tokens, rasp.tokens, C.TRUE)
    return rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q - 1)


def _numbers_consumer(rng: random.Random, v: rasp.SOp, vocab: tuple, what: str) -> tuple[rasp.SOp, str]:
    """v itself, a mean of it, a mean read by a threshold Map, or a linear combination."""
    choice = rng.randrange(4)
    if choice == 0:
        return v, what
    mean = rasp.numerical(rasp.Aggregate(_selector(rng, rasp.tokens, rasp.tokens), v, default=0)).named("mean")
    if choice == 1:
        return mean, f"mean of {what}"
    if choice == 2:
        cut = rng.choice([0.25, 0.5, 0.75, 1.5, 1e10 + 0.5])
        return (rasp.categorical(rasp.Map(lambda x, c=cut: x > c, mean, simplify=False)).named("above"),
                f"mean of {what} > {cut}")
    both = rasp.numerical(rasp.LinearSequenceMap(mean, v, 1, -0.5)).named("combo")
    return both, f"mean - v/2 of {what}"


def _magnitudes(rng: random.Random, seed: int) -> EdgeCase:
    vocab = _letters(rng, 2, 3)
    pool = [0.0, 1.0, -1.0, 0.5] + [s * 10.0 ** k for k in (-45, -30, -8, 6, 12, 20, 29, 31, 38, 39)
                                    for s in (1, -1)] + [3.4e38, 1e-38]
    table = _table(rng, vocab, pool)
    v = rasp.numerical(rasp.Map(lambda t, m=table: m[t], rasp.tokens)).named("v")
    program, what = _numbers_consumer(rng, v, vocab, f"{table}")
    return EdgeCase("magnitudes", seed, what, program, vocab, rng.randint(2, 4))


_NEAR = [0.1 + 0.2, 0.3, 1 / 3, (1 / 3) * 3, 1.0, 0.7 + 0.1, 0.8, 2.0000000000000004, 2.0, 1e-17, 0.0, 0.1 * 3]


def _near_equal(rng: random.Random, seed: int) -> EdgeCase:
    vocab = _letters(rng, 2, 4)
    table = _table(rng, vocab, _NEAR)
    n = rng.randint(2, 4)
    choice = rng.randrange(5)
    if choice < 3:
        v = rasp.categorical(rasp.Map(lambda t, m=table: m[t], rasp.tokens)).named("v")
        if choice == 0:
            return EdgeCase("near_equal", seed, f"categorical {table}", v, vocab, n)
        pred = rng.choice([C.EQ, C.LT, C.NEQ])
        if choice == 1:
            width = rasp.SelectorWidth(rasp.Select(v, v, pred)).named("width")
            return EdgeCase("near_equal", seed, f"width of {pred.name} over {table}", width, vocab, n)
        agg = rasp.Aggregate(rasp.Select(v, v, C.EQ), rasp.indices).named("first")
        return EdgeCase("near_equal", seed, f"aggregate over EQ of {table}", agg, vocab, n)
    v = rasp.numerical(rasp.Map(lambda t, m=table: m[t], rasp.tokens)).named("v")
    c = rng.choice(_NEAR)
    if choice == 3:
        flag = rasp.categorical(rasp.Map(lambda x, c=c: x == c, v, simplify=False)).named("flag")
        return EdgeCase("near_equal", seed, f"numerical {table} == {c!r}", flag, vocab, n)
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), v, default=0)).named("mean")
    flag = rasp.categorical(rasp.Map(lambda x, c=c: x >= c, mean, simplify=False)).named("flag")
    return EdgeCase("near_equal", seed, f"prefix mean of {table} >= {c!r}", flag, vocab, n)


_MIXED = [True, False, 1, 0, 1.0, 0.0, 2, "1", (1,), (True,)]


def _bool_int(rng: random.Random, seed: int) -> EdgeCase:
    vocab = _letters(rng, 2, 4)
    n = rng.randint(2, 4)
    choice = rng.randrange(5)
    if choice == 4:  # a vocabulary mixing them
        toks = tuple(rng.sample([True, 1, 1.0, 0, False, 2, "x"], rng.randint(2, 4)))
        return EdgeCase("bool_int", seed, f"vocab {toks}", rasp.Map(lambda t: t, rasp.tokens).named("same"),
                        toks, n)
    table = _table(rng, vocab, _MIXED)
    if choice == 3:
        nums = {t: (v if not isinstance(v, (str, tuple)) else 3) for t, v in table.items()}
        v = rasp.numerical(rasp.Map(lambda t, m=nums: m[t], rasp.tokens)).named("v")
        mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), v, default=0)).named("m")
        return EdgeCase("bool_int", seed, f"numerical mean of {nums}", mean, vocab, n)
    v = rasp.categorical(rasp.Map(lambda t, m=table: m[t], rasp.tokens)).named("v")
    if choice == 0:
        return EdgeCase("bool_int", seed, f"categorical {table}", v, vocab, n)
    if choice == 1:
        width = rasp.SelectorWidth(rasp.Select(v, v, C.EQ)).named("width")
        return EdgeCase("bool_int", seed, f"width of EQ over {table}", width, vocab, n)
    other = rasp.categorical(rasp.Map(lambda t, m=table: m[t], rasp.tokens)).named("w")
    agg = rasp.Aggregate(rasp.Select(v, v, C.EQ), other).named("copy")
    return EdgeCase("bool_int", seed, f"copy over EQ of {table}", agg, vocab, n)


def _rare_aggregate(rng: random.Random, seed: int) -> EdgeCase:
    vocab = _letters(rng, 2, 3)
    n = rng.randint(3, 5)
    subset = frozenset(rng.sample(range(n), rng.randint(1, min(3, n))))
    tok = rng.choice(vocab)
    shift = rng.randint(0, 2)
    family = [
        (lambda k, q, s=subset: k in s, f"key index in {sorted(subset)}", rasp.indices, rasp.indices),
        (lambda k, q, d=shift: k == q - d, f"key index == query index - {shift}", rasp.indices, rasp.indices),
        (lambda k, q, t=tok: k == t, f"key token == {tok!r}", rasp.tokens, rasp.tokens),
        (lambda k, q, t=tok: k == t and q != t, f"key token == {tok!r} != query token", rasp.tokens, rasp.tokens),
        (lambda k, q: k == q, "key token == query token", rasp.tokens, rasp.tokens),
    ]
    pred, text, keys, queries = rng.choice(family)
    sel: rasp.Selector = rasp.Select(keys, queries, pred)
    if rng.random() < 0.5:
        pred2, text2, keys2, queries2 = rng.choice(family)
        sel = rasp.SelectorAnd(sel, rasp.Select(keys2, queries2, pred2))
        text = f"({text}) and ({text2})"
    value = rng.choice([rasp.tokens, rasp.indices,
                        rasp.categorical(rasp.Map(lambda t, a=tok: t == a, rasp.tokens)).named("is_tok"),
                        rasp.categorical(rasp.Map(lambda i: i % 2, rasp.indices)).named("parity")])
    agg = rasp.Aggregate(sel, value).named("agg")
    return EdgeCase("rare_aggregate", seed, f"aggregate {value.label} where {text}", agg, vocab, n)


def _sizes(rng: random.Random, seed: int) -> EdgeCase:
    n = rng.choice([2, 8, 40, 200, 600, 3000])
    limits = Limits(max_seq_len=rng.choice([50, 1000, 100_000]), max_values=rng.choice([30, 500, 200_000]),
                    max_pairs=rng.choice([100, 10_000, 2_000_000]),
                    max_weight_bytes=rng.choice([20_000, 2_000_000, 200_000_000]))
    choice = rng.randrange(5)
    vocab: tuple = ("a", "b")
    if choice == 0:
        program = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.EQ), rasp.tokens).named("copy")
        what = "copy"
    elif choice == 1:
        program = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.EQ)).named("hist")
        what = "hist"
    elif choice == 2:
        program = rasp.Map(lambda i: i % 2, rasp.indices).named("parity")
        what = "index parity"
    elif choice == 3:
        program = rasp.SequenceMap(lambda a, b: (a + b) % 3, rasp.indices,
                                   rasp.Map(lambda i: i, rasp.indices).named("idx2")).named("pairs")
        what = "index pair sums mod 3"
    else:
        vocab = tuple(range(rng.choice([10, 300, 3000])))
        program = rasp.Map(lambda t: t % 2, rasp.tokens).named("odd")
        what = f"parity of {len(vocab)} int tokens"
    return EdgeCase("sizes", seed, f"{what} at max_seq_len={n}", program, vocab, n, limits)


_GENERATORS = {"magnitudes": _magnitudes, "near_equal": _near_equal, "bool_int": _bool_int,
               "rare_aggregate": _rare_aggregate, "sizes": _sizes}


# ---------------------------------------------------------------------------- checking
_REFUSALS = (errors.UnsupportedProgramError, errors.InputError)


def _inputs(case: EdgeCase, rng: random.Random) -> list[list]:
    vocab = sorted(case.vocab, key=repr)
    total = sum(len(vocab) ** k for k in range(1, case.max_seq_len + 1)) if len(vocab) > 1 else case.max_seq_len
    if total <= EXHAUSTIVE:
        return [list(x) for k in range(1, case.max_seq_len + 1) for x in itertools.product(vocab, repeat=k)]
    return [[rng.choice(vocab) for _ in range(case.max_seq_len if i % 3 == 0 else rng.randint(1, case.max_seq_len))]
            for i in range(RANDOM if case.max_seq_len <= 500 else 10)]


def check_edge(case: EdgeCase) -> EdgeResult:
    from rasp_compiler.compiler import compile_rasp_to_model
    from rasp_compiler.rasp.evaluate import evaluate
    from rasp_compiler.verify import same_value

    start = time.perf_counter()
    try:
        model = compile_rasp_to_model(case.program, case.vocab, case.max_seq_len, limits=case.limits,
                                      strict=True)  # refused or exact: nothing left to a run-time guard
    except _REFUSALS as exc:
        return EdgeResult(case, "refused", f"{type(exc).__name__}: {exc}", 0, time.perf_counter() - start)
    except Exception as exc:  # a crash is a mismatch: every failure must be a clear refusal
        return EdgeResult(case, "mismatch", f"compile crashed: {type(exc).__name__}: {exc}", 0,
                          time.perf_counter() - start)
    inputs = _inputs(case, random.Random(case.seed))
    outs = model.apply_batch([[model.config.bos, *xs] for xs in inputs], backend="numpy")
    for xs, out in zip(inputs, outs):
        try:
            want = evaluate(case.program, xs)
        except Exception as exc:
            return EdgeResult(case, "mismatch", f"compiled, but evaluate raises on {xs!r}: {exc}", len(inputs),
                              time.perf_counter() - start)
        got = out[1:]
        typed = not model.config.output_numerical  # a numerical output decodes to floats
        if len(got) != len(want) or not all(same_value(g, w, typed) for g, w in zip(got, want)):
            return EdgeResult(case, "mismatch", f"on {xs!r}: model {got!r}, evaluate {want!r}", len(inputs),
                              time.perf_counter() - start)
    return EdgeResult(case, "exact", "", len(inputs), time.perf_counter() - start)


def run_edges(per_kind: int, seed: int = 0, kinds: tuple[str, ...] = KINDS, progress=None) -> list[EdgeResult]:
    results = []
    for kind in kinds:
        for s in range(seed, seed + per_kind):
            results.append(check_edge(generate_edge(kind, s)))
            if progress:
                progress()
    return results


__all__ = ["KINDS", "EdgeCase", "EdgeResult", "generate_edge", "check_edge", "run_edges"]
