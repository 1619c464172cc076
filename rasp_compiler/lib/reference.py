"""Plain-Python references for the library programs, written from what each program means.

Nothing here uses RASP: these functions are the independent check that the RASP
programs (and the models compiled from them) compute what their documentation says.
Each takes the input sequence (a list) and returns one output per position. Numerical
programs return floats.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence


def length(xs: Sequence) -> list:
    return [len(xs)] * len(xs)


def reverse(xs: Sequence) -> list:
    return list(reversed(xs))


def hist(xs: Sequence) -> list:
    return [sum(1 for y in xs if y == x) for x in xs]


def sort_unique(xs: Sequence, keys: Sequence | None = None) -> list:
    """Position i takes the value whose key has exactly i smaller keys (None if there is none).

    With unique keys this is the ascending sort. With duplicate keys the tied positions
    must hold equal values (they do when the values are the keys themselves).
    """
    keys = list(xs) if keys is None else list(keys)
    out: list = [None] * len(xs)
    for k, key in enumerate(keys):
        target = sum(1 for other in keys if other < key)
        if out[target] is not None and out[target] != xs[k]:
            raise ValueError("sort_unique: tied keys with different values")
        out[target] = xs[k]
    return out


def sort(xs: Sequence, keys: Sequence | None = None) -> list:
    """Stable ascending sort of ``xs`` by ``keys`` (default: by the values themselves)."""
    keys = list(xs) if keys is None else list(keys)
    order = sorted(range(len(xs)), key=lambda i: keys[i])  # Python's sort is stable
    return [xs[i] for i in order]


def sort_freq(xs: Sequence) -> list:
    """Tokens by descending count; tokens with equal counts keep their input order."""
    counts = {}
    for x in xs:
        counts[x] = counts.get(x, 0) + 1
    order = sorted(range(len(xs)), key=lambda i: -counts[xs[i]])
    return [xs[i] for i in order]


def frac_prevs(xs: Sequence, predicate: Callable[[Any], bool] = lambda t: t == "x") -> list:
    out, hits = [], 0
    for i, x in enumerate(xs):
        hits += 1 if predicate(x) else 0
        out.append(hits / (i + 1))
    return out


def pair_balance(xs: Sequence, open_token: Any = "(", close_token: Any = ")") -> list:
    out, depth = [], 0
    for i, x in enumerate(xs):
        if x == open_token:
            depth += 1
        elif x == close_token:
            depth -= 1
        out.append(depth / (i + 1))
    return out


def shuffle_dyck(xs: Sequence, pairs: str | Iterable = "()") -> list:
    """1 everywhere if each bracket type on its own never dips below zero and ends at zero."""
    if isinstance(pairs, str):
        pairs = [pairs[i:i + 2] for i in range(0, len(pairs), 2)]
    ok = True
    for open_token, close_token in pairs:
        depth = 0
        for x in xs:
            if x == open_token:
                depth += 1
            elif x == close_token:
                depth -= 1
                if depth < 0:
                    ok = False
        if depth != 0:
            ok = False
    return [1 if ok else 0] * len(xs)


def shift_by(xs: Sequence, offset: int = 1) -> list:
    n = len(xs)
    return [xs[i - offset] if 0 <= i - offset < n else None for i in range(n)]


def detect_pattern(xs: Sequence, pattern: Sequence = "abc") -> list:
    pattern = list(pattern)
    size = len(pattern)
    return [None if i + 1 < size else list(xs[i + 1 - size:i + 1]) == pattern for i in range(len(xs))]


def count_less_freq(xs: Sequence, n: int = 2) -> list:
    freq = {x: sum(1 for y in xs if y == x) for x in xs}
    return [sum(1 for x in xs if freq[x] <= n)] * len(xs)


def count(xs: Sequence, token: Any = "a") -> list:
    total = sum(1 for x in xs if x == token)
    return [total] * len(xs)


def running_max(xs: Sequence) -> list:
    out, best = [], None
    for x in xs:
        best = x if best is None or x > best else best
        out.append(best)
    return out


def running_min(xs: Sequence) -> list:
    out, best = [], None
    for x in xs:
        best = x if best is None or x < best else best
        out.append(best)
    return out


def first_occurrence(xs: Sequence) -> list:
    seen: set = set()
    out = []
    for x in xs:
        out.append(x not in seen)
        seen.add(x)
    return out


def induction(xs: Sequence) -> list:
    """What followed the first earlier occurrence of each token (None if there is none)."""
    out = []
    for i, x in enumerate(xs):
        j = list(xs).index(x)
        out.append(xs[j + 1] if j < i else None)
    return out
