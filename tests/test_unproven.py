"""Unproven categorical Aggregates (issue 27, items 2 and 3): compiled with a named warning,
recorded in the model's metadata, refused under strict, and never silent at run time: the
one-hot guard raises on an input where such an Aggregate blends values."""

import json
import warnings

import numpy as np
import pytest

from rasp_compiler import BlendedValueError, UnprovenAggregateWarning, compile_rasp_to_model, rasp
from rasp_compiler.errors import RaspCompilerError, UnsupportedProgramError
from rasp_compiler.export import load_model, save_model
from rasp_compiler.graph import validate
from rasp_compiler.verify import check_model, random_inputs

VOCAB = tuple("abcdefgh")
N = 5
C = rasp.Comparison


def rare_program():
    """Copies the token at position 0 or 4 when it is "h", with default "_"; both positions
    hold "h" on 1 in 64 inputs of length 5, and then it selects two positions holding different
    indices. ``shout`` reads it, so the guard must name the Aggregate, not its reader."""
    ends = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k in (0, 4)).named("ends")
    is_h = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "h").named("is_h")
    rare = rasp.Aggregate(rasp.SelectorAnd(is_h, ends), rasp.indices, default=9).named("rare")
    return rasp.categorical(rasp.Map(lambda i: f"at {i}", rare)).named("shout")


def _compile_unproven(program=None, **kw):
    with pytest.warns(UnprovenAggregateWarning) as caught:
        model = compile_rasp_to_model(program or rare_program(), set(VOCAB), N, **kw)
    return model, caught


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnprovenAggregateWarning)
        return compile_rasp_to_model(rare_program(), set(VOCAB), N)


CONFLICT = ["h", "a", "b", "c", "h"]  # positions 0 and 4 both "h": indices 0 and 4 selected


def _conflicts(xs) -> bool:
    try:
        rasp.evaluate(rare_program(), xs, strict=True)
    except RaspCompilerError:
        return True
    return False


def test_too_many_inputs_for_the_exhaustive_check():
    assert validate._input_count(len(VOCAB), N, validate.EXHAUSTIVE_AGGREGATE_INPUTS) \
        > validate.EXHAUSTIVE_AGGREGATE_INPUTS
    assert _conflicts(CONFLICT) and not _conflicts(["h", "a", "b", "c", "d"])


def test_compiles_with_a_warning_naming_the_node():
    model, caught = _compile_unproven()
    [w] = [w for w in caught if issubclass(w.category, UnprovenAggregateWarning)]
    assert w.message.label == "rare"
    assert "categorical Aggregate rare may select positions of indices holding different values" in str(w.message)
    assert "strict=True" in str(w.message)
    assert w.filename == __file__  # points at the caller of compile_rasp_to_model
    assert model.config.unproven_aggregates == ("rare",)


def test_proven_programs_record_nothing():
    from rasp_compiler import lib

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnprovenAggregateWarning)
        model = compile_rasp_to_model(lib.make_reverse(rasp.tokens), set(VOCAB), N)
    assert model.config.unproven_aggregates == ()


def test_strict_refuses_with_the_old_message():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnprovenAggregateWarning)  # refused, not warned about
        with pytest.raises(UnsupportedProgramError, match=r"categorical Aggregate rare may select positions of "
                           r"indices holding different values.*too many inputs \(more than 4096\).*numerical"):
            compile_rasp_to_model(rare_program(), set(VOCAB), N, strict=True)


def test_guard_catches_the_conflict_naming_sop_position_and_input(model):
    tokens = ["BOS", *CONFLICT]
    for run in (lambda: model.apply(tokens), lambda: model.apply(tokens, backend="jax"),
                lambda: model.apply_batch([["BOS", "a"], tokens, ["BOS", "h"]], backend="numpy"),
                lambda: model.apply_batch([["BOS", "a"], tokens], backend="jax")):
        with pytest.raises(BlendedValueError) as info:
            run()
        exc = info.value
        assert (exc.sop, exc.position, exc.input) == ("rare", 1, tokens)
        text = str(exc)
        assert "categorical SOp rare holds no single value at position 1" in text
        assert repr(tokens) in text and "rare:0=0.5" in text and "rare:4=0.5" in text and "unproven" in text


