"""tracr's own public-API tests (shipped in tracr-pypi), run against rasp_compiler.

Every tracr test must pass, except the documented expected differences, and each of
those must really fail (a stale entry is an error too). The default run samples the
5,184-case selector product test; ``-m slow`` runs every case.
"""

from __future__ import annotations

import logging
import sys

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.rasp import tracr_compat
from rasp_compiler.rasp.tracr_alias import as_tracr

ROOT = tracr_compat.tracr_root()
needs_tracr = pytest.mark.skipif(
    ROOT is None, reason="tracr-pypi is not installed: `pip install -e .[bench]` (or tracr-pypi) to run tracr's tests")

_PRODUCT = "works_the_same_way_as_not"


def _sampled(test_id: str) -> bool:
    """Every test, but only each 61st case of the 5,184-case product test."""
    if _PRODUCT not in test_id:
        return True
    digits = test_id.rsplit("not", 1)[-1]
    return digits.isdigit() and int(digits) % 61 == 0


def _check(result: tracr_compat.FileResult) -> None:
    assert result.import_error is None, result.import_error
    assert result.total > 0
    assert not result.unexpected, f"{len(result.unexpected)} tracr tests fail: {dict(list(result.unexpected.items())[:5])}"
    stale = [(f, p) for (f, p) in tracr_compat.EXPECTED_DIFFERENCES
             if f == result.file and not any(tracr_compat.expected_reason(f, t) for t in result.failures)]
    assert not stale, f"expected differences that no longer fail (remove them): {stale}"


@needs_tracr
@pytest.mark.parametrize("file", tracr_compat.PUBLIC_TEST_FILES)
def test_tracr_public_api_tests_pass(file):
    _check(tracr_compat.run_test_file(file, select=_sampled))


@needs_tracr
@pytest.mark.slow
@pytest.mark.parametrize("file", tracr_compat.PUBLIC_TEST_FILES)
def test_tracr_public_api_tests_pass_in_full(file):
    _check(tracr_compat.run_test_file(file))


@needs_tracr
def test_alias_is_undone_after_the_run():
    tracr_compat.run_test_file("rasp/causal_eval_test.py")
    import tracr.rasp.rasp as theirs
    assert theirs is not rasp and "rasp_compiler" not in theirs.__file__


@needs_tracr
def test_alias_serves_tracr_imports_inside_the_block():
    with as_tracr():
        from tracr.compiler import compiling, lib
        from tracr.rasp import rasp as aliased
        assert aliased is rasp
        model = compiling.compile_rasp_to_model(lib.make_reverse(aliased.tokens), {"a", "b"}, 3)
        assert model.apply(["compiler_bos", "a", "b"]).decoded == ["compiler_bos", "b", "a"]
    assert sys.modules.get("tracr.rasp.rasp") is not rasp


# ---------------------------------------------------------------- the same, without tracr
def test_tracr_names_exist():
    for name in ("length", "ConstantSelector", "DefaultRASPEvaluator", "RASPEvaluator", "selector_and",
                 "selector_or", "selector_not", "sop_not", "annotate", "DEFAULT_ANNOTATORS", "default_name",
                 "LengthType", "Predicate", "Value", "SelectorValue"):
        assert hasattr(rasp, name), name
    from rasp_compiler.lib import make_count_less_freq, make_nary_sequencemap  # noqa: F401
    from rasp_compiler.rasp import causal_eval, validating  # noqa: F401


def test_default_names_are_tracr_s_and_labels_stay_unique():
    m1, m2 = rasp.Map(abs, rasp.tokens), rasp.Map(abs, rasp.tokens)
    assert m1.name == m2.name == "map" and m1.label != m2.label
    assert rasp.SequenceMap(max, rasp.tokens, rasp.indices).name == "sequence_map"
    assert rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)).name == "selector_width"
    assert m1.named("x").label == "x" and m1.named("x").unique_id == m1.unique_id
    assert m1.copy().unique_id != m1.unique_id


