"""to_text: rasp programs back to text RASP; parse(to_text(p)) must evaluate like p."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rasp_compiler import dsl, rasp
from rasp_compiler.dsl import formula as fm
from rasp_compiler.errors import ParseError, RaspCompilerError, UnsupportedProgramError
from rasp_compiler.rasp import core

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_VOCABS = {"sort_unique": [0, 1, 2, 3], "sort": [0, 1, 2], "running_max": [0, 1, 2, 3],
                  "running_min": [0, 1, 2, 3], "frac_prevs": ["x", "y"], "pair_balance": ["(", ")", "a"],
                  "dyck2": ["(", ")", "{", "}"]}


def inputs(vocab, max_len):
    for n in range(max_len + 1):
        yield from (list(p) for p in itertools.product(vocab, repeat=n))


def outcome(program, xs):
    try:
        return ("ok", rasp.evaluate(program, xs))
    except RaspCompilerError as exc:
        return ("error", type(exc).__name__)


def assert_same_evaluation(a, b, vocab, max_len=4):
    for xs in inputs(vocab, max_len):
        assert outcome(a, xs) == outcome(b, xs), xs


def check_well_formed(root: core.RASPExpr) -> None:
    """One label and one encoding per node identity; one node per label."""
    by_id: dict[int, tuple] = {}
    by_label: dict[str, int] = {}
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        info = (node.label, getattr(node, "encoding", None))
        if (node.unique_id, info) in seen:
            continue
        seen.add((node.unique_id, info))
        assert by_id.setdefault(node.unique_id, info) == info, f"node {node.unique_id}: {by_id[node.unique_id]} vs {info}"
        assert by_label.setdefault(node.label, node.unique_id) == node.unique_id, f"label {node.label} on two nodes"
        stack.extend(node.children)


def round_trip(program):
    text = dsl.to_text(program)
    try:
        reparsed = dsl.parse(text, filename="<printed>")
    except ParseError as exc:  # pragma: no cover - shows the text on failure
        raise AssertionError(f"printed text does not parse:\n{text}") from exc
    return text, reparsed


# =========================================================================== examples
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.rasp")), ids=lambda p: p.stem)
def test_examples_round_trip(path):
    original = dsl.load(path).output
    text, reparsed = round_trip(original)
    assert reparsed.output is not None and reparsed.output.label == original.label
    assert_same_evaluation(original, reparsed.output, EXAMPLE_VOCABS.get(path.stem, ["a", "b", "c"]))
    # printing is a fixed point after one round
    assert dsl.to_text(reparsed.output) == text


def test_printed_reverse_text():
    prog = dsl.parse("opp = length - indices - 1;\nflip = select(indices, opp, ==);\n"
                     "reverse = aggregate(flip, tokens);\n")
    assert dsl.to_text(prog.output) == (
        "opp = length - indices - 1;\n"
        "flip = select(indices, opp, ==);\n"
        "reverse = aggregate(flip, tokens);\n"
        "# output: reverse\n")


def test_categorical_views_print_as_their_sop():
    prog = dsl.parse('f = aggregate(select(indices, indices, <=), tokens == "a");\n'
                     'g = f * length;\nx = selector_width(select(f, f, ==)) + g;\n')
    text, reparsed = round_trip(prog.output)
    assert "g = f * length;" in text and "select(f, f, ==)" in text
    assert_same_evaluation(prog.output, reparsed.output, ["a", "b"], 4)
    assert dsl.to_text(reparsed.output) == text


def test_shared_anonymous_nodes_are_named_once():
    prog = dsl.parse("x = aggregate(select(indices, indices, ==), indices) + 1;\n"
                     "y = x * aggregate(select(indices, indices, ==), indices);\n")
    sel_a = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ)
    shared = rasp.Aggregate(sel_a, rasp.indices)
    text = dsl.to_text(rasp.SelectorWidth(rasp.Select(shared, shared, rasp.Comparison.LT)))
    assert text.count("aggregate(") == 1  # used twice, written once
    assert_same_evaluation(prog.output, round_trip(prog.output)[1].output, ["a"], 3)


# =========================================================================== encodings
@pytest.mark.parametrize("text", [
    'x = aggregate(select(indices, indices, <=), tokens == "a");',
    'x = categorical(aggregate(select(indices, indices, ==), tokens == "a"));',
    'x = numerical(aggregate(select(indices, indices, <=), indices));',
    'b = tokens == "a";\ns = select(b, b, ==);\nx = aggregate(select(indices, indices, <=), b) + selector_width(s);',
    'b = categorical(tokens == "a");\nx = aggregate(select(indices, indices, ==), b);',
    'x = numerical(indices + 1) * 2;',
    'x = categorical(numerical(indices) + 1);',
    'x = aggregate(select(indices, indices, <=), 1);',
    'x = numerical(aggregate(select(indices, indices, <), 2, 7));',
    'x = aggregate(select(indices, indices, <), "q", "none");',
])
def test_encodings_survive_the_round_trip(text):
    original = dsl.parse(text).output
    _, reparsed = round_trip(original)
    out = reparsed.output
    assert out.is_numerical == original.is_numerical
    if isinstance(original, core.Aggregate):
        assert out.sop.is_numerical == original.sop.is_numerical and out.default == original.default
    assert_same_evaluation(original, out, ["a", "b"], 3)


# =========================================================================== python-built programs
def test_python_built_printable_program():
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LEQ) & ~rasp.Select(
        rasp.indices, rasp.indices, rasp.Comparison.GT) | rasp.Select(rasp.indices, rasp.Full(0), rasp.Comparison.EQ)
    width = rasp.SelectorWidth(sel).named("width")
    mean = rasp.numerical(rasp.Aggregate(sel, rasp.numerical(rasp.Full(2)), default=0))
    lin = rasp.LinearSequenceMap(mean, rasp.numerical(rasp.Full(3)), 2, -0.5)
    const = rasp.ConstantSOp([5, 6, 7])
    first = rasp.Aggregate(rasp.Select(rasp.indices, const, rasp.Comparison.LT), width)
    root = rasp.SequenceMap(lambda a, b: a, first, lin).annotate(dsl_formula=fm.Op("pair", (fm.Arg(0), fm.Arg(1))))
    for program in (width, mean, lin, first):
        _, reparsed = round_trip(program)
        assert_same_evaluation(program, reparsed.output, [0, 1, 2], 3)
    with pytest.raises(UnsupportedProgramError, match="internal pair"):
        dsl.to_text(root)


def test_python_numerical_tokens_and_formula_annotation():
    f = fm.Op("*", (fm.Arg(0), fm.Const(3)))
    m = rasp.numerical(rasp.Map(fm.compile_formula(f, 1), rasp.numerical(rasp.tokens)).annotate(dsl_formula=f))
    text, reparsed = round_trip(m)
    assert "numerical(tokens) * 3" in text
    assert reparsed.output.is_numerical
    assert_same_evaluation(m, reparsed.output, [0, 1, 2], 3)


def test_names_are_made_valid():
    f = fm.Op("+", (fm.Arg(0), fm.Const(0)))
    a = rasp.Map(fm.compile_formula(f, 1), rasp.tokens).annotate(dsl_formula=f).named("my value")
    sel = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ)
    c = rasp.Aggregate(sel, a).named("select")
    d = rasp.Aggregate(sel, c).named("9lives")
    text, reparsed = round_trip(d)
    assert "my_value = tokens + 0;" in text and "select_ = " in text and "_9lives = " in text
    assert_same_evaluation(d, reparsed.output, [1, 2], 3)


def test_unsupported_programs_name_the_sop():
    m = rasp.Map(lambda x: x + 1, rasp.tokens).named("plus_one")
    with pytest.raises(UnsupportedProgramError, match="Map plus_one.*Python function"):
        dsl.to_text(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ), m))
    s = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == q).named("custom")
    with pytest.raises(UnsupportedProgramError, match="Select custom.*Comparison"):
        dsl.to_text(rasp.SelectorWidth(s))
    with pytest.raises(UnsupportedProgramError, match="check_length"):
        dsl.to_text(rasp.ConstantSOp([1], check_length=False))
    with pytest.raises(UnsupportedProgramError, match="nan"):
        dsl.to_text(rasp.Full(float("nan")))
    with pytest.raises(TypeError):
        dsl.to_text("tokens")


@pytest.mark.parametrize("value", ['a"b', "back\\slash", "new\nline", "tab\t", "\x01", "§", 1e-05,
                                   -0.5, 1e16, -3, True, False, 0, 2.0])
def test_constants_round_trip(value):
    sop = rasp.Full(value)
    text, reparsed = round_trip(sop)
    assert rasp.evaluate(reparsed.output, [0, 1]) == [value, value]
    eq = fm.Op("==", (fm.Arg(0), fm.Const(value)))
    m = rasp.Map(fm.compile_formula(eq, 1), rasp.tokens).annotate(dsl_formula=eq)
    _, reparsed = round_trip(m)
    assert rasp.evaluate(reparsed.output, [value, "zz"]) == [True, False]


def test_selector_root_and_leaf_root():
    sel = dsl.parse("s = select(indices, indices, <) and not select(tokens, tokens, ==);")["s"]
    text, reparsed = round_trip(sel)
    assert reparsed.output is None and rasp.evaluate(reparsed["s"], list("aba")) == rasp.evaluate(sel, list("aba"))
    text, reparsed = round_trip(rasp.tokens)
    assert rasp.evaluate(reparsed.output, ["a"]) == ["a"]
    text, reparsed = round_trip(dsl.parse("x = length;").output)
    assert rasp.evaluate(reparsed.output, ["a", "b"]) == [2, 2]


# =========================================================================== hypothesis
_ARITH = ["+", "-", "*", "%"]
_CMP = ["==", "!=", "<", ">", "<=", ">="]
_PREDS = _CMP + ["true", "false"]


@st.composite
def text_programs(draw):
    seq_vars: list[str] = []
    sel_vars: list[str] = []

    def seq(d: int) -> str:
        leaves = ["tokens", "indices", "length"] + seq_vars
        if d == 0 or draw(st.integers(0, 4)) == 0:
            return draw(st.sampled_from(leaves))
        kind = draw(st.integers(0, 11))
        if kind == 0:
            return f"({seq(d - 1)} {draw(st.sampled_from(_ARITH + _CMP))} {draw(st.integers(0, 3))})"
        if kind == 1:
            return f"({draw(st.integers(-2, 3))} {draw(st.sampled_from(_ARITH + _CMP))} {seq(d - 1)})"
        if kind == 2:
            return f"({seq(d - 1)} {draw(st.sampled_from(_ARITH + _CMP + ['and', 'or']))} {seq(d - 1)})"
        if kind == 3:
            op = draw(st.sampled_from(["-", "not ", "indicator", "abs", "numerical", "categorical"]))
            return f"({op}({seq(d - 1)}))"
        if kind == 4:
            return f"({seq(d - 1)} {draw(st.sampled_from(['in', 'not in']))} [0, 2])"
        if kind == 5:
            return f"({seq(d - 1)} if {seq(d - 1)} else {seq(d - 1)})"
        if kind in (6, 7, 8):
            wrapper = draw(st.sampled_from(["", "", "numerical", "categorical"]))
            default = draw(st.sampled_from(["", "", ", 0", ", 1", ', "d"']))
            body = f"aggregate({sel(d - 1)}, {seq(d - 1)}{default})"
            return f"{wrapper}({body})" if wrapper else body
        if kind == 9:
            return f"aggregate({sel(d - 1)}, {draw(st.integers(0, 2))})"
        return f"selector_width({sel(d - 1)})"

    def sel(d: int) -> str:
        if sel_vars and draw(st.integers(0, 3)) == 0:
            return draw(st.sampled_from(sel_vars))
        kind = draw(st.integers(0, 5)) if d > 0 else 0
        if kind <= 2:
            keys = seq(max(d - 1, 0)) if draw(st.booleans()) else draw(st.sampled_from(["tokens", "indices", "1"]))
            return f"select({keys}, {seq(max(d - 1, 0))}, {draw(st.sampled_from(_PREDS))})"
        if kind == 3:
            return f"({sel(d - 1)} and {sel(d - 1)})"
        if kind == 4:
            return f"({sel(d - 1)} or {sel(d - 1)})"
        return f"not {sel(d - 1)}"

    lines = []
    for i in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 3)) == 0:
            lines.append(f"s{i} = {sel(2)};")
            sel_vars.append(f"s{i}")
        else:
            lines.append(f"v{i} = {seq(3)};")
            seq_vars.append(f"v{i}")
    lines.append(f"out = {seq(3)};")
    return "\n".join(lines) + "\n"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_programs())
def test_random_programs_round_trip(text):
    original = dsl.parse(text).output
    check_well_formed(original)
    printed, reparsed = round_trip(original)
    check_well_formed(reparsed.output)
    assert_same_evaluation(original, reparsed.output, [0, 1, 2], max_len=3)
    assert dsl.to_text(reparsed.output) == printed, (text, printed)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["x", "=", ";", "(", ")", "{", "}", ",", "def", "return", "select",
                                 "aggregate", "tokens", "1", "\"s\"", "+", "==", "<", "and", "not",
                                 "if", "else", "[", "]", "in", "f", "#", "\n", "true"]), max_size=25))
def test_parser_only_raises_parse_errors(words):
    try:
        dsl.parse(" ".join(words))
    except ParseError:
        pass


@pytest.mark.parametrize("text", [
    "tokens = tokens_int;\nx = (-tokens) ^ 2 + 2 ^ tokens ^ 2;",
    "tokens = tokens_int;\nx = tokens * 3 % (4 * 2) - (not (tokens == 1));",
    'x = {"a": 1, "b": 2, "c": 0}[tokens] + [3, 1, 2, 0][indices];',
    'x = "abcd"[indices] if (indices == 0 or tokens == "b") and indices < 3 else tokens;',
    "x = (1 if tokens == \"a\" else 2) if indices == 1 else 3;",
    'x = (indices in [0, 2]) if ("a" in tokens) else indices == 1;',
])
def test_reference_operators_round_trip(text):
    """^, %, lookups, not, and/or and nested conditionals print with the reference's precedence."""
    prog = dsl.parse(text)
    printed, reparsed = round_trip(prog.output)
    vocab = [0, 1, 2] if "tokens_int" in text else ["a", "b", "c"]
    assert_same_evaluation(prog.output, reparsed.output, vocab, max_len=4)
    assert dsl.to_text(reparsed.output) == printed


@pytest.mark.parametrize("text", [
    "s = select(tokens, categorical(aggregate(select(indices, indices, ==), indices)), ==);\nout = selector_width(s);\n",
    "s = select(tokens, categorical(aggregate(select(indices, tokens, ==), indices)), ==);\nout = selector_width(s);\n",
])
def test_copy_of_numbers_keeps_its_none_default(text):
    """Found by hypothesis: printed bare, the parser would give this copy the reference's default 0."""
    original = dsl.parse(text).output
    printed = dsl.to_text(original)
    reparsed = dsl.parse(printed).output
    assert dsl.to_text(reparsed) == printed
    for xs in ([0, 2], [1, 0, 2], [2]):
        assert rasp.evaluate(reparsed, xs) == rasp.evaluate(original, xs)