def test_check_model_raises_on_the_conflicting_input(model):
    with pytest.raises(BlendedValueError, match="rare holds no single value"):
        check_model(model, rare_program(), [["a", "b"], CONFLICT, ["c"]])


def test_inputs_without_the_conflict_run_and_match_evaluate(model):
    inputs = [x for x in random_inputs(VOCAB, N, 600, seed=3, full_length=300) if not _conflicts(x)]
    inputs += [["h", "a", "b", "c", "d"], ["a", "b", "c", "d", "h"], ["h"], ["a", "h", "h", "h", "a"]]
    assert len(inputs) > 500
    report = check_model(model, rare_program(), inputs)
    assert report.exact, report.examples[:2]
    assert {tuple(rasp.evaluate(rare_program(), x)) for x in inputs} >= {("at 0",) * 5, ("at 4",) * 5, ("at 9",) * 5}


def test_without_the_guard_the_blend_goes_unreported(model):
    out = model.apply(["BOS", *CONFLICT], guard=False).decoded[1:]
    assert out != rasp.evaluate(rare_program(), CONFLICT)  # a wrong output: what the guard is for
    report = check_model(model, rare_program(), [CONFLICT], guard=False)
    assert report.n_mismatches == 1


def test_guard_checks_every_categorical_subspace_not_only_unproven_ones():
    """A proven model whose weights were edited to halve a head's output: the guard names that SOp."""
    from rasp_compiler import lib

    program = lib.make_reverse(rasp.tokens)
    model = compile_rasp_to_model(program, set("abc"), 4)
    assert model.apply(["BOS", "a", "b", "c"]).decoded[1:] == ["c", "b", "a"]
    layer, head = next((l, h) for l, hs in enumerate(model.labels.heads) for h, n in enumerate(hs) if n == "reverse")
    w_o = model.params[f"blocks.{layer}.attn.W_O"].copy()
    w_o[head] *= 0.5
    model.params[f"blocks.{layer}.attn.W_O"] = w_o
    with pytest.raises(BlendedValueError, match=r"reverse holds no single value at position 1 .*not exact"):
        model.apply(["BOS", "a", "b", "c"])


def test_weight_file_keeps_the_unproven_nodes_and_the_guard(model, tmp_path):
    path = save_model(model, tmp_path / "rare.safetensors")
    loaded = load_model(path)
    assert loaded.config.unproven_aggregates == ("rare",)
    assert loaded.one_hot == model.one_hot
    with pytest.raises(BlendedValueError, match="rare holds no single value at position 1"):
        loaded.apply(["BOS", *CONFLICT])
    assert loaded.apply(["BOS", "h", "a"]).decoded[1:] == rasp.evaluate(rare_program(), ["h", "a"])


def test_old_weight_files_without_the_new_fields_still_load(model, tmp_path):
    """Files written before unproven_aggregates and one_hot_guard existed: none unproven, no guard."""
    from rasp_compiler.export.safetensors_bytes import safetensors_bytes
    from rasp_compiler.export.safetensors_file import file_checksum
    import safetensors.numpy

    path = save_model(model, tmp_path / "new.safetensors")
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + n])["__metadata__"]
    config = json.loads(meta["config"])
    del config["unproven_aggregates"]
    meta["config"] = json.dumps(config)
    del meta["one_hot_guard"]
    tensors = safetensors.numpy.load(data)
    meta["sha256"] = file_checksum(meta, tensors)
    old = tmp_path / "old.safetensors"
    old.write_bytes(safetensors_bytes(tensors, meta))
    loaded = load_model(old)
    assert loaded.config.unproven_aggregates == () and loaded.one_hot is None
    assert loaded.apply(["BOS", "h", "a"]).decoded[1:] == rasp.evaluate(rare_program(), ["h", "a"])


