"""Differential fuzzing: random programs compiled and compared with rasp.evaluate.

* property tests (hypothesis draws the generator's seed and the inputs): the compiled
  model equals ``rasp.evaluate``; printing a program and parsing the text back gives
  the same evaluation;
* the generator: deterministic, well typed (the compiler rarely rejects its programs),
  covers every operation of the mix;
* datasets: ``write_dataset`` writes loadable weight files and an index;
* regression tests, one per bug the fuzzer found, each with the exact program found and
  a minimal one. Bugs not fixed yet are ``xfail(strict=True)`` with the exception they
  raise today, so a fix turns them into failures that ask for the marker to go.

The long campaign is benchmarks/fuzz.py (figures in docs/reliability.md).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.dsl import formula as fm
from rasp_compiler.dsl import parse, to_text
from rasp_compiler.errors import UnsupportedProgramError
from rasp_compiler.fuzz import (check_seed, compile_generated, describe_ops, fuzz_inputs, generate_program,
                                round_trip, write_dataset)
from rasp_compiler.fuzz.generator import OPERATIONS
from rasp_compiler.rasp.evaluate import evaluate
from rasp_compiler.verify import check_model, exhaustive_inputs, same_value

C = rasp.Comparison
X, Y = fm.Arg(0), fm.Arg(1)

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --------------------------------------------------------------------------- properties
@PROPERTY
@given(seed=st.integers(0, 10**6), depth=st.integers(1, 4), data=st.data())
def test_compiled_random_program_equals_evaluate(seed, depth, data):
    made = compile_generated(seed, depth)  # every bug the fuzzer found is fixed: no crash is expected
    gen = made.generated
    note(f"seed={seed} depth={depth} attempt={gen.attempt} vocab={gen.vocab} max_seq_len={gen.max_seq_len} "
         f"causal={gen.causal}\n{gen.text or describe_ops(gen.program)}")
    drawn = data.draw(st.lists(st.lists(st.sampled_from(list(gen.vocab)), min_size=1, max_size=gen.max_seq_len),
                               min_size=1, max_size=25), label="inputs")
    inputs = drawn + fuzz_inputs(gen.vocab, gen.max_seq_len, seed, exhaustive_budget=40, n_random=10)
    report = check_model(made.model, gen.program, inputs, backend="numpy")
    assert report.exact, report.examples[:3]
    assert report.checked == len(inputs)


@PROPERTY
@given(seed=st.integers(0, 10**6), depth=st.integers(1, 5), data=st.data())
def test_printed_program_parses_back_to_the_same_evaluation(seed, depth, data):
    gen = generate_program(seed, depth, printable=True)
    note(f"seed={seed} depth={depth}\n{gen.text}")
    assert gen.text is not None, gen.print_error
    drawn = data.draw(st.lists(st.lists(st.sampled_from(list(gen.vocab)), min_size=1, max_size=gen.max_seq_len),
                               min_size=1, max_size=20), label="inputs")
    status, detail, parsed = round_trip(gen, drawn + fuzz_inputs(gen.vocab, gen.max_seq_len, seed, 30, 10))
    assert status == "ok", detail
    # printing the parsed program gives the same text again (a fixed point)
    assert to_text(parsed) == to_text(parse(to_text(parsed)).output)


# --------------------------------------------------------------------------- the generator
def test_generator_is_deterministic():
    for seed in (0, 1, 17):
        a, b = generate_program(seed, 3), generate_program(seed, 3)
        assert (a.text, a.ops, a.vocab, a.max_seq_len, a.causal) == (b.text, b.ops, b.vocab, b.max_seq_len, b.causal)
    assert generate_program(5, 3).ops != generate_program(5, 3, attempt=1).ops or \
        generate_program(5, 3).text != generate_program(5, 3, attempt=1).text


def test_rebuild_args_rebuild_the_same_program():
    """A task source rebuilds its random program from ``rebuild_args`` (the values drawn are
    passed back, which must not change what else is drawn)."""
    from rasp_compiler import rasp

    for seed in range(12):
        gen = generate_program(seed, 3)
        again = generate_program(**gen.rebuild_args())
        assert (again.text, again.ops, again.vocab) == (gen.text, gen.ops, gen.vocab), seed
        xs = list(gen.vocab)[: gen.max_seq_len]
        assert rasp.evaluate(again.program, xs) == rasp.evaluate(gen.program, xs), seed


def test_generator_respects_its_arguments():
    gen = generate_program(3, depth=4, vocab=("p", "q"), max_seq_len=5, causal=True, printable=True)
    assert gen.vocab == ("p", "q") and gen.max_seq_len == 5 and gen.causal and gen.text is not None
    assert gen.measured_depth >= 4
    only_maps = generate_program(3, depth=3, mix={op: 0 for op in OPERATIONS if op != "map"})
    assert all(op.startswith("Map") or op.startswith("Full") for op in only_maps.ops)
    with pytest.raises(ValueError, match="unknown mix keys"):
        generate_program(0, mix={"maps": 1})
    with pytest.raises(ValueError, match="depth"):
        generate_program(0, depth=0)


def test_generator_covers_every_operation():
    seen: set[str] = set()
    for seed in range(150):
        seen.update(describe_ops(generate_program(seed, 4).program))
    wanted = {"Map[cat->cat]", "Map[cat->num]", "Map[num->cat]", "Map[num->num]", "SequenceMap[cat]",
              "LinearSequenceMap[num]", "LinearSequenceMap[cat]", "Aggregate[numerical]", "Aggregate[categorical]",
              "SelectorWidth[cat]", "SelectorWidth[num]", "SelectorAnd", "SelectorOr", "SelectorNot", "Full[cat]",
              "Select[python]", *(f"Select[{c.value}]" for c in C)}
    assert wanted <= seen, sorted(wanted - seen)


def test_compiler_rarely_rejects_generated_programs():
    attempts = rejected = 0
    for seed in range(30):
        made = compile_generated(seed, 3)
        attempts += 1 + len(made.rejections)
        rejected += len(made.rejections)
    assert rejected <= 0.1 * attempts


def test_check_seed_reports_through_a_weight_file():
    pytest.importorskip("rasp_compiler.export")
    result = check_seed(3, 3, via_file=True, compile_text=True)
    assert not result.failed, result.summary()
    assert result.inputs_checked > 100 and result.extra_checks == {"file": "ok"}
    assert result.round_trip in ("ok", "not_printable")


# --------------------------------------------------------------------------- datasets
def test_write_dataset(tmp_path):
    export = pytest.importorskip("rasp_compiler.export")
    calls = []
    index_path = write_dataset(3, tmp_path / "data", seed=11, depth=2, progress=calls.append)
    assert calls == [1, 1, 1]
    index = json.loads(index_path.read_text())
    assert index["n"] == 3 and len(index["programs"]) == 3
    for entry in index["programs"]:
        model = export.load_model(tmp_path / "data" / entry["file"])
        assert model.config.max_seq_len == entry["max_seq_len"]
        assert entry["layers"] == model.config.n_layers and entry["sizes"]["d_model"] == model.config.d_model
        assert (model.source is not None) == entry["printable"] == (entry["text"] is not None)
        for ex in entry["examples"]:
            got = model.apply([model.config.bos, *ex["input"]]).decoded[1:]
            assert all(same_value(g, w) for g, w in zip(got, ex["output"])), (entry["file"], ex, got)
        assert entry["verified_inputs"] > 0
        assert model.metadata["graph"] is not None  # the ground-truth labels of every component


# --------------------------------------------------------------------------- regressions
def _fmap(formula, inner, name, numerical=False):
    """A Map carrying its formula, as the generator (and the text parser) builds them."""
    m = rasp.Map(fm.compile_formula(formula, 1), inner, simplify=False).annotate(**{fm.FORMULA_KEY: formula})
    m = m.named(name)
    return rasp.numerical(m) if numerical else m


def _assert_exact(program, vocab, n, refusal_ok=False):
    """Compiled and exact on every input (or, with ``refusal_ok``, refused up front with a reason)."""
    try:
        model = compile_rasp_to_model(program, vocab, n)
    except UnsupportedProgramError:
        if refusal_ok:
            return
        raise
    report = check_model(model, program, exhaustive_inputs(vocab, n), backend="numpy")
    assert report.exact, report.examples[:3]


def _assert_round_trip(program, vocab, n):
    """The printed text parses back to a program that evaluates like ``program`` on every input
    and compiles to a model exact against the original's evaluation; returns the text."""
    text = to_text(program)
    parsed = parse(text).output
    for xs in exhaustive_inputs(vocab, n):
        want, got = evaluate(program, xs), evaluate(parsed, xs)
        assert len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want)), (xs, got, want, text)
    model = compile_rasp_to_model(parsed, set(vocab), n)
    report = check_model(model, program, exhaustive_inputs(vocab, n), backend="numpy")
    assert report.exact, (report.examples[:3], text)
    return text


