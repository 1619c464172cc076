"""Reading a task folder back: the model, its stored truth and its fixed pairs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rasp_compiler.interp.ground_truth import GroundTruth
from rasp_compiler.interp.pairs import Pairs
from rasp_compiler.interp.tasks.blind import ANSWER, is_blind, scoring_model
from rasp_compiler.interp.tasks.circuit import truth_from_json
from rasp_compiler.interp.tasks.export import TASK_FORMAT, sha256_file
from rasp_compiler.interp.tasks.pairs_io import pair_sets_from_files
from rasp_compiler.interp.tasks.paths import confined
from rasp_compiler.interp.tasks.sources import TaskSetError


@dataclass(frozen=True)
class Task:
    """One task folder, loaded: ``truth`` is the stored one (not re-read from the weights)."""

    path: Path
    name: str
    model: Any  # CompiledModel
    truth: GroundTruth
    pairs: dict[str, Pairs]  # target -> its main fixed clean/corrupted pairs (output first)
    info: dict = field(repr=False)  # task.json
    circuit_json: dict = field(default_factory=dict, repr=False)  # circuit.json as stored
    program_text: str | None = field(default=None, repr=False)
    pair_sets: dict[str, dict[str, Pairs]] = field(default_factory=dict, repr=False)  # target -> name -> pairs

    def active(self, target: str, pair_set: str = "main") -> dict | None:
        """The active circuit ({"nodes", "edges"}) of ``target`` on ``pair_set``, from circuit.json
        (None in files written before active circuits were stored)."""
        return self.circuits.get(target, {}).get("active", {}).get(pair_set)

    @property
    def circuits(self) -> dict[str, dict]:
        return {c["target"]: c for c in self.circuit_json.get("circuits", [])}

    @property
    def kind(self) -> str:
        return self.info["variant"]["kind"]

    @property
    def seed(self) -> int:
        return int(self.info["seed"])


def _json(path: Path, what: str = "task folder") -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskSetError(f"{path.parent}: not a {what} (no {path.name}; write one with "
                           f"`rasp-compiler testbed export DIR`)") from None
    except ValueError as exc:
        raise TaskSetError(f"{path}: not valid JSON ({exc})") from None


def _tensors(path: Path, where: str) -> dict:
    """A safetensors file's tensors; anything else is a TaskSetError naming the file and where it was named."""
    from safetensors.numpy import load

    try:
        return load(path.read_bytes())
    except FileNotFoundError:
        raise TaskSetError(f"{path}: missing ({where})") from None
    except Exception as exc:  # noqa: BLE001 - the library raises its own error types for bad files
        raise TaskSetError(f"{path} ({where}): not a safetensors file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None


def is_task(path) -> bool:
    return (Path(path) / "task.json").is_file()


def load_task(path, check_hashes: dict[str, str] | None = None) -> Task:
    """Load the task folder ``path`` (open or blind layout: a blind folder's truth, pairs and
    program come from its answer key, component names are the neutral ones); ``check_hashes``
    (file -> sha256, from the manifest) makes a changed or corrupt file an error."""
    from rasp_compiler.export import load_model

    path = Path(path)
    visible = _json(path / "task.json")
    if visible.get("format") != TASK_FORMAT:
        raise TaskSetError(f"{path}/task.json: format {visible.get('format')!r}, expected {TASK_FORMAT!r}")
    # a blind folder: the JSON files of the open layout are in answer/, the weights and pair tensors on top
    blind = visible.get("layout") == "blind"
    if blind and not is_blind(path):
        raise TaskSetError(f"{path}: a blind task folder without its answer key ({ANSWER}/): these are the files "
                           f"a method receives (rasp_compiler.interp.tasks.blind.load_visible reads them); "
                           f"scoring needs the folder as exported")
    top = path / ANSWER if blind else path  # where circuit.json, pairs.json, task.json and the names in them are
    for fixed in ("task.json", "circuit.json", "pairs.json"):
        confined(path, f"{ANSWER}/{fixed}" if blind else fixed, f"{path}: the task's {fixed}")  # no symlink out
    for fixed in ("pairs.safetensors", "model.safetensors") + ((f"{ANSWER}/model.json",) if blind else ()):
        confined(path, fixed, f"{path}: the task's {fixed}")
    info = _json(top / "task.json") if blind else visible
    for fname, digest in (check_hashes or {}).items():
        if sha256_file(confined(path, fname, f"manifest.json: files of task {path.name}")) != digest:
            raise TaskSetError(f"{path / fname}: sha256 differs from the manifest: the file changed or is corrupt")
    model = load_model(path / "model.safetensors")
    if blind:
        try:
            model = scoring_model(model, _json(top / "model.json"))
        except (ValueError, KeyError, TypeError) as exc:
            raise TaskSetError(f"{top / 'model.json'}: not the answer key of {path / 'model.safetensors'} "
                               f"({type(exc).__name__}: {exc})") from None
    circuit = _json(top / "circuit.json")
    basis = None
    if circuit.get("residual_basis"):
        where = f"{top / 'circuit.json'}: field residual_basis"
        tensors = _tensors(confined(top, circuit["residual_basis"], where), where)
        if "residual_basis" not in tensors:
            raise TaskSetError(f"{where}: {circuit['residual_basis']} holds no tensor 'residual_basis'")
        basis = tensors["residual_basis"]
        model.residual_basis = basis  # ground truth, pairs and read-outs see the features' true directions
    truth = truth_from_json(circuit, basis, model.config.d_model)
    sets = pair_sets_from_files(_json(top / "pairs.json"), _tensors(path / "pairs.safetensors", "the task's pairs"))
    pairs = {t: by_name["main"] for t, by_name in sets.items()}
    text_file = info["program"].get("text")
    text = None
    if text_file:
        text = confined(top, text_file, f"{top / 'task.json'}: field program.text").read_text(encoding="utf-8")
    return Task(path, info["name"], model, truth, pairs, info, circuit, text, sets)


def load_manifest(directory) -> dict:
    """A task set's manifest: in a blind set the answer key's (``answer/manifest.json``, every
    field), else ``manifest.json``."""
    directory = Path(directory)
    if (directory / ANSWER / "manifest.json").is_file():
        return _json(confined(directory, f"{ANSWER}/manifest.json", f"{directory}: the set's answer key"), "task set")
    return _json(directory / "manifest.json", "task set")


def task_dirs(directory) -> list[Path]:
    """Task folders of a set: from its manifest, else every subfolder with a task.json."""
    directory = Path(directory)
    if (directory / "manifest.json").is_file():
        return [confined(directory, t.get("name") if isinstance(t, dict) else None,
                         f"{directory / 'manifest.json'}: field tasks[{i}].name", single=True)
                for i, t in enumerate(load_manifest(directory).get("tasks", []))]
    return sorted(p for p in directory.iterdir() if p.is_dir() and is_task(p))


__all__ = ["Task", "load_task", "load_manifest", "is_task", "task_dirs"]
