"""Inputs of the wrong shape get an InputError/ParseError that says what to write instead."""

import numpy as np
import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.dsl import parse
from rasp_compiler.errors import InputError, ParseError
from rasp_compiler.lib import LIBRARY


@pytest.fixture(scope="module")
def reverse():
    e = LIBRARY["reverse"]
    return e.build(), compile_rasp_to_model(e.build(), e.vocab, 4)


def test_apply_batch_takes_a_2d_numpy_array(reverse):
    program, model = reverse
    rows = np.array([["BOS", "a", "b", "c"], ["BOS", "c", "c", "a"]])
    got = model.apply_batch(rows, backend="numpy")
    assert [g[1:] for g in got] == [rasp.evaluate(program, list(r[1:])) for r in rows.tolist()]
    assert model.apply(np.array(["BOS", "b", "a"])).decoded[1:] == rasp.evaluate(program, ["b", "a"])


@pytest.mark.parametrize("batch, hint", [
    ("BOS a b", "list of token lists"),
    (["BOS", "a"], "item 0 is 'BOS', a single token"),
    (np.array(["BOS", "a"]), "2-D array"),
])
def test_apply_batch_refuses_a_single_sequence(reverse, batch, hint):
    _, model = reverse
    with pytest.raises(InputError, match=hint):
        model.apply_batch(batch, backend="numpy")


def test_huge_number_literal_is_a_parse_error_with_its_position():
    with pytest.raises(ParseError, match=r"<text>:1:14: integer literal of 5000 digits"):
        parse("x = tokens + " + "9" * 5000 + ";")
    with pytest.raises(ParseError, match="number literal of"):
        parse("x = tokens + 1." + "5" * 2000 + ";")
