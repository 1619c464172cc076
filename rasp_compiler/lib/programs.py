"""A library of RASP programs, each built by a documented ``make_*`` function.

Every function returns a *named* SOp, and names its important intermediates with
readable labels derived from the output name (``reverse_opp_idx``, ``sort_target_pos``,
...). Pass ``name=`` when you use the same factory twice with different arguments in one
program, so that no two different nodes share a label.

The programs are written to compile well:

* ``Select`` keys and queries are categorical SOps;
* numerical ``Aggregate`` s average numerical 0/1 (or small integer) values, default 0;
* a categorical ``Aggregate`` always selects one position (or positions holding equal values);
* non-linear ``SequenceMap`` s take categorical inputs; numerical values are combined with
  ``LinearSequenceMap`` (free: no MLP);
* the number of sequential attention/MLP steps is kept small.

Several names follow tracr's library (``make_length``, ``make_reverse``, ``make_hist``,
``make_sort_unique``, ``make_sort``, ``make_sort_freq``, ``make_frac_prevs``,
``make_pair_balance``, ``make_shuffle_dyck``, ``make_shuffle_dyck2``, ``shift_by``,
``detect_pattern``, ``make_count``) and accept the same arguments, so tracr code keeps
working; the bodies are written independently.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Sequence

from rasp_compiler.errors import RaspTypeError
from rasp_compiler.rasp import core as rasp

__all__ = [
    "length", "make_length", "make_reverse", "make_hist", "make_sort_unique", "make_sort",
    "make_sort_freq", "make_frac_prevs", "make_pair_balance", "make_shuffle_dyck", "make_dyck",
    "make_shuffle_dyck2", "make_shift_by", "shift_by", "make_detect_pattern", "detect_pattern",
    "make_count", "make_count_less_freq", "make_nary_sequencemap", "make_running_max", "make_running_min",
    "make_first_occurrence", "make_induction_head",
]

# --------------------------------------------------------------------------- helpers
_BRACKET_WORDS = {"(": "lparen", ")": "rparen", "[": "lbracket", "]": "rbracket",
                  "{": "lbrace", "}": "rbrace", "<": "langle", ">": "rangle"}
_PAIR_WORDS = {("(", ")"): "paren", ("[", "]"): "bracket", ("{", "}"): "brace", ("<", ">"): "angle"}


def _slug(value: Any) -> str:
    """A readable identifier fragment for a token value (``"("`` -> ``"lparen"``)."""
    text = str(value)
    if text in _BRACKET_WORDS:
        return _BRACKET_WORDS[text]
    if text.startswith("-") and text[1:].replace(".", "", 1).isdigit():
        text = "m" + text[1:]
    out = []
    for ch in text:
        if ch.isalnum() or ch == "_":
            out.append(ch)
        elif ch == ".":
            out.append("p")
        else:
            out.append(f"x{ord(ch):x}")
    return "".join(out) or "empty"


def _indicator(predicate: Callable[[Any], bool], sop: rasp.SOp, name: str) -> rasp.SOp:
    """Numerical 1/0 per position: whether ``predicate`` holds for ``sop``'s value there."""
    return rasp.numerical(rasp.Map(lambda t, _p=predicate: 1 if _p(t) else 0, sop)).named(name)


def _linear_sum(terms: Sequence[rasp.SOp], name: str) -> rasp.SOp:
    """Numerical sum of numerical SOps, as a chain of (free) LinearSequenceMaps."""
    if not terms:
        raise ValueError(f"{name}: nothing to sum")
    if len(terms) == 1:
        return terms[0]
    total = terms[0]
    for j, term in enumerate(terms[1:], start=1):
        label = name if j == len(terms) - 1 else f"{name}_partial{j}"
        total = rasp.numerical(rasp.LinearSequenceMap(total, term, 1, 1)).named(label)
    return total


def _prefix_mean(values: rasp.SOp, name: str) -> rasp.SOp:
    """Numerical mean of ``values`` over positions 0..i, at every position i."""
    prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named(f"{name}_prefix")
    return rasp.numerical(rasp.Aggregate(prefix, values, default=0)).named(name)


def _whole_mean(values: rasp.SOp, name: str) -> rasp.SOp:
    """Numerical mean of ``values`` over the whole sequence, at every position."""
    everything = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE).named(f"{name}_all")
    return rasp.numerical(rasp.Aggregate(everything, values, default=0)).named(name)


