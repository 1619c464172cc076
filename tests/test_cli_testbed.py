"""``rasp-compiler testbed``: list, export, score (every method, task folder and weight file), sweep, report."""

from __future__ import annotations

import json

import pytest

from rasp_compiler.interp.tasks.score import method_names


def run(capsys, *args):
    from rasp_compiler.cli import app

    with pytest.raises(SystemExit) as exc:
        app(args=[str(a) for a in args], prog_name="rasp-compiler")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return exc.value.code, out, err


@pytest.fixture(scope="module")
def task_set(tmp_path_factory):
    from rasp_compiler.interp.tasks import export_tasks

    d = tmp_path_factory.mktemp("cli_tasks")
    export_tasks(d, programs=["lib:shift_by"], variants=["compiled", "rotated"], n_pairs=4)
    return d


def test_list_and_export(capsys, tmp_path):
    code, out, _ = run(capsys, "testbed", "list")
    assert code == 0 and "lib:sort" in out and "examples/reverse.rasp" in out and "rotated" in out
    assert all(m in out for m in method_names())
    code, out, _ = run(capsys, "testbed", "export", tmp_path / "open", "--programs", "lib:hist", "--variants",
                       "compiled,rotated", "--random", "0", "--n-pairs", "4", "--open")
    assert code == 0 and "wrote 2 open tasks" in out
    manifest = json.loads((tmp_path / "open" / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tasks"]] == ["lib-hist__compiled__s0", "lib-hist__rotated__s0"]
    code, out, _ = run(capsys, "testbed", "list", tmp_path / "open")
    assert code == 0 and "2 tasks" in out and "lib-hist__rotated__s0" in out
    # the default: blind folders under neutral names, the open names only in the answer key
    code, out, _ = run(capsys, "testbed", "export", tmp_path / "blind", "--programs", "lib:hist", "--variants",
                       "compiled,rotated", "--random", "0", "--n-pairs", "4")
    assert code == 0 and "wrote 2 blind tasks" in out and "without answer/" in out
    visible = (tmp_path / "blind" / "manifest.json").read_text()
    assert "hist" not in visible and "rotated" not in visible
    names = [t["name"] for t in json.loads(visible)["tasks"]]
    assert len(names) == 2 and all(n.startswith("task-") for n in names)
    answer = json.loads((tmp_path / "blind" / "answer" / "manifest.json").read_text())
    assert sorted(t["open_name"] for t in answer["tasks"]) == ["lib-hist__compiled__s0", "lib-hist__rotated__s0"]
    code, out, _ = run(capsys, "testbed", "list", tmp_path / "blind")
    assert code == 0 and "lib-hist__rotated__s0" in out and all(n in out for n in names)


@pytest.mark.parametrize("method", method_names())
def test_score_every_method_on_a_task_folder_and_a_weight_file(capsys, task_set, method):
    code, out, _ = run(capsys, "testbed", "score", "--method", method, task_set / "lib-shift_by__rotated__s0",
                       "--json")
    assert code == 0
    data = json.loads(out)
    res = data["result"]
    assert data["variant"] == "rotated" and res["method"] == method
    out_target = next(t for t in res["targets"] if t["is_output"])
    # the output's circuit: the shifting head; the ranking names every component (or edge)
    assert out_target["circuit"] and set(out_target["circuit"]) <= set(out_target["scores"])
    # the same method on the plain weight file: truth read off the weights, same circuit
    code, out, _ = run(capsys, "testbed", "score", "--method", method,
                       task_set / "lib-shift_by__compiled__s0" / "model.safetensors", "--json")
    assert code == 0
    plain = json.loads(out)
    assert plain["variant"] == "file"
    plain_out = next(t for t in plain["result"]["targets"] if t["is_output"])
    assert sorted(plain_out["circuit"]) == sorted(out_target["circuit"])


def test_score_a_weight_file_with_table_and_plot(capsys, tmp_path, task_set):
    weights = task_set / "lib-shift_by__compiled__s0" / "model.safetensors"
    for method in ("patching", "eap_star"):
        png = tmp_path / f"{method}.png"
        code, out, _ = run(capsys, "testbed", "score", "-m", method, weights, "--plot", png)
        assert code == 0 and "in circuit" in out and "ROC AUC" in out and png.stat().st_size > 1000
        assert "yes" in out


def test_score_errors(capsys, tmp_path, task_set):
    code, _, err = run(capsys, "testbed", "score", "-m", "magic", task_set / "lib-shift_by__compiled__s0")
    assert code == 2 and "unknown method 'magic'" in err and "patching" in err
    code, _, err = run(capsys, "testbed", "score", "-m", "patching", tmp_path / "missing")
    assert code == 2 and "no such file or folder" in err
    code, _, err = run(capsys, "testbed", "score", "-m", "patching", tmp_path)
    assert code == 1 and "not a task folder" in err
    code, _, err = run(capsys, "testbed", "export", tmp_path / "x", "--programs", "lib:nope", "--random", "0")
    assert code == 1 and "no library program 'nope'" in err
    code, _, err = run(capsys, "testbed", "report", tmp_path)
    assert code == 2 and "no sweep results" in err


def test_sweep_and_report(capsys, tmp_path, task_set):
    results = tmp_path / "results"
    code, out, _ = run(capsys, "testbed", "sweep", task_set, results, "--methods", "patching,edge_patching",
                       "--executor", "serial")
    assert code == 0 and "4 jobs: 0 already done, 4 run now, 0 failed" in out
    code, out, _ = run(capsys, "testbed", "sweep", task_set, results, "--methods", "patching,edge_patching",
                       "--executor", "serial")
    assert code == 0 and "4 jobs: 4 already done, 0 run now" in out
    code, out, _ = run(capsys, "testbed", "report", results)
    assert code == 0 and "| edge_patching |" in out and "| method | compiled | rotated |" in out
    assert (results / "report.md").is_file() and (results / "report.png").stat().st_size > 1000
