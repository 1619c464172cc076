"""Every bad input gives one clear error: the right exception type, a message naming the
cause, no traceback from deep inside.

The cases live in rasp_compiler/fuzz/bad_inputs.py (shared with docs/reliability.md,
whose table is generated from them). Cases whose error is poor today carry a
``known_issue`` (reported, with the suggested fix) and are ``xfail(strict=True)`` here,
so the fix is noticed.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from rasp_compiler import compile_rasp_to_model, rasp
from rasp_compiler.errors import ParseError, RaspCompilerError
from rasp_compiler.fuzz.bad_inputs import CASES, Context, markdown_table, run_case, run_cases

C = rasp.Comparison
DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("bad_inputs"))


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.known_issue)] if case.known_issue else []
        yield pytest.param(case, id=f"{case.group}:{case.name}", marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input_gives_one_clear_error(case, ctx):
    outcome = run_case(case, ctx)
    if outcome.status == "skipped":
        pytest.skip(outcome.detail)
    assert outcome.status == "ok", f"{outcome.status} ({outcome.detail}): {outcome.error_type}: {outcome.message}"


def test_case_names_are_unique_and_every_case_is_in_the_doc():
    names = [(c.group, c.name) for c in CASES]
    assert len(names) == len(set(names))
    if DOC.exists():  # the table in docs/reliability.md is generated from these cases
        text = DOC.read_text(encoding="utf-8")
        missing = [c.name for c in CASES if c.name.replace("|", "\\|") not in text]
        assert not missing, f"regenerate the table in docs/reliability.md: missing {missing}"


def test_markdown_table_has_one_row_per_case(tmp_path):
    cases = [c for c in CASES if c.group in ("text", "input")][:5]
    table = markdown_table(run_cases(cases, tmp=tmp_path))
    assert table.count("\n") == len(cases) + 2
    assert "ParseError" in table or "InputError" in table


def test_parse_error_carries_its_position():
    from rasp_compiler.dsl import parse
    with pytest.raises(ParseError) as info:
        parse("a = tokens;\nb = select(a, a, ==;\n", filename="p.rasp")
    err = info.value
    assert (err.filename, err.line) == ("p.rasp", 2) and err.column and "^" in str(err)
    assert isinstance(err, RaspCompilerError)


def test_errors_are_raised_before_any_weight_is_built():
    """An uncompilable program fails in validation: the craft stage is never reached."""
    bad = rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, C.TRUE), rasp.tokens).named("any_token")
    with mock.patch("rasp_compiler.compiler.craft_blocks") as craft:
        with pytest.raises(RaspCompilerError):
            compile_rasp_to_model(bad, {"a", "b"}, 3)
    craft.assert_not_called()


# --------------------------------------------------------------------------- nothing half-written
def _small_model():
    return compile_rasp_to_model(rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, C.EQ)).named("hist"),
                                 {"a", "b"}, 3)


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
@pytest.mark.parametrize("where", ["os.fsync", "os.replace"])
def test_an_interrupted_save_leaves_nothing_behind(tmp_path, failure, where):
    export = pytest.importorskip("rasp_compiler.export")
    target = tmp_path / "model.safetensors"
    with mock.patch(where, side_effect=failure):
        with pytest.raises(type(failure)):
            export.save_model(_small_model(), target)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_save_keeps_the_old_file(tmp_path):
    export = pytest.importorskip("rasp_compiler.export")
    target = tmp_path / "model.safetensors"
    model = _small_model()
    export.save_model(model, target)
    before = target.read_bytes()
    with mock.patch("os.replace", side_effect=KeyboardInterrupt()):
        with pytest.raises(KeyboardInterrupt):
            export.save_model(model, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert export.load_model(target).config == model.config


def test_an_interrupted_dataset_leaves_no_index(tmp_path):
    pytest.importorskip("rasp_compiler.export")
    from rasp_compiler.export import save_model
    from rasp_compiler.fuzz import write_dataset

    calls = []

    def fail_on_second(model, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return save_model(model, path)

    with mock.patch("rasp_compiler.export.save_model", side_effect=fail_on_second):
        with pytest.raises(KeyboardInterrupt):
            write_dataset(3, tmp_path / "data", depth=2)
    left = sorted(os.listdir(tmp_path / "data"))
    assert left == ["program_00000.safetensors"]  # complete files only: no index, no temporary file
