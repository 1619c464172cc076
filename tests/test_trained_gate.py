"""The trained-task gate: committed weights are used as they are, the bar refuses what misses it,
and the figures task.json states are reproduced from the task's files by patching.

Nothing here trains: ``length`` (the smallest committed model, benchmarks/results/trained/)
is the model that meets the bar; the model that misses it is the same weights with half of
the mapped MLP's neurons moved into the unmapped range (a permutation of neurons: the
function, hence the accuracy, is unchanged; the unmapped range now does real work).
"""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pytest
from safetensors.numpy import load_file

from rasp_compiler.export import load_model, save_model
from rasp_compiler.interp.tasks import export_tasks, load_task, trained_gate
from rasp_compiler.interp.tasks.sources import library_sources
from rasp_compiler.interp.tasks.trained_gate import TrainedBarWarning
from rasp_compiler.interp.variants import trained
from rasp_compiler.model.transformer import forward

siit_train = importlib.import_module("rasp_compiler.interp.siit.train")  # the package re-exports train()
COMMITTED = trained_gate.COMMITTED_DIR / "length.safetensors"
pytestmark = pytest.mark.skipif(not COMMITTED.is_file(), reason="needs a source checkout's committed weights")


@pytest.fixture
def no_training(monkeypatch):
    """Any training call fails the test."""
    def refuse(*a, **k):
        raise AssertionError("trained although weights were available")
    monkeypatch.setattr(trained, "train", refuse)
    monkeypatch.setattr(siit_train, "train", refuse)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RASP_COMPILER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "trained"


