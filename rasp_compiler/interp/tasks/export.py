"""Writing task folders (program x variant x seed) and the set's ``manifest.json``.

Each task is built in a hidden temporary folder beside its final place and renamed into
place once every file is written, so an interrupted export never leaves a half task;
every file is written with the weight files' atomic writer, and the manifest last.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from rasp_compiler.errors import RaspCompilerError, UnsupportedProgramError
from rasp_compiler.export.safetensors_bytes import safetensors_bytes
from rasp_compiler.export.safetensors_file import atomic_write
from rasp_compiler.export.values import printable_value
from rasp_compiler.interp.coverage import active_circuits, pair_sets
from rasp_compiler.interp.ground_truth import aligned_truth
from rasp_compiler.interp.tasks import blind as blind_files
from rasp_compiler.interp.tasks import trained_gate, truth_gate
from rasp_compiler.interp.tasks.circuit import truth_to_json
from rasp_compiler.interp.tasks.pairs_io import pairs_to_files
from rasp_compiler.interp.tasks.sources import DEFAULT_PROGRAMS, Source, TaskSetError, random_sources, select_sources

TASK_FORMAT = "rasp_compiler.task"
MANIFEST_FORMAT = "rasp_compiler.task_set"
VERSION = 1
N_PAIRS = 16
MIN_ACCURACY = 0.9
SEEDLESS = ("compiled",)
ON_REQUEST = ("trained",)  # kinds exported only when asked for by name  # kinds that are the same for every seed: one task only
FILES = ("model.safetensors", "circuit.json", "pairs.json", "pairs.safetensors", "task.json")
CARD = "README.md"  # the set's dataset card, with the audit's figures


class AuditRefusal(TaskSetError):
    """The independent audit (:mod:`rasp_compiler.audit`) fails a task: it is not written."""


@dataclass
class ExportReport:
    manifest: Path
    tasks: list[dict] = field(default_factory=list)  # manifest entries
    skipped: list[str] = field(default_factory=list)  # variants that do not apply, missing kinds, ...
    errors: list[dict] = field(default_factory=list)  # unexpected failures (bugs), with their traceback
    seconds: float = 0.0
    audits: list = field(default_factory=list)  # rasp_compiler.audit.TaskAudit of every task written or refused


def task_name(source: Source, kind: str, seed: int) -> str:
    return f"{source.name}__{kind}__s{seed}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=1, allow_nan=False, default=str) + "\n").encode("utf-8")


def task_pairs(model, truth, n_pairs: int = N_PAIRS, seed: int = 0, dec=None, labels=None):
    """Pairs of every target exactly as :func:`rasp_compiler.interp.testbed.evaluate` makes them
    (same seeds, same fallback to mixed lengths), so scoring a loaded task sees the same pairs.
    ``labels`` (and ``dec``): see :func:`labelling`."""
    from rasp_compiler.interp.forward import Decomposed
    from rasp_compiler.interp.pairs import make_pairs
    from rasp_compiler.interp.testbed import targets_of

    dec = dec or Decomposed(model)
    entries, skipped = [], []
    kw = {"dec": dec, "labels": labels}
    with np.errstate(over="ignore", invalid="ignore"):
        for k, target in enumerate(targets_of(model, truth)):
            pairs = make_pairs(model, truth, target, n_pairs=n_pairs, seed=seed + k, same_length=True, **kw)
            same = pairs is not None
            if pairs is None:
                pairs = make_pairs(model, truth, target, n_pairs=n_pairs, seed=seed + k, same_length=False, **kw)
            if pairs is None:
                skipped.append(target)
                continue
            entries.append((pairs, target == model.config.output, same))
    return entries, skipped


def labelling(variant):
    """``(dec, labels)`` the pairs of ``variant`` are made with: for a variant with a
    ``reference`` (noise: its model is not exact) the compiled model labels the pairs (the
    program's values) and the gaps are the variant's own forward pass in float64 on the stored
    weights; otherwise the model labels its own pairs in its own arithmetic."""
    from rasp_compiler.interp.coverage import exact
    from rasp_compiler.interp.forward import Decomposed

    if variant.reference is None:
        return Decomposed(variant.model), None
    return exact(Decomposed(variant.model)), Decomposed(variant.reference)


def write_task(folder: Path, source: Source, variant, seed: int, n_pairs: int = N_PAIRS, blind: bool = False,
               audits: list | None = None) -> dict:
    """Write one task folder atomically, only when the independent audit passes it (else
    :class:`AuditRefusal`, nothing written); returns its manifest entry. ``blind``: the blind
    layout (method-visible files and ``answer/``) under a neutral folder name beside
    ``folder`` (the entry's ``name``; ``open_name`` is ``folder``'s). ``audits`` gets the audit."""
    from rasp_compiler.audit import audit_task
    from rasp_compiler.interp.testbed import targets_of

    model = variant.model
    model.metadata = {**(model.metadata or {}), "program": {"origin": source.origin, "output": model.config.output}}
    model.source = source.text
    truth = aligned_truth(variant.truth, model)
    dec, labels = labelling(variant)
    entries, skipped = task_pairs(model, truth, n_pairs, seed, dec, labels)
    variant = trained_gate.gate(folder.name, variant, truth, entries)  # trained: the bar, and its figures
    if not any(is_output for _, is_output, _ in entries):
        raise TaskSetError("no two inputs give different outputs, so no method can be scored on it")
    # "main" (the entries) + a covering set where needed
    sets = pair_sets(model, truth, entries, n_pairs, seed, dec, labels)
    entries, sets, truth_check, dropped = truth_gate.check(variant.kind, model, truth, entries, sets)
    targets = [p.target for p, _, _ in entries]
    active = {t: {name: m.as_json() for name, m in by_name.items()}
              for t, by_name in active_circuits(model, truth, dict(zip(targets, sets))).items()}
    basis = getattr(model, "residual_basis", None)
    if basis is not None and np.array_equal(np.asarray(basis), np.eye(model.config.d_model)):
        basis = None
    basis_file = None if basis is None else "basis.safetensors"
    gone = {d["target"] for d in dropped}
    circuit = truth_to_json(truth, [t for t in targets_of(model, truth) if t not in gone], basis_file, active)
    pairs_json, tensors = pairs_to_files(model, entries, n_pairs, seed, skipped, sets)
    ex = variant.exactness
    c = model.config
    info = {
        "format": TASK_FORMAT, "version": VERSION, "name": folder.name,
        "program": {"name": source.name, "origin": source.origin, "output": c.output,
                    "text": "program.rasp" if source.text is not None else None},
        "variant": {"kind": variant.kind, "settings": dict(variant.settings)},
        "seed": seed,
        "exactness": {"accuracy": ex.accuracy, "checked_inputs": ex.checked_inputs, "how": ex.how,
                      **({} if ex.balanced_accuracy is None else {"balanced_accuracy": ex.balanced_accuracy}),
                      "metrics": {k: float(v) for k, v in ex.metrics.items()}},
        "vocab": [printable_value(v) for v in c.vocab], "max_seq_len": c.max_seq_len, "causal": c.causal,
        "sizes": model.sizes(),
        "circuit": {"components": len(truth.scored),
                    "output_nodes": len(circuit["circuits"][0]["nodes"]),
                    "output_edges": len(circuit["circuits"][0]["edges"])},
        "targets": targets, "skipped_targets": skipped, "n_pairs": n_pairs, "pair_seed": seed,
        **({} if truth_check is None else {"truth_check": truth_check, "dropped_targets": dropped}),
    }
    open_name = folder.name
    if blind:
        key = blind_files.secret(open_name, circuit)
        folder = folder.with_name(blind_files.folder_name(key))
        info["blind"] = {"folder": folder.name}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        if blind:
            _write_blind(tmp, model, circuit, pairs_json, tensors, basis, source.text, info, key)
        else:
            _write_open(tmp, model, circuit, pairs_json, tensors, basis, source.text, info)
        audit = audit_task(tmp, name=open_name)  # from the files alone (blind: with its answer key), before the move
        if audits is not None:
            audits.append(audit)
        if not audit.ok:
            raise AuditRefusal(f"not written, the audit refuses it: {audit.reason}")
        files = {f.relative_to(tmp).as_posix(): sha256_file(f) for f in sorted(tmp.rglob("*")) if f.is_file()}
        trash = None
        if folder.exists():
            trash = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.old")
            os.replace(folder, trash)
        os.replace(tmp, folder)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry = {k: info[k] for k in ("name", "program", "variant", "seed", "exactness", "sizes", "circuit", "targets")}
    if blind:
        entry = {"name": folder.name, "open_name": open_name, **{k: v for k, v in entry.items() if k != "name"}}
    return {**entry, "files": files}


def _write_open(tmp: Path, model, circuit: dict, pairs_json: dict, tensors: dict, basis, text: str | None,
                info: dict) -> None:
    """The open layout: every file at the top of the folder (docs/testbed_format.md)."""
    from rasp_compiler.export import save_model

    save_model(model, tmp / "model.safetensors")
    if basis is not None:
        atomic_write(tmp / "basis.safetensors", safetensors_bytes({"residual_basis": np.ascontiguousarray(basis, np.float64)}))
    atomic_write(tmp / "circuit.json", _json_bytes(circuit))
    atomic_write(tmp / "pairs.json", _json_bytes(pairs_json))
    atomic_write(tmp / "pairs.safetensors", safetensors_bytes(tensors))
    if text is not None:
        atomic_write(tmp / "program.rasp", text.encode("utf-8"))
    atomic_write(tmp / "task.json", _json_bytes(info))


def _write_blind(tmp: Path, model, circuit: dict, pairs_json: dict, tensors: dict, basis, text: str | None,
                 info: dict, key: bytes) -> None:
    """The blind layout: the method-visible files on top, the answer key in ``answer/``
    (:mod:`.blind`; docs/testbed_format.md, "Blind task folders")."""
    from rasp_compiler.export import save_model

    perm = blind_files.permutation(model, key)
    moved = blind_files.permuted(model, perm)
    rename = blind_files.names(model, perm)
    answer = tmp / blind_files.ANSWER
    answer.mkdir()
    save_model(blind_files.visible_model(moved), tmp / "model.safetensors")
    atomic_write(tmp / "pairs.json", _json_bytes(blind_files.visible_pairs(pairs_json)))
    atomic_write(tmp / "pairs.safetensors", safetensors_bytes(tensors))
    atomic_write(tmp / "task.json", _json_bytes(blind_files.visible_task(info, moved, info["blind"]["folder"])))
    if basis is not None:
        atomic_write(answer / "basis.safetensors",
                     safetensors_bytes({"residual_basis": np.ascontiguousarray(basis, np.float64)}))
    atomic_write(answer / "circuit.json", _json_bytes(
        blind_files.rename_circuit(circuit, moved, rename, perm, circuit["residual_basis"])))
    atomic_write(answer / "pairs.json", _json_bytes(pairs_json))
    atomic_write(answer / "model.json", _json_bytes(blind_files.answer_model(moved)))
    atomic_write(answer / "unblind.json", _json_bytes(
        blind_files.unblind(rename, info["targets"], perm, info["name"], info["blind"]["folder"])))
    if text is not None:
        atomic_write(answer / "program.rasp", text.encode("utf-8"))
    atomic_write(answer / "task.json", _json_bytes(info))


def accuracy_refusal(ex, min_accuracy: float = MIN_ACCURACY) -> str | None:
    """Why a variant of exactness ``ex`` does not compute its task, or None: the share of checked
    inputs decoded right and, when measured, the accuracy balanced over output classes must both
    reach ``min_accuracy`` (a model answering a majority class everywhere fails the second)."""
    if not ex.accuracy >= min_accuracy:
        return f"accuracy {ex.accuracy:.3f} < {min_accuracy} ({ex.how}): the variant does not compute the task"
    if ex.balanced_accuracy is not None and not ex.balanced_accuracy >= min_accuracy:
        return (f"balanced accuracy {ex.balanced_accuracy:.3f} < {min_accuracy} (mean over output classes of "
                f"the share decoded right; accuracy {ex.accuracy:.3f}, {ex.how}): the variant does not compute "
                f"the task, it answers some classes wrong")
    return None


def _saying(progress, source, done: int, total: int):
    """Training progress as the export's progress callback (its description), or None."""
    return None if progress is None else (lambda line: progress(line, done - 1, total))


def _kinds(kinds: Iterable[str] | None) -> tuple[list[str], list[str]]:
    from rasp_compiler.interp.variants import KINDS, available

    have = available()
    if kinds is None:
        slow = [k for k in have if k in ON_REQUEST]
        return [k for k in have if k not in ON_REQUEST], [
            f"variant {k!r} not in the default set (training takes minutes per program): add it with "
            f"--variants" for k in slow]
    out, notes = [], []
    for k in kinds:
        if k not in KINDS:
            raise TaskSetError(f"unknown variant {k!r}; known: {', '.join(KINDS)}")
        if k not in have:
            notes.append(f"variant {k!r} is not available in this installation, skipped")
            continue
        out.append(k)
    return out, notes


def export_tasks(out_dir, programs: Iterable[str] | None = DEFAULT_PROGRAMS, variants: Iterable[str] | None = None,
                 seeds: Iterable[int] = (0,), n_random: int = 0, random_seed: int = 0, n_pairs: int = N_PAIRS,
                 min_accuracy: float = MIN_ACCURACY, progress: Callable[[str, int, int], Any] | None = None,
                 on_written: Callable[[Path, Any], Any] | None = None, blind: bool = False, vocab=None,
                 max_seq_len: int | None = None, causal: bool = False) -> ExportReport:
    """Write every (program x variant x seed) task into ``out_dir`` and ``manifest.json``.

    ``programs``: selectors (``lib``, ``lib:NAME``, ``examples``, ``ex:NAME``, ``corpus:PATH``,
    ``FILE.rasp``, ``MODULE:FUNCTION``) or RASP programs (SOps), your own programs compiled at
    ``vocab``, ``max_seq_len`` (default 5) and ``causal``; ``n_random``
    more from the program generator (seeds from ``random_seed``, at least two layers).
    ``variants``: kinds (default: every available one but ``trained``, which trains for
    minutes per program); a kind that does not apply to a
    program (its maker refuses it) is skipped with a note. ``progress(name, done, total)``
    is called after each program. A variant less accurate than ``min_accuracy`` (against
    the compiled model, which equals ``rasp.evaluate``; overall and balanced over output
    classes, :func:`accuracy_refusal`) is skipped with a note: its circuit is not what it
    computes. A noise task's targets pass :mod:`.truth_gate` or are dropped.
    ``on_written(folder, variant)`` is called after each task is written (a check that it
    loads back as the variant it was written from). ``blind``: every task in the blind layout
    (:mod:`.blind`; the published set, and the CLI's default): ``manifest.json`` then lists
    only the neutral names and the method-visible files' hashes, ``answer/manifest.json``
    everything else.
    """
    from rasp_compiler.interp.variants import make_variant

    start = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TaskSetError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    kinds, notes = _kinds(variants)
    seeds = list(seeds)
    sources, more = select_sources(list(programs or []), vocab, max_seq_len, causal)
    notes += more
    total = len(sources) + n_random
    report = ExportReport(out / "manifest.json", skipped=notes)

    def compiled_sources():
        for s in sources:
            try:
                yield s, s.compile()  # strict: a task never rests on an unproven Aggregate
            except UnsupportedProgramError as exc:
                report.skipped.append(f"{s.name}: not compiled strictly, so no task uses it: {exc}")
        if n_random:
            yield from random_sources(n_random, random_seed)

    for done, (source, model) in enumerate(compiled_sources(), 1):
        for kind in kinds:
            for seed in (seeds[:1] if kind in SEEDLESS else seeds):
                name = task_name(source, kind, seed)
                try:
                    variant = (trained_gate.trained_variant(source, model, seed, _saying(progress, source, done, total))
                               if kind == "trained" else make_variant(model, kind, seed=seed))
                except (RaspCompilerError, ValueError, NotImplementedError) as exc:
                    report.skipped.append(f"{name}: {type(exc).__name__}: {exc}")
                    continue
                except Exception as exc:  # noqa: BLE001 - a bug in a variant: recorded, the export goes on
                    report.errors.append({"task": name, "error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc()})
                    continue
                refused = accuracy_refusal(variant.exactness, min_accuracy)
                if refused:
                    report.skipped.append(f"{name}: {refused}")
                    continue
                try:
                    entry = write_task(out / name, source, variant, seed, n_pairs, blind=blind, audits=report.audits)
                    report.tasks.append(entry)
                    if on_written is not None:
                        on_written(out / entry["name"], variant)
                except TaskSetError as exc:
                    report.skipped.append(f"{name}: {exc}")
                except Exception as exc:  # noqa: BLE001
                    report.errors.append({"task": name, "error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc()})
        if progress is not None:
            progress(source.name, done, total)
    report.seconds = time.perf_counter() - start
    manifest = {
        "format": MANIFEST_FORMAT, "version": VERSION,
        "n_tasks": len(report.tasks),
        "programs": sorted({t["program"]["name"] for t in report.tasks}),
        "variants": kinds, "seeds": seeds, "n_random": n_random, "random_seed": random_seed, "n_pairs": n_pairs,
        "min_accuracy": min_accuracy,
        "total_bytes": sum((out / t["name"] / f).stat().st_size for t in report.tasks for f in t["files"]),
        "skipped": report.skipped, "errors": [{k: e[k] for k in ("task", "error")} for e in report.errors],
        "tasks": report.tasks,
    }
    from rasp_compiler.interp.tasks.card import card

    if blind:
        atomic_write(out / blind_files.ANSWER / "manifest.json", _json_bytes({**manifest, "layout": "answer"}))
        atomic_write(out / blind_files.ANSWER / CARD, card(manifest, report.audits).encode("utf-8"))
    atomic_write(out / CARD, card(manifest, report.audits, blind=blind).encode("utf-8"))
    atomic_write(report.manifest, _json_bytes(blind_files.visible_manifest(manifest) if blind else manifest))
    return report