def test_bad_unproven_field_is_a_clear_file_error():
    from rasp_compiler.export.metadata import config_from_json, config_to_json

    data = config_to_json(compile_rasp_to_model(rasp.tokens, {"a"}, 2).config)
    data["unproven_aggregates"] = [3]
    with pytest.raises(ValueError, match="unproven_aggregates must be a list of SOp labels"):
        config_from_json(data)


def test_variants_out_of_the_compiled_basis_carry_no_guard(model):
    from rasp_compiler.interp.rotate import rotate_residual

    rotated = rotate_residual(model, seed=0)
    assert rotated.one_hot is None
    xs = ["BOS", "h", "a", "b"]
    assert rotated.apply(xs).decoded == model.apply(xs).decoded  # not one-hot in the named basis, not refused


def test_task_sources_compile_strictly():
    from rasp_compiler.interp.tasks.sources import Source

    source = Source("rare", "test", rare_program, VOCAB, N)
    with pytest.raises(UnsupportedProgramError, match="rare may select positions"):
        source.compile()


def test_tolerance_separates_every_blend_from_compiled_precision(model):
    """A blend of k <= max_seq_len positions puts at least 1/k on a minority value; the tolerance is
    far below that, and far above the compiled model's error."""
    g = model.one_hot
    assert g.tolerance < 1 / N / 2
    ids = np.stack([model.encode(["BOS", *x]) for x in random_inputs(VOCAB, N, 200, seed=1, full_length=200) if not _conflicts(x)])
    _, resid = model._forward_numpy(ids, with_residual=True)
    cols = np.concatenate([np.arange(a, b) for _, a, b, _ in g.groups])
    x = resid[:, 1:, cols]
    assert np.minimum(np.abs(x), np.abs(x - 1)).max() < g.tolerance / 100


def _outcome(model, program, xs):
    """("conflict" | "fine", whether the guard raised, the model's output if it did not)."""
    try:
        rasp.evaluate(program, xs, strict=True)
        truth = "fine"
    except RaspCompilerError as exc:
        truth = "conflict" if "selects differing values" in str(exc) else "error"
    try:
        return truth, False, model.apply(["BOS", *xs]).decoded[1:]
    except BlendedValueError:
        return truth, True, None


@pytest.mark.parametrize("seed", range(16))
def test_every_conflicting_program_is_refused_under_strict_and_caught_otherwise(seed):
    """The edge fuzzer's rare-input Aggregates, over a vocabulary too large to try every input:
    a program strict refuses compiles otherwise, and on every input checked the guard raises
    exactly where the strict evaluator finds a conflict; elsewhere the output is exact."""
    import itertools
    import random

    from rasp_compiler.fuzz.edges import generate_edge
    from rasp_compiler.verify import same_value

    case = generate_edge("rare_aggregate", seed)
    vocab, n = tuple("abcdefg"), max(case.max_seq_len, 5)
    try:
        model = compile_rasp_to_model(case.program, set(vocab), n, strict=True)
        unproven = False
    except UnsupportedProgramError as exc:
        assert "too many inputs" in str(exc)
        with pytest.warns(UnprovenAggregateWarning):
            model = compile_rasp_to_model(case.program, set(vocab), n)
        assert model.config.unproven_aggregates
        unproven = True
    rng = random.Random(seed)
    inputs = [list(x) for k in (1, 2) for x in itertools.product(vocab, repeat=k)]
    inputs += [[rng.choice(vocab) for _ in range(n)] for _ in range(150)]
    inputs += [[case.vocab[-1]] * n, [case.vocab[0]] * n, [case.vocab[-1]] + [vocab[-1]] * (n - 2) + [case.vocab[-1]]]
    seen = set()
    for xs in inputs:
        truth, raised, out = _outcome(model, case.program, xs)
        seen.add(truth)
        assert raised == (truth == "conflict"), (case.description, xs, truth)
        if truth == "fine":
            assert all(same_value(g, w) for g, w in zip(out, rasp.evaluate(case.program, xs))), (xs, out)
    if not unproven:
        assert "conflict" not in seen  # a proof is sound