def _export(out, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = export_tasks(out, programs=["lib:length"], variants=["trained"], **kw)
    return report, [w for w in caught if issubclass(w.category, TrainedBarWarning)]


def _patched_metric(path, target_index: int, swap: set[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From the task files alone: (M(clean), M(corrupt), M(clean with the ``swap`` components'
    outputs from the corrupted run)) per pair, through the model's hooked forward pass."""
    model = load_model(path / "model.safetensors")
    circuit = json.loads((path / "circuit.json").read_text())
    t = load_file(str(path / "pairs.safetensors"))
    k = f"t{target_index}"
    clean, corrupt, U = t[f"{k}.clean"], t[f"{k}.corrupt"], t[f"{k}.U"].astype(np.float64)
    params = {n: np.asarray(v, np.float64) for n, v in model.params.items()}
    L, causal = model.config.n_layers, model.config.causal

    def run(ids, hooks=None):
        cache: dict = {}
        forward(params, ids, xp=np, n_layers=L, causal=causal, hooks=hooks, cache=cache)
        return cache, (cache[f"blocks.{L - 1}.hook_resid_post"] * U).sum((1, 2))

    corrupt_cache, m_corrupt = run(corrupt)
    clean_cache, m_clean = run(clean)
    heads: dict[int, list[int]] = {}
    neurons: dict[int, list[tuple[int, int]]] = {}
    for c in circuit["components"]:
        if c["name"] in swap:
            if c["kind"] == "head":
                heads.setdefault(c["layer"], []).append(c["head"])
            else:
                neurons.setdefault(c["layer"], []).append((c["lo"], c["hi"]))

    def z_hook(l):
        def f(z):
            z = z.copy()
            z[:, :, heads[l]] = corrupt_cache[f"blocks.{l}.attn.hook_z"][:, :, heads[l]]
            return z
        return f

    def post_hook(l):
        def f(post):
            post = post.copy()
            for lo, hi in neurons[l]:
                post[..., lo:hi] = corrupt_cache[f"blocks.{l}.mlp.hook_post"][..., lo:hi]
            return post
        return f

    hooks = {f"blocks.{l}.attn.hook_z": z_hook(l) for l in heads}
    hooks.update({f"blocks.{l}.mlp.hook_post": post_hook(l) for l in neurons})
    return m_clean, m_corrupt, run(clean, hooks)[1]


def test_committed_weights_are_exported_without_training(tmp_path, no_training, cache):
    report, warned = _export(tmp_path / "tasks")
    assert [t["name"] for t in report.tasks] == ["lib-length__trained__s0"] and not report.errors and not warned
    folder = tmp_path / "tasks" / "lib-length__trained__s0"
    written, committed = load_model(folder / "model.safetensors"), load_model(COMMITTED)
    assert all(np.array_equal(written.params[k], committed.params[k]) for k in committed.params)
    assert not cache.exists()  # nothing trained, nothing cached
    task = json.loads((folder / "task.json").read_text())
    saved = committed.metadata["extra"]["settings"]
    assert {k: task["variant"]["settings"][k] for k in ("seed", "steps", "lr", "d_model")} == \
        {k: saved[k] for k in ("seed", "steps", "lr", "d_model")}


def test_task_json_figures_are_reproduced_by_patching(tmp_path, no_training, cache):
    _export(tmp_path / "tasks")
    folder = tmp_path / "tasks" / "lib-length__trained__s0"
    task = json.loads((folder / "task.json").read_text())
    m = task["exactness"]["metrics"]
    assert set(m) == {"iia", "strict_iia", "outside_effect_max", "faithfulness_min", "faithfulness_max",
                      "unmapped_bound", "faithfulness_bound"}
    circuit = json.loads((folder / "circuit.json").read_text())
    members = set(circuit["circuits"][0]["nodes"])
    outside = [c["name"] for c in circuit["components"] if c["kind"] in ("head", "mlp") and c["name"] not in members]
    assert outside and {"L0.H1", "L0.MLP:unmapped"} <= set(outside)
    worst = 0.0
    for name in outside:
        m_clean, m_corrupt, moved = _patched_metric(folder, 0, {name})
        worst = max(worst, float(np.max(np.abs(m_clean - moved) / (m_clean - m_corrupt))))
    m_clean, m_corrupt, patched = _patched_metric(folder, 0, set(outside))
    faith = (patched - m_corrupt) / (m_clean - m_corrupt)
    assert worst == pytest.approx(m["outside_effect_max"], rel=1e-4, abs=1e-6)
    assert faith.min() == pytest.approx(m["faithfulness_min"], rel=1e-4)
    assert faith.max() == pytest.approx(m["faithfulness_max"], rel=1e-4)
    assert 0 < worst <= m["unmapped_bound"] and np.all(np.abs(faith - 1) <= m["faithfulness_bound"])
    assert task["exactness"]["accuracy"] >= 0.99 and m["iia"] >= 0.95 and m["strict_iia"] >= 0.95


def _moved_into_unmapped(path):
    """The committed length model with neurons 0..7 of its mapped MLP (0..15) swapped with the
    unmapped ones (16..23): the same function, but the unmapped range now computes."""
    model = load_model(COMMITTED)
    p = {k: np.array(v) for k, v in model.params.items()}
    perm = np.arange(p["blocks.0.mlp.W_in"].shape[1])
    perm[0:8], perm[16:24] = np.arange(16, 24), np.arange(0, 8)
    p["blocks.0.mlp.W_in"], p["blocks.0.mlp.b_in"] = p["blocks.0.mlp.W_in"][:, perm], p["blocks.0.mlp.b_in"][perm]
    p["blocks.0.mlp.W_out"] = p["blocks.0.mlp.W_out"][perm]
    model.params.update(p)
    return save_model(model, path)


def test_a_model_that_meets_accuracy_but_not_strictness_is_refused(tmp_path, monkeypatch, no_training, cache):
    committed = tmp_path / "committed"
    committed.mkdir()
    bad = _moved_into_unmapped(committed / "length.safetensors")
    monkeypatch.setattr(trained_gate, "COMMITTED_DIR", committed)
    compiled = library_sources(["length"])[0].compile()
    v = trained.from_cache(compiled, bad)
    assert v.exactness.accuracy == 1.0  # meets accuracy ...
    assert v.exactness.metrics["strict_iia"] < 0.95  # ... but resampling the unmapped neurons matters
    report, warned = _export(tmp_path / "tasks")
    assert report.tasks == [] and not (tmp_path / "tasks" / "lib-length__trained__s0").exists()
    [note] = [s for s in report.skipped if s.startswith("lib-length__trained__s0")]
    assert "strict_iia" in note and "outside_effect_max" in note
    assert len(warned) == 1 and "lib-length__trained__s0" in str(warned[0].message)
    assert "\n" not in str(warned[0].message)


def test_without_committed_weights_it_trains_once_into_the_cache(tmp_path, monkeypatch, cache):
    """Seed 1 has no committed weights: the first export trains (here: a stand-in returning
    the initial weights, so the gate refuses it) and caches; the second loads the cache."""
    calls, said = [], []

    def fake_train(compiled, mapping, seed=0, log=None, **kw):
        calls.append(seed)
        log({"step": 100, "behaviour": 0.5, "interchange": 0.25, "strict": 0.125})
        return siit_train.TrainResult(siit_train.init_params(mapping.config, seed), [], 0.0)

    monkeypatch.setattr(trained, "train", fake_train)
    progress = lambda line, done, total: said.append(line)  # noqa: E731
    first = export_tasks(tmp_path / "a", programs=["lib:length"], variants=["trained"], seeds=[1],
                         progress=progress)
    assert calls == [1] and first.tasks == []
    assert any(s.startswith("lib-length__trained__s1: accuracy") for s in first.skipped)  # untrained weights
    [cached] = list(cache.iterdir())
    assert cached.name.startswith("lib-length__s1__") and cached.suffix == ".safetensors"
    assert any("SIIT training, 1000 steps" in line for line in said)  # the library's settings for length
    assert "lib-length: SIIT step 100/1000, loss 0.500 / 0.250 / 0.125" in said  # progress while training
    monkeypatch.setattr(trained, "train", lambda *a, **k: pytest.fail("trained although cached"))
    second = export_tasks(tmp_path / "b", programs=["lib:length"], variants=["trained"], seeds=[1])
    assert second.skipped == first.skipped and list(cache.iterdir()) == [cached]


def test_cli_export_uses_the_committed_weights_and_names_each_refusal(tmp_path, capsys, no_training, cache):
    from rasp_compiler.cli import app

    with pytest.raises(SystemExit) as exc:
        app(args=["testbed", "export", str(tmp_path / "t"), "--programs", "lib:length,lib:first_occurrence",
                  "--variants", "trained", "--random", "0"], prog_name="rasp-compiler")
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None) and "Traceback" not in err
    assert "wrote 1 blind tasks" in out  # blind by default: the open name is in the answer key only
    [entry] = json.loads((tmp_path / "t" / "answer" / "manifest.json").read_text())["tasks"]
    assert entry["open_name"] == "lib-length__trained__s0" and (tmp_path / "t" / entry["name"] / "task.json").exists()
    assert b"unmapped" not in (tmp_path / "t" / entry["name"] / "model.safetensors").read_bytes()[:100_000]
    assert load_task(tmp_path / "t" / entry["name"]).kind == "trained"
    [line] = [ln for ln in out.splitlines() if "first_occurrence__trained__s0" in ln]
    assert "strict_iia 0.4326 < 0.95" in line and "outside_effect_max" in line  # docs/trained.md's figures
    assert "TrainedBarWarning" not in err  # the refusal is that one line, not twice


def test_the_bar_names_each_missed_figure_and_a_nan_misses_it():
    from rasp_compiler.interp.siit.gate import BAR, misses

    good = {"iia": 1.0, "strict_iia": 1.0, "outside_effect_max": 0.1, "faithfulness_min": 0.9,
            "faithfulness_max": 1.1}
    assert misses(1.0, good) == []
    assert [m.split()[0] for m in misses(0.98, {**good, "faithfulness_max": 1 + BAR.faithfulness_bound + 0.01})] \
        == ["accuracy", "faithfulness"]
    assert misses(1.0, {**good, "outside_effect_max": float("nan")})[0].startswith("outside_effect_max nan")
    assert misses(1.0, {**good, "strict_iia": float("nan")})[0].startswith("strict_iia nan")


def test_the_cache_key_changes_with_program_seed_and_settings(cache):
    from rasp_compiler.interp.tasks.trained_gate import cache_path, training_settings

    length, count = library_sources(["length", "count"])
    m_length, m_count = length.compile(), count.compile()
    s0, s1 = training_settings(length, 0), training_settings(length, 1)
    assert s0 == {"steps": 1000, "seed": 0}
    paths = {cache_path(length, m_length, s0), cache_path(length, m_length, s1),
             cache_path(length, m_length, {**s0, "lr": 3e-3}), cache_path(count, m_count, s0)}
    assert len(paths) == 4 and all(p.parent == cache for p in paths)
    assert cache_path(length, length.compile(), s0) == cache_path(length, m_length, s0)  # stable