def test_expressions_are_callable_and_length_is_the_input_length():
    assert rasp.Map(lambda x: x + 1, rasp.tokens)([1, 2]) == [2, 3]
    assert rasp.length("abc") == [3, 3, 3]
    assert (rasp.length - rasp.indices)([0, 0]) == [2, 1]


def test_sequence_map_of_one_sop_twice_warns(caplog):
    with caplog.at_level(logging.WARNING):
        rasp.SequenceMap(lambda x, y: x + y, rasp.tokens, rasp.tokens)
    assert "same SOp" in caplog.text


def test_selector_helpers_simplify_to_one_select_with_the_same_value():
    a = rasp.Select(rasp.tokens, rasp.indices, rasp.Comparison.GEQ)
    b = rasp.Select(rasp.Full(1), rasp.indices, rasp.Comparison.LEQ)
    both = rasp.selector_and(a, b)
    assert isinstance(both, rasp.Select) and both.keys is rasp.tokens
    xs = [0, 2, 1, 3]
    assert both(xs) == rasp.SelectorAnd(a, b)(xs)
    assert rasp.selector_not(a)(xs) == rasp.SelectorNot(a)(xs)


def test_categorical_mean_as_tracr_but_strict_for_the_compiler():
    sel = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    agg = rasp.Aggregate(sel, rasp.tokens)
    assert agg([1, 2]) == [1.5, 1.5]
    from rasp_compiler.errors import AggregateError, UnsupportedProgramError
    with pytest.raises(AggregateError):
        rasp.evaluate(agg, [1, 2], strict=True)
    with pytest.raises(UnsupportedProgramError):
        compile_rasp_to_model(agg, {1, 2}, 3)


def test_causal_eval_masks_every_selector():
    from rasp_compiler.rasp import causal_eval
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE)
    assert causal_eval.evaluate(sel, [1, 2]) == [[True, False], [True, True]]
    assert causal_eval.evaluate(rasp.SelectorWidth(sel), [1, 2, 3]) == [1, 2, 3]


def test_validating_reports_the_uncompilable_part():
    from rasp_compiler.rasp import validating
    mean = rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LEQ), rasp.tokens).named("mean")
    found = validating.validate(mean, [1, 2, 3])
    assert found and found[0].expr.label == "mean"
    assert validating.validate(rasp.Map(lambda x: x + 1, rasp.tokens), [1, 2]) == []


def test_detect_pattern_gives_none_before_the_window_fits():
    from rasp_compiler.lib import detect_pattern
    program = detect_pattern(rasp.tokens, "ab")
    assert program(list("abab")) == [None, True, False, True]
    model = compile_rasp_to_model(program, {"a", "b"}, 4)
    for xs in (list("a"), list("ab"), list("bab"), list("abab")):
        assert model.apply(["BOS", *xs]).decoded[1:] == program(xs)


def test_padded_inputs_run_like_unpadded_ones():
    from rasp_compiler.lib import make_reverse
    from rasp_compiler.errors import InputError
    model = compile_rasp_to_model(make_reverse(rasp.tokens), {"a", "b", "c"}, 5)
    assert model.apply(["BOS", "a", "b", "PAD", "PAD"]).decoded == ["BOS", "b", "a", None, None]
    assert model.apply_batch([["BOS", "c", "a", "b", "PAD"]], backend="numpy") == [["BOS", "b", "a", "c", None]]
    with pytest.raises(InputError, match="PAD"):
        model.apply(["BOS", "a", "PAD", "b"])