# Bug: an MLP reading a numerical SOp whose read-out is identically zero (the virtual
# LinearSequenceMap x - x) crashed with a bare StopIteration in craft/check.py _cases.
# Fixed in craft/check.py (a read-out with no non-zero weight is checked as the constant 0).


def test_regression_zero_readout_found():
    """Found by the fuzzer (seed 77, depth 3): printed text

        n1_width = selector_width(select(tokens, indices, ==));
        n3_lin_1_m1 = numerical(n1_width - n1_width);
        n5_above_m2p5 = numerical(n3_lin_1_m1 > -2.5);
    """
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.indices, C.EQ)).named("n1_width")
    diff = rasp.numerical(rasp.LinearSequenceMap(width, width, 1, -1)).named("n3_lin_1_m1")
    _assert_exact(rasp.numerical(rasp.Map(lambda x: x > -2.5, diff)).named("n5_above_m2p5"), {"a", "b", "c"}, 4)


def test_regression_zero_readout_minimal():
    x = rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, rasp.tokens)).named("x")
    zero = rasp.numerical(rasp.LinearSequenceMap(x, x, 1, -1)).named("zero")
    _assert_exact(rasp.numerical(rasp.Map(lambda v: v + 1, zero)).named("m"), {"a", "b"}, 3)


