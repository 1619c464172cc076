"""Text RASP means what the reference interpreter (tech-srl/RASP) computes.

tests/data/weiss_reference_cases.json holds (text, input, output) runs whose outputs were
recorded from the reference interpreter by ``benchmarks/weiss_oracle.py --record``: every
example, hand-written probes of each construct (precedence first) and some generated
programs. They are oracle data, not outputs of this package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rasp_compiler import compile_rasp_to_model, dsl, rasp
from rasp_compiler.errors import ParseError

DATA = Path(__file__).resolve().parent / "data" / "weiss_reference_cases.json"
CASES = json.loads(DATA.read_text(encoding="utf-8"))["cases"]


def norm(v):
    """As the reference prints a value: numbers to 3 decimals (a boolean is the number 0/1)."""
    if isinstance(v, (bool, int, float)):
        return round(float(v), 3) + 0.0
    return v


def same(got: list, want: list) -> bool:
    return len(got) == len(want) and all(norm(a) == norm(b) for a, b in zip(got, want))


def test_recorded_cases_cover_every_construct():
    ids = {c["id"] for c in CASES}
    assert {i for i in ids if i.startswith("examples/")} == {
        f"examples/{p.name}" for p in (Path(__file__).resolve().parent.parent / "examples").glob("*.rasp")}
    texts = "\n".join(c["text"] for c in CASES)
    for construct in ("^", "%", "for ", "zip(", "range(", "len(", "tokens_int", "tokens_float", "tokens_bool",
                      ", v = ", "return a + 1, a * 2", "[indices]", "[tokens]", "\"a\" in tokens",
                      "indicator(", "round(", "if tokens == 0 else 2 if", "not tokens == 1"):
        assert construct in texts, construct


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_reference_output(case):
    prog = dsl.parse(case["text"])
    sop = prog[case["name"]]
    for run in case["runs"]:
        got = rasp.evaluate(sop, prog.convert_input(run["input"]))
        assert same(got, run["reference"]), (run["input"], got, run["reference"])


PRECEDENCE = [c for c in CASES if c["id"] in {"probe0", "probe1", "probe2", "probe4", "probe5", "probe6"}]


@pytest.mark.parametrize("case", PRECEDENCE, ids=[c["id"] for c in PRECEDENCE])
def test_compiled_model_gives_the_reference_output(case):
    """The weights themselves reproduce the reference interpreter on the precedence probes."""
    prog = dsl.parse(case["text"])
    sop = prog[case["name"]]
    vocab = {0, 1, 2, 3}
    model = compile_rasp_to_model(sop, vocab=vocab, max_seq_len=4)
    for run in case["runs"]:
        got = model.apply(["BOS"] + prog.convert_input(run["input"])).decoded[1:]
        assert same(got, run["reference"]), (run["input"], got, run["reference"])


# --------------------------------------------------------------------------- constructs
def test_input_type_switch_and_conversion():
    prog = dsl.parse("tokens = tokens_int;\nx = tokens + 1;\n")
    assert prog.input_type == "int" and prog.convert_input(["3", "1"]) == [3, 1]
    assert rasp.evaluate(prog.output, prog.convert_input(["3", "1"])) == [4, 2]
    assert dsl.parse("x = tokens;").input_type == "str"
    assert dsl.parse("x = tokens_bool;").convert_input([1, 0]) == [True, False]
    assert dsl.parse("x = tokens_asis;").convert_input([1, "a"]) == [1, "a"]
    with pytest.raises(ParseError, match="two types"):
        dsl.parse('a = tokens == "x";\nb = tokens_int + 1;\n')


def test_for_loop_is_unrolled_in_the_enclosing_scope():
    prog = dsl.parse("acc = indices;\nfor i in range(3) { acc = acc + i; step = i; }\nx = acc * step;\n")
    assert rasp.evaluate(prog.output, list("ab")) == [6, 8]
    assert prog["acc"].label == "acc"  # the last binding gets the plain name
    with pytest.raises(ParseError, match="runs over a list"):
        dsl.parse("for i in indices { x = i; }")
    with pytest.raises(ParseError, match="2 loop names"):
        dsl.parse("for a, b in [1, 2] { x = a; }")


def test_multiple_assignment_and_return():
    prog = dsl.parse("def f(s) { return s + 1, s == 0; }\na, b = f(indices);\nc, d = 1, 2;\nx = a * c + d;\n")
    assert rasp.evaluate(prog["a"], list("abc")) == [1, 2, 3] and rasp.evaluate(prog["b"], list("ab")) == [True, False]
    assert rasp.evaluate(prog.output, list("ab")) == [3, 4]
    with pytest.raises(ParseError, match="2 names on the left"):
        dsl.parse("a, b = 1, 2, 3;")
    with pytest.raises(ParseError, match="not a list of 2 values"):
        dsl.parse("a, b = indices;")


def test_lists_dicts_and_lookups():
    prog = dsl.parse('d = {k: v for k, v in zip(["a", "b"], [1, 2])};\nx = d[tokens] + [5, 6, 7][indices];\n'
                     'y = tokens[-1];\nz = len(range(1, 7, 2));\n')
    assert rasp.evaluate(prog["x"], list("ba")) == [7, 7]
    assert rasp.evaluate(prog["y"], list("abc")) == ["c", "c", "c"]
    with pytest.raises(Exception, match="not in the dictionary"):
        rasp.evaluate(prog["x"], list("c"))
    with pytest.raises(ParseError, match="dictionary key must be a constant"):
        dsl.parse("d = {indices: 1};")
    with pytest.raises(ParseError, match="integer constant"):
        dsl.parse("x = tokens[indices];")
    with pytest.raises(ParseError, match="out of range"):
        dsl.parse("x = [1, 2][5];")


def test_constant_in_sequence_and_logic_on_constants():
    assert rasp.evaluate(dsl.parse('x = "a" in tokens;').output, list("ba")) == [True, True]
    assert rasp.evaluate(dsl.parse('x = "a" not in tokens;').output, list("bc")) == [True, True]
    assert rasp.evaluate(dsl.parse("y = 2 or 3;\nx = indices + y;").output, list("ab")) == [2, 3]  # Python's `or`


def test_library_functions_can_be_redefined():
    prog = dsl.parse("def count(s, a) { return indices; }\nx = count(tokens, 1);\n")
    assert rasp.evaluate(prog.output, list("ab")) == [0, 1]
