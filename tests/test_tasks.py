"""Task folders: export, load back, and the same truth, outputs and pairs as in memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rasp_compiler.errors import RaspCompilerError
from rasp_compiler.interp.ground_truth import ground_truth
from rasp_compiler.interp.tasks import TaskSetError, export_tasks, load_task, select_sources, task_dirs, write_task
from rasp_compiler.interp.tasks.export import labelling, sha256_file, task_pairs
from rasp_compiler.interp.variants import available, make_variant
from rasp_compiler.verify import exhaustive_inputs

ROOT = Path(__file__).resolve().parents[1]
KINDS = [k for k in available() if k != "trained"]  # trained variants take minutes: their own tests


def assert_same_truth(a, b, readouts: bool = True):
    """Every part of two ground truths is equal: components, graph, features with their
    directions, neurons, read-outs, and the circuit of every target. ``readouts=False``:
    ``b`` was read off a loaded model's weights, which cannot know virtual nodes' read-outs."""
    assert (a.output, a.granularity) == (b.output, b.granularity)
    assert a.components == b.components and list(a.components) == list(b.components)
    assert dict(a.graph.nodes(data=True)) == dict(b.graph.nodes(data=True))
    assert {(x, y): d["dims"] for x, y, d in a.graph.edges(data=True)} == \
        {(x, y): d["dims"] for x, y, d in b.graph.edges(data=True)}
    assert a.features.features == b.features.features
    for fa, fb in zip(a.features.features, b.features.features):
        assert np.array_equal(fa.direction, fb.direction), fa.label
    assert a.features.neurons == b.features.neurons
    assert a.readouts == b.readouts or not readouts
    targets = [a.output] + sorted({f.node for f in a.features.features if f.kind in ("categorical", "numerical")}
                                  | (set(a.readouts) if readouts else set()))
    for t in targets:
        assert a.circuit(t) == b.circuit(t), t


def outputs(model):
    c = model.config
    return model.apply_batch([[c.bos, *x] for x in exhaustive_inputs(c.vocab, c.max_seq_len)], backend="numpy")


@pytest.fixture(scope="module")
def sources():
    found, _ = select_sources(["lib:reverse", "lib:frac_prevs", "ex:sort", "lib:hist", "lib:induction"])
    return {s.name: s for s in found}


@pytest.mark.parametrize("name", ["lib-reverse", "ex-sort", "lib-frac_prevs"])
def test_task_round_trip(tmp_path, sources, name):
    """A loaded task has the truth, outputs and pairs of the variant it was written from."""
    source = sources[name]
    model = source.compile()
    for kind in KINDS:
        try:
            variant = make_variant(model, kind, seed=1)
        except RaspCompilerError:  # the kind does not apply to this program (export skips it with a note)
            continue
        entry = write_task(tmp_path / kind, source, variant, seed=1, n_pairs=8)
        task = load_task(tmp_path / kind, check_hashes=entry["files"])
        assert task.kind == kind and task.seed == 1
        assert_same_truth(task.truth, variant.truth if getattr(variant.model, "residual_basis", None) is None
                          else _aligned(variant))
        for k, v in variant.model.params.items():
            assert np.array_equal(task.model.params[k], v), k
        assert outputs(task.model) == outputs(variant.model)
        entries, _ = task_pairs(variant.model, task.truth, 8, 1, *labelling(variant))  # noise: program labels
        assert list(task.pairs) == [p.target for p, _, _ in entries]
        for p, _, _ in entries:
            q = task.pairs[p.target]
            for field in ("clean", "corrupt", "U", "gap", "lengths"):
                assert np.array_equal(getattr(p, field), getattr(q, field)), (p.target, field)
            assert p.clean_values.tolist() == q.clean_values.tolist()
        if kind in ("compiled", "rotated"):  # their truth is what the weights say: read it again from the file
            assert_same_truth(task.truth, ground_truth(task.model), readouts=False)
        if source.text is not None:
            assert task.program_text == source.text


def _aligned(variant):
    from rasp_compiler.interp.ground_truth import aligned_truth
    return aligned_truth(variant.truth, variant.model)


def test_rotated_truth_directions_follow_the_basis(sources):
    """In a rotated task, feature i's direction is row i of the model's residual basis."""
    model = sources["lib-reverse"].compile()
    variant = make_variant(model, "rotated", seed=3)
    truth = _aligned(variant)
    basis = variant.model.residual_basis
    assert not np.allclose(basis, np.eye(len(basis)))
    for f in truth.features.features:
        assert np.array_equal(f.direction, basis[f.index])


def test_scores_on_a_loaded_task_equal_scores_in_memory(tmp_path, sources):
    from rasp_compiler.interp.tasks.score import score_model, score_path

    source = sources["lib-reverse"]
    variant = make_variant(source.compile(), "rotated", seed=0)
    write_task(tmp_path / "t", source, variant, seed=0, n_pairs=8)
    from_disk, _ = score_path(tmp_path / "t", "patching")
    in_memory = score_model(variant.model, _aligned(variant), "patching", n_pairs=8, seed=0)
    strip = lambda d: {k: v for k, v in d.items() if k != "seconds"}
    assert strip(from_disk.data) == strip(in_memory.data)


def test_export_set_and_manifest(tmp_path):
    """export_tasks of a small set: every task loads, hashes match, notes for what does not apply."""
    report = export_tasks(tmp_path, programs=["lib:reverse", "lib:hist"], variants=["compiled", "rotated"],
                          n_random=1, random_seed=0, n_pairs=4)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["n_tasks"] == len(report.tasks) == 6 and not report.errors
    assert {t["program"]["name"] for t in manifest["tasks"]} == {"lib-reverse", "lib-hist", "rand-00002"}
    assert all(t["sizes"]["layers"] >= 2 for t in manifest["tasks"] if t["program"]["name"].startswith("rand"))
    assert manifest["total_bytes"] == sum((tmp_path / t["name"] / f).stat().st_size
                                          for t in manifest["tasks"] for f in t["files"])
    for t, folder in zip(manifest["tasks"], task_dirs(tmp_path)):
        assert folder.name == t["name"]
        task = load_task(folder, check_hashes=t["files"])
        if task.kind == "compiled":
            assert_same_truth(task.truth, ground_truth(task.model), readouts=False)
        assert set(t["files"]) == {f.name for f in folder.iterdir()}
        assert t["files"]["model.safetensors"] == sha256_file(folder / "model.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_bad_input_errors(tmp_path):
    with pytest.raises(TaskSetError, match="unknown program selector 'sort'"):
        select_sources(["sort"])
    with pytest.raises(TaskSetError, match="no library program 'nope'"):
        select_sources(["lib:nope"])
    with pytest.raises(TaskSetError, match="unknown variant 'blurry'"):
        export_tasks(tmp_path / "x", programs=["lib:hist"], variants=["blurry"])
    with pytest.raises(TaskSetError, match="not a task folder"):
        load_task(tmp_path)


def test_changed_file_is_refused_and_failed_write_leaves_nothing(tmp_path, sources, monkeypatch):
    source = sources["lib-hist"]
    variant = make_variant(source.compile(), "compiled")
    entry = write_task(tmp_path / "t", source, variant, seed=0, n_pairs=4)
    with open(tmp_path / "t" / "circuit.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(TaskSetError, match="sha256 differs"):
        load_task(tmp_path / "t", check_hashes=entry["files"])

    import rasp_compiler.interp.tasks.export as export

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(export, "pairs_to_files", boom)
    with pytest.raises(OSError, match="disk full"):
        write_task(tmp_path / "u", source, variant, seed=0, n_pairs=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # no half task, no temporary folder


LOADER = Path(__file__).resolve().parents[1] / "docs" / "testbed_format.md"


def _doc_loader() -> str:
    text = LOADER.read_text(encoding="utf-8")
    start = text.index("<!-- torch-loader -->")
    block = text[start:].split("```python\n", 1)[1].split("```", 1)[0]
    return block


def test_doc_loader_is_short():
    code = [ln for ln in _doc_loader().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) <= 16, len(code)


@pytest.mark.parametrize("kind,name", [("rotated", "lib-reverse"), ("noise", "lib-induction")])
def test_torch_loader_from_the_doc(tmp_path, sources, kind, name):
    """The doc's torch loader, run without rasp_compiler importable, reproduces the model's outputs
    and the stored metric gap (noise: the full forward over every head and neuron is the one the
    gaps were computed with, padding heads and neurons included)."""
    pytest.importorskip("torch")
    source = sources[name]
    variant = make_variant(source.compile(), kind, seed=0)
    write_task(tmp_path / "t", source, variant, seed=0, n_pairs=4)
    script = _doc_loader() + textwrap.dedent(f"""
        import sys, json
        sys.modules["rasp_compiler"] = None  # the loader must not need our package
        m, circuit, pairs, P = load_task({str(tmp_path / 't')!r})
        out = {{}}
        for k, t in enumerate(pairs["targets"]):
            key = t["tensors"]
            clean, corrupt, U = P[key + ".clean"], P[key + ".corrupt"], P[key + ".U"]
            M = lambda ids: (m(ids).double() * U).sum((1, 2))
            out[t["target"]] = (M(clean) - M(corrupt)).tolist()
        logits = m(P["t0.clean"]) @ m.W_U
        out["__logits__"] = logits.tolist()
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    task = load_task(tmp_path / "t")
    for target, p in task.pairs.items():
        assert np.allclose(got[target], p.gap, rtol=1e-4, atol=1e-4), target
    from rasp_compiler.interp.forward import Decomposed
    resid = Decomposed(task.model).run(task.pairs[task.truth.output].clean)
    assert np.allclose(np.asarray(got["__logits__"]), resid @ task.model.params["unembed.W_U"], atol=1e-3)


def test_scoring_a_noise_task_uses_its_stored_pairs(tmp_path, sources):
    """A noise task's pairs are labelled by the program and drop pairs the noisy model gets
    backwards, so pairs made afresh from its model differ: scoring the folder must use the
    stored main set, pair for pair (with another seed it makes fresh pairs)."""
    from rasp_compiler.interp.tasks.score import score_path

    source = sources["lib-induction"]
    variant = make_variant(source.compile(), "noise", seed=1)
    write_task(tmp_path / "t", source, variant, seed=1, n_pairs=8)
    task = load_task(tmp_path / "t")
    scored, _ = score_path(tmp_path / "t", "patching")
    assert [t.target for t in scored.result.targets] == list(task.pairs)
    for t in scored.result.targets:
        stored = task.pairs[t.target]
        assert np.array_equal(t.pairs.clean, stored.clean) and np.array_equal(t.pairs.corrupt, stored.corrupt)
        assert np.allclose(t.pairs.gap, stored.gap, rtol=1e-4), t.target
    fresh, _ = score_path(tmp_path / "t", "patching", seed=5)
    assert any(not np.array_equal(f.pairs.clean, task.pairs[f.target].clean) for f in fresh.result.targets)
