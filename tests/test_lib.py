"""The program library against its independent plain-Python references."""

from __future__ import annotations

import inspect
import itertools
import random

import pytest

from rasp_compiler import rasp
from rasp_compiler.errors import RaspTypeError
from rasp_compiler.lib import (
    LIBRARY, LibraryProgram, detect_pattern, make_count, make_detect_pattern, make_dyck,
    make_first_occurrence, make_frac_prevs, make_hist, make_length, make_pair_balance,
    make_reverse, make_running_max, make_running_min, make_shift_by, make_shuffle_dyck,
    make_shuffle_dyck2, make_sort, make_sort_freq, make_sort_unique, reference, shift_by,
)

TOL = 1e-9
EXPECTED_ENTRIES = {"length", "reverse", "hist", "sort_unique", "sort", "sort_freq", "frac_prevs",
                    "pair_balance", "dyck2", "shift_by", "detect_pattern", "count", "running_max",
                    "running_min", "first_occurrence"}


def same(got: list, want: list) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if isinstance(w, float) or isinstance(g, float):
            if g is None or w is None or abs(g - w) > TOL:
                return False
        elif g != w:
            return False
    return True


def check(program, ref, xs):
    got = rasp.evaluate(program, xs)
    want = ref(xs)
    assert same(got, want), f"{program.label} on {xs}: got {got}, want {want}"


def all_inputs(vocab, max_len=5):
    for n in range(max_len + 1):
        for xs in itertools.product(vocab, repeat=n):
            yield list(xs)


def walk(expr):
    """Every distinct node (by unique_id) reachable from expr, as {unique_id: [copies]}."""
    seen: dict[int, list] = {}
    stack = [expr]
    while stack:
        node = stack.pop()
        seen.setdefault(node.unique_id, []).append(node)
        stack.extend(node.children)
    return seen


# --------------------------------------------------------------------------- registry
def test_registry_is_complete():
    assert EXPECTED_ENTRIES <= set(LIBRARY)
    for key, entry in LIBRARY.items():
        assert isinstance(entry, LibraryProgram)
        assert entry.name == key
        assert 3 <= len(entry.vocab) <= 4
        assert entry.description
        assert callable(entry.reference)


@pytest.mark.parametrize("key", sorted(LIBRARY))
def test_entry_builds_a_named_program(key):
    program = LIBRARY[key].build()
    assert isinstance(program, rasp.SOp)
    assert program.label == key


@pytest.mark.parametrize("key", sorted(LIBRARY))
def test_exhaustive_up_to_length_5(key):
    entry = LIBRARY[key]
    program = entry.build()
    for xs in all_inputs(entry.vocab, 5):
        check(program, entry.reference, xs)


@pytest.mark.parametrize("key", sorted(LIBRARY))
def test_random_longer_inputs(key):
    entry = LIBRARY[key]
    program = entry.build()
    rng = random.Random(f"lib-{key}")
    for _ in range(50):
        xs = [rng.choice(entry.vocab) for _ in range(rng.randint(6, 20))]
        check(program, entry.reference, xs)


@pytest.mark.parametrize("key", sorted(LIBRARY))
def test_labels_are_unique_and_each_node_has_one_form(key):
    """No two nodes share a label; no node appears under two labels or encodings."""
    nodes = walk(LIBRARY[key].build())
    labels = []
    for copies in nodes.values():
        forms = {(c.label, getattr(c, "encoding", None)) for c in copies}
        assert len(forms) == 1, f"node used in several forms: {forms}"
        labels.append(copies[0].label)
    assert len(labels) == len(set(labels)), sorted(labels)


