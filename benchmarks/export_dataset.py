"""Export the default task set, load every task back and check the round trip exactly.

    python benchmarks/export_dataset.py [--random 60] [--out /tmp/rasp_tasks] [--no-write]

Every task, right after it is written, is loaded back and compared with the variant it
was written from (in memory: unnamed SOps get default names numbered in build order, so
a rebuild would not have the same labels): weights bit for bit, the same truth
(components, graph, features and directions, every target's circuit), the same outputs
on every checked input, the same pairs of the output. Then every task is loaded again
with each file's sha256 checked against the manifest. Writes the export section of
docs/testbed_format.md (between its export-benchmark markers).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from rasp_compiler.interp.tasks import export_tasks, load_manifest, load_task  # noqa: E402
from rasp_compiler.interp.tasks.export import labelling  # noqa: E402
from rasp_compiler.interp.ground_truth import aligned_truth  # noqa: E402
from rasp_compiler.interp.pairs import make_pairs  # noqa: E402
from rasp_compiler.interp.variants.base import check_inputs  # noqa: E402
from doc_section import replace_section  # noqa: E402  (benchmarks/, this script's folder)
from test_tasks import assert_same_truth  # noqa: E402


def check(folder: Path, variant) -> None:
    """Raise AssertionError unless the task at ``folder`` loads back as ``variant``."""
    task = load_task(folder)
    for k, v in variant.model.params.items():
        assert np.array_equal(task.model.params[k], np.asarray(v, np.float32)), k
    truth = aligned_truth(variant.truth, variant.model)
    assert_same_truth(task.truth, truth)
    inputs, _ = check_inputs(variant.model)
    batch = [[variant.model.config.bos, *x] for x in inputs]
    assert task.model.apply_batch(batch, backend="numpy") == variant.model.apply_batch(batch, backend="numpy"), \
        "outputs differ"
    out = truth.output  # the output's pairs, made again from the in-memory variant (the suite checks every target)
    dec, labels = labelling(variant)  # noise: labelled by the compiled model, gaps in float64
    kw = {"n_pairs": task.info["n_pairs"], "seed": task.seed, "dec": dec, "labels": labels}
    p = make_pairs(variant.model, truth, out, same_length=True, **kw) or \
        make_pairs(variant.model, truth, out, same_length=False, **kw)
    q = task.pairs[out]
    for f in ("clean", "corrupt", "U", "gap"):
        assert np.array_equal(getattr(p, f), getattr(q, f)), (out, f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=60)
    ap.add_argument("--out", default="/tmp/rasp_tasks")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)

    checked = {"ok": 0, "bad": [], "seconds": 0.0}

    def on_written(folder: Path, variant) -> None:
        t = time.perf_counter()
        try:
            check(folder, variant)
            checked["ok"] += 1
        except AssertionError as exc:
            checked["bad"].append(f"{folder.name}: {exc}")
        checked["seconds"] += time.perf_counter() - t

    t0 = time.perf_counter()
    report = export_tasks(out, n_random=args.random, on_written=on_written,
                          progress=lambda name, done, total: print(f"[{done}/{total}] {name}", flush=True))
    t_check = checked["seconds"]
    t_export = time.perf_counter() - t0 - t_check
    manifest = load_manifest(out)
    print(f"exported {manifest['n_tasks']} tasks in {t_export:.0f} s; {len(report.skipped)} skipped, "
          f"{len(report.errors)} errors")
    for e in report.errors:
        print("ERROR", e["task"], e["error"])
    t0 = time.perf_counter()
    for entry in manifest["tasks"]:  # every file as the manifest says
        load_task(out / entry["name"], check_hashes=entry["files"])
    t_hashes = time.perf_counter() - t0
    ok, bad = checked["ok"], checked["bad"]
    print(f"round trip exact: {ok}/{manifest['n_tasks']} ({t_check:.0f} s)")
    for b in bad:
        print("MISMATCH", b)

    kinds = collections.Counter(t["variant"]["kind"] for t in manifest["tasks"])
    programs = collections.Counter(t["program"]["name"].split("-")[0] for t in manifest["tasks"])
    n_programs = len({t["program"]["name"] for t in manifest["tasks"]})
    skip_reasons = collections.Counter(re.sub(r"^\S+: ", "", s).split(" (")[0].split(":")[0][:60]
                                       for s in report.skipped)
    layers = [t["sizes"]["layers"] for t in manifest["tasks"]]
    section = "\n".join([
        f"Measured by `python benchmarks/export_dataset.py --random {args.random}` (2 shared CPU cores):",
        "",
        f"* **{manifest['n_tasks']} tasks** from {n_programs} programs ({programs['lib']} library tasks, "
        f"{programs['ex']} example tasks, {programs['rand']} random-program tasks); by variant: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ";",
        f"* {manifest['total_bytes'] / 1e6:.1f} MB on disk; layers per model {min(layers)}–{max(layers)} "
        f"(median {int(np.median(layers))});",
        f"* export: {t_export:.0f} s; loading each task right after it was written and comparing it with the "
        f"variant in memory (weights, truth, outputs on the checked inputs, the output's pairs): {t_check:.0f} s; "
        f"loading all {manifest['n_tasks']} again with every file's sha256 checked against the manifest: "
        f"{t_hashes:.0f} s;",
        f"* **round trip exact for {ok}/{manifest['n_tasks']} tasks**" + (f" ({len(bad)} mismatches)" if bad else "")
        + f"; {len(report.errors)} export errors;",
        f"* {len(report.skipped)} (program, variant) combinations skipped: "
        + "; ".join(f"{v}× {k}" for k, v in skip_reasons.most_common(4)) + ".",
    ])
    print(section)
    if not args.no_write:
        doc = ROOT / "docs" / "testbed_format.md"
        replace_section(doc, "<!-- export-benchmark:start -->", "<!-- export-benchmark:end -->", section)
        print(f"wrote {doc}")


if __name__ == "__main__":
    main()
