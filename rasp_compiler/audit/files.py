"""A task folder as plain numpy arrays and dicts, read the documented way and nothing more.

Only ``json``, ``numpy`` and ``safetensors.numpy`` are used: the audit must see what an
outside user with the format docs sees. Every problem is an :class:`AuditFileError` naming
the file and the field, so a broken export says where it is broken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

MODEL, CIRCUIT, PAIRS, PAIR_TENSORS, TASK, MANIFEST = (
    "model.safetensors", "circuit.json", "pairs.json", "pairs.safetensors", "task.json", "manifest.json")
ANSWER = "answer"  # a blind folder's answer key (docs/testbed_format.md, "Blind task folders")
PAD, BOS = 1, 0  # token ids (docs/testbed_format.md, "The model")


class AuditFileError(Exception):
    """A task file that cannot be read as documented: ``file: field: what``."""

    def __init__(self, file: str, field: str, what: str):
        self.file, self.field, self.what = file, field, what
        super().__init__(f"{file}: {field}: {what}" if field else f"{file}: {what}")


@dataclass(frozen=True)
class PairSet:
    """One target's pair set: the rows of pairs.json and their exact arrays."""

    index: int  # k of t{k}
    target: str
    name: str  # "main" or the pair_sets entry's name
    is_output: bool
    prefix: str  # tensor prefix, e.g. "t0" or "t0.lengths"
    rows: tuple  # the pairs.json rows (dicts)
    clean: np.ndarray  # (P, n_ctx) int64
    corrupt: np.ndarray
    U: np.ndarray  # (P, n_ctx, d_model) float64
    gap: np.ndarray  # (P,)
    lengths: np.ndarray  # (P,)


@dataclass(frozen=True)
class TaskFiles:
    path: Path
    name: str
    task: dict
    circuit: dict
    pairs: dict
    config: dict  # the model file's metadata "config"
    weights: dict  # tensor name -> float64 array
    basis: np.ndarray | None  # (n_features, d_model): row i = feature i's direction; None = unit vectors
    pair_sets: tuple  # PairSet, in pairs.json order (main set of each target first)
    blind: bool = False  # circuit.json, pairs.json and task.json come from the answer key

    def at(self, name: str) -> str:
        """How problem lines name a claims file (``answer/circuit.json`` in a blind folder)."""
        return f"{ANSWER}/{name}" if self.blind else name

    @property
    def kind(self) -> str:
        return self.task["variant"]["kind"]

    @property
    def n_layers(self) -> int:
        return int(self.config["n_layers"])

    def directions(self) -> np.ndarray:
        """Feature directions, one row per feature (the identity when there is no basis file)."""
        d = int(self.config["d_model"])
        return np.eye(d) if self.basis is None else self.basis


def get(data: Any, key: str | int, file: str, where: str = "") -> Any:
    """``data[key]`` or an AuditFileError naming ``file`` and the field path."""
    path = f"{where}.{key}" if where else str(key)
    try:
        return data[key]
    except (KeyError, IndexError, TypeError):
        raise AuditFileError(file, path, "missing") from None


