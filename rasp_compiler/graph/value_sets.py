"""Stage 2: the finite set of values every node can take.

Categorical nodes need their value set for one-hot directions; numerical nodes need
it wherever an MLP must tell values apart (slopes come from the gaps between them)
and to decode outputs. A numerical mean's set is every achievable mean of up to
``max_seq_len`` values; when a set grows past ``MAX_VALUES`` it is recorded as
``None`` (unbounded) and only an MLP that must read it fails.

Values are never merged where that could change what the program computes: a
categorical set keeps every value Python tells apart (``0.1 + 0.2`` and ``0.3`` are two
one-hot directions) and also values that are equal but of different types (``0``,
``0.0`` and ``False`` are three: an :class:`~rasp_compiler.rasp.exact.ExactSet`), so the
model outputs the type the evaluator gives. A numerical set holds numbers (``3`` and
``3.0`` are one), and merges floats that differ only by rounding, only if every Map
reading it gives the same output for all of them.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from numbers import Number, Real
from typing import Any, Iterable

from rasp_compiler import limits as _limits
from rasp_compiler.errors import ValueSetError
from rasp_compiler.graph.nodes import Kind, Node, ProgramGraph
from rasp_compiler.rasp import core
from rasp_compiler.rasp.exact import ExactSet, exact_key

MAX_VALUES = _limits.Limits().max_values
MAX_PRODUCT = _limits.Limits().max_pairs
PYTHON_TABLE_CELLS = 2_000_000  # calls of a Python predicate one analysis may make
MERGE_TOLERANCE = 1e-12  # relative: floats closer than this are one numerical value

ValueSet = frozenset | None


def infer_value_sets(pg: ProgramGraph, vocab: Iterable[Any], max_seq_len: int,
                     limits: _limits.Limits | None = None) -> dict[str, ValueSet]:
    """Value set of every SOp node (``None`` for a numerical set too large to list)."""
    lim = limits or _limits.default()
    sets: dict[str, ValueSet] = {}
    groups: dict[str, dict] = {}  # numerical node -> {kept value: values merged into it}
    vocab = frozenset(vocab)
    for label in pg.topological():
        node = pg.nodes[label]
        try:
            values = _node_values(node, pg, sets, groups, vocab, max_seq_len, lim)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
            raise ValueSetError(
                f"{node.op} {node.label} produces unhashable values ({exc}); categorical values must be "
                "hashable: use tuples instead of lists, frozensets instead of sets") from exc
        if node.numerical and values is not None:
            _need_finite_reals(node, values)
        if values is not None and node.numerical and None in values:
            values = _no_none_in_numbers(node, values, sets)
        if values is not None and not node.numerical:
            _need_comparable(node, values)
            if len(values) > lim.max_values:
                raise ValueSetError(
                    f"categorical {node.op} {label} takes {len(values)} values, more than the limit of "
                    f"{lim.max_values} (one residual direction each); reduce its values (a smaller vocab or "
                    "max_seq_len, or a coarser function), or raise Limits.max_values")
        if values is not None and node.numerical:
            values, groups[label] = _tidy(values)
        sets[label] = values
    return sets


def _need_comparable(node: Node, values: frozenset) -> None:
    """A categorical value must equal itself (NaN does not: no Select could find it)."""
    bad = [v for v in values if v != v]
    if bad:
        raise ValueSetError(
            f"categorical {node.op} {node.label} can take {bad[0]!r}, which is not equal to itself, so no "
            "selector or output comparison can match it; map it to an ordinary value (e.g. None or a string)")


def distinct_values(node: Node | None, values: Iterable[Any], what: str = "") -> frozenset | ExactSet:
    """The set of ``values`` as an :class:`ExactSet`: ``True``, ``1`` and ``1.0`` are three
    values, each with its own one-hot direction in a categorical SOp. (A numerical SOp's
    set becomes a frozenset of numbers in ``_tidy``, once every Map reading it is checked
    to give one output for all of them.) With ``what`` (the vocabulary), two values equal
    in Python but of different types are refused: a token is looked up by Python
    equality, so the model could not tell which one it was given."""
    if not what:
        return ExactSet(values)
    seen: dict[Any, Any] = {}
    for v in values:
        first = seen.setdefault(v, v)
        if first is not v and exact_key(first) != exact_key(v):
            raise ValueSetError(
                f"{what} can take both {first!r} ({type(first).__name__}) and {v!r} ({type(v).__name__}), "
                "which Python counts as equal but prints differently; a compiled model has one value for "
                f"both and could not say which one to output — give them one type (e.g. int(...) or "
                f"bool(...)), or make them differ (e.g. str(...))")
    return frozenset(seen)


def _no_none_in_numbers(node: Node, values: frozenset, sets: dict) -> frozenset:
    """A numerical SOp cannot hold "no value": its direction would read 0 there."""
    if isinstance(node.expr, core.Aggregate):
        return values - {None}  # a numerical Aggregate gives its default instead
    if not any(None in (sets.get(src) or ()) for src in node.inputs):  # the function itself gives None
        raise ValueSetError(
            f"the function of numerical {node.op} {node.label} returns None for some value of "
            f"{', '.join(node.inputs) or 'its input'}; a numerical SOp must be a number everywhere — return a "
            "number there (e.g. 0), or make the SOp categorical")
    raise ValueSetError(
        f"numerical {node.op} {node.label} can be None (an input of it comes from a categorical "
        "Aggregate that may select nothing, default None), which no number in the residual stream "
        "can stand for; give that Aggregate a default, or keep this SOp categorical")


def _tidy(values: frozenset) -> tuple[frozenset, dict]:
    """Merge numbers that differ only by rounding (1.9999999999999998 and 2.0): no MLP
    could tell them apart. Each group keeps its shortest spelling. Returns the kept
    values and {kept: every value of its group}, for groups of more than one, so that a
    reader can check the merge changes none of its outputs (see ``_check_merge``)."""
    floats = sorted(v for v in values if isinstance(v, Real))
    if len(floats) < 2:
        return values, {}
    keep, merged, group = [], {}, [floats[0]]

    def close(members):
        rep = min(members, key=lambda v: (not isinstance(v, float), len(repr(v))))
        keep.append(rep)
        if len(members) > 1:
            merged[rep] = tuple(members)

    for x in floats[1:]:
        if abs(x - group[-1]) <= MERGE_TOLERANCE * max(1.0, abs(x)):
            group.append(x)
        else:
            close(group)
            group = [x]
    close(group)
    return frozenset([v for v in values if not isinstance(v, Real)] + keep), merged


def _check_merge(node: Node, src: str, groups: dict, f) -> None:
    """A Map of a numerical SOp whose set merged near-equal values: the model computes f
    of the kept value for all of them, so f must give the same output on each."""
    for rep, members in groups.get(src, {}).items():
        want = _apply(node, f, (rep,))
        for m in members:
            got = _apply(node, f, (m,))
            if node.numerical and isinstance(got, Real) and isinstance(want, Real) and (
                    got == want or abs(got - want) <= MERGE_TOLERANCE * max(1.0, abs(want))):
                continue
            if exact_key(got) == exact_key(want):
                continue
            if m == rep:  # 0 and 0.0: one number in the residual stream, but f tells them apart
                raise ValueSetError(
                    f"numerical {src} can take both {rep!r} ({type(rep).__name__}) and {m!r} "
                    f"({type(m).__name__}), one number in the residual stream, but {node.op} {node.label} "
                    f"gives {want!r} for one and {got!r} for the other, so no model can say which to output; "
                    f"give {src} one type (e.g. float(...); for a numerical Aggregate, default=0.0), or compute "
                    f"{node.label} from categorical inputs")
            raise ValueSetError(
                f"{node.op} {node.label} gives {want!r} for {src}={rep!r} but {got!r} for {src}={m!r}, values "
                f"that differ only by float rounding and that no float32 MLP can tell apart; round {src} "
                f"first (e.g. Map(lambda x: round(x, 9), {src})) or compute {node.label} from categorical inputs")


def sorted_values(values: Iterable[Any]) -> list[Any]:
    """A deterministic order for mixed-type values (numbers by size, then others by repr)."""
    def key(v):
        if isinstance(v, Number) and not isinstance(v, complex):
            return (0, float(v), type(v).__name__)  # 0, 0.0 and False: one order on every run
        return (1, 0.0, f"{type(v).__name__}:{v!r}")
    return sorted(values, key=key)


def _positions(node: Node, count: int, lim: _limits.Limits) -> None:
    if count > lim.max_values:
        raise ValueSetError(
            f"{node.op} {node.label} takes {count} values (one per position up to max_seq_len), more than "
            f"the limit of {lim.max_values}; use a smaller max_seq_len, or raise Limits.max_values")


def _node_values(node: Node, pg: ProgramGraph, sets, groups, vocab, n_max, lim: _limits.Limits) -> ValueSet:
    e = node.expr
    if isinstance(e, core.TokensType):
        return vocab
    if isinstance(e, core.IndicesType):
        _positions(node, n_max, lim)
        return frozenset(range(n_max))
    if isinstance(e, core.Full):
        return frozenset([e.fill])
    if isinstance(e, core.ConstantSOp):
        short = len(e.value) < n_max and not e.check_length
        return distinct_values(node, e.value[:n_max]) | ({None} if short else frozenset())
    if isinstance(e, core.Map):  # None ("no value") passes through every Map unchanged
        src = _finite(sets, node.inputs[0], node)
        _check_merge(node, node.inputs[0], groups, e.f)
        return distinct_values(node, (_apply(node, e.f, (x,)) for x in src if x is not None)) | (src & {None})
    if isinstance(e, core.SequenceMap):
        if isinstance(e, core.LinearSequenceMap) and node.numerical:
            shared = _shared_mean(e, pg, sets, n_max, lim)
            if shared is not None:
                return shared
            if sets[node.inputs[0]] is None or sets[node.inputs[1]] is None:
                return None
        a, b = (_finite(sets, x, node) for x in node.inputs)
        nothing = frozenset({None}) if None in a or None in b else frozenset()
        a, b = a - {None}, b - {None}
        if len(a) * len(b) > lim.max_pairs:
            raise ValueSetError(
                f"SequenceMap {node.label} combines {len(a)} x {len(b)} input values, more than the limit "
                f"of {lim.max_pairs} (Limits.max_pairs); reduce the value sets of {node.inputs[0]} and "
                f"{node.inputs[1]}")
        out = distinct_values(node, (_apply(node, e.f, (x, y)) for x, y in itertools.product(a, b))) | nothing
        return out if len(out) <= lim.max_values or not node.numerical else None
    if isinstance(e, core.SelectorWidth):
        _positions(node, n_max + 1, lim)
        return frozenset(range(n_max + 1))
    if isinstance(e, core.Aggregate):
        src = sets[node.aggregated]
        if not node.numerical:  # None: nothing selected and no default
            return ExactSet(src or ()) | {e.default}
        default = 0 if e.default is None else e.default
        if src is None:
            return None
        _need_numbers(src, node)
        # ExactSet: the default 0 (int, when nothing is selected) and a mean 0.0 stay two
        # members until _tidy groups them and _check_merge checks every Map reading them;
        # a default that is never given is only a number (as before: no type to keep)
        if not may_select_nothing(node, sets):
            default = float(default)
        if _selects_at_most_one(node, sets, lim):
            return ExactSet(float(v) for v in src) | {default}
        means = mean_set(src, n_max, lim.max_values)
        return None if means is None else ExactSet(means) | {default}
    raise ValueSetError(f"no value-set rule for {node.op} {node.label}")


def mean_set(values: Iterable[Any], n_max: int, cap: int = MAX_VALUES) -> frozenset | None:
    """Every mean of a multiset of 1..n_max elements of ``values`` (exact, as floats)."""
    vals = sorted({Fraction(v) for v in values})
    if not vals:
        return frozenset()
    scale = 1
    for v in vals:
        scale = scale * v.denominator // _gcd(scale, v.denominator)
    ints = sorted({int(v * scale) for v in vals})
    sums, means = {0}, set()
    for k in range(1, n_max + 1):
        sums = {s + v for s in sums for v in ints}
        means.update(Fraction(s, k * scale) for s in sums)
        if len(means) > cap:
            return None
    return frozenset(float(m) for m in means)


def _shared_mean(e: core.LinearSequenceMap, pg: ProgramGraph, sets, n_max, lim: _limits.Limits) -> ValueSet:
    """a*mean(X) + b*mean(Y) over one selector is mean(a*X + b*Y): a far smaller, exact set.

    Works through chains of LinearSequenceMaps, and for selectors built separately but
    alike (same SOps, same comparison).
    """
    form = _mean_form(e)
    if form is None:
        return None
    _, default, terms, first = form
    if not may_select_nothing(pg.nodes[_label(pg, first)], sets):  # one selector: never empty
        default = float(default)
    combined = {Fraction(0)}
    for coef, sop in terms:
        values = sets[_label(pg, sop)]
        if values is None or len(combined) * len(values) > lim.max_pairs:
            return None
        combined = {c + Fraction(coef) * Fraction(v) for c in combined for v in values}
    means = mean_set(combined, n_max, lim.max_values)
    return None if means is None else ExactSet(means) | {default}  # default: as the evaluator computes it


def _mean_form(e: core.SOp):
    """(selector signature, default, [(coefficient, aggregated SOp)], one of the Aggregates)
    when e is a linear combination of numerical Aggregates that all use the same selector;
    the default is what the evaluator computes when that selector selects nothing."""
    if isinstance(e, core.Aggregate) and e.is_numerical:
        return _selector_signature(e.selector), 0 if e.default is None else e.default, [(1, e.sop)], e
    if isinstance(e, core.LinearSequenceMap) and e.is_numerical:
        a, b = _mean_form(e.fst), _mean_form(e.snd)
        if a is None or b is None or a[0] != b[0]:
            return None
        return (a[0], e.fst_fac * a[1] + e.snd_fac * b[1],
                [(e.fst_fac * c, s) for c, s in a[2]] + [(e.snd_fac * c, s) for c, s in b[2]], a[3])
    return None


def _selector_signature(sel: core.Selector) -> tuple:
    if isinstance(sel, core.Select):
        pred = sel.predicate.value if isinstance(sel.predicate, core.Comparison) else id(sel.predicate)
        return ("select", sel.keys.unique_id, sel.queries.unique_id, pred)
    return (type(sel).__name__, *(_selector_signature(c) for c in sel.children))


def _label(pg: ProgramGraph, sop: core.SOp) -> str:
    for node in pg.nodes.values():
        if node.expr.unique_id == sop.unique_id:
            return node.label
    raise KeyError(sop.label)


def may_select_nothing(node: Node, sets) -> bool:
    """False when every query of the head selects some position, on every input, so its
    default is never given: each term holds for the query's own position (key and query
    are one SOp and the predicate holds for each of its values paired with itself:
    ``Select(indices, indices, LEQ)``) or for every pair of values (``TRUE``). The own
    position is never masked, under causal masking either."""
    if not node.terms:
        return True
    for t in node.terms:
        keys, queries = sets.get(t.key), sets.get(t.query)
        if keys is None or queries is None:
            return True
        try:
            if t.key == t.query and all(t.predicate(v, v) for v in keys):
                continue
            if len(keys) * len(queries) <= PYTHON_TABLE_CELLS and all(
                    t.predicate(k, q) for k in keys for q in queries):
                continue
        except Exception:  # noqa: BLE001 — a predicate that fails proves nothing
            return True
        return True
    return False


def _selects_at_most_one(node: Node, sets, lim: _limits.Limits) -> bool:
    """True when the head's key is `indices` under a predicate true for one key per query."""
    for t in node.terms:
        if t.key != "indices":
            continue
        if at_most_one_key(t, sets, lim):
            return True
    return False