# Bug: a categorical Map of a numerical SOp whose outputs differ only by float rounding
# (abs(1.0 - 1.1) vs abs(1.2 - 1.1)) wrote an output direction the residual layout had
# merged away: KeyError Dir(...) in model/assemble.py. Fixed in craft/build.py (node_function
# rounds outputs as the value sets do).


def test_regression_float_twins_found():
    """Found by the fuzzer (seed 50, depth 4), vocab a-d, max_seq_len 6."""
    rank = rasp.Map(lambda t: {"a": 2, "b": 2, "c": 0, "d": 0}[t], rasp.tokens).named("n1_rank_2200")
    copy = rasp.Aggregate(rasp.Select(rasp.indices, rank, C.EQ), rank, default=2).named("n2_copy")
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rank, rank, C.EQ), copy, default=0)).named("n4_mean")
    dist = rasp.Map(lambda x: abs(x - 1.1), mean).named("n6_dist_1p1")
    _assert_exact(dist, {"a", "b", "c", "d"}, 6)


def test_regression_float_twins_minimal():
    x = rasp.numerical(rasp.Map(lambda t: {"a": 1.0, "b": 1.2}[t], rasp.tokens)).named("x")
    _assert_exact(rasp.Map(lambda v: abs(v - 1.1), x).named("y"), {"a", "b"}, 3)


