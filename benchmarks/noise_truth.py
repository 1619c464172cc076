"""The noise variant's truth, re-checked from the written task folders alone.

    python benchmarks/noise_truth.py [--out /tmp/rasp_noise_truth] [--no-write]

Exports ``--variants noise`` for ``--programs lib --random 6 --seeds 0,1`` (the acceptance
set of issue 25) as ``rasp-compiler testbed export`` does, then re-checks every written
task from its files with a forward pass written here from docs/testbed_format.md (numpy,
float64, embed → blocks → unembed; nothing of the package's forward, pairs or gates):

* **forward**: each pair set's gap ``M(clean) − M(corrupt)`` against the stored ``gap``, and
  against the package's decomposed forward (``interp/forward.py``) on the same files, in
  float64 and in float32 (the weights as stored, as the methods run it);
* **faithfulness**: ``(M(clean, every component outside the circuit from the corrupted run)
  − M(corrupt)) / gap`` per pair, and the **outside effect**: the largest
  ``|M(clean) − M(clean, one outside component from the corrupted run)| / gap``;
* **labels**: every pair's ``clean_values``/``corrupt_values`` at positions 1..n against
  ``rasp.evaluate`` of the target SOp of the program (rebuilt from its source).

Writes the table between the noise-truth markers of docs/testbed.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from doc_section import replace_section  # noqa: E402  (benchmarks/, this script's folder)

BEGIN, END = "<!-- BEGIN noise_truth (written by benchmarks/noise_truth.py) -->", "<!-- END noise_truth -->"
COMMAND = "python benchmarks/noise_truth.py"
PROGRAMS, N_RANDOM, SEEDS = ["lib"], 6, [0, 1]


# ------------------------------------------------------------------ the forward pass of the format doc
def forward(W: dict, comps: list[dict], ids: np.ndarray, n_layers: int, causal: bool,
            replace: dict | None = None, record: dict | None = None) -> np.ndarray:
    """Final residual stream (float64) of token ids; ``replace[name]`` is used as that head's or
    MLP block's output instead of its own, ``record[name]`` receives every component's output."""
    replace = replace or {}
    n = ids.shape[1]
    x = W["embed.W_E"][ids] + W["pos_embed.W_pos"][:n][None]
    mask = (ids != 1)[:, None, None, :] & (np.tril(np.ones((n, n), bool)) | (not causal))[None, None]
    for l in range(n_layers):
        b = f"blocks.{l}."
        q, k, v = (np.einsum("bpd,hde->bhpe", x, W[b + "attn.W_" + s]) for s in "QKV")
        s = np.where(mask, q @ k.transpose(0, 1, 3, 2), -np.inf)  # no 1/sqrt(d_head)
        a = np.exp(s - s.max(-1, keepdims=True))
        z = (a / a.sum(-1, keepdims=True)) @ v  # (batch, head, pos, d_head)
        names = {c["head"]: c["name"] for c in comps if c["kind"] == "head" and c["layer"] == l}
        outs = []
        for h in range(z.shape[1]):
            out = z[:, h] @ W[b + "attn.W_O"][h]
            outs.append(_swap(names.get(h), out, replace, record))
        x = x + sum(outs)
        post = np.maximum(x @ W[b + "mlp.W_in"] + W[b + "mlp.b_in"], 0)
        blocks = [c for c in comps if c["kind"] == "mlp" and c["layer"] == l]
        rest = np.ones(post.shape[-1], bool)
        outs = []
        for c in blocks:
            rest[c["lo"]:c["hi"]] = False
            out = post[..., c["lo"]:c["hi"]] @ W[b + "mlp.W_out"][c["lo"]:c["hi"]]
            outs.append(_swap(c["name"], out, replace, record))
        outs.append(post[..., rest] @ W[b + "mlp.W_out"][rest])  # neurons of no component (0 in a noise task)
        x = x + sum(outs) + W[b + "mlp.b_out"]
    return x


def _swap(name, out, replace, record):
    if name is not None and record is not None:
        record[name] = out
    return replace.get(name, out) if name is not None else out


# ------------------------------------------------------------------ re-checking one task folder
def sops_by_label(program) -> dict:
    out, stack = {}, [program]
    while stack:
        e = stack.pop()
        if e.label not in out:
            out[e.label] = e
            stack.extend(e.children)
    return out


def recheck(folder: Path, program=None) -> dict:
    """Every figure of the module doc for the task at ``folder`` (``program``: its rasp program,
    for the labels; None skips them)."""
    from rasp_compiler.export.values import decode_value
    from rasp_compiler.interp.coverage import exact
    from rasp_compiler.interp.forward import Decomposed
    from rasp_compiler.interp.tasks import load_task
    from rasp_compiler.verify import expected_output, same_value

    task, circuit, pairs = (json.loads((folder / f"{f}.json").read_text()) for f in ("task", "circuit", "pairs"))
    W = {k: v.astype(np.float64) for k, v in load_file(folder / "model.safetensors").items()}
    P = load_file(folder / "pairs.safetensors")
    comps = circuit["components"]
    scored = [c["name"] for c in comps if c["kind"] in ("head", "mlp")]
    run = lambda ids, **kw: forward(W, comps, ids, task["sizes"]["layers"], task["causal"], **kw)
    dec32 = Decomposed(load_task(folder).model)  # as the methods run it (float32 weights)
    dec = exact(dec32)
    sops = sops_by_label(program) if program is not None else {}
    circuits = {c["target"]: c for c in circuit["circuits"]}
    fig = {"gap_error": 0.0, "decomposed_error": 0.0, "float32_error": 0.0, "faith_min": np.inf, "faith_max": -np.inf,
           "outside_max": 0.0, "labels": 0, "label_errors": 0, "targets": 0, "pairs": 0}
    for t in pairs["targets"]:
        fig["targets"] += 1
        inside = set(circuits[t["target"]]["nodes"])
        outside = [n for n in scored if n not in inside]
        for s in [t, *t.get("pair_sets", [])]:
            k = s["tensors"]
            clean, corrupt, U, gap = P[k + ".clean"], P[k + ".corrupt"], P[k + ".U"], P[k + ".gap"]
            M = lambda resid: (resid * U).sum((1, 2))
            rc, rx = {}, {}
            m_clean, m_corrupt = M(run(clean, record=rc)), M(run(corrupt, record=rx))
            g = m_clean - m_corrupt
            fig["pairs"] += len(g)
            fig["gap_error"] = max(fig["gap_error"], float(np.max(np.abs(g - gap) / np.abs(g))))
            g_dec = M(dec.run(clean)) - M(dec.run(corrupt))
            fig["decomposed_error"] = max(fig["decomposed_error"], float(np.max(np.abs(g_dec - g) / np.abs(g))))
            with np.errstate(over="ignore", invalid="ignore"):
                g32 = M(dec32.run(clean)) - M(dec32.run(corrupt))
            fig["float32_error"] = max(fig["float32_error"], float(np.max(np.abs(g32 - g) / np.abs(g))))
            faith = (M(run(clean, replace={n: rx[n] for n in outside})) - m_corrupt) / g
            fig["faith_min"] = min(fig["faith_min"], float(faith.min()))
            fig["faith_max"] = max(fig["faith_max"], float(faith.max()))
            for n in outside:
                fig["outside_max"] = max(fig["outside_max"],
                                         float(np.max(np.abs(m_clean - M(run(clean, replace={n: rx[n]}))) / g)))
            sop = sops.get(t["target"])
            if sop is None:
                continue
            for row in s["pairs"]:
                for side in ("clean", "corrupt"):
                    xs = [decode_value(v) for v in row[side][1:]]  # [0] is BOS
                    want = expected_output(sop, xs, task["causal"])
                    got = [decode_value(v) for v in row[side + "_values"][1:len(xs) + 1]]
                    fig["labels"] += 1
                    fig["label_errors"] += not all(same_value(a, b) for a, b in zip(got, want))
    return fig


# ------------------------------------------------------------------ the run
def programs_of_sources() -> dict:
    """Folder stem -> the rasp program, for the sources the export uses."""
    from rasp_compiler.interp.tasks.sources import random_sources, select_sources

    sources, _ = select_sources(PROGRAMS)
    out = {s.name: s.build() for s in sources}
    out.update({s.name: s.build() for s, _ in random_sources(N_RANDOM, 0)})
    return out


def skip_reason(note: str) -> str:
    """The export's skip note in a few words."""
    for key, words in (("balanced accuracy", "balanced accuracy < 0.9"), ("accuracy", "accuracy < 0.9"),
                       ("does not hold", "output fails the truth check")):
        if key in note:
            return words
    return "other"