def at_most_one_key(term, sets, lim: _limits.Limits) -> bool:
    """For every query value, at most one key value satisfies the term's predicate
    (False when unknown: a set too large, a table past Limits.max_table_cells, or a
    predicate that fails)."""
    from rasp_compiler.craft.attention import truth_table

    keys, queries = sets[term.key], sets[term.query]
    if term.predicate is core.Comparison.FALSE:
        return True
    if term.predicate is core.Comparison.EQ and (keys is None or _pairwise_unequal(keys)):
        return True  # (0 and 0.0 are two values of a set, but one query value equals both)
    if keys is None or queries is None or len(keys) * len(queries) > lim.max_table_cells:
        return False
    if not isinstance(term.predicate, core.Comparison) and len(keys) * len(queries) > PYTHON_TABLE_CELLS:
        return False  # a Python predicate is called once per cell: bound the time
    keys, queries = tuple(v for v in keys if v is not None), tuple(v for v in queries if v is not None)
    try:
        table = truth_table(term.predicate, keys, queries)
    except Exception:
        return False
    return bool((table.sum(axis=1) <= 1).all()) if table.size else True


def _pairwise_unequal(values) -> bool:
    """No two members are equal in Python (a plain set's members never are)."""
    if not isinstance(values, ExactSet):
        return True
    try:
        return len(set(values)) == len(values)
    except TypeError:
        return False


