"""Sweeps: methods x tasks (x pair seeds) as independent, idempotent jobs, on Ray or local processes.

    from rasp_compiler.interp.sweep import sweep
    report = sweep("tasks/", "results/", methods=["patching", "eap"])   # resumable

A *job* is one method on one task folder (on its stored pairs, or on fresh pairs of a
given seed). It reads the task, runs the method and returns plain JSON; the driver
writes ``results/jobs/<job id>.json`` atomically. So:

* a sweep that is interrupted (killed, a node lost) and started again skips every job
  whose result file exists and runs the rest: the results are the same as one
  uninterrupted run (the methods are deterministic);
* a job that fails gets ``<job id>.error.json`` with its error and traceback instead,
  is retried by the next run, and the error file is removed once it succeeds.

Executors: ``ray`` (a local instance by default, or an existing cluster by ``address``;
``pip install 'rasp_compiler[ray]'``), ``processes`` (``concurrent.futures`` with spawned
workers, the fallback), ``serial`` (this process: the baseline). ``auto`` picks Ray when it
is installed. Workers need the task folders at the same path (a shared file system on a
cluster); results are written by the driver only, so they need no shared storage.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from rasp_compiler.errors import RaspCompilerError
from rasp_compiler.export.safetensors_file import atomic_write

EXECUTORS = ("auto", "ray", "processes", "serial")
SWEEP_FORMAT = "rasp_compiler.sweep"


@dataclass(frozen=True)
class Job:
    task: str  # task folder
    method: str
    seed: int | None = None  # None: the task's stored pairs

    @property
    def id(self) -> str:
        return f"{Path(self.task).name}__{self.method}" + ("" if self.seed is None else f"__p{self.seed}")


@dataclass
class SweepReport:
    results_dir: Path
    executor: str
    workers: int
    total: int  # jobs planned
    skipped: int = 0  # already done before this run
    done: int = 0  # finished by this run
    failed: list[str] = field(default_factory=list)  # job ids
    seconds: float = 0.0


def plan(tasks: Iterable, methods: Iterable[str], seeds: Iterable[int] | None = None) -> list[Job]:
    """Every (task, method[, seed]) job, in a fixed order."""
    seeds = list(seeds) if seeds is not None else [None]
    return [Job(str(t), m, s) for t in tasks for m in methods for s in seeds]


def run_job(job: Job) -> dict:
    """Run one job and return its result (never raises: a failure is returned as its error)."""
    start = time.perf_counter()
    try:
        from rasp_compiler.blas import one_blas_thread
        from rasp_compiler.interp.tasks.score import score_path

        with one_blas_thread():
            scored, about = score_path(job.task, job.method, seed=job.seed)
        about.pop("model", None)
        return {"status": "ok", "job": job.id, "task": about["task"], "program": about["program"],
                "variant": about["variant"], "task_seed": about["task_seed"], "pair_seed": job.seed,
                "result": scored.data, "seconds": round(time.perf_counter() - start, 3), "pid": os.getpid()}
    except Exception as exc:  # noqa: BLE001 - recorded in the job's error file, never lost
        return {"status": "error", "job": job.id, "task": job.task, "method": job.method, "pair_seed": job.seed,
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "seconds": round(time.perf_counter() - start, 3)}


def result_path(results_dir, job: Job, error: bool = False) -> Path:
    return Path(results_dir) / "jobs" / (job.id + (".error.json" if error else ".json"))


def _record(results_dir: Path, job: Job, out: dict, report: SweepReport) -> None:
    data = (json.dumps(out, indent=1, allow_nan=False) + "\n").encode("utf-8")
    if out["status"] == "ok":
        atomic_write(result_path(results_dir, job), data)
        result_path(results_dir, job, error=True).unlink(missing_ok=True)
        report.done += 1
    else:
        atomic_write(result_path(results_dir, job, error=True), data)
        report.failed.append(job.id)


def pick_executor(executor: str) -> str:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor != "auto":
        return executor
    try:
        import ray  # noqa: F401
    except ImportError:
        return "processes"
    return "ray"


def sweep(tasks, results_dir, methods: Iterable[str], seeds: Iterable[int] | None = None, executor: str = "auto",
          workers: int | None = None, address: str | None = None,
          progress: Callable[[str, int, int], Any] | None = None) -> SweepReport:
    """Run every job not done yet (see the module docstring). ``tasks``: a task-set folder or a
    list of task folders. ``progress(job_id, finished, total)`` after each job."""
    from rasp_compiler.interp.tasks.load import task_dirs

    start = time.perf_counter()
    folders = task_dirs(tasks) if isinstance(tasks, (str, os.PathLike)) else [Path(t) for t in tasks]
    results_dir = Path(results_dir)
    (results_dir / "jobs").mkdir(parents=True, exist_ok=True)
    jobs = plan(folders, list(methods), seeds)
    todo = [j for j in jobs if not result_path(results_dir, j).exists()]
    kind = pick_executor(executor)
    n_workers = workers or os.cpu_count() or 1
    report = SweepReport(results_dir, kind, 1 if kind == "serial" else n_workers, len(jobs), len(jobs) - len(todo))
    atomic_write(results_dir / "sweep.json", (json.dumps({
        "format": SWEEP_FORMAT, "version": 1, "tasks": [str(f) for f in folders], "methods": list(methods),
        "seeds": None if seeds is None else list(seeds), "jobs": [j.id for j in jobs]}, indent=1) + "\n").encode())

    def finished(job: Job, out: dict) -> None:
        _record(results_dir, job, out, report)
        if progress is not None:
            progress(job.id, report.skipped + report.done + len(report.failed), len(jobs))

    if kind == "serial":
        for job in todo:
            finished(job, run_job(job))
    elif kind == "processes":
        _run_processes(todo, n_workers, finished)
    else:
        _run_ray(todo, n_workers, address, finished)
    report.seconds = time.perf_counter() - start
    return report


def _run_processes(jobs: list[Job], workers: int, finished) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: JAX's threads do not survive a fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_job, j): j for j in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker process died (killed, out of memory)
                out = {"status": "error", "job": job.id, "task": job.task, "method": job.method,
                       "error": f"worker died: {type(exc).__name__}: {exc}", "traceback": ""}
            finished(job, out)


class SweepError(RaspCompilerError):
    """A sweep cannot run: Ray failed to start or to reach its cluster."""


def _start_ray(ray, workers: int, address: str | None, attempts: int = 3) -> None:
    """Connect to ``address``, or start a local instance; Ray gives a local node 30 s to come up,
    which a heavily loaded machine can miss, so a failed start is retried before giving up."""
    for attempt in range(1, attempts + 1):
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises plain Exception / ConnectionError here
            ray.shutdown()
            if attempt == attempts:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise SweepError(f"could not start {where} in {attempts} attempts ({exc}); check the address, or "
                                 f"run the same sweep without Ray: --executor processes") from None
            time.sleep(2 * attempt)


def _run_ray(jobs: list[Job], workers: int, address: str | None, finished) -> None:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the ray executor needs Ray: pip install 'rasp_compiler[ray]' (or use "
                          "--executor processes)") from exc
    started = not ray.is_initialized()
    if started:
        _start_ray(ray, workers, address)
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(run_job)
        pending = {remote.remote(j): j for j in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the worker died after its retries
                    out = {"status": "error", "job": job.id, "task": job.task, "method": job.method,
                           "error": f"worker died: {type(exc).__name__}: {exc}", "traceback": ""}
                finished(job, out)
    finally:
        if started:
            ray.shutdown()


def load_results(results_dir) -> tuple[list[dict], list[dict]]:
    """(results, errors) of a results folder's jobs."""
    results, errors = [], []
    for f in sorted((Path(results_dir) / "jobs").glob("*.json")):
        if f.name.startswith("."):
            continue
        data = json.loads(f.read_text(encoding="utf-8"))
        (errors if f.name.endswith(".error.json") else results).append(data)
    return results, errors