# --------------------------------------------------------------------------- length, reverse
@functools.cache
def make_length() -> rasp.SOp:
    """The number of tokens, at every position: ``SelectorWidth(Select(tokens, tokens, TRUE))``.

    Named ``"length"``. Always returns the same (immutable) SOp, so programs that use
    length in several places share one node.
    """
    select_all = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE).named("length_all")
    return rasp.SelectorWidth(select_all).named("length")


length = make_length()


@functools.cache
def _reverse_selector() -> rasp.Selector:
    # length - index is linear in two SOps with numeric values: a LinearSequenceMap costs
    # nothing, and one staircase MLP (2 neurons per value) makes it categorical, where a
    # SequenceMap would need a neuron for every (length, index) pair.
    diff = rasp.numerical(rasp.LinearSequenceMap(make_length(), rasp.indices, 1, -1)).named("length_minus_index")
    opp_idx = rasp.categorical(rasp.Map(lambda d: int(round(d)) - 1, diff)).named("opp_idx")
    return rasp.Select(rasp.indices, opp_idx, rasp.Comparison.EQ).named("reverse_select")


def make_reverse(sop: rasp.SOp = rasp.tokens, *, name: str = "reverse") -> rasp.SOp:
    """``sop`` reversed: position i holds ``sop[length - 1 - i]``.

    ``opp_idx = length - 1 - indices`` (a free LinearSequenceMap and one small MLP, shared
    by every reverse), then a
    categorical Aggregate selecting exactly the mirrored position.
    """
    return rasp.Aggregate(_reverse_selector(), sop).named(name)


# --------------------------------------------------------------------------- histograms, sorting
def make_hist(sop: rasp.SOp = rasp.tokens, *, name: str = "hist") -> rasp.SOp:
    """For each position, how many positions hold the same value of ``sop`` (itself included)."""
    same = rasp.Select(sop, sop, rasp.Comparison.EQ).named(f"{name}_same")
    return rasp.SelectorWidth(same).named(name)


def make_sort_unique(vals: rasp.SOp, keys: rasp.SOp, *, name: str = "sort_unique") -> rasp.SOp:
    """``vals`` reordered so that ``keys`` ascend, assuming the keys are all different.

    ``target_pos[k]`` = number of keys smaller than ``keys[k]``; position i then takes the
    value from the position whose target is i. With duplicate keys, tied positions share a
    target (a categorical Aggregate then needs their ``vals`` to be equal) and the positions
    no key is sent to hold ``None``; use :func:`make_sort` for duplicate keys.
    """
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named(f"{name}_smaller")
    target_pos = rasp.SelectorWidth(smaller).named(f"{name}_target_pos")
    to_target = rasp.Select(target_pos, rasp.indices, rasp.Comparison.EQ).named(f"{name}_select_target")
    return rasp.Aggregate(to_target, vals).named(name)


def make_sort(vals: rasp.SOp, keys: rasp.SOp, *, name: str = "sort", descending: bool = False,
              max_seq_len: int | None = None, min_key: Any = None) -> rasp.SOp:
    """``vals`` reordered so that ``keys`` ascend (or descend); equal keys keep their order.

    Position k goes to ``target_pos[k]`` = (number of keys that come before ``keys[k]``)
    + (number of earlier positions with an equal key). Both counts are selector widths
    over the keys' own values, the second a conjunction (one head), so the key space is
    never multiplied by the positions. ``max_seq_len`` and ``min_key`` are accepted for
    tracr compatibility and not needed.
    """
    del max_seq_len, min_key
    before = rasp.Comparison.GT if descending else rasp.Comparison.LT
    smaller = rasp.numerical(rasp.SelectorWidth(
        rasp.Select(keys, keys, before).named(f"{name}_key_before"))).named(f"{name}_n_before")
    ties = rasp.SelectorAnd(rasp.Select(keys, keys, rasp.Comparison.EQ),
                            rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT)).named(f"{name}_earlier_tie")
    earlier_ties = rasp.numerical(rasp.SelectorWidth(ties)).named(f"{name}_n_earlier_ties")
    total = rasp.numerical(rasp.LinearSequenceMap(smaller, earlier_ties, 1, 1)).named(f"{name}_target_sum")
    target_pos = rasp.categorical(rasp.Map(lambda x: int(round(x)), total)).named(f"{name}_target_pos")
    to_target = rasp.Select(target_pos, rasp.indices, rasp.Comparison.EQ).named(f"{name}_select_target")
    return rasp.Aggregate(to_target, vals).named(name)