def test_regression_float32_staircase():
    """Found by the fuzzer (seed 107, depth 6, a Python-only program), vocab 0-2, max_seq_len 6."""
    a = rasp.LinearSequenceMap(rasp.indices, rasp.tokens, 1, 3).named("n1_lin_1_3")
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(a, a, C.GT), a, default=0)).named("n2_mean")
    b = rasp.numerical(rasp.LinearSequenceMap(rasp.indices, mean, 1, 3)).named("n3_lin_1_3")
    c = rasp.numerical(rasp.LinearSequenceMap(b, rasp.tokens, 2, 1)).named("n4_lin_2_1")
    out = rasp.numerical(rasp.Map(lambda x: abs(66.55 - x), c)).named("n6_dist")
    model = compile_rasp_to_model(out, {0, 1, 2}, 6)  # was: CompilationCheckError (a float32 staircase)
    report = check_model(model, out, fuzz_inputs((0, 1, 2), 6, 0, 400, 400), backend="numpy")
    assert report.exact, report.examples[:3]


# Printer bug: an identity Map that changes the encoding of an Aggregate was printed as
# categorical(agg) / numerical(agg), which the parser reads as switching the Aggregate between
# mean and copy, a different program. Fixed in dsl/printer.py: such a Map is written
# categorical(agg * 1) / numerical(agg * 1), a Map of agg computing the same values.


def test_regression_printer_view_of_aggregate_found():
    """Found by the fuzzer (seed 125, depth 3), vocab a-d, max_seq_len 6: printed (before the fix) as

        n1_rank_1010 = 1 if tokens == "a" else 0 if tokens == "b" else 1 if tokens == "c" else 0;
        n2_select = select(tokens, n1_rank_1010, false);
        n3_mean = aggregate(not n2_select, n1_rank_1010);
        n4_same = categorical(n3_mean);
    """
    rank_f = fm.Op("cond", (fm.Op("==", (X, fm.Const("a"))), fm.Const(1),
                            fm.Op("cond", (fm.Op("==", (X, fm.Const("b"))), fm.Const(0),
                                           fm.Op("cond", (fm.Op("==", (X, fm.Const("c"))), fm.Const(1),
                                                          fm.Const(0)))))))
    rank = _fmap(rank_f, rasp.tokens, "n1_rank_1010")
    never = rasp.Select(rasp.tokens, rank, C.FALSE).named("n2_select")
    mean = rasp.numerical(rasp.Aggregate(rasp.SelectorNot(never), rank, default=0)).named("n3_mean")
    _assert_round_trip(_fmap(X, mean, "n4_same"), ("a", "b", "c", "d"), 4)


def test_regression_printer_view_of_aggregate_minimal():
    is_a = _fmap(fm.Op("==", (X, fm.Const("a"))), rasp.tokens, "is_a", numerical=True)
    frac = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), is_a, default=0)).named("frac")
    text = _assert_round_trip(_fmap(X, frac, "view"), ("a", "b"), 3)  # was printed: view = categorical(frac);
    assert "view = categorical(frac * 1);" in text


def test_regression_printer_view_of_aggregate_numerical_direction():
    # a numerical identity Map of a categorical (copy) Aggregate: numerical(copy) would be a mean
    is_a = _fmap(fm.Op("==", (X, fm.Const("a"))), rasp.tokens, "is_a")
    prev = rasp.Aggregate(rasp.Select(rasp.indices, _fmap(fm.Op("-", (X, fm.Const(1))), rasp.indices, "before"),
                                      C.EQ), is_a, default=False).named("prev")
    text = _assert_round_trip(_fmap(X, prev, "prev_num", numerical=True), ("a", "b"), 3)
    assert "prev_num = numerical(prev * 1);" in text


# Printer bug: a numerical Aggregate of an SOp that the printer writes as categorical(...) was
# printed without numerical(...), but the parser makes an aggregate of an explicitly categorical
# SOp a categorical (copy) Aggregate. Fixed in dsl/printer.py: the aggregate's wrapper is decided
# from the SOp as it is printed (a categorical(...) wrapper counts as explicitly categorical).