@pytest.mark.parametrize("key", sorted(LIBRARY))
def test_programs_follow_the_compile_rules(key):
    """Select over categorical SOps; numerical Aggregates of numerical SOps; non-linear
    SequenceMaps of categorical SOps; LinearSequenceMaps are numerical (their inputs numbers)."""
    for copies in walk(LIBRARY[key].build()).values():
        node = copies[0]
        if isinstance(node, rasp.Select):
            assert rasp.is_categorical(node.keys) and rasp.is_categorical(node.queries), node
        if isinstance(node, rasp.Aggregate) and rasp.is_numerical(node):
            assert rasp.is_numerical(node.sop), node
            assert node.default == 0, node
        if isinstance(node, rasp.LinearSequenceMap):
            assert rasp.is_numerical(node), node
        elif isinstance(node, rasp.SequenceMap):
            assert rasp.is_categorical(node.fst) and rasp.is_categorical(node.snd), node


def test_references_do_not_use_rasp():
    source = inspect.getsource(reference)
    assert "rasp_compiler" not in source and "import rasp" not in source


def test_numerical_property():
    assert LIBRARY["frac_prevs"].numerical and LIBRARY["pair_balance"].numerical
    assert not LIBRARY["reverse"].numerical


# --------------------------------------------------------------------------- individual programs
def test_length_is_shared():
    assert make_length() is make_length()
    assert make_length().label == "length"
    assert rasp.evaluate(make_length(), list("abcd")) == [4, 4, 4, 4]


def test_reverse_of_other_sops_shares_opp_idx():
    r1 = make_reverse(rasp.indices, name="rev_idx")
    r2 = make_reverse(rasp.tokens)
    assert rasp.evaluate(r1, list("abcd")) == [3, 2, 1, 0]
    assert rasp.evaluate(r2, list("abcd")) == list("dcba")
    assert r1.selector.unique_id == r2.selector.unique_id
    opp = r1.selector.queries
    assert isinstance(opp, rasp.Map) and opp.label == "opp_idx"
    diff = opp.inner
    assert isinstance(diff, rasp.LinearSequenceMap) and (diff.fst_fac, diff.snd_fac) == (1, -1)
    assert diff.fst.label == "length" and diff.snd.label == "indices"


def test_hist_of_another_sop():
    parity = rasp.Map(lambda i: i % 2, rasp.indices)
    assert rasp.evaluate(make_hist(parity, name="parity_hist"), list("abcde")) == [3, 2, 3, 2, 3]


def test_sort_with_separate_keys():
    vals = rasp.tokens
    keys = rasp.Map(lambda t: {"x": 2, "y": 0, "z": 1}[t], rasp.tokens)
    program = make_sort(vals, keys)
    xs = list("xyzzyx")
    want = reference.sort(xs, [{"x": 2, "y": 0, "z": 1}[t] for t in xs])
    assert rasp.evaluate(program, xs) == want == list("yyzzxx")


def test_sort_is_stable_on_values():
    # Keys tie; the values differ; ties keep input order.
    keys = rasp.Map(lambda t: t // 10, rasp.tokens)
    program = make_sort(rasp.tokens, keys)
    xs = [23, 11, 25, 14, 2]
    assert rasp.evaluate(program, xs) == [2, 11, 14, 23, 25]
    assert rasp.evaluate(program, [19, 12, 15]) == [19, 12, 15]


def test_sort_accepts_tracr_arguments():
    program = make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1)
    assert rasp.evaluate(program, [3, 1, 2, 1]) == [1, 1, 2, 3]


def test_sort_unique_with_unique_keys():
    program = make_sort_unique(rasp.tokens, rasp.indices * -1)
    assert rasp.evaluate(program, list("abc")) == list("cba")
    assert rasp.evaluate(make_sort_unique(rasp.tokens, rasp.tokens), [3, 1, 2]) == [1, 2, 3]


def test_sort_freq_examples():
    program = make_sort_freq(10)
    assert rasp.evaluate(program, list("abbccc")) == list("cccbba")
    assert rasp.evaluate(program, list("abab")) == list("abab")
    assert rasp.evaluate(program, list("cabbac")) == list("cabbac")
    assert rasp.evaluate(program, list("cbabb")) == list("bbbca")