def make_sort_freq(max_seq_len: int | None = None, *, sop: rasp.SOp = rasp.tokens,
                   name: str = "sort_freq") -> rasp.SOp:
    """``sop`` sorted by descending frequency; ties (equal counts) keep input order.

    ``make_sort(sop, hist, descending=True)``: comparing counts with ``>`` needs no
    negated copy of ``hist``. ``max_seq_len`` is accepted for tracr compatibility.
    """
    del max_seq_len
    hist = make_hist(sop, name=f"{name}_hist")
    return make_sort(sop, hist, name=name, descending=True)


# --------------------------------------------------------------------------- prefix fractions
def make_frac_prevs(predicate: Callable[[Any], bool] | rasp.SOp = lambda t: t == "x", *,
                    sop: rasp.SOp = rasp.tokens, name: str = "frac_prevs") -> rasp.SOp:
    """Numerical: the fraction of positions 0..i whose ``sop`` value satisfies ``predicate``.

    ``predicate`` is a function of one value (default: ``== "x"``). As in tracr, it may
    instead be an SOp of booleans / 0-1 values (e.g. ``rasp.tokens == "x"``), which is
    then averaged directly. The result is a float in [0, 1] (0 on an empty prefix never
    happens: position i always sees itself).
    """
    if isinstance(predicate, rasp.SOp):
        hits = rasp.numerical(predicate)
    else:
        if not callable(predicate):
            raise RaspTypeError(f"make_frac_prevs needs a predicate function or an SOp, got {predicate!r}")
        hits = _indicator(predicate, sop, f"{name}_hits")
    return _prefix_mean(hits, name)


def _pair_parts(sop: rasp.SOp, open_token: Any, close_token: Any, name: str):
    """(open indicator, close indicator, balance) for one bracket type."""
    is_open = _indicator(lambda t, _o=open_token: t == _o, sop, f"{name}_is_open")
    is_close = _indicator(lambda t, _c=close_token: t == _c, sop, f"{name}_is_close")
    frac_open = _prefix_mean(is_open, f"{name}_frac_open")
    frac_close = _prefix_mean(is_close, f"{name}_frac_close")
    balance = rasp.numerical(rasp.LinearSequenceMap(frac_open, frac_close, 1, -1)).named(name)
    return is_open, is_close, balance


def make_pair_balance(sop: rasp.SOp = rasp.tokens, open_token: Any = "(", close_token: Any = ")",
                      *, name: str = "pair_balance") -> rasp.SOp:
    """Numerical: (opens - closes) among positions 0..i, divided by i + 1.

    Two prefix fractions (of ``open_token`` and of ``close_token``) combined by a free
    ``LinearSequenceMap(frac_open, frac_close, 1, -1)``. Negative exactly where more
    brackets were closed than opened so far.
    """
    if open_token == close_token:
        raise ValueError(f"make_pair_balance: open and close tokens must differ, got {open_token!r} twice")
    return _pair_parts(sop, open_token, close_token, name)[2]


# --------------------------------------------------------------------------- shuffle-Dyck
def _parse_pairs(pairs: str | Iterable) -> list[tuple[Any, Any]]:
    if isinstance(pairs, str):
        if len(pairs) == 0 or len(pairs) % 2:
            raise ValueError(f"pairs must be an even-length string like '()[]', got {pairs!r}")
        out = [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]
    else:
        out = []
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(f"each bracket pair must have an open and a close token, got {pair!r}")
            out.append((pair[0], pair[1]))
    if not out:
        raise ValueError("make_shuffle_dyck needs at least one bracket pair")
    seen: set = set()
    for o, c in out:
        for t in (o, c):
            if t in seen:
                raise ValueError(f"bracket token {t!r} appears twice in pairs {pairs!r}")
            seen.add(t)
    return out