def main() -> None:
    from rasp_compiler.interp.tasks import export_tasks
    from rasp_compiler.interp.tasks.truth_gate import FAITHFULNESS, OUTSIDE_EFFECT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/rasp_noise_truth"))
    ap.add_argument("--no-write", action="store_true", help="print the table, leave the doc alone")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    t0 = time.perf_counter()
    report = export_tasks(args.out, programs=PROGRAMS, variants=["noise"], seeds=SEEDS, n_random=N_RANDOM)
    t_export = time.perf_counter() - t0
    programs = programs_of_sources()
    rows, dropped = [], []
    t0 = time.perf_counter()
    for entry in report.tasks:
        folder = args.out / entry["name"]
        info = json.loads((folder / "task.json").read_text())
        dropped += [(entry["name"], d) for d in info["dropped_targets"]]
        rows.append({"name": entry["name"], **recheck(folder, programs.get(entry["name"].split("__")[0]))})
        print(entry["name"], {k: v for k, v in rows[-1].items() if k != "name"}, flush=True)
    t_check = time.perf_counter() - t0
    skipped = [n for n in report.skipped if "__noise__" in n]
    reasons = Counter(skip_reason(n.split(": ", 1)[1]) for n in skipped)
    agg = lambda key, f: f(r[key] for r in rows) if rows else float("nan")
    lines = [
        f"Measured by `{COMMAND}` on the acceptance set of issue 25 (`--programs lib --random 6 --seeds 0,1`, "
        f"variant noise, scale 0.01; export {t_export:.0f} s, re-check {t_check:.0f} s, Python "
        f"{platform.python_version()}); every figure re-computed from the written files with the format "
        f"doc's forward pass in numpy float64 (the float32 column: the same weights in float32 arithmetic, "
        f"as the methods and the torch loader run them):",
        "",
        "| figure | value |",
        "|---|---|",
        f"| noise tasks written | {len(rows)} of {len(rows) + len(skipped)} |",
        f"| skipped | {len(skipped)}: " + (", ".join(f"{v}× {k}" for k, v in reasons.most_common()) or "none") + " |",
        f"| targets checked / dropped by the truth check | {agg('targets', sum)} / {len(dropped)} |",
        f"| pairs checked (every pair set) | {agg('pairs', sum)} |",
        f"| max \\|gap − stored gap\\| / gap | {agg('gap_error', max):.1e} |",
        f"| max \\|decomposed gap − gap\\| / gap: float64 / float32 (as the methods run) | "
        f"{agg('decomposed_error', max):.1e} / {agg('float32_error', max):.1e} |",
        f"| faithfulness of the claimed circuits (bound {FAITHFULNESS[0]}..{FAITHFULNESS[1]}) | "
        f"{agg('faith_min', min):.6f} .. {agg('faith_max', max):.6f} |",
        f"| max outside effect / gap (bound {OUTSIDE_EFFECT}) | {agg('outside_max', max):.1e} |",
        f"| labels checked against `rasp.evaluate` / wrong | {agg('labels', sum)} / {agg('label_errors', sum)} |",
    ]
    for reason in reasons:
        figs = [re.search(r"accuracy ([0-9.]+) <", n) for n in skipped if skip_reason(n.split(": ", 1)[1]) == reason]
        names = [n.split(": ", 1)[0].replace("__noise__", " ") for n in skipped
                 if skip_reason(n.split(": ", 1)[1]) == reason]
        lines += ["", f"Skipped, {reason}: " + ", ".join(
            f"`{name}`" + (f" ({m.group(1)})" if m else "") for name, m in zip(names, figs)) + "."]
    if dropped:
        lines += ["", "Dropped targets:", ""] + [f"- `{n}`: {d['target']}: {d['reason']}" for n, d in dropped]
    body = "\n".join(lines)
    print(body)
    if report.errors:
        print("EXPORT ERRORS:", report.errors)
    if not args.no_write:
        replace_section(ROOT / "docs" / "testbed.md", BEGIN, END, body)


if __name__ == "__main__":
    main()