def _json(folder: Path, name: str, tag: str | None = None) -> dict:
    tag = tag or folder.name
    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditFileError(f"{tag}/{name}", "", "file missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditFileError(f"{tag}/{name}", "", f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AuditFileError(f"{tag}/{name}", "", "not a JSON object")
    return data


def _confined(folder: Path, name: Any, file: str, field: str) -> Path:
    """A file name taken from JSON, only when it stays inside ``folder``."""
    if not isinstance(name, str) or not name or name.startswith(("/", "\\")) or ".." in Path(name).parts:
        raise AuditFileError(file, field, f"{name!r} is not a plain file name inside the task folder")
    path = folder / name
    if folder.resolve() not in path.resolve().parents:
        raise AuditFileError(file, field, f"{name!r} leads out of the task folder")
    return path


def _tensors(path: Path, file: str) -> dict[str, np.ndarray]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise AuditFileError(file, "", "file missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise AuditFileError(file, "", f"not a safetensors file ({exc})") from None


def _metadata(path: Path, file: str) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AuditFileError(file, "", f"not a safetensors file ({exc})") from None
    try:
        config = json.loads(get(meta, "config", file, "__metadata__"))
    except json.JSONDecodeError as exc:
        raise AuditFileError(file, "__metadata__.config", f"not JSON ({exc})") from None
    return config


def _weights(raw: dict, config: dict, file: str) -> dict[str, np.ndarray]:
    L, H, d = (int(get(config, k, file, "__metadata__.config")) for k in ("n_layers", "n_heads", "d_model"))
    names = ["embed.W_E", "pos_embed.W_pos", "unembed.W_U"] + [
        f"blocks.{l}.{t}" for l in range(L) for t in ("attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O", "mlp.W_in",
                                                      "mlp.b_in", "mlp.W_out", "mlp.b_out")]
    out = {}
    for n in names:
        w = np.asarray(get(raw, n, file, "tensors"), np.float64)
        if not np.all(np.isfinite(w)):
            raise AuditFileError(file, n, "not finite")
        out[n] = w
    for l in range(L):
        b = f"blocks.{l}."
        for n in ("attn.W_Q", "attn.W_K", "attn.W_V"):
            if out[b + n].ndim != 3 or out[b + n].shape[:2] != (H, d):
                raise AuditFileError(file, b + n, f"shape {out[b + n].shape}, expected ({H}, {d}, d_head)")
        if out[b + "attn.W_O"].ndim != 3 or out[b + "attn.W_O"].shape[0] != H or out[b + "attn.W_O"].shape[2] != d:
            raise AuditFileError(file, b + "attn.W_O", f"shape {out[b + 'attn.W_O'].shape}, expected ({H}, d_head, {d})")
        if out[b + "mlp.W_in"].shape[0] != d or out[b + "mlp.W_out"].shape[1] != d:
            raise AuditFileError(file, b + "mlp.W_in", "MLP shapes do not match d_model")
    for n in ("embed.W_E", "pos_embed.W_pos"):
        if out[n].ndim != 2 or out[n].shape[1] != d:
            raise AuditFileError(file, n, f"shape {out[n].shape}, expected (rows, {d})")
    if out["unembed.W_U"].ndim != 2 or out["unembed.W_U"].shape[0] != d:
        raise AuditFileError(file, "unembed.W_U", f"shape {out['unembed.W_U'].shape}, expected ({d}, outputs)")
    return out


def _pair_sets(tag: str, pairs: dict, tensors: dict) -> tuple[PairSet, ...]:
    file, tfile = f"{tag}/{PAIRS}", f"{tag}/{PAIR_TENSORS}"
    out = []
    for k, t in enumerate(get(pairs, "targets", file)):
        where = f"targets[{k}]"
        entries = [(t, where, get(t, "pair_set", file, where) if "pair_set" in t else "main")]
        entries += [(s, f"{where}.pair_sets[{j}]", get(s, "name", file, f"{where}.pair_sets[{j}]"))
                    for j, s in enumerate(t.get("pair_sets", []))]
        for entry, at, name in entries:
            prefix = get(entry, "tensors", file, at)
            arr = {s: get(tensors, f"{prefix}.{s}", tfile, "tensors") for s in ("clean", "corrupt", "U", "gap", "lengths")}
            rows = tuple(get(entry, "pairs", file, at))
            P = len(rows)
            for s, a in arr.items():
                if len(a) != P:
                    raise AuditFileError(tfile, f"{prefix}.{s}", f"{len(a)} rows, pairs.json {at} lists {P} pairs")
            out.append(PairSet(k, get(t, "target", file, where), name, bool(get(t, "is_output", file, where)), prefix,
                               rows, np.asarray(arr["clean"], np.int64), np.asarray(arr["corrupt"], np.int64),
                               np.asarray(arr["U"], np.float64), np.asarray(arr["gap"], np.float64),
                               np.asarray(arr["lengths"], np.int64)))
    return tuple(out)


def load(folder, name: str | None = None) -> TaskFiles:
    """Read one task folder (raises :class:`AuditFileError`); ``name``: the task's name when the
    folder is not yet at its final place (an export audits before it moves a task in)."""
    folder = Path(folder)
    tag = name or folder.name
    if not (folder / TASK).is_file():
        raise AuditFileError(tag, "", f"not a task folder (no {TASK})")
    task = _json(folder, TASK, tag)
    key = folder  # where the claims are: the folder itself, or a blind folder's answer key
    if task.get("layout") == "blind":  # docs/testbed_format.md, "Audit of a blind folder"
        key = folder / ANSWER
        task = _json(key, TASK, f"{tag}/{ANSWER}")
    circuit, pairs = (_json(key, n, tag if key == folder else f"{tag}/{ANSWER}") for n in (CIRCUIT, PAIRS))
    mfile = f"{tag}/{MODEL}"
    config = _metadata(folder / MODEL, mfile)
    weights = _weights(_tensors(folder / MODEL, mfile), config, mfile)
    basis = None
    if circuit.get("residual_basis") is not None:
        cfile = f"{tag}/{CIRCUIT}"
        bpath = _confined(key, circuit["residual_basis"], cfile, "residual_basis")
        bname = f"{tag}/{circuit['residual_basis']}"
        basis = np.asarray(get(_tensors(bpath, bname), "residual_basis", bname, "tensors"), np.float64)
        if basis.ndim != 2 or basis.shape[1] != int(config["d_model"]):
            raise AuditFileError(bname, "residual_basis", f"shape {basis.shape}, expected (features, d_model)")
    get(get(task, "variant", f"{tag}/{TASK}"), "kind", f"{tag}/{TASK}", "variant")
    sets = _pair_sets(tag, pairs, _tensors(folder / PAIR_TENSORS, f"{tag}/{PAIR_TENSORS}"))
    return TaskFiles(folder, tag, task, circuit, pairs, config, weights, basis, sets, key != folder)


def task_folders(path) -> list[Path]:
    """``path`` itself when it is a task folder, else the tasks its ``manifest.json`` lists."""
    path = Path(path)
    if (path / TASK).is_file():
        return [path]
    if not (path / MANIFEST).is_file():
        raise AuditFileError(str(path), "", f"neither a task folder ({TASK}) nor a task set ({MANIFEST})")
    manifest = _json(path, MANIFEST)
    file = f"{path.name}/{MANIFEST}"
    out = []
    for i, t in enumerate(get(manifest, "tasks", file)):
        name = get(t, "name", file, f"tasks[{i}]")
        if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", ".."):
            raise AuditFileError(file, f"tasks[{i}].name", f"{name!r} is not a plain folder name")
        out.append(path / name)
    return out