def make_shuffle_dyck(pairs: str | Iterable = "()", *, sop: rasp.SOp = rasp.tokens,
                      name: str = "shuffle_dyck") -> rasp.SOp:
    """1 at every position if the whole sequence is *shuffle-Dyck* balanced, else 0.

    Shuffle-Dyck (as in the RASP and tracr papers) checks every bracket type
    independently: for each pair, no prefix closes more than it opened, and the whole
    sequence closes all it opened. Interleavings such as ``"([)]"`` are accepted.
    Tokens that are not brackets are allowed and ignored. ``pairs`` is a string of
    open/close characters (``"()"``, ``"(){}"``, ``"()[]{}"``) or a list of 2-token pairs.

    Structure (two attention layers, three MLP steps):

    1. per pair: 0/1 open / close indicators (MLP);
    2. per pair: prefix balance (two prefix means, combined linearly) and whole-sequence
       balance (two whole-sequence means, combined linearly) (attention);
    3. per pair: ``balance < 0`` and ``total balance != 0`` as numerical 0/1 (MLP), summed
       over pairs for free;
    4. ``has_neg``: mean over all positions of the negative count (attention);
    5. output ``1 if has_neg + unclosed == 0 else 0`` (MLP).
    """
    parsed = _parse_pairs(pairs)
    negatives, unclosed = [], []
    for open_token, close_token in parsed:
        tag = _PAIR_WORDS.get((str(open_token), str(close_token)), f"{_slug(open_token)}{_slug(close_token)}")
        base = f"{name}_{tag}"
        is_open, is_close, balance = _pair_parts(sop, open_token, close_token, f"{base}_balance")
        negatives.append(rasp.numerical(rasp.Map(lambda b: 1 if b < 0 else 0, balance)).named(f"{base}_negative"))
        total_open = _whole_mean(is_open, f"{base}_total_open")
        total_close = _whole_mean(is_close, f"{base}_total_close")
        total = rasp.numerical(rasp.LinearSequenceMap(total_open, total_close, 1, -1)).named(f"{base}_total")
        unclosed.append(rasp.numerical(rasp.Map(lambda x: 1 if x != 0 else 0, total)).named(f"{base}_unclosed"))
    any_negative_here = _linear_sum(negatives, f"{name}_negative_here")
    has_neg = _whole_mean(any_negative_here, f"{name}_has_neg")
    any_unclosed = _linear_sum(unclosed, f"{name}_unclosed")
    bad = rasp.numerical(rasp.LinearSequenceMap(has_neg, any_unclosed, 1, 1)).named(f"{name}_bad")
    return rasp.Map(lambda x: 0 if x > 0 else 1, bad).named(name)


make_dyck = make_shuffle_dyck


def make_shuffle_dyck2(*, sop: rasp.SOp = rasp.tokens, name: str = "shuffle_dyck2") -> rasp.SOp:
    """Shuffle-Dyck over two bracket types, ``()`` and ``{}`` (see :func:`make_shuffle_dyck`)."""
    return make_shuffle_dyck("(){}", sop=sop, name=name)


# --------------------------------------------------------------------------- shifts and patterns
def make_shift_by(offset: int = 1, sop: rasp.SOp = rasp.tokens, *, name: str | None = None) -> rasp.SOp:
    """``sop`` moved ``offset`` positions later: position i holds ``sop[i - offset]``.

    Positions with no source (``i < offset``) hold ``None`` (0 when ``sop`` is numerical,
    in which case the result is numerical too). A negative offset shifts earlier.
    """
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise RaspTypeError(f"make_shift_by: offset must be an int, got {offset!r}")
    name = name or f"shift_by_{_slug(offset)}"
    source = rasp.Select(rasp.indices, rasp.indices,
                         lambda k, q, _d=offset: q == k + _d).named(f"{name}_select")
    if rasp.is_numerical(sop):
        return rasp.numerical(rasp.Aggregate(source, sop, default=0)).named(name)
    return rasp.Aggregate(source, sop, default=None).named(name)


shift_by = make_shift_by


