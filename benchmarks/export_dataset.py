"""Export the default task set, load every task back and check the round trip exactly.

    python benchmarks/export_dataset.py [--random 60] [--out /tmp/rasp_tasks] [--no-write]

For every task written by ``rasp-compiler testbed export``: its files match the
manifest's sha256; rebuilding the variant from scratch (same program, kind and seed)
gives the loaded task's weights bit for bit, the same truth (components, graph, features
and directions, every target's circuit) and the same pairs; the loaded model's outputs
equal the rebuilt one's on every checked input. Writes the export section of
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
from rasp_compiler.interp.tasks.circuit import aligned_truth  # noqa: E402
from rasp_compiler.interp.tasks.export import task_pairs  # noqa: E402
from rasp_compiler.interp.tasks.sources import DEFAULT_PROGRAMS, random_sources, select_sources  # noqa: E402
from rasp_compiler.interp.variants import make_variant  # noqa: E402
from rasp_compiler.interp.variants.base import check_inputs  # noqa: E402
from test_tasks import assert_same_truth  # noqa: E402


def check(task, model) -> None:
    """Raise AssertionError unless the loaded task equals the variant rebuilt from ``model``."""
    variant = make_variant(model, task.kind, seed=task.seed)
    for k, v in variant.model.params.items():
        assert np.array_equal(task.model.params[k], np.asarray(v, np.float32)), k
    truth = aligned_truth(variant.truth, variant.model)
    assert_same_truth(task.truth, truth)
    inputs, _ = check_inputs(variant.model)
    batch = [[model.config.bos, *x] for x in inputs]
    assert task.model.apply_batch(batch, backend="numpy") == variant.model.apply_batch(batch, backend="numpy")
    entries, _ = task_pairs(variant.model, truth, task.info["n_pairs"], task.seed)
    assert [p.target for p, _, _ in entries] == list(task.pairs)
    for p, _, _ in entries:
        q = task.pairs[p.target]
        for f in ("clean", "corrupt", "U", "gap"):
            assert np.array_equal(getattr(p, f), getattr(q, f)), (p.target, f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=60)
    ap.add_argument("--out", default="/tmp/rasp_tasks")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)

    t0 = time.perf_counter()
    report = export_tasks(out, n_random=args.random,
                          progress=lambda name, done, total: print(f"[{done}/{total}] {name}", flush=True))
    t_export = time.perf_counter() - t0
    manifest = load_manifest(out)
    print(f"exported {manifest['n_tasks']} tasks in {t_export:.0f} s; {len(report.skipped)} skipped, "
          f"{len(report.errors)} errors")
    for e in report.errors:
        print("ERROR", e["task"], e["error"])

    models = {s.name: s.compile() for s in select_sources(list(DEFAULT_PROGRAMS))[0]}
    models.update({s.name: m for s, m in random_sources(args.random, 0)})
    t0 = time.perf_counter()
    ok, bad = 0, []
    for entry in manifest["tasks"]:
        task = load_task(out / entry["name"], check_hashes=entry["files"])
        try:
            check(task, models[entry["program"]["name"]])
            ok += 1
        except AssertionError as exc:
            bad.append(f"{entry['name']}: {exc}")
    t_check = time.perf_counter() - t0
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
        f"* export: {t_export:.0f} s; loading every task with its hashes checked, rebuilding its variant from "
        f"scratch and comparing weights, truth, pairs and outputs: {t_check:.0f} s;",
        f"* **round trip exact for {ok}/{manifest['n_tasks']} tasks**" + (f" ({len(bad)} mismatches)" if bad else "")
        + f"; {len(report.errors)} export errors;",
        f"* {len(report.skipped)} (program, variant) combinations skipped: "
        + "; ".join(f"{v}× {k}" for k, v in skip_reasons.most_common(4)) + ".",
    ])
    print(section)
    if not args.no_write:
        doc = ROOT / "docs" / "testbed_format.md"
        text = doc.read_text(encoding="utf-8")
        start, end = "<!-- export-benchmark:start -->", "<!-- export-benchmark:end -->"
        i, j = text.index(start) + len(start), text.index(end)
        doc.write_text(text[:i] + "\n" + section + "\n" + text[j:], encoding="utf-8")
        print(f"wrote {doc}")


if __name__ == "__main__":
    main()
