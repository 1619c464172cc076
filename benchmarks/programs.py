"""Benchmark programs, written once and built with either RASP module.

Every builder takes the RASP module as its first argument, so the very same program
text is compiled by tracr (``from tracr.rasp import rasp``) and by rasp_compiler
(``from rasp_compiler import rasp``); the two surfaces are identical. Builders that
need the sequence length take it as ``max_seq_len`` (it is a compile-time constant of
the program, e.g. to break ties in a sort).

The programs are written from what they mean, using only what both compilers accept
unless a program says otherwise (``first_occurrence`` uses SelectorAnd on purpose; its
variant ``first_occurrence_noand`` computes the same thing without it).

``PROGRAMS`` describes each one: builder, vocabulary (one per program, used at every
length), how to draw inputs, and a one-line meaning. Outputs are one value per position.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import string
from typing import Any, Callable, Sequence

LETTERS16 = tuple(string.ascii_lowercase[:16])  # a..p


# ----------------------------------------------------------------------------- builders
def build_length(rasp, max_seq_len=None):
    """Length of the input, at every position."""
    everything = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE).named("all")
    return rasp.SelectorWidth(everything).named("length")


def build_reverse(rasp, max_seq_len=None):
    """The input backwards: position i reads position length-1-i."""
    length = build_length(rasp)
    mirror = rasp.SequenceMap(lambda n, i: n - i - 1, length, rasp.indices).named("mirror")
    flip = rasp.Select(rasp.indices, mirror, rasp.Comparison.EQ).named("flip")
    return rasp.Aggregate(flip, rasp.tokens).named("reverse")


def build_hist(rasp, max_seq_len=None):
    """How many times the token at each position occurs in the whole input."""
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_token")
    return rasp.SelectorWidth(same).named("hist")


def _sort_by(rasp, values, keys, name):
    """values reordered by increasing key; keys must be distinct at every position."""
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named(f"{name}_smaller")
    target = rasp.SelectorWidth(smaller).named(f"{name}_target")
    place = rasp.Select(target, rasp.indices, rasp.Comparison.EQ).named(f"{name}_place")
    return rasp.Aggregate(place, values).named(name)


def build_sort_unique(rasp, max_seq_len=None):
    """Tokens in increasing order; inputs have no repeated token."""
    return _sort_by(rasp, rasp.tokens, rasp.tokens, "sort_unique")


def build_sort(rasp, max_seq_len):
    """Tokens in increasing order, repeats allowed (ties kept in input order).

    Ties are broken by making the key (token, position) into one integer
    token * max_seq_len + position, which is distinct at every position.
    """
    n = max_seq_len
    key = rasp.SequenceMap(lambda t, i: t * n + i, rasp.tokens, rasp.indices).named("sort_key")
    return _sort_by(rasp, rasp.tokens, key, "sort")


def build_sort_freq(rasp, max_seq_len):
    """Tokens ordered by decreasing frequency (ties in input order)."""
    n = max_seq_len
    hist = build_hist(rasp)
    key = rasp.SequenceMap(lambda h, i: (n - h) * n + i, hist, rasp.indices).named("freq_key")
    return _sort_by(rasp, rasp.tokens, key, "sort_freq")


def _prefix_mean(rasp, zero_one, name):
    """Mean of a numerical 0/1 SOp over positions 0..i, at each position i."""
    upto = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named(f"{name}_upto")
    return rasp.numerical(rasp.Aggregate(upto, zero_one, default=0)).named(name)


def build_frac_prevs(rasp, max_seq_len=None, token="a"):
    """Fraction of positions 0..i that hold ``token`` (numerical)."""
    is_tok = rasp.numerical(rasp.Map(lambda t: 1 if t == token else 0, rasp.tokens)).named("is_" + token)
    return _prefix_mean(rasp, is_tok, "frac_prevs")


def _balance(rasp, open_tok, close_tok, name):
    """(#open - #close) among positions 0..i, divided by i+1 (numerical)."""
    opens = rasp.numerical(rasp.Map(lambda t: 1 if t == open_tok else 0, rasp.tokens)).named(f"{name}_is_open")
    closes = rasp.numerical(rasp.Map(lambda t: 1 if t == close_tok else 0, rasp.tokens)).named(f"{name}_is_close")
    frac_open = _prefix_mean(rasp, opens, f"{name}_frac_open")
    frac_close = _prefix_mean(rasp, closes, f"{name}_frac_close")
    return rasp.numerical(rasp.LinearSequenceMap(frac_open, frac_close, 1, -1)).named(name)


def build_pair_balance(rasp, max_seq_len=None):
    """Running balance of "(" over ")": (#"(" - #")") in positions 0..i, over i+1."""
    return _balance(rasp, "(", ")", "pair_balance")


def build_dyck2(rasp, max_seq_len=None):
    """Shuffle-Dyck-2 over "()" and "{}": 1 at i when x[0..i] is balanced, else 0.

    Balanced: no prefix closes more of either pair than it opened, and both pairs
    are closed at i.
    """
    bal_round = _balance(rasp, "(", ")", "bal_round")
    bal_curly = _balance(rasp, "{", "}", "bal_curly")
    neg_round = rasp.numerical(rasp.Map(lambda b: 1 if b < 0 else 0, bal_round)).named("neg_round")
    neg_curly = rasp.numerical(rasp.Map(lambda b: 1 if b < 0 else 0, bal_curly)).named("neg_curly")
    negs = rasp.numerical(rasp.LinearSequenceMap(neg_round, neg_curly, 1, 1)).named("negs")
    any_neg = rasp.numerical(rasp.Map(lambda s: 1 if s > 0 else 0, negs)).named("any_neg")
    ever_neg = _prefix_mean(rasp, any_neg, "ever_neg")
    never_neg = rasp.categorical(rasp.Map(lambda f: f == 0, ever_neg)).named("never_neg")
    round_closed = rasp.categorical(rasp.Map(lambda b: b == 0, bal_round)).named("round_closed")
    curly_closed = rasp.categorical(rasp.Map(lambda b: b == 0, bal_curly)).named("curly_closed")
    closed = rasp.SequenceMap(lambda a, b: a and b, round_closed, curly_closed).named("closed")
    return rasp.SequenceMap(lambda a, b: 1 if (a and b) else 0, closed, never_neg).named("dyck2")


def build_shift_by(rasp, max_seq_len=None, offset=1):
    """Token at position i - offset (None for the first ``offset`` positions)."""
    later = rasp.Map(lambda i: i + offset, rasp.indices).named(f"index_plus_{offset}")
    back = rasp.Select(later, rasp.indices, rasp.Comparison.EQ).named(f"back_{offset}")
    return rasp.Aggregate(back, rasp.tokens).named(f"shift_by_{offset}")


def build_detect_pattern(rasp, max_seq_len=None, pattern="abc"):
    """1 at i when x[i-len(pattern)+1..i] == pattern, 0 where it differs (None before)."""
    k = len(pattern)
    hits = []
    for j, ch in enumerate(pattern):
        offset = k - 1 - j
        src = rasp.tokens if offset == 0 else build_shift_by(rasp, offset=offset)
        hits.append(rasp.Map(lambda t, _c=ch: t == _c, src).named(f"is_{ch}_at_minus_{offset}"))
    acc = hits[0]
    for j, h in enumerate(hits[1:], start=1):
        acc = rasp.SequenceMap(lambda a, b: a and b, acc, h).named(f"match_{j}")
    return rasp.Map(lambda m: 1 if m else 0, acc).named("detect_pattern")


def build_count_a(rasp, max_seq_len=None, token="a"):
    """Number of ``token`` in the whole input, at every position."""
    is_tok = rasp.Map(lambda t: t == token, rasp.tokens).named("is_" + token)
    yes = rasp.Map(lambda t: True, rasp.tokens).named("yes")
    hits = rasp.Select(is_tok, yes, rasp.Comparison.EQ).named("where_" + token)
    return rasp.SelectorWidth(hits).named("count_" + token)


def build_first_occurrence(rasp, max_seq_len=None):
    """1 at i when tokens[i] does not occur before i, else 0 (uses SelectorAnd)."""
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_token")
    before = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT).named("before")
    earlier_same = rasp.SelectorWidth(rasp.SelectorAnd(same, before)).named("earlier_same")
    return rasp.Map(lambda c: 1 if c == 0 else 0, earlier_same).named("first_occurrence")