def make_detect_pattern(sop: rasp.SOp = rasp.tokens, pattern: Sequence[Any] = "abc", *,
                        name: str | None = None) -> rasp.SOp:
    """``True`` at position i when ``sop[i-len(pattern)+1 .. i]`` equals ``pattern``, else ``False``.

    Positions before ``len(pattern) - 1`` hold ``None`` (as tracr's). For each pattern
    element j, a numerical 0/1 "matches pattern[j]" indicator is shifted
    ``len(pattern)-1-j`` positions later (one numerical head each, default 0); the
    shifted indicators, plus ``len(pattern)+1`` where the window fits (a numerical Map of
    indices: free), are summed for free, and a final categorical Map reads the sum.
    """
    pattern = list(pattern)
    if not pattern:
        raise ValueError("make_detect_pattern needs a non-empty pattern")
    size = len(pattern)
    name = name or "detect_" + "_".join(_slug(t) for t in pattern)
    indicators: dict[Any, rasp.SOp] = {}
    used_labels: set[str] = set()
    terms = []
    for j, token in enumerate(pattern):
        key = (type(token).__name__, repr(token))
        if key not in indicators:
            label = f"{name}_is_{_slug(token)}"
            label = label if label not in used_labels else f"{label}_{j}"
            used_labels.add(label)
            indicators[key] = _indicator(lambda t, _w=token: t == _w, sop, label)
        hit = indicators[key]
        delay = size - 1 - j
        if delay == 0:
            terms.append(hit)
            continue
        earlier = rasp.Select(rasp.indices, rasp.indices,
                              lambda k, q, _d=delay: q == k + _d).named(f"{name}_back{delay}")
        terms.append(rasp.numerical(rasp.Aggregate(earlier, hit, default=0)).named(f"{name}_match{j}"))
    fits = rasp.numerical(rasp.Map(lambda i, _n=size: _n + 1 if i >= _n - 1 else 0,
                                   rasp.indices)).named(f"{name}_fits")
    score = _linear_sum(terms + [fits], f"{name}_matches")
    return rasp.Map(lambda s, _n=size: None if s < _n + 1 else s == 2 * _n + 1, score).named(name)


detect_pattern = make_detect_pattern


# --------------------------------------------------------------------------- counting
def make_count(sop: rasp.SOp = rasp.tokens, token: Any = "a", *, name: str | None = None) -> rasp.SOp:
    """At every position, how many positions of ``sop`` hold ``token``."""
    name = name or f"count_{_slug(token)}"
    holds = rasp.Select(sop, sop, lambda k, q, _t=token: k == _t).named(f"{name}_select")
    return rasp.SelectorWidth(holds).named(name)


def make_count_less_freq(n: int = 2, sop: rasp.SOp = rasp.tokens, *, name: str = "count_less_freq") -> rasp.SOp:
    """At every position, how many positions hold a value that occurs at most ``n`` times."""
    hist = make_hist(sop, name=f"{name}_hist")
    rare = rasp.Select(hist, hist, lambda k, q, _n=n: k <= _n).named(f"{name}_rare")
    return rasp.SelectorWidth(rare).named(name)


def make_nary_sequencemap(f: Callable[..., Any], *sops: rasp.SOp, name: str | None = None) -> rasp.SOp:
    """``f(a[i], b[i], c[i], ...)`` at each position, for any number of SOps.

    The inputs are paired up into one categorical SOp of tuples by a chain of
    SequenceMaps, then one Map applies ``f``: each step is an MLP whose size grows with
    the product of the value sets, so keep the inputs' value sets small.
    """
    if not sops:
        raise RaspTypeError("make_nary_sequencemap needs at least one SOp")
    packed = rasp.Map(lambda x: (x,), sops[0])
    for sop in sops[1:]:
        packed = rasp.SequenceMap(lambda acc, x: acc + (x,), packed, sop)
    out = rasp.Map(lambda args, _f=f: _f(*args), packed)
    return out.named(name) if name else out


