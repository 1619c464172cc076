"""A results folder (one JSON per sweep job) as a markdown table and a figure."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else math.nan


def table(results: list[dict], view: str = "active", field: str = "auc") -> tuple[list[str], list[str], dict]:
    """(methods, variants, {(method, variant): (mean over jobs, jobs)}) of a summary field
    (auc, pr_auc, f1, faithfulness): each job's value is its mean over targets (node
    methods at node level, edge methods at edge level)."""
    cells: dict = defaultdict(list)
    for r in results:
        res = r["result"]
        cells[(res["method"], r["variant"])].append(res["summary"].get(f"{field}_{view}"))
    methods = sorted({m for m, _ in cells}, key=lambda m: (_level(m) == "edge", m))
    variants = sorted({v for _, v in cells})
    return methods, variants, {k: (_mean(v), sum(x is not None for x in v)) for k, v in cells.items()}


def _level(method: str) -> str:
    """A method's level from the registry ("node" for a name it does not know, e.g. an old result)."""
    from rasp_compiler.interp.methods import METHODS
    return METHODS[method].level if method in METHODS else "node"


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def markdown(results: list[dict], errors: list[dict]) -> str:
    lines = [f"{len(results)} jobs, {len({r['task'] for r in results})} tasks, "
             f"{len({r['program'] for r in results})} programs; {len(errors)} failed jobs.", ""]
    for field, view, what in (("auc", "active", "ROC AUC against the circuit members the pairs exercise"),
                              ("auc", "structural", "ROC AUC against the whole circuit"),
                              ("pr_auc", "active", "PR AUC (active)"), ("f1", "active", "F1 at k = circuit size (active)"),
                              ("faithfulness", "active", "faithfulness of the top-k circuit (active)")):
        methods, variants, cells = table(results, view, field)
        if all(math.isnan(v[0]) for v in cells.values()):
            continue
        lines += [f"**{what}**; mean over jobs (each job averaged over its targets first; jobs in brackets).", "",
                  "| method | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
        for m in methods:
            row = [f"{_fmt(cells[(m, v)][0])} ({cells[(m, v)][1]})" if (m, v) in cells else "" for v in variants]
            lines.append(f"| {m} | " + " | ".join(row) + " |")
        lines.append("")
    if errors:
        lines += ["Failed jobs:", ""] + [f"* `{e['job']}`: {e['error']}" for e in errors[:20]]
        if len(errors) > 20:
            lines.append(f"* ... and {len(errors) - 20} more")
        lines.append("")
    return "\n".join(lines)


def figure(results: list[dict], path: Path, view: str = "active") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods, variants, cells = table(results, view)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(methods) * max(1, len(variants)) ** 0.5), 3.6))
    w = 0.8 / max(1, len(variants))
    x = np.arange(len(methods))
    for k, v in enumerate(variants):
        vals = [cells.get((m, v), (math.nan, 0))[0] for m in methods]
        ax.bar(x + (k - (len(variants) - 1) / 2) * w, vals, w, label=v)
    ax.set_xticks(x)
    ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.axhline(0.5, color="#999999", lw=0.8, ls="--")
    ax.set_ylabel(f"mean ROC AUC ({view})")
    ax.legend(fontsize=7, ncol=min(4, len(variants)), loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(results_dir, out: Path | None = None) -> tuple[Path, Path | None]:
    """Write ``report.md`` (and ``report.png`` when there are results) into ``results_dir``."""
    from rasp_compiler.export.safetensors_file import atomic_write
    from rasp_compiler.interp.sweep import load_results

    results_dir = Path(results_dir)
    results, errors = load_results(results_dir)
    out = out or results_dir / "report.md"
    png = out.with_suffix(".png") if results else None
    text = f"# Sweep results: {results_dir.name}\n\n" + markdown(results, errors)
    if png is not None:
        figure(results, png)
        text += f"\n![mean AUC per method and variant]({png.name})\n"
    atomic_write(out, text.encode("utf-8"))
    return out, png