def build_first_occurrence_noand(rasp, max_seq_len, vocab=LETTERS16[:8]):
    """first_occurrence without SelectorAnd.

    #(same token, earlier) = #(key (rank, i) < (rank_q, i_q)) - #(rank < rank_q), with
    the pair (rank, i) packed into the integer rank * max_seq_len + i.
    """
    n = max_seq_len
    rank = {t: r for r, t in enumerate(sorted(vocab))}
    key = rasp.SequenceMap(lambda t, i: rank[t] * n + i, rasp.tokens, rasp.indices).named("tok_pos")
    below_pair = rasp.SelectorWidth(rasp.Select(key, key, rasp.Comparison.LT)).named("below_pair")
    below_tok = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT)).named("below_tok")
    earlier_same = rasp.SequenceMap(lambda a, b: a - b, below_pair, below_tok).named("earlier_same")
    return rasp.Map(lambda c: 1 if c == 0 else 0, earlier_same).named("first_occurrence_noand")


# ----------------------------------------------------------------------------- inputs
def uniform_inputs(vocab: Sequence[Any], max_seq_len: int, n: int, rng: random.Random,
                   full_frac: float = 0.2) -> list[list]:
    """n inputs: a fifth full length, the rest with length uniform in 1..max_seq_len."""
    out = []
    n_full = max(1, int(round(n * full_frac)))
    for k in range(n):
        length = max_seq_len if k < n_full else rng.randint(1, max_seq_len)
        out.append([rng.choice(vocab) for _ in range(length)])
    return out