def _finite(sets, label: str, reader: Node) -> frozenset:
    values = sets[label]
    if values is None:
        raise ValueSetError(
            f"{reader.op} {reader.label} reads numerical SOp {label}, which can take more than "
            f"{MAX_VALUES} values, so no MLP can tell them apart exactly; reduce the values it averages "
            "or read it only linearly (LinearSequenceMap, numerical Aggregate)")
    return values


def _apply(node: Node, f, args: tuple) -> Any:
    try:
        return f(*args)
    except Exception as exc:
        raise ValueSetError(
            f"the function of {node.op} {node.label} raised {type(exc).__name__}: {exc} on "
            f"{', '.join(map(repr, args))}, a value its inputs can take; make it total over its "
            "inputs' values (e.g. guard the case) so every value can be compiled") from exc


def _not_finite_reals(values: frozenset) -> list:
    return [v for v in values if v is not None and (not isinstance(v, Real) or not math.isfinite(v))]


def _need_finite_reals(node: Node, values: frozenset) -> None:
    """Every numerical node (value sets of them are checked here, before validation)."""
    bad = _not_finite_reals(values)
    if bad:
        raise ValueSetError(
            f"numerical {node.op} {node.label} can take {sorted(map(repr, bad))[:5]}, not finite real "
            "numbers; a residual direction can only hold finite reals — bound or guard the values")


def _need_numbers(values: frozenset, node: Node) -> None:
    """What a numerical Aggregate averages (which may itself be categorical)."""
    bad = _not_finite_reals(values)
    if bad:
        raise ValueSetError(
            f"numerical Aggregate {node.label} averages {node.aggregated}, whose values include "
            f"non-numbers {sorted(map(repr, bad))[:5]}; aggregate a numerical SOp (numerical(Map(...)))")


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


__all__ = ["infer_value_sets", "mean_set", "sorted_values", "ValueSet", "Kind"]