def test_regression_printer_lost_numerical_found():
    """Found by the fuzzer (seed 235, depth 4), vocab a-d, max_seq_len 5: printed (before the fix) as

        n6_select = select(length, tokens, false);
        n2_same = numerical(indices);
        n3_same = categorical(n2_same);
        n7_mean = aggregate(n6_select, n3_same);      # numerical in the original, categorical when parsed
        n8_scale_0p5 = n7_mean * 0.5;
    """
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE)).named("length")
    sel = rasp.Select(length, rasp.tokens, C.FALSE).named("n6_select")
    n2 = _fmap(X, rasp.indices, "n2_same", numerical=True)
    n3 = _fmap(X, n2, "n3_same")
    mean = rasp.numerical(rasp.Aggregate(sel, n3, default=0)).named("n7_mean")
    out = _fmap(fm.Op("*", (X, fm.Const(0.5))), mean, "n8_scale_0p5", numerical=True)
    _assert_round_trip(out, ("a", "b", "c", "d"), 4)


def test_regression_printer_lost_numerical_minimal():
    is_a = _fmap(fm.Op("==", (X, fm.Const("a"))), rasp.tokens, "is_a", numerical=True)
    plus_one = _fmap(fm.Op("+", (X, fm.Const(1))), is_a, "plus_one")  # categorical: printed categorical(is_a + 1)
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, C.LEQ), plus_one, default=0))
    _assert_round_trip(mean.named("mean"), ("a", "b"), 3)


# Parser bug (performance): `a + b` with `a` categorical and number-valued and `b` numerical was
# parsed into a SequenceMap over a categorical view of `b` (one MLP row per pair of values),
# with `a`'s formula fused in, instead of the free numerical LinearSequenceMap of the original.
# Fixed in dsl/parser.py: such a sum (and constant multiples of its sides) is a numerical
# LinearSequenceMap.


def _assert_same_evaluation(a, b, inputs):
    for xs in inputs:
        want, got = evaluate(a, xs), evaluate(b, xs)
        assert len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want)), (xs, got, want)


def test_regression_sum_with_numerical_found():
    """Found by the fuzzer (seed 655, depth 5), vocab a-c, max_seq_len 5: the program compiles into
    10,156 parameters; its printed text

        n1_rank_22020 = 2 if indices == 0 else 2 if indices == 1 else 0 if indices == 2 else 2 if indices == 3 else 0;
        ...
        n6_lin_m1_1 = n5_square - n3_mean;                # numerical, 1,847 values
        n7_lin_1_1 = n1_rank_22020 + n6_lin_m1_1;

    parsed back into a program of 138,357,892 parameters (74 s to compile).
    """
    gen = generate_program(655, 5)
    assert gen.printable and "n7_lin_1_1 = n1_rank_22020 + n6_lin_m1_1;" in gen.text
    parsed = parse(gen.text).output
    # checked before compiling, so that a regression fails here rather than after minutes
    assert type(parsed) is rasp.LinearSequenceMap and parsed.is_numerical, to_text(parsed)
    assert {c.label for c in parsed.children} == {"n1_rank_22020", "n6_lin_m1_1"}
    inputs = fuzz_inputs(gen.vocab, gen.max_seq_len, 655)
    _assert_same_evaluation(gen.program, parsed, inputs)
    original = compile_rasp_to_model(gen.program, gen.vocab, gen.max_seq_len, causal=gen.causal)
    model = compile_rasp_to_model(parsed, gen.vocab, gen.max_seq_len, causal=gen.causal)
    assert model.n_params <= 1.5 * original.n_params, (model.sizes(), original.sizes())
    assert model.config.n_layers <= original.config.n_layers
    report = check_model(model, gen.program, inputs, backend="numpy")
    assert report.exact and report.checked == len(inputs), report.examples[:3]


