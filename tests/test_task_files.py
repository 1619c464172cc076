"""Task folders from elsewhere: names read from their JSON stay inside the folder, bad files
are one clear error, and exporting twice writes the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from rasp_compiler.export.safetensors_bytes import safetensors_bytes
from rasp_compiler.interp.tasks import TaskSetError, export_tasks, load_task, task_dirs
from rasp_compiler.interp.tasks.paths import confined

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def task_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("set")
    report = export_tasks(out, ["lib:sort"], variants=["compiled", "rotated"], seeds=[0], n_pairs=4)
    assert [t["name"] for t in report.tasks] == ["lib-sort__compiled__s0", "lib-sort__rotated__s0"]
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_program_text_outside_the_folder_is_refused(task_set, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    task = _copy(task_set / "lib-sort__compiled__s0", tmp_path / "task")
    load_task(task)  # the unedited copy loads
    for name in ("../secret.txt", "../../../../etc/hostname", str(secret)):
        _edit_json(task / "task.json", lambda d: d["program"].__setitem__("text", name))
        with pytest.raises(TaskSetError, match=r"task\.json: field program\.text"):
            load_task(task)


def test_symlink_leaving_the_folder_is_refused(task_set, tmp_path):
    task = _copy(task_set / "lib-sort__compiled__s0", tmp_path / "task")
    outside = tmp_path / "circuit.json"
    (task / "circuit.json").rename(outside)
    os.symlink(outside, task / "circuit.json")
    with pytest.raises(TaskSetError, match="circuit.json.*leads outside"):
        load_task(task)
    (task / "circuit.json").unlink()
    (task / "circuit.json").write_bytes(outside.read_bytes())
    (tmp_path / "secret.rasp").write_text("x = tokens;")
    os.symlink(tmp_path / "secret.rasp", task / "program.rasp")
    _edit_json(task / "task.json", lambda d: d["program"].__setitem__("text", "program.rasp"))
    with pytest.raises(TaskSetError, match=r"field program\.text.*leads outside"):
        load_task(task)


def test_residual_basis_outside_or_not_safetensors_is_one_clear_error(task_set, tmp_path):
    task = _copy(task_set / "lib-sort__rotated__s0", tmp_path / "task")
    assert load_task(task).model.residual_basis is not None
    _edit_json(task / "circuit.json", lambda d: d.__setitem__("residual_basis", "../../basis.safetensors"))
    with pytest.raises(TaskSetError, match=r"circuit\.json: field residual_basis"):
        load_task(task)
    (task / "fake.safetensors").write_text("this is not a safetensors file, just text" * 3)
    _edit_json(task / "circuit.json", lambda d: d.__setitem__("residual_basis", "fake.safetensors"))
    with pytest.raises(TaskSetError, match="not a safetensors file") as info:
        load_task(task)
    assert "\n" not in str(info.value)


def test_manifest_task_name_outside_the_set_is_refused(task_set, tmp_path):
    (tmp_path / "OTHER").mkdir()
    _copy(task_set / "lib-sort__compiled__s0", tmp_path / "OTHER" / "task")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "manifest.json").write_text((task_set / "manifest.json").read_text())
    assert [p.name for p in task_dirs(tasks)] == ["lib-sort__compiled__s0", "lib-sort__rotated__s0"]
    _edit_json(tasks / "manifest.json", lambda d: d["tasks"][0].__setitem__("name", "../OTHER/task"))
    with pytest.raises(TaskSetError, match=r"manifest\.json: field tasks\[0\]\.name"):
        task_dirs(tasks)


def test_sweep_cli_refuses_a_hostile_manifest_in_one_line(task_set, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "manifest.json").write_text((task_set / "manifest.json").read_text())
    _edit_json(tasks / "manifest.json", lambda d: d["tasks"][1].__setitem__("name", "/etc"))
    run = subprocess.run([sys.executable, "-m", "rasp_compiler.cli", "testbed", "sweep", str(tasks), str(tmp_path / "r"),
                          "--methods", "patching"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0
    assert "tasks[1].name" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert not (tmp_path / "r" / "jobs").exists() or not any((tmp_path / "r" / "jobs").iterdir())


def test_confined_accepts_plain_names_only(tmp_path):
    assert confined(tmp_path, "a.json", "x") == tmp_path / "a.json"
    assert confined(tmp_path, "sub/a.json", "x") == tmp_path / "sub" / "a.json"
    for bad in ("", ".", "..", "a/../../b", "/abs", "C:\\x", "a\\..\\b", 3, None):
        with pytest.raises(TaskSetError, match="^x: "):
            confined(tmp_path, bad, "x")
    with pytest.raises(TaskSetError):
        confined(tmp_path, "sub/a.json", "x", single=True)


def test_safetensors_bytes_are_read_by_the_library_and_independent_of_order():
    a = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([1.5, -2.0]), "i": np.array([3, 4])}
    data = safetensors_bytes(a, {"z": "1", "y": "2"})
    back = safetensors.numpy.load(data)
    assert set(back) == set(a) and all(np.array_equal(back[k], a[k]) and back[k].dtype == a[k].dtype for k in a)
    assert safetensors_bytes(dict(reversed(list(a.items()))), {"y": "2", "z": "1"}) == data


EXPORT = """
import sys
from rasp_compiler.interp.tasks import export_tasks
export_tasks(sys.argv[1], ["lib:hist"], variants=["compiled", "rotated", "distractors"], seeds=[0], n_random=1,
             n_pairs=4)
"""


def test_exporting_twice_gives_identical_bytes(tmp_path):
    """Two processes (different hash seeds, so set and dict orders differ) write the same bytes."""
    outs = []
    for k, hash_seed in enumerate(("1", "2")):
        out = tmp_path / f"set{k}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", EXPORT, str(out)], check=True, cwd=ROOT, env=env)
        outs.append({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert len(outs[0]) > 10 and outs[0].keys() == outs[1].keys()
    differ = [name for name in outs[0] if outs[0][name] != outs[1][name]]
    assert not differ, differ