def _running_extreme(sop: rasp.SOp, values: Iterable, name: str, largest: bool) -> rasp.SOp:
    ordered = sorted(set(values))
    if not ordered:
        raise ValueError(f"{name}: values must list the values the SOp can take")
    if len(ordered) == 1:
        only = ordered[0]
        return rasp.Map(lambda t, _v=only: _v, sop).named(name)
    # Thresholds whose "seen so far" flags decide the answer: for a running max, "some
    # value >= v seen" for every v but the smallest; for a min, "some value <= v seen" for
    # every v but the largest. The number of raised flags indexes the answer.
    thresholds = ordered[1:] if largest else ordered[:-1]
    word = "ge" if largest else "le"
    flags = []
    for v in thresholds:
        tag = f"{word}_{_slug(v)}"
        if largest:
            hits = _indicator(lambda t, _v=v: t >= _v, sop, f"{name}_{tag}")
        else:
            hits = _indicator(lambda t, _v=v: t <= _v, sop, f"{name}_{tag}")
        seen_fraction = _prefix_mean(hits, f"{name}_frac_{tag}")
        flags.append(rasp.numerical(rasp.Map(lambda x: 1 if x > 0 else 0, seen_fraction)).named(f"{name}_seen_{tag}"))
    count = _linear_sum(flags, f"{name}_rank")
    top = len(ordered) - 1
    if largest:
        decode = lambda c, _o=tuple(ordered): _o[int(round(c))]  # noqa: E731
    else:
        decode = lambda c, _o=tuple(ordered), _t=top: _o[_t - int(round(c))]  # noqa: E731
    return rasp.Map(decode, count).named(name)


def make_running_max(sop: rasp.SOp = rasp.tokens, values: Iterable = (1, 2, 3, 4), *,
                     name: str = "running_max") -> rasp.SOp:
    """The largest value of ``sop`` among positions 0..i (categorical).

    ``values`` is the finite, ordered set of values ``sop`` can take (numbers, letters...).
    Works in value space: for every value v but the smallest, a prefix mean of the 0/1
    indicator ``sop >= v`` says whether such a value was seen; those flags (0/1, numerical)
    are summed for free and the count is mapped back to the value.
    """
    return _running_extreme(sop, values, name, largest=True)


def make_running_min(sop: rasp.SOp = rasp.tokens, values: Iterable = (1, 2, 3, 4), *,
                     name: str = "running_min") -> rasp.SOp:
    """The smallest value of ``sop`` among positions 0..i; see :func:`make_running_max`."""
    return _running_extreme(sop, values, name, largest=False)


def make_first_occurrence(sop: rasp.SOp = rasp.tokens, *, name: str = "first_occurrence") -> rasp.SOp:
    """``True`` at position i iff no earlier position holds the same value of ``sop``."""
    earlier = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT).named(f"{name}_earlier")
    same = rasp.Select(sop, sop, rasp.Comparison.EQ).named(f"{name}_same")
    earlier_same = rasp.SelectorAnd(earlier, same).named(f"{name}_earlier_same")
    previous = rasp.SelectorWidth(earlier_same).named(f"{name}_previous")
    return rasp.Map(lambda w: w == 0, previous).named(name)


# --------------------------------------------------------------------------- induction
def make_induction_head(sop: rasp.SOp = rasp.tokens, *, name: str = "induction") -> rasp.SOp:
    """At position i, the value that followed the first earlier occurrence of ``sop[i]``.

    ``a b c a`` gives ``None None None b``: the last ``a`` looks back to the first ``a``
    and copies what came after it. The classic two-head circuit, causal throughout:

    1. previous-token head: each position reads the value one position back
       (``Select(indices, indices, k == q - 1)``, decided exactly as causal);
    2. each position counts the earlier positions with the same previous value, so the
       pair (previous value, count) names one position: the count is 0 right after the
       first occurrence of a value;
    3. match + copy head: the query asks for (its own value, 0) among keys at or before
       it, and copies the key's own value.

    The pair key is unique over positions, so the categorical copy is provably a single
    position (exact for every input); it compiles with ``causal=True``.
    """
    previous = make_shift_by(1, sop, name=f"{name}_prev")
    earlier_same = rasp.SelectorAnd(rasp.Select(previous, previous, rasp.Comparison.EQ),
                                    rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT))
    seen = rasp.SelectorWidth(earlier_same.named(f"{name}_earlier_same")).named(f"{name}_prev_seen")
    key = rasp.SequenceMap(lambda p, c: (p, c), previous, seen).named(f"{name}_key")
    wanted = rasp.Map(lambda t: (t, 0), sop).named(f"{name}_query")
    match = rasp.Select(key, wanted, rasp.Comparison.EQ).named(f"{name}_match")
    past = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named(f"{name}_past")
    return rasp.Aggregate(rasp.SelectorAnd(match, past), sop).named(name)
