"""Speed of a sweep: one process vs local worker processes vs local Ray, same jobs, same results.

    python benchmarks/sweep_speed.py [--workers 2] [--no-write]

Exports a small task set, runs the same methods x tasks sweep with each executor from an
empty results folder, checks that every executor wrote identical results (timings aside),
and writes the measured section of docs/sweeps.md (between its sweep-speed markers).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from doc_section import replace_section  # benchmarks/, this script's folder

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ["lib:reverse", "lib:sort", "lib:dyck1", "lib:shift_by"]
VARIANTS = ["compiled", "distractors"]
METHODS = ["patching", "edge_patching", "eap", "atp_star", "eap_ig"]


def comparable(results_dir) -> dict:
    from rasp_compiler.interp.sweep import load_results

    results, errors = load_results(results_dir)
    assert not errors, [e["error"] for e in errors]
    return {r["job"]: {k: v for k, v in r["result"].items() if k != "seconds"} for r in results}


def main() -> None:
    from rasp_compiler.interp.sweep import load_results, sweep
    from rasp_compiler.interp.tasks import export_tasks
    from rasp_compiler.interp.variants import available

    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", default="/tmp/rasp_sweep_speed")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    variants = [v for v in VARIANTS if v in available()]
    export_tasks(out / "tasks", programs=PROGRAMS, variants=variants)
    try:
        import ray
        executors = ["serial", "processes", "ray"]
        from rasp_compiler.interp.sweep import _start_ray

        t0 = time.perf_counter()
        _start_ray(ray, args.workers, None)
        ray.shutdown()
        ray_start = time.perf_counter() - t0
        ray_version = ray.__version__
    except ImportError:
        executors, ray_start, ray_version = ["serial", "processes"], None, None
    times, reports, results = {}, {}, {}
    for ex in executors:
        res = out / f"results_{ex}"
        t0 = time.perf_counter()
        reports[ex] = sweep(out / "tasks", res, METHODS, executor=ex, workers=args.workers)
        times[ex] = time.perf_counter() - t0
        results[ex] = comparable(res)
        print(f"{ex}: {reports[ex].done} jobs in {times[ex]:.1f} s", flush=True)
    same = all(results[ex] == results["serial"] for ex in executors)
    n_jobs = reports["serial"].total
    serial_results = load_results(out / "results_serial")[0]
    job_seconds = sum(r["seconds"] for r in serial_results)
    per_method = {m: [r["seconds"] for r in serial_results if r["result"]["method"] == m] for m in METHODS}
    rows = ["| executor | workers | wall time | speed-up over one process |", "|---|---|---|---|"]
    for ex in executors:
        w = 1 if ex == "serial" else args.workers
        rows.append(f"| {ex} | {w} | {times[ex]:.1f} s | {times['serial'] / times[ex]:.2f}× |")
    load = os.getloadavg()[0]
    section = "\n".join([
        f"Measured by `python benchmarks/sweep_speed.py --workers {args.workers}` on this machine "
        f"({os.cpu_count()} cores, shared with other work: load average {load:.0f} at the end): {n_jobs} jobs = "
        f"{len(METHODS)} methods ({', '.join(METHODS)}) × {n_jobs // len(METHODS)} tasks "
        f"({len(PROGRAMS)} library programs × {', '.join(variants)})"
        + (f"; Ray {ray_version}" if ray_version else "; Ray not installed") + ".",
        "",
        *rows,
        "",
        f"* Results identical across executors (timings aside): **{'yes' if same else 'NO'}**.",
        f"* The jobs themselves took {job_seconds:.1f} s in one process; mean seconds per job by method: "
        + ", ".join(f"{m} {sum(v) / len(v):.2f}" for m, v in per_method.items() if v) + ".",
    ] + ([f"* Starting and stopping a local Ray instance on its own: {ray_start:.1f} s (each Ray sweep pays one "
          f"start in its wall time)."] if ray_start is not None else []))
    print(section)
    if not args.no_write:
        doc = ROOT / "docs" / "sweeps.md"
        replace_section(doc, "<!-- sweep-speed:start -->", "<!-- sweep-speed:end -->", section)
        print(f"wrote {doc}")


if __name__ == "__main__":
    main()