def test_regression_sum_with_numerical_minimal():
    text = ("rank = 2 if indices == 0 else 0;\n"                                 # categorical, number-valued
            "frac = aggregate(select(indices, indices, <=), tokens == \"a\");\n"   # numerical: a mean
            "s = rank + frac;\nd = 2 * s - frac * 0.5;\nw = indices - 3 * frac;\n"
            "c = categorical(rank + frac);\n")
    prog = parse(text)
    frac, rank = prog["frac"], prog["rank"]
    vocab, n = ("a", "b"), 4
    reference = {  # the formulas as written, on the values of rank, frac and indices
        "s": lambda r, f, i: r + f, "d": lambda r, f, i: 2 * (r + f) - f * 0.5, "w": lambda r, f, i: i - 3 * f,
        "c": lambda r, f, i: r + f,
    }
    for xs in exhaustive_inputs(vocab, n):
        rs, fs = evaluate(rank, xs), evaluate(frac, xs)
        for name, fn in reference.items():
            want = [fn(r, f, i) for i, (r, f) in enumerate(zip(rs, fs))]
            assert evaluate(prog[name], xs) == want, (name, xs)
    # linear read-outs of both sides, constant factors folded in: no MLP reads frac
    for name, fst, snd, facs in (("s", rank, frac, (1, 1)), ("d", prog["s"], frac, (2, -0.5)),
                                 ("w", rasp.indices, frac, (1, -3))):
        node = prog[name]
        assert type(node) is rasp.LinearSequenceMap and node.is_numerical, name
        assert (node.fst.unique_id, node.snd.unique_id, (node.fst_fac, node.snd_fac)) == \
            (fst.unique_id, snd.unique_id, facs), name
    # a categorical sum reads the numerical sum through one identity Map (an MLP)
    c = prog["c"]
    assert not c.is_numerical and type(c) is rasp.Map
    assert type(c.inner) is rasp.LinearSequenceMap and c.inner.is_numerical
    models = {}
    for name in ("s", "d", "w", "c"):
        models[name] = model = compile_rasp_to_model(prog[name], set(vocab), n)
        assert check_model(model, prog[name], exhaustive_inputs(vocab, n), backend="numpy").exact, name
        _assert_round_trip(prog[name], vocab, n)
    # the shape `rank + frac` had before the fix: a SequenceMap over a categorical view of frac
    view = rasp.Map(lambda x: x, frac, simplify=False)
    before = rasp.numerical(rasp.SequenceMap(lambda r, f: r + f, rank, view))
    _assert_same_evaluation(before, prog["s"], exhaustive_inputs(vocab, n))
    before_model = compile_rasp_to_model(before, set(vocab), n)
    for name in ("s", "d", "w"):
        assert models[name].config.n_layers == 1 < before_model.config.n_layers, name
        assert models[name].n_params * 4 < before_model.n_params, (name, models[name], before_model)


# Either fix is accepted: an exact model, or a refusal (UnsupportedProgramError) naming the SOp.


def _prev_token():
    """The previous token: None at position 0."""
    before = rasp.Map(lambda i: i - 1, rasp.indices).named("before")
    return rasp.Aggregate(rasp.Select(rasp.indices, before, C.EQ), rasp.tokens).named("prev")


def test_regression_none_true_selector_found():
    """Found by the fuzzer (seed 322, depth 4), vocab 1-4, max_seq_len 5: on [1, 2] the model
    gives [1.0, 0.0], rasp.evaluate [2.0, 0]. Printed as

        n1_copy = aggregate(select(indices, tokens, ==), tokens);
        n5_select = select(tokens, n1_copy, <=);
        n2_dist_4 = abs(n1_copy - 4);
        n3_select = select(tokens, n2_dist_4, true);
        n4_width = numerical(selector_width(n3_select));
        n6_mean = aggregate(n5_select, n4_width);
    """
    copy = rasp.Aggregate(rasp.Select(rasp.indices, rasp.tokens, C.EQ), rasp.tokens).named("n1_copy")
    dist = _fmap(fm.Op("abs", (fm.Op("-", (X, fm.Const(4))),)), copy, "n2_dist_4")
    width = rasp.numerical(rasp.SelectorWidth(rasp.Select(rasp.tokens, dist, C.TRUE).named("n3_select")))
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.tokens, copy, C.LEQ).named("n5_select"),
                                         width.named("n4_width"), default=0)).named("n6_mean")
    _assert_exact(mean, {1, 2, 3, 4}, 5, refusal_ok=True)