def test_frac_prevs_examples_and_tracr_form():
    xs = list("xyxxz")
    want = [1.0, 0.5, 2 / 3, 0.75, 0.6]
    assert same(rasp.evaluate(make_frac_prevs(lambda t: t == "x"), xs), want)
    tracr_style = make_frac_prevs(rasp.tokens == "x")
    assert rasp.is_numerical(tracr_style)
    assert same(rasp.evaluate(tracr_style, xs), want)
    assert all(type(v) is float for v in rasp.evaluate(tracr_style, xs))
    with pytest.raises(RaspTypeError):
        make_frac_prevs(3)


def test_pair_balance_other_tokens():
    program = make_pair_balance(rasp.tokens, "[", "]", name="square_balance")
    xs = list("[[]]][")
    assert same(rasp.evaluate(program, xs), reference.pair_balance(xs, "[", "]"))
    with pytest.raises(ValueError):
        make_pair_balance(rasp.tokens, "(", "(")


def _shuffle_balanced(pairs, length, rng):
    """A random sequence in which every bracket type is balanced on its own."""
    seq, open_ = [], []
    while len(seq) < length:
        if open_ and (length - len(seq) <= len(open_) or rng.random() < 0.5):
            seq.append(open_.pop(rng.randrange(len(open_))))
        else:
            o, c = rng.choice(pairs)
            seq.append(o)
            open_.append(c)
    return seq


@pytest.mark.parametrize("pairs", ["()", "(){}", "()[]{}", ["ab", "cd"]])
def test_shuffle_dyck_on_balanced_and_perturbed_inputs(pairs):
    program = make_shuffle_dyck(pairs)
    pair_list = [tuple(p) for p in (pairs if not isinstance(pairs, str)
                                    else [pairs[i:i + 2] for i in range(0, len(pairs), 2)])]
    tokens_ = [t for p in pair_list for t in p] + ["x"]
    rng = random.Random(f"dyck-{pairs}")
    balanced_seen = unbalanced_seen = 0
    for _ in range(60):
        xs = _shuffle_balanced(pair_list, 2 * rng.randint(1, 8), rng)
        if rng.random() < 0.3:
            xs.insert(rng.randrange(len(xs) + 1), "x")  # ignored
        if rng.random() < 0.4:
            xs[rng.randrange(len(xs))] = rng.choice(tokens_)
        want = reference.shuffle_dyck(xs, pair_list)
        balanced_seen += want[0] == 1
        unbalanced_seen += want[0] == 0
        assert rasp.evaluate(program, xs) == want, xs
    assert balanced_seen and unbalanced_seen


def test_shuffle_dyck_examples():
    d2 = make_shuffle_dyck2()
    assert d2.label == "shuffle_dyck2"
    assert rasp.evaluate(d2, list("({)}")) == [1] * 4  # interleaving allowed (shuffle-Dyck)
    assert rasp.evaluate(d2, list("(){}")) == [1] * 4
    assert rasp.evaluate(d2, list(")(")) == [0] * 2  # dips below zero
    assert rasp.evaluate(d2, list("(()")) == [0] * 3  # not closed at the end
    assert rasp.evaluate(d2, list("(}")) == [0] * 2
    d1 = make_dyck("()")
    assert rasp.evaluate(d1, list("(x)y")) == [1] * 4  # other tokens ignored
    assert rasp.evaluate(d1, list("xy")) == [1, 1]
    assert rasp.evaluate(d1, []) == []


def test_shuffle_dyck_rejects_bad_pairs():
    for bad in ["(", "", "()(]", ["()", "(]"], ["abc"], []]:
        with pytest.raises(ValueError):
            make_shuffle_dyck(bad)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, -1])
def test_shift_by_offsets(offset):
    program = make_shift_by(offset, rasp.tokens)
    for xs in all_inputs("ab", 5):
        assert rasp.evaluate(program, xs) == reference.shift_by(xs, offset)
    assert shift_by is make_shift_by


