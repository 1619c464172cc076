"""The dataset card (``README.md``) of an exported task set: what it is and what the audit found.

Written by :func:`~rasp_compiler.interp.tasks.export.export_tasks` beside ``manifest.json``;
it holds no timing, so the same export gives the same bytes.
"""

from __future__ import annotations

from rasp_compiler.audit.report import VARIANT_COLUMNS, figures_by_variant, markdown


def card(manifest: dict, audits: list, blind: bool = False) -> str:
    """Markdown for a set (``manifest``: the full one, as ``answer/manifest.json`` holds it in a blind
    set; ``audits``: every task audited, refused ones included). ``blind``: the card a method may
    read, which names no program, variant or component: the audit's figures over all tasks only."""
    written = {t.get("open_name", t["name"]) for t in manifest["tasks"]}
    passed = [a for a in audits if a.name in written]
    refused = [a for a in audits if not a.ok]
    what = (f"Written by `rasp-compiler testbed export` (blind layout: a method receives each task folder "
            f"without its `answer/` key, and the set without `answer/`); {manifest['n_pairs']} pairs per target."
            if blind else
            f"Written by `rasp-compiler testbed export`: programs {', '.join(manifest['programs']) or '(none)'}; "
            f"variants {', '.join(manifest['variants'])}; seeds {', '.join(map(str, manifest['seeds']))}; "
            f"{manifest['n_random']} random programs; {manifest['n_pairs']} pairs per target.")
    rows = figures_by_variant(passed)
    lines = [
        f"# Task set: {manifest['n_tasks']} tasks",
        "",
        what + " One folder per task (program x variant x seed): weights, ground-truth circuit, clean/corrupted "
        "pairs and metric. The format is docs/testbed_format.md of rasp_compiler; `manifest.json` lists every "
        "task with the sha256 of its files.",
        "",
        "## Independent audit",
        "",
        "Every task was re-checked from its files alone by `rasp_compiler.audit` before it was written "
        "(`rasp-compiler testbed audit DIR` repeats it): its own float64 forward pass against every stated value "
        "and gap, each target's circuit against its variant's documented class (faithfulness and the largest "
        "effect outside it), structural edges recomputed from the weights against `circuit.json`, and the "
        "circuit members the pairs exercise. A task the audit fails is not written.",
        "",
        markdown(VARIANT_COLUMNS, rows[-1:] if blind else rows) if passed else "No task was written.",
        "",
        f"Refused by the audit: {len(refused)}" + ("." if blind or not refused else ":"),
    ]
    lines += [] if blind else [f"- {a.reason}" for a in refused]
    return "\n".join(lines) + "\n"