def test_regression_none_true_selector_minimal():
    # on a, b, a: the model gives [0, 3, 3], rasp.evaluate [3, 3, 3]
    _assert_exact(rasp.SelectorWidth(rasp.Select(rasp.tokens, _prev_token(), C.TRUE)).named("w"), {"a", "b"}, 3,
                  refusal_ok=True)


def test_regression_none_not_selector_minimal():
    # on a, b, a: the model gives [0, 1, 2], rasp.evaluate [3, 1, 2]
    not_eq = rasp.SelectorNot(rasp.Select(rasp.tokens, _prev_token(), C.EQ))
    _assert_exact(rasp.SelectorWidth(not_eq).named("w"), {"a", "b"}, 3, refusal_ok=True)


def test_regression_none_product_or_found():
    """Found by the fuzzer (seed 463, depth 5), vocab x, y, z, max_seq_len 5: on [x] the model
    gives [-1.0], rasp.evaluate [-2]. Printed as

        n6_plus_m1 = indices - 1;
        n2_diff = indices - length;
        n7_copy = aggregate(select(indices, n6_plus_m1, ==), n2_diff, 0);
        n4_select = select(tokens, tokens, ==);
        n1_const = full("x");
        n5_copy = aggregate(n4_select and select(indices, n2_diff, ==), n1_const);
        n8_select = select(n5_copy, length, ==);
        n9_width = selector_width(select(n7_copy, n7_copy, ==) or n8_select);
        n11_lin_m1_1 = numerical(n6_plus_m1 - n9_width);
    """
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE)).named("length")
    minus_one = _fmap(fm.Op("-", (X, fm.Const(1))), rasp.indices, "n6_plus_m1")
    diff_f = fm.Op("-", (X, Y))
    diff = rasp.SequenceMap(fm.compile_formula(diff_f, 2), rasp.indices, length).annotate(
        **{fm.FORMULA_KEY: diff_f}).named("n2_diff")
    copy7 = rasp.Aggregate(rasp.Select(rasp.indices, minus_one, C.EQ), diff, default=0).named("n7_copy")
    sel5 = rasp.SelectorAnd(rasp.Select(rasp.tokens, rasp.tokens, C.EQ).named("n4_select"),
                            rasp.Select(rasp.indices, diff, C.EQ))
    copy5 = rasp.Aggregate(sel5, rasp.Full("x").named("n1_const")).named("n5_copy")  # always None
    either = rasp.SelectorOr(rasp.Select(copy7, copy7, C.EQ), rasp.Select(copy5, length, C.EQ).named("n8_select"))
    width = rasp.SelectorWidth(either).named("n9_width")
    out = rasp.numerical(rasp.LinearSequenceMap(minus_one, width, -1, 1)).named("n11_lin_m1_1")
    try:
        model = compile_rasp_to_model(out, {"x", "y", "z"}, 5)
    except UnsupportedProgramError:
        return
    report = check_model(model, out, fuzz_inputs(("x", "y", "z"), 5, 0, 400, 100), backend="numpy")
    assert report.exact, report.examples[:3]


def test_regression_none_product_or_minimal():
    # on a, b, a: the model gives [1, 2, 2], rasp.evaluate [2, 2, 2]
    either = rasp.SelectorOr(rasp.Select(rasp.indices, rasp.indices, C.EQ), rasp.Select(_prev_token(), rasp.tokens, C.EQ))
    _assert_exact(rasp.SelectorWidth(either).named("w"), {"a", "b"}, 3, refusal_ok=True)


def test_regression_none_numerical_map_minimal():
    # on a, b, a: the model gives [0.0, 1.0, 0.0], rasp.evaluate [None, 1, 0]
    _assert_exact(rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, _prev_token())).named("m"), {"a", "b"}, 3,
                  refusal_ok=True)