def test_shift_by_numerical_sop_defaults_to_zero():
    values = rasp.numerical(rasp.Map(lambda t: 2 if t == "a" else 1, rasp.tokens))
    program = make_shift_by(2, values, name="shifted_values")
    assert rasp.is_numerical(program)
    assert rasp.evaluate(program, list("abab")) == [0, 0, 2, 1]
    with pytest.raises(RaspTypeError):
        make_shift_by(1.5)


@pytest.mark.parametrize("pattern", ["a", "ab", "aa", "aba", "abca", [1, "1"]])
def test_detect_pattern_variants(pattern):
    program = make_detect_pattern(rasp.tokens, pattern)
    vocab = list(dict.fromkeys(pattern)) + ["z"]
    for xs in all_inputs(vocab, 5):
        got = rasp.evaluate(program, xs)
        assert got == reference.detect_pattern(xs, pattern), xs
        assert all(type(v) is bool for v in got[len(pattern) - 1:])
        assert got[:len(pattern) - 1] == [None] * min(len(xs), len(pattern) - 1)  # as tracr
    assert detect_pattern is make_detect_pattern
    with pytest.raises(ValueError):
        make_detect_pattern(rasp.tokens, "")


def test_count_other_token_and_sop():
    assert rasp.evaluate(make_count(rasp.tokens, "b"), list("abcb")) == [2] * 4
    assert rasp.evaluate(make_count(rasp.tokens, "q"), list("abcb")) == [0] * 4
    parity = rasp.Map(lambda i: i % 2, rasp.indices)
    assert rasp.evaluate(make_count(parity, 1, name="odd_positions"), list("abcde")) == [2] * 5


@pytest.mark.parametrize("values", [(0, 5, 7), ("a", "b", "c", "d"), (-2.5, 0, 3), ("m", "z"), ("q",)])
def test_running_max_and_min_in_value_space(values):
    top, bottom = make_running_max(rasp.tokens, values), make_running_min(rasp.tokens, values)
    for xs in all_inputs(values, 5):
        assert rasp.evaluate(top, xs) == reference.running_max(xs), xs
        assert rasp.evaluate(bottom, xs) == reference.running_min(xs), xs
    rng = random.Random(f"running-{values}")
    for _ in range(20):
        xs = [rng.choice(values) for _ in range(rng.randint(6, 20))]
        assert rasp.evaluate(top, xs) == reference.running_max(xs)
        assert rasp.evaluate(bottom, xs) == reference.running_min(xs)


def test_running_max_letters_example():
    program = make_running_max(rasp.tokens, "abcd", name="max_letter")
    assert rasp.evaluate(program, list("bacdab")) == list("bbcddd")
    with pytest.raises(ValueError):
        make_running_max(rasp.tokens, ())


def test_first_occurrence_of_another_sop():
    program = make_first_occurrence(rasp.Map(lambda i: i // 2, rasp.indices), name="first_pair")
    assert rasp.evaluate(program, list("abcde")) == [True, False, True, False, True]
    assert rasp.evaluate(make_first_occurrence(), list("abab")) == [True, True, False, False]


def test_two_library_programs_combine_without_label_clashes():
    program = rasp.SequenceMap(lambda a, b: (a, b), make_reverse(), make_sort_freq())
    labels = [copies[0].label for copies in walk(program).values()]
    assert len(labels) == len(set(labels))
    assert rasp.evaluate(program, list("aab")) == [("b", "a"), ("a", "a"), ("a", "b")]


def test_dsl_guide_examples_run():
    import pathlib
    import re

    guide = pathlib.Path(__file__).resolve().parent.parent / "docs" / "dsl_guide.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)
    assert blocks
    exec(compile("\n".join(blocks), str(guide), "exec"), {"print": lambda *a, **k: None})
