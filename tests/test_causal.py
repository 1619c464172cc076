"""causal=True: heads that only look back compile and are exact; anything that can look ahead is refused.

Expected outputs are rasp.evaluate on each prefix (verify.expected_output), so a model
that read a later token would be caught.
"""

from __future__ import annotations

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import CausalityError
from rasp_compiler.lib import make_induction_head, make_length, make_reverse, make_sort, reference
from rasp_compiler.verify import check_model, exhaustive_inputs, random_inputs

C = rasp.Comparison
AB = {"a", "b"}
ABC = {"a", "b", "c"}


def _is_a():
    return rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, rasp.tokens))


def previous_token():
    return rasp.Aggregate(rasp.Select(rasp.indices, rasp.Map(lambda i: i - 1, rasp.indices), C.EQ), rasp.tokens)


def window_mean():
    window = rasp.Select(rasp.indices, rasp.indices, lambda k, q: q - 2 <= k <= q)
    return rasp.numerical(rasp.Aggregate(window, _is_a(), default=0))


def two_back_via_sequencemap():
    back = rasp.SequenceMap(lambda i, z: i - 2 + z, rasp.indices, rasp.Full(0))
    return rasp.Aggregate(rasp.Select(rasp.indices, back, C.EQ), rasp.tokens)


def same_token_before():
    sel = rasp.Select(rasp.tokens, rasp.tokens, C.EQ) & rasp.Select(rasp.indices, rasp.indices, C.LT)
    return rasp.SelectorWidth(sel)


def not_later():
    return rasp.SelectorWidth(~rasp.Select(rasp.indices, rasp.indices, C.GT))


def past_or_self():
    sel = rasp.SelectorOr(rasp.Select(rasp.indices, rasp.indices, C.LT),
                          rasp.Select(rasp.indices, rasp.indices, C.EQ))
    return rasp.numerical(rasp.Aggregate(sel, _is_a(), default=0))


def position_and_token():
    # keys read the tokens but hold the position: per-position values show it looks back
    return rasp.Aggregate(rasp.Select(rasp.SequenceMap(lambda t, i: i, rasp.tokens, rasp.indices),
                                      rasp.Map(lambda i: i - 1, rasp.indices), C.EQ), rasp.tokens)


def _token_index():
    return rasp.SequenceMap(lambda t, i: (t, i), rasp.tokens, rasp.indices)


def earlier_same_token_pairs():
    # InterpBench case 21's selector: (token, index) pairs, same token at an index <= the query's
    pairs = _token_index()
    return rasp.SelectorWidth(rasp.Select(pairs, pairs, lambda k, q: k[0] == q[0] and k[1] <= q[1]))


@pytest.mark.parametrize("build", [previous_token, window_mean, two_back_via_sequencemap, same_token_before,
                                   not_later, past_or_self, position_and_token, earlier_same_token_pairs])
def test_look_back_programs_compile_causally_and_are_exact(build):
    program = build()
    model = compile_rasp_to_model(program, AB, 6, causal=True)
    report = check_model(model, program, exhaustive_inputs(AB, 6))
    assert report.exact, report.examples[:2]


def next_token():
    return rasp.Aggregate(rasp.Select(rasp.indices, rasp.Map(lambda i: i + 1, rasp.indices), C.EQ), rasp.tokens)


def later_mean():
    return rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.GT), _is_a(), default=0))


def same_token_anywhere():
    return rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.EQ))


def not_earlier():
    return rasp.SelectorWidth(~rasp.Select(rasp.indices, rasp.indices, C.LT))


def past_or_same_token():
    return rasp.SelectorWidth(rasp.SelectorOr(rasp.Select(rasp.indices, rasp.indices, C.LEQ),
                                              rasp.Select(rasp.tokens, rasp.tokens, C.EQ)))


def last_position_only_ahead():
    # looks ahead only from the query at position 2 (to key 3): found by the exhaustive pair check
    return rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q or (q, k) == (2, 3)),
                          rasp.tokens)


def later_same_token_pairs():
    pairs = _token_index()
    return rasp.SelectorWidth(rasp.Select(pairs, pairs, lambda k, q: k[0] == q[0] and k[1] >= q[1]))


@pytest.mark.parametrize("build", [next_token, later_mean, same_token_anywhere, not_earlier, past_or_same_token,
                                   last_position_only_ahead, later_same_token_pairs,
                                   lambda: make_length(), lambda: make_reverse(rasp.tokens),
                                   lambda: make_sort(rasp.tokens, rasp.tokens)])
def test_anything_that_can_look_ahead_is_refused(build):
    with pytest.raises(CausalityError, match="after the query"):
        compile_rasp_to_model(build(), ABC, 5, causal=True)


@pytest.mark.parametrize("build,where", [
    (later_mean, "at query position 0 it can select key position 1 (on inputs of length 2)"),
    (last_position_only_ahead, "at query position 2 it can select key position 3 (on inputs of length 4)"),
    (later_same_token_pairs, "at query position 0 it can select key position 1 (on inputs of length 2)"),
])
def test_the_refusal_names_the_positions(build, where):
    with pytest.raises(CausalityError) as caught:
        compile_rasp_to_model(build(), ABC, 5, causal=True)
    assert where in str(caught.value)


def test_the_pair_check_goes_up_to_max_seq_len():
    # selects key q + 4: no such key below length 5, so it cannot look ahead there
    program = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q + 4 or k == q),
                             rasp.tokens)
    model = compile_rasp_to_model(program, AB, 4, causal=True)
    assert check_model(model, program, exhaustive_inputs(AB, 4)).exact
    with pytest.raises(CausalityError):
        compile_rasp_to_model(program, AB, 5, causal=True)


def test_induction_head_matches_its_reference():
    program = make_induction_head()
    for xs in (list("abcab"), list("aab"), list("abcdcab"), list("a")):
        assert rasp.evaluate(program, xs) == reference.induction(xs)


def test_induction_head_is_exact_causally_at_max_seq_len_64():
    program = make_induction_head()
    model = compile_rasp_to_model(program, ABC, 64, causal=True)
    short = check_model(model, program, exhaustive_inputs(ABC, 5))
    long = check_model(model, program, random_inputs(ABC, 64, 60, seed=3, full_length=30))
    assert short.exact and long.exact, (short.examples[:1], long.examples[:1])
    assert short.checked == 363 and long.checked == 60