def distinct_inputs(vocab, max_seq_len, n, rng, full_frac=0.2):
    """Like uniform_inputs but without repeated tokens (for sort_unique)."""
    out = []
    n_full = max(1, int(round(n * full_frac)))
    top = min(max_seq_len, len(vocab))
    for k in range(n):
        length = top if k < n_full else rng.randint(1, top)
        out.append(rng.sample(list(vocab), length))
    return out


def bracket_inputs(vocab, max_seq_len, n, rng, full_frac=0.2):
    """Half uniform strings, half built to be balanced or nearly (so both answers occur)."""
    half = n // 2
    out = uniform_inputs(vocab, max_seq_len, n - half, rng, full_frac)
    pairs = [("(", ")"), ("{", "}")]
    for k in range(half):
        length = max_seq_len if k < max(1, int(half * full_frac)) else rng.randint(1, max_seq_len)
        seq, stack = [], []
        while len(seq) < length:
            remaining = length - len(seq)
            if stack and (remaining <= len(stack) or rng.random() < 0.5):
                seq.append(stack.pop(rng.randrange(len(stack))))  # shuffle-Dyck: close any open pair
            else:
                o, c = rng.choice(pairs)
                seq.append(o)
                stack.append(c)
        if rng.random() < 0.3:  # perturb one position
            seq[rng.randrange(length)] = rng.choice(vocab)
        out.append(seq)
    return out


def exhaustive_inputs(vocab, max_seq_len):
    return [list(p) for L in range(1, max_seq_len + 1) for p in itertools.product(vocab, repeat=L)]


def n_exhaustive(vocab, max_seq_len) -> int:
    return sum(len(vocab) ** L for L in range(1, max_seq_len + 1))


@dataclasses.dataclass(frozen=True)
class Program:
    name: str
    build: Callable[..., Any]
    vocab: tuple
    meaning: str
    inputs: Callable[..., list] = uniform_inputs
    exhaustive_ok: bool = True  # False when some inputs are outside the program's domain
    uses: str = ""  # features tracr is known to lack, for the report
    max_len: int | None = None  # longest max_seq_len the default benchmark compiles
    max_len_why: str = ""


def _vocab_str(v):
    return "{" + ",".join(map(str, v)) + "}"


PROGRAMS: dict[str, Program] = {p.name: p for p in [
    Program("length", build_length, LETTERS16, "length of the input"),
    Program("reverse", build_reverse, LETTERS16, "input reversed"),
    Program("hist", build_hist, LETTERS16, "count of each position's token"),
    Program("sort_unique", build_sort_unique, tuple(range(64)), "sort distinct integers",
            inputs=distinct_inputs, exhaustive_ok=False),
    Program("sort", build_sort, tuple(range(16)), "sort integers with repeats (stable)"),
    Program("sort_freq", build_sort_freq, ("a", "b", "c", "d"), "tokens by decreasing frequency",
            max_len=40, max_len_why="its sort key takes (L+1)*L values (4160 at L=64), which "
            "makes a model of about 4*10^8 parameters that takes minutes to build and run"),
    Program("frac_prevs", build_frac_prevs, LETTERS16, 'fraction of "a" in x[0..i] (numerical)'),
    Program("pair_balance", build_pair_balance, ("(", ")") + LETTERS16[:14],
            '(#"(" - #")")/(i+1) over x[0..i] (numerical)'),
    Program("dyck2", build_dyck2, ("(", ")", "{", "}"), "shuffle-Dyck-2 prefix is balanced",
            inputs=bracket_inputs),
    Program("shift_by", build_shift_by, ("a", "b", "c", "d"), "token at i-1"),
    Program("detect_pattern", build_detect_pattern, ("a", "b", "c"), 'x[i-2..i] == "abc"'),
    Program("count_a", build_count_a, ("a", "b", "c"), 'number of "a" in the input'),
    Program("first_occurrence", build_first_occurrence, LETTERS16[:8],
            "token not seen before i (SelectorAnd)", uses="SelectorAnd"),
    Program("first_occurrence_noand", build_first_occurrence_noand, LETTERS16[:8],
            "same as first_occurrence, without SelectorAnd"),
]}
