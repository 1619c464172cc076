"""Every method x every library program x every variant x seeds: can the testbed rank methods?

For each program of ``rasp_compiler.lib.LIBRARY`` (max_seq_len 5), each variant kind
present (``rasp_compiler.interp.variants.available()``) and each seed: build the variant
(its exactness measured), run every registered method on the output target
(``rasp_compiler.interp.testbed.evaluate`` against the variant's own truth) and record,
per method, node- and edge-level ROC AUC, PR AUC, F1 at the true circuit size and at the
method's threshold, the faithfulness of the circuit it reports, and how many non-circuit
components (edges) it scored above zero.

Writes every record to ``benchmarks/results/testbed_variants.json``, the figure
``docs/figures/testbed_variants.png`` (methods x variants) and the section of
``docs/testbed.md`` between its ``testbed_variants`` markers (``--no-write`` to skip).
``--quick`` (two programs, one seed, few pairs) is what the test suite runs.

Run: nice -n 10 python benchmarks/testbed_variants.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # doc_section, also when a test loads this file

from rasp_compiler import compile_rasp_to_model  # noqa: E402
from rasp_compiler.export.safetensors_file import atomic_write  # noqa: E402
from rasp_compiler.interp.testbed import evaluate  # noqa: E402
from rasp_compiler.interp.variants import available, make_variant  # noqa: E402
from rasp_compiler.lib import LIBRARY  # noqa: E402
from doc_section import replace_section  # noqa: E402

BEGIN, END = "<!-- testbed_variants:begin -->", "<!-- testbed_variants:end -->"
KIND_ORDER = ("compiled", "distractors", "backups", "dense", "noise", "trained")
SETTINGS = {"noise": {"scale": 1e-3}}  # per kind, as given to make_variant
HARD = ("distractors", "backups", "dense", "trained")  # the variants the ranking is stated over
QUICK_PROGRAMS = ("hist", "sort")


def all_methods() -> tuple[str, ...]:
    try:
        from rasp_compiler.interp.methods import METHODS
        return tuple(METHODS)
    except ImportError:  # before the registry: the four node methods (their edge versions come along)
        return ("patching", "atp", "atp_qk", "atp_star")


TRAINED = ROOT / "benchmarks" / "results" / "trained"  # where benchmarks/train_siit.py caches its weights
TRAINED_MIN_ACCURACY = 0.99


def run_one(model, name: str, kind: str, seed: int, n_pairs: int, methods, trained_dir: Path = TRAINED
            ) -> list[dict]:
    """The records of one (program, variant, seed): one per method and level. The trained
    variant is read from benchmarks/train_siit.py's cached weights (training takes minutes
    per program), with the settings stored in the file; a program it has not trained is
    not applicable here."""
    t0 = time.time()
    if kind == "trained":
        from rasp_compiler.interp.variants.trained import from_cache
        path = Path(trained_dir) / f"{name}.safetensors"
        if not path.exists():
            raise LookupError(f"no trained weights for {name!r} in {trained_dir} (benchmarks/train_siit.py)")
        v = from_cache(model, path)
        if v.exactness.accuracy < TRAINED_MIN_ACCURACY:  # a model that does not run the program has no circuit
            raise LookupError(f"the trained {name!r} has accuracy {v.exactness.accuracy:.3f} "
                              f"< {TRAINED_MIN_ACCURACY}; not scored")
    else:
        v = make_variant(model, kind, seed=seed, **SETTINGS.get(kind, {}))
    built = time.time() - t0
    res = evaluate(v.model, name, n_pairs=n_pairs, seed=seed, targets=[model.config.output], gt=v.truth,
                   methods=methods)
    out = res.output()
    base = {"program": name, "variant": kind, "seed": seed, "accuracy": v.exactness.accuracy,
            "checked": v.exactness.checked_inputs, "components": len(v.truth.scored),
            "build_s": round(built, 2), "eval_s": round(time.time() - t0 - built, 2),
            **{k: float(x) for k, x in v.exactness.metrics.items()}}  # e.g. the trained variant's IIA
    if out is None:
        return [{**base, "level": "-", "method": "-"}]
    rows = []
    for level in ("node", "edge"):
        for method, s in getattr(out, level).get("active", {}).items():
            raw = out.scores[method].score
            floor = 1e-4 * float(out.pairs.gap.mean())
            positives = set(out.circuit_nodes if level == "node" else out.circuit_edges)
            neg_keys = [k for k in raw if k not in positives and (level == "edge" or k in v.truth.scored)]
            rows.append({**base, "level": level, "method": method, **s.as_row(),
                         "truth_faithfulness": out.truth_faithfulness.get(level, math.nan),
                         "nonzero_neg": int(sum(raw[k] > floor for k in neg_keys)), "all_neg": len(neg_keys),
                         "max_neg_over_gap": float(max((raw[k] for k in neg_keys), default=0.0)
                                                   / float(out.pairs.gap.mean()))})
    return rows


def portable(text: str) -> str:
    """A message with this checkout's absolute paths made relative to it (``/…/benchmarks/x``
    becomes ``benchmarks/x``), so a doc does not show the machine that measured it."""
    text = text.replace(f"{ROOT}{os.sep}", "")
    return re.sub(r"(?<![\w.])/(?:[^\s/()'\"]+/)+?(?=(?:benchmarks|docs|examples|rasp_compiler|tests)/)", "", text)


def sweep(names, kinds, seeds, n_pairs: int, methods, log=print, done: list[dict] = (), save=None,
          trained_dir: Path = TRAINED) -> tuple[list[dict], list[dict]]:
    """Records of every (program, kind, seed) and method not already in ``done`` (the
    records of an earlier run, kept: a method landed later runs alone); ``save(rows,
    failures)`` after each model, so a stopped sweep resumes where it was."""
    rows, failures = list(done), []
    have: dict = defaultdict(set)
    for r in done:
        have[(r["program"], r["variant"], r["seed"])].add(r["method"])
    for name in names:
        e = LIBRARY[name]
        model = compile_rasp_to_model(e.build(), e.vocab, e.max_seq_len)
        for kind in kinds:
            for seed in (seeds[:1] if kind == "trained" else seeds):  # trained: the cached seed-0 weights
                todo = tuple(m for m in methods if m not in have[(name, kind, seed)])
                if not todo:
                    continue
                t0 = time.time()
                try:
                    got = run_one(model, name, kind, seed, n_pairs, todo, trained_dir)
                except Exception as ex:  # a variant that does not apply to this program: recorded, not hidden
                    failures.append({"program": name, "variant": kind, "seed": seed,
                                     "error": portable(f"{type(ex).__name__}: {ex}")[:300]})
                    log(f"  {name:16s} {kind:12s} seed {seed}: n/a ({type(ex).__name__}: {str(ex)[:90]})")
                    break
                rows += got
                log(f"  {name:16s} {kind:12s} seed {seed}: {time.time() - t0:5.1f}s "
                    f"accuracy {got[0]['accuracy']:.3f} ({', '.join(todo)})")
                if save is not None:
                    save(rows, failures)
    return rows, failures


# --------------------------------------------------------------------------- summaries
def _mean(vals) -> float:
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else math.nan


def fmt(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def grid(rows, level: str, field: str, kinds, methods) -> dict:
    """(method, kind) -> mean of ``field`` over programs and seeds."""
    acc = defaultdict(list)
    for r in rows:
        if r["level"] == level:
            acc[(r["method"], r["variant"])].append(r[field])
    return {(m, k): _mean(acc[(m, k)]) for m in methods for k in kinds}


def methods_of(rows, level: str) -> list[str]:
    return list(dict.fromkeys(r["method"] for r in rows if r["level"] == level))


def kinds_of(rows) -> list[str]:
    present = {r["variant"] for r in rows}
    return [k for k in KIND_ORDER if k in present]


def figure(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = kinds_of(rows)
    fig, axes = plt.subplots(1, 2, figsize=(6 + 1.6 * len(kinds), 1.4 + 0.42 * max(
        len(methods_of(rows, "node")), len(methods_of(rows, "edge")))), squeeze=False)
    for ax, level in zip(axes[0], ("node", "edge")):
        ms = methods_of(rows, level)
        g = grid(rows, level, "auc", kinds, ms)
        a = np.array([[g[(m, k)] for k in kinds] for m in ms])
        im = ax.imshow(a, vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(kinds)), kinds, rotation=30, ha="right")
        ax.set_yticks(range(len(ms)), ms)
        for i in range(len(ms)):
            for j in range(len(kinds)):
                ax.text(j, i, fmt(a[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if not np.isnan(a[i, j]) and a[i, j] < 0.8 else "black")
        ax.set_title(f"{level}-level ROC AUC (output target)")
    fig.subplots_adjust(wspace=0.5)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle("nice -n 10 python benchmarks/testbed_variants.py (docs/testbed.md)", fontsize=8, y=0.99)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)


def findings(rows) -> list[str]:
    """The acceptance questions, answered from the table (numbers, no adjectives)."""
    kinds = kinds_of(rows)
    out = []
    for level in ("node", "edge"):
        for kind in [k for k in ("distractors", "dense", "trained") if k in kinds]:
            parts = []
            for m in methods_of(rows, level):
                sel = [r for r in rows if r["level"] == level and r["method"] == m and r["variant"] == kind]
                nz, tot = sum(r["nonzero_neg"] for r in sel), sum(r["all_neg"] for r in sel)
                parts.append(f"{m} {nz}/{tot}")
            out.append(f"* {kind}, {level} level — non-circuit {'components' if level == 'node' else 'edges'} "
                       f"scored above the floor: " + ", ".join(parts) + ".")
    g = grid(rows, "edge", "auc", kinds, methods_of(rows, "edge"))
    low = sorted(((v, m, k) for (m, k), v in g.items() if not math.isnan(v) and v < 0.9))
    out.append("* Mean edge ROC AUC below 0.9: " + (", ".join(f"{m} on {k} ({v:.2f})" for v, m, k in low)
                                                    if low else "none") + ".")
    for level in ("edge", "node"):
        hard = [k for k in HARD if k in kinds]
        ms = methods_of(rows, level)
        sel = [r for r in rows if r["level"] == level and r["variant"] in hard]
        cases = lambda m: {(r["program"], r["variant"], r["seed"]) for r in sel if r["method"] == m}
        common = set.intersection(*(cases(m) for m in ms)) if ms else set()
        for label, keep in (("all its runs", None), ("the runs every method has", common)):
            use = [r for r in sel if keep is None or (r["program"], r["variant"], r["seed"]) in keep]
            score = {m: _mean([r["auc"] for r in use if r["method"] == m]) for m in ms}
            f1 = {m: _mean([r["f1_t"] for r in use if r["method"] == m]) for m in ms}
            n = {m: len({r["program"] for r in use if r["method"] == m}) for m in ms}
            ranked = sorted((m for m in ms if not math.isnan(score[m])), key=lambda m: -score[m])
            scope = f"{len(keep)} program/variant/seed runs on {len({p for p, _, _ in keep})} programs" \
                if keep is not None else "each method's own runs"
            out.append(f"* Ranking by mean {level} ROC AUC over {', '.join(hard)}, {label} ({scope}): " + " > ".join(
                f"{m} ({score[m]:.3f}{'' if keep is not None else f', {n[m]} programs'}; F1 at threshold "
                f"{fmt(f1[m])})" for m in ranked) + ".")
    return out


def render(rows, failures, meta: dict) -> str:
    kinds = kinds_of(rows)
    programs, seeds = len({r["program"] for r in rows}), sorted({r["seed"] for r in rows})
    parts = [BEGIN, "", f"From `{meta['command']}` ({programs} programs, variants "
             f"{', '.join(kinds)}, seeds {', '.join(map(str, seeds))}, {meta['pairs']} pairs, output target; "
             f"{meta['seconds']:.0f} s of run time on {os.cpu_count()} shared CPU cores, Python "
             f"{platform.python_version()}; partial runs (methods, kinds, programs) merge with `--resume` and "
             "`--merge`, and seeds/methods missing for a program are missing from its means). "
             "Every record (per seed): `benchmarks/results/testbed_variants.json`.", ""]
    # variants
    vrows = []
    for k in kinds:
        sel = {(r["program"], r["seed"]): r for r in rows if r["variant"] == k}
        accs = [r["accuracy"] for r in sel.values()]
        tf = [r["truth_faithfulness"] for r in rows if r["variant"] == k and r["level"] == "edge"]
        na = sorted({f["program"] for f in failures if f["variant"] == k})
        iia = [f"{fmt(_mean([r.get(m, math.nan) for r in sel.values()]))}" for m in ("iia", "strict_iia")]
        vrows.append([k, str(len({p for p, _ in sel})), fmt(_mean(accs)), fmt(min(accs) if accs else math.nan),
                      " / ".join(iia), fmt(_mean([r["components"] for r in sel.values()])), fmt(_mean(tf)),
                      ", ".join(na) if na else "–"])
    parts += ["### Variants", "", table(["variant", "programs", "mean accuracy", "min accuracy", "IIA / strict IIA",
                                         "heads+MLP blocks", "truth faithfulness (edges)", "not applicable"],
                                        vrows), ""]
    parts += ["![methods x variants](figures/testbed_variants.png)", ""]
    for level in ("edge", "node"):
        ms = methods_of(rows, level)
        for field, title in (("auc", "ROC AUC"), ("pr_auc", "PR AUC"), ("f1", "F1 at the true size"),
                             ("f1_t", "F1 at the method's threshold"), ("faithfulness", "faithfulness of its top-k")):
            g = grid(rows, level, field, kinds, ms)
            parts += [f"#### {level.capitalize()} level: {title}, mean over programs and seeds", "",
                      table(["method"] + kinds, [[m] + [fmt(g[(m, k)]) for k in kinds] for m in ms]), ""]
    parts += ["### What the table shows", "", *findings(rows), ""]
    # the full table: per program and variant, mean over seeds
    ms = methods_of(rows, "edge")
    full = []
    for name in dict.fromkeys(r["program"] for r in rows):
        for k in kinds:
            sel = [r for r in rows if r["program"] == name and r["variant"] == k and r["level"] == "edge"]
            if not sel:
                continue
            full.append([name, k, fmt(_mean([r["accuracy"] for r in sel]))] +
                        [fmt(_mean([r["auc"] for r in sel if r["method"] == m])) for m in ms])
    parts += ["<details><summary>Edge ROC AUC per program and variant (mean over seeds)</summary>", "",
              table(["program", "variant", "accuracy"] + ms, full), "", "</details>", ""]
    if failures:
        parts += ["Not built (the variant refuses the program):", ""]
        seen = set()
        for f in failures:
            key = (f["variant"], f["error"])
            if key not in seen:
                seen.add(key)
                parts.append(f"* {f['variant']} / {f['program']}: {portable(f['error'])}")
        parts.append("")
    parts.append(END)
    return "\n".join(parts)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK_PROGRAMS)}; one seed; 4 pairs")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--programs", nargs="*")
    ap.add_argument("--kinds", nargs="*", help="variant kinds (default: every available one)")
    ap.add_argument("--methods", nargs="*", help="method names (default: every registered one)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--render-only", action="store_true", help="rewrite the page section and figure from --json")
    ap.add_argument("--merge", nargs="*", type=Path, help="add the records of these result files to --json")
    ap.add_argument("--resume", action="store_true",
                    help="keep the records of --json and run only what they lack (new methods, kinds, seeds)")
    ap.add_argument("--trained", type=Path, default=TRAINED, help="folder of train_siit.py's cached weights")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "testbed.md")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "testbed_variants.png")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "testbed_variants.json")
    args = ap.parse_args(argv)
    names = args.programs or (list(QUICK_PROGRAMS) if args.quick else list(LIBRARY))
    seeds = list(range(1 if args.quick else args.seeds))
    pairs = 4 if args.quick else args.pairs
    kinds = args.kinds or [k for k in KIND_ORDER if k in available()]
    methods = tuple(args.methods or all_methods())
    print(f"{len(names)} programs x {kinds} x seeds {seeds}; methods {', '.join(methods)}", flush=True)
    t0 = time.time()
    done, spent, old_failures = [], 0.0, []
    if (args.resume or args.render_only) and args.json.exists():
        old = json.loads(args.json.read_text())
        done, spent = old["rows"], float(old["meta"].get("seconds", 0.0))
        old_failures = old["failures"]  # records accumulate: a narrower run keeps the others
    for extra in args.merge or ():  # records of runs made in parallel (other methods, kinds, programs)
        part = json.loads(Path(extra).read_text())
        key = lambda r: (r["program"], r["variant"], r["seed"], r["level"], r["method"])
        seen = {key(r) for r in done}
        done = done + [r for r in part["rows"] if key(r) not in seen]
        old_failures = old_failures + [f for f in part["failures"] if f not in old_failures]
        spent += float(part["meta"].get("seconds", 0.0))
    if args.render_only:
        names, seeds = list(dict.fromkeys(r["program"] for r in done)), sorted({r["seed"] for r in done})

    def meta_now() -> dict:
        return {"command": "nice -n 10 python benchmarks/testbed_variants.py" + (" --quick" if args.quick else ""),
                "programs": len(names), "seeds": len(seeds), "pairs": pairs, "seconds": spent + time.time() - t0}

    def save(rows, failures):
        if not args.no_write:
            atomic_write(args.json, json.dumps({"meta": meta_now(), "rows": rows, "failures": failures},
                                               indent=1, default=float).encode())

    rows, failures = (done, []) if args.render_only else \
        sweep(names, kinds, seeds, pairs, methods, log=lambda s: print(s, flush=True), done=done,
              save=lambda r, f: save(r, old_failures + f), trained_dir=args.trained)
    failures = old_failures + [f for f in failures if f not in old_failures]
    meta = meta_now() if not args.render_only else {**old["meta"], "seconds": spent}
    section = render(rows, failures, meta)
    print(section)
    if not args.no_write:
        if not args.render_only or args.merge:
            save(rows, failures)
        figure(rows, args.figure)
        body = section[len(BEGIN) + 1:-len(END) - 1]  # render() frames the section with the markers
        replace_section(args.doc, BEGIN, END, body, heading="## Variants: methods against realistic ground truths")
        print("wrote", args.doc, args.figure, args.json)
    return {"rows": rows, "failures": failures, "section": section}


if __name__ == "__main__":
    main()
