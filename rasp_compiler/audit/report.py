"""The audit of many task folders as one table (plain rows; the CLI draws them with rich).

Per task: forward agreement, targets within their variant's class (ok/total), structural
edge disagreements, coverage. Per variant (:func:`figures_by_variant`): the figures the
dataset card and docs/testbed.md state.
"""

from __future__ import annotations

from collections import defaultdict

from .checks import TaskAudit, audit_task
from .files import task_folders

COLUMNS = ("task", "variant", "forward", "targets ok", "edge diffs", "coverage", "verdict")
VARIANT_COLUMNS = ("variant", "tasks", "failing tasks", "forward disagreements", "targets outside class",
                   "edge disagreements", "coverage")


def audit_paths(paths, progress=None) -> list[TaskAudit]:
    """Audit every task folder in ``paths`` (task folders or sets with a manifest.json)."""
    folders = [f for p in paths for f in task_folders(p)]
    out = []
    for i, folder in enumerate(folders):
        out.append(audit_task(folder))
        if progress is not None:
            progress(folder.name, i + 1, len(folders))
    return out


def _fig(a: TaskAudit, check: str, key: str, default=0):
    c = a.check(check)
    return default if c is None else c.figures.get(key, default)


def _pct(num: int, den: int) -> str:
    return "–" if not den else f"{100 * num / den:.1f}%"


def table_rows(audits: list[TaskAudit]) -> list[tuple[str, ...]]:
    rows = []
    for a in audits:
        if a.error:
            rows.append((a.name, a.variant, "–", "–", "–", "–", "FAIL (unreadable)"))
            continue
        f, t, e = a.check("forward"), a.check("targets"), a.check("edges")
        forward = "ok" if f.ok else f"{f.figures.get('value_disagreements', 0)} values, " \
                                    f"{f.figures.get('gap_disagreements', 0)} gaps" if f.figures else "FAIL"
        targets = f"{t.figures.get('targets_ok', 0)}/{t.figures.get('targets', 0)}" if t.figures else "FAIL"
        edges = ("–" if not e.figures.get("from_weights") else str(e.figures.get("edge_diffs", 0))) \
            + (f" (+{e.figures['circuit_diffs']} circuit)" if e.figures.get("circuit_diffs") else "") \
            if e.figures else "FAIL"
        cov = _pct(_fig(a, "coverage", "exercised"), _fig(a, "coverage", "members"))
        rows.append((a.name, a.variant, forward, targets, edges, cov,
                     "ok" if a.ok else "FAIL: " + ", ".join(c.name for c in a.checks if c.ok is False)))
    return rows


def figures_by_variant(audits: list[TaskAudit]) -> list[tuple[str, ...]]:
    """Per variant: tasks, failing tasks, forward disagreements (values + gaps), targets outside
    their class, structural edge disagreements (n/a where graph.edges is not from the weights),
    coverage (share of circuit members some pair set exercises)."""
    by = defaultdict(list)
    for a in audits:
        by[a.variant].append(a)
    rows = []
    for kind in sorted(by) + ["all"]:
        group = audits if kind == "all" else by[kind]
        fwd = sum(_fig(a, "forward", "value_disagreements") + _fig(a, "forward", "gap_disagreements")
                  + (a.check("forward") is not None and not a.check("forward").figures) for a in group)
        outside = sum(_fig(a, "targets", "targets") - _fig(a, "targets", "targets_ok") for a in group)
        weights = [a for a in group if _fig(a, "edges", "from_weights", False)]
        edges = sum(_fig(a, "edges", "edge_diffs") + _fig(a, "edges", "circuit_diffs") for a in group)
        edge_cell = str(edges) if weights or edges else "n/a"
        cov = _pct(sum(_fig(a, "coverage", "exercised") for a in group), sum(_fig(a, "coverage", "members") for a in group))
        rows.append((f"**{kind}**" if kind == "all" else kind, str(len(group)), str(sum(not a.ok for a in group)),
                     str(fwd), str(outside), edge_cell, cov))
    return rows


def markdown(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def plain(header, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