RARE_RASP = """# copies the token at position 0 or 4 when it is g or h; blends g and h when both are there
ends = select(indices, 0, ==) or select(indices, 4, ==);
rare = aggregate(select(tokens, "g", >=) and ends, tokens);
"""


def _cli(capsys, *args):
    from rasp_compiler.cli import app

    with pytest.raises(SystemExit) as exc:
        app(args=[str(a) for a in args], prog_name="rasp-compiler")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return exc.value.code, out, " ".join(err.split())  # rich wraps long lines


def test_cli_compile_warns_inspect_lists_strict_refuses_run_guards(capsys, tmp_path):
    program = tmp_path / "rare.rasp"
    program.write_text(RARE_RASP, encoding="utf-8")
    target = tmp_path / "rare.safetensors"
    common = ["--vocab", "a,b,c,d,e,f,g,h", "--max-seq-len", "5"]
    code, out, err = _cli(capsys, "compile", program, *common, "-o", target)
    assert code == 0 and err.startswith("warning: categorical Aggregate rare may select positions of tokens")
    assert "unproven (guarded at run time): rare" in out
    assert load_model(target).config.unproven_aggregates == ("rare",)

    code, out, _ = _cli(capsys, "inspect", target)
    row = next(line for line in out.splitlines() if line.startswith("unproven"))
    assert code == 0 and "rare" in row

    code, out, err = _cli(capsys, "compile", program, *common, "-o", tmp_path / "strict.safetensors", "--strict")
    assert code == 1 and "categorical Aggregate rare may select positions" in err and "too many inputs" in err
    assert "rare.rasp:3:" in err.splitlines()[0]  # at the aggregate's line of the file (issue 26 item 7)
    assert not (tmp_path / "strict.safetensors").exists()
    code, _, err = _cli(capsys, "run", target, "--input", "h a b c d", "--strict")
    assert code == 1 and "--strict refuses such a model" in err

    code, out, err = _cli(capsys, "run", target, "--input", "h a b c d")
    assert code == 0 and "model and evaluator agree" in out
    code, _, err = _cli(capsys, "run", target, "--input", "h a b c g")
    assert code == 1 and "error: categorical SOp rare holds no single value at position 1 (token 'h')" in err
    assert "['BOS', 'h', 'a', 'b', 'c', 'g']" in err
    code, out, err = _cli(capsys, "run", target, "--input", "h a b c g", "--no-guard")
    assert "holds no single value" not in err and "evaluator fails on this input" in err  # only the evaluator objects

    code, _, err = _cli(capsys, "verify", target, "--random", "300")
    assert code == 1 and "rare holds no single value" in err
    code, out, err = _cli(capsys, "verify", target, "--random", "300", "--no-guard")
    assert code == 1 and "holds no single value" not in err and "selects differing values" in err  # the evaluator's


def test_task_export_skips_a_program_strict_refuses_with_a_note(tmp_path, monkeypatch):
    from rasp_compiler.interp.tasks import export
    from rasp_compiler.interp.tasks.sources import Source

    source = Source("rare", "test", rare_program, VOCAB, N)
    monkeypatch.setattr(export, "select_sources", lambda *args: ([source], []))
    report = export.export_tasks(tmp_path / "tasks", programs=["rare"], variants=["compiled"])
    assert report.tasks == []
    [note] = [n for n in report.skipped if n.startswith("rare:")]
    assert "not compiled strictly" in note and "rare may select positions" in note
    manifest = json.loads((tmp_path / "tasks" / "manifest.json").read_text())
    assert manifest["n_tasks"] == 0 and note in manifest["skipped"]
