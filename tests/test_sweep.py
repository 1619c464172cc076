"""Sweeps: idempotent jobs, a killed sweep resumed gives the same results, failures recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rasp_compiler.interp.sweep import Job, load_results, plan, result_path, sweep
from rasp_compiler.interp.tasks import export_tasks


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    d = tmp_path_factory.mktemp("tasks")
    export_tasks(d, programs=["lib:hist", "lib:count", "lib:length", "lib:reverse"], variants=["compiled", "rotated"],
                 n_pairs=4)
    return d


def comparable(results_dir) -> dict:
    """Job id -> result without timings and process ids (what must not depend on the run)."""
    results, errors = load_results(results_dir)
    assert not errors, errors
    out = {}
    for r in results:
        res = {k: v for k, v in r["result"].items() if k != "seconds"}
        out[r["job"]] = {**{k: v for k, v in r.items() if k not in ("seconds", "pid", "result")}, "result": res}
    return out


def test_plan_ids_are_unique_and_stable(tasks):
    jobs = plan([tasks / "a", tasks / "b"], ["patching", "eap"], seeds=[0, 1])
    assert len({j.id for j in jobs}) == 8
    assert Job(str(tasks / "a"), "eap", 1).id == "a__eap__p1"


def test_serial_sweep_resumes_and_records_failures(tasks, tmp_path):
    report = sweep(tasks, tmp_path, ["patching"], executor="serial")
    assert (report.total, report.done, report.skipped, report.failed) == (8, 8, 0, [])
    first = comparable(tmp_path)
    # reverse has intermediate targets with negatives; a one-node circuit of the output has none (AUC n/a)
    assert all(r["result"]["summary"]["auc_active"] is not None for j, r in first.items() if "reverse" in j)
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "jobs").iterdir()}
    again = sweep(tasks, tmp_path, ["patching"], executor="serial")
    assert (again.done, again.skipped) == (0, 8)  # nothing re-run
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / "jobs").iterdir()}
    # a job that fails (a task folder that is not one) leaves an error file, retried next time
    bad = tmp_path / "not_a_task"
    bad.mkdir()
    failed = sweep([bad], tmp_path, ["patching"], executor="serial")
    assert failed.failed == ["not_a_task__patching"]
    err = json.loads(result_path(tmp_path, Job(str(bad), "patching"), error=True).read_text())
    assert "not a task folder" in err["error"] and err["traceback"]


def test_killed_sweep_resumes_to_the_same_results(tasks, tmp_path):
    """Kill a sweep running in worker processes (the whole process group) after its first
    results, restart it: the results equal those of an uninterrupted sweep."""
    whole = tmp_path / "whole"
    sweep(tasks, whole, ["patching", "edge_patching"], executor="serial")
    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "rasp_compiler.cli", "testbed", "sweep", str(tasks), str(cut),
           "--methods", "patching,edge_patching", "--executor", "processes", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    jobs = cut / "jobs"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if jobs.is_dir() and len([p for p in jobs.glob("*.json")]) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed: " + proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(jobs.glob("*.json")))
    assert 3 <= done_before < 16
    report = sweep(tasks, cut, ["patching", "edge_patching"], executor="serial")
    assert report.skipped >= done_before and report.done == 16 - report.skipped and not report.failed
    assert comparable(cut) == comparable(whole)
    assert not [p for p in jobs.iterdir() if not p.name.endswith(".json") and not p.name.startswith(".")]


@pytest.mark.slow  # starting Ray takes ~20 s on 2 busy cores; benchmarks/sweep_speed.py runs it too
def test_ray_sweep_matches_serial(tasks, tmp_path):
    pytest.importorskip("ray")
    serial = tmp_path / "serial"
    sweep(tasks, serial, ["patching"], executor="serial")
    ray_dir = tmp_path / "ray"
    report = sweep(tasks, ray_dir, ["patching"], executor="ray", workers=2)
    assert report.executor == "ray" and report.done == 8 and not report.failed
    assert comparable(ray_dir) == comparable(serial)
    pids = {r["pid"] for r in load_results(ray_dir)[0]}
    assert os.getpid() not in pids  # ran in Ray workers


def test_unknown_executor(tasks, tmp_path):
    with pytest.raises(ValueError, match="executor must be one of"):
        sweep(tasks, tmp_path, ["patching"], executor="gpu")


def test_ray_that_cannot_start_is_a_clear_error(monkeypatch):
    import rasp_compiler.interp.sweep as sweep_module
    from rasp_compiler.interp.sweep import SweepError, _start_ray

    calls = []

    class NoRay:  # a Ray whose local node never comes up (as on an overloaded machine)
        def init(self, **kwargs):
            calls.append(kwargs)
            raise Exception("The current node timed out during startup.")

        def shutdown(self):
            pass

    monkeypatch.setattr(sweep_module.time, "sleep", lambda s: None)
    with pytest.raises(SweepError, match="could not start a local Ray instance in 3 attempts .* --executor processes"):
        _start_ray(NoRay(), 2, None)
    assert len(calls) == 3 and calls[0]["num_cpus"] == 2
    with pytest.raises(SweepError, match="the Ray cluster at ray://head:10001"):
        _start_ray(NoRay(), 2, "ray://head:10001")