def test_tracr_style_model_attributes():
    from rasp_compiler.lib import make_length
    model = compile_rasp_to_model(rasp.categorical(make_length()), {"a", "b"}, 4)
    ids = model.input_encoder.encode(["BOS", "a", "b"])
    assert model.input_encoder.decode(ids) == ["BOS", "a", "b"]
    assert model.input_encoder.bos_encoding == ids[0] and model.input_encoder.pad_token == "PAD"
    logits = model.apply(["BOS", "a", "b"]).output
    assert model.output_encoder.decode(logits.argmax(-1)[1:]) == [2, 2]
    assert model.model_config.num_layers == model.config.n_layers and not model.model_config.layer_norm
    assert model.residual_labels == list(model.labels.residual)


def test_two_sops_with_one_name_compile_as_two_nodes():
    a = rasp.Map(lambda t: t == "a", rasp.tokens).named("flag")
    b = rasp.Map(lambda t: t == "b", rasp.tokens).named("flag")
    program = rasp.SequenceMap(lambda x, y: (x, y), a, b).named("out")
    model = compile_rasp_to_model(program, {"a", "b", "c"}, 2)
    for xs in (["a"], ["b"], ["c", "a"]):
        assert model.apply(["BOS", *xs]).decoded[1:] == program(xs)


@pytest.mark.parametrize("primitive", ["tokens", "indices"])
def test_numerical_tokens_and_indices_compile(primitive):
    program = rasp.numerical(rasp.Map(lambda x: 2 * x, rasp.numerical(getattr(rasp, primitive))))
    model = compile_rasp_to_model(program, {1, 2, 3}, 3)
    for xs in ([1], [3, 2], [2, 2, 1]):
        assert model.apply(["BOS", *xs]).decoded[1:] == program(xs)


def test_numerical_tokens_of_letters_are_refused_clearly():
    from rasp_compiler.errors import UnsupportedProgramError
    with pytest.raises(UnsupportedProgramError, match="tokens"):
        compile_rasp_to_model(rasp.numerical(rasp.tokens), {"a", "b"}, 3)


@needs_tracr
def test_what_tracr_refuses_and_we_compile_is_exact():
    """Backs the 'we compile it' expected differences: each such program of tracr's is exact here."""
    from rasp_compiler.verify import check_model, exhaustive_inputs
    with as_tracr():
        import importlib
        cases = importlib.import_module("tracr.compiler.test_cases").UNSUPPORTED_TEST_CASES
    compiled = 0
    for case in cases:
        test_id = f"test_unsupported_programs_fail_validation_{case['testcase_name']}"
        reason = tracr_compat.expected_reason("compiler/validating_test.py", test_id)
        if not reason or "compiles it" not in reason:
            continue
        model = compile_rasp_to_model(case["program"], case["vocab"], case["max_seq_len"])
        report = check_model(model, case["program"], exhaustive_inputs(case["vocab"], 4))
        assert report.exact, (case["testcase_name"], report.examples[:1])
        compiled += 1
    assert compiled == 6


@needs_tracr
def test_every_public_name_of_tracr_s_api_modules_exists_here():
    import importlib
    import types
    from rasp_compiler.rasp.tracr_alias import ALIASES
    with as_tracr():
        ours = {alias: sys.modules[alias] for alias in ALIASES}
    missing = []
    for alias, module in ours.items():
        theirs = importlib.import_module(alias)  # tracr's own module, now that the alias is undone
        assert theirs is not module
        for name in dir(theirs):
            obj = getattr(theirs, name)
            owner = getattr(obj, "__module__", None)
            if name.startswith("_") or isinstance(obj, types.ModuleType) or (owner and not owner.startswith("tracr")):
                continue
            if not hasattr(module, name):
                missing.append(f"{alias}.{name}")
    assert not missing, missing


def test_an_expression_is_not_a_function_argument_although_callable():
    from rasp_compiler.errors import RaspTypeError
    for build in (lambda: rasp.Map(rasp.tokens, rasp.indices), lambda: rasp.SequenceMap(rasp.tokens, rasp.tokens, rasp.indices),
                  lambda: rasp.Select(rasp.tokens, rasp.tokens, rasp.indices)):
        with pytest.raises(RaspTypeError):
            build()
