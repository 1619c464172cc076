"""Weight files: one safetensors file holding every parameter and JSON metadata.

A file holds the parameters under their TransformerLens names (float32) and, in the
safetensors header's ``__metadata__`` (string values only):

``format``          ``"rasp_compiler.model"``
``format_version``  ``"1"`` (see :data:`SUPPORTED_VERSIONS`)
``created_by``      ``"rasp_compiler <version>"``
``config``          JSON of :class:`ModelConfig` (values encoded by :mod:`.values`)
``labels``          JSON of :class:`ModelLabels`
``params_sha256``   checksum of the parameters (name order, name + NUL + float32 bytes)
``graph``           JSON of the compiled program graph (when known)
``program``         JSON: where the program came from (``origin``, ``output``), when known
``source``          text RASP of the program, when it came from text
``extra``           JSON of ``model.metadata["extra"]``, when set

Nothing is ever unpickled or evaluated: loading parses JSON and copies arrays. Writes
are atomic (temporary file in the same directory, fsync, rename), so a crash never
leaves a half-written file under the target name.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rasp_compiler.errors import ModelFileError
from rasp_compiler.export.metadata import (
    config_from_json, config_to_json, expected_shapes, graph_metadata, labels_from_json,
)
from rasp_compiler.model.compiled import CompiledModel

FORMAT = "rasp_compiler.model"
FORMAT_VERSION = "1"
SUPPORTED_VERSIONS = ("1",)
_JSON_KEYS = ("graph", "program", "extra")  # optional metadata keys holding JSON


def _created_by() -> str:
    from rasp_compiler import __version__
    return f"rasp_compiler {__version__}"


def params_checksum(params: Mapping[str, np.ndarray]) -> str:
    """sha256 over the parameters in name order: UTF-8 name, NUL, float32 C-order bytes."""
    h = hashlib.sha256()
    for name in sorted(params):
        h.update(name.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(params[name], dtype="<f4").tobytes())
    return h.hexdigest()


def model_metadata(model: CompiledModel) -> dict:
    """What a weight file says about ``model`` beyond config and labels.

    For a compiled model the program graph comes from its compilation; for a loaded
    one, from the file it was loaded from (``model.metadata``). Keys: ``graph``,
    ``program``, ``extra`` (each present only when known).
    """
    meta = dict(getattr(model, "metadata", None) or {})
    out = {k: meta[k] for k in _JSON_KEYS if meta.get(k) is not None}
    if model.compilation is not None:
        out["graph"] = graph_metadata(model.compilation, model.labels)
    return out


def _check_params(params: Mapping[str, Any], config, where: str) -> None:
    want = expected_shapes(config)
    missing = [k for k in want if k not in params]
    if missing:
        raise ModelFileError(f"{where}: missing tensors {missing[:6]}{' ...' if len(missing) > 6 else ''} "
                             f"(expected {len(want)} for {config.n_layers} layers)")
    extra = sorted(set(params) - set(want))
    if extra:
        raise ModelFileError(f"{where}: unexpected tensors {extra[:6]} for a model of {config.n_layers} layers")
    for name, shape in want.items():
        arr = params[name]
        if tuple(arr.shape) != shape:
            raise ModelFileError(f"{where}: tensor {name} has shape {tuple(arr.shape)}, but the config "
                                 f"(d_model={config.d_model}, n_heads={config.n_heads}, d_head={config.d_head}, "
                                 f"d_mlp={config.d_mlp}, n_ctx={config.n_ctx}) needs {shape}")
        if arr.dtype != np.float32:
            raise ModelFileError(f"{where}: tensor {name} has dtype {arr.dtype}, expected float32")


def save_model(model: CompiledModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to one safetensors file at ``path``, atomically; returns the path.

    Missing parent directories are created. Raises :class:`ModelFileError` if the
    model's parameters do not match its config or a token cannot be written exactly.
    """
    import safetensors.numpy

    path = Path(path)
    params = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in model.params.items()}
    _check_params(params, model.config, f"refusing to write {path}")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": _created_by(),
        "config": json.dumps(config_to_json(model.config), allow_nan=False),
        "labels": json.dumps(model.labels.to_json()),
        "params_sha256": params_checksum(params),
    }
    for key, value in model_metadata(model).items():
        meta[key] = json.dumps(value, allow_nan=False)
    if model.source is not None:
        meta["source"] = str(model.source)
    data = safetensors.numpy.save(params, metadata=meta)
    atomic_write(path, data)
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable; not every platform can open a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _json(meta: dict, key: str, where: str) -> Any:
    try:
        return json.loads(meta[key])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: metadata {key!r} is not valid JSON ({exc})") from None


def load_model(path: str | os.PathLike) -> CompiledModel:
    """Load a weight file written by :func:`save_model` into a runnable model.

    The model has no ``compilation`` (no Python program is needed to run it); its
    ``source`` is the program text when the file has one, and ``metadata`` holds the
    file's descriptive metadata (``graph``, ``program``, ``format_version``,
    ``created_by``, ``file``). Raises :class:`ModelFileError` naming the file and the
    problem for a missing, truncated, corrupt, foreign, newer or misshapen file.
    """
    import safetensors.numpy

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise ModelFileError(f"{where}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{where}: not a file (a weight file is one .safetensors file)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
    try:
        tensors = safetensors.numpy.load(data)
    except Exception as exc:  # safetensors raises SafetensorError (and others on odd bytes)
        raise ModelFileError(f"{where}: not a readable safetensors file, it may be truncated or corrupt "
                             f"({exc})") from None
    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        meta = header.get("__metadata__") or {}
    except (ValueError, AttributeError) as exc:  # safetensors accepted it, so this is unlikely
        raise ModelFileError(f"{where}: unreadable safetensors header ({exc})") from None

    fmt = meta.get("format")
    if fmt != FORMAT:
        raise ModelFileError(f"{where}: a safetensors file, but not a rasp_compiler model "
                             f"(metadata format={fmt!r}, expected {FORMAT!r})")
    version = meta.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(f"{where}: format_version {version!r} is not supported by {_created_by()} "
                             f"(supported: {', '.join(SUPPORTED_VERSIONS)}); the file was written by "
                             f"{meta.get('created_by', 'an unknown version')}: upgrade rasp_compiler to read it")
    for key in ("config", "labels"):
        if key not in meta:
            raise ModelFileError(f"{where}: metadata has no {key!r}")
    try:
        config = config_from_json(_json(meta, "config", where))
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{where}: bad metadata 'config': {exc}") from None
    try:
        labels = labels_from_json(_json(meta, "labels", where), config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{where}: bad metadata 'labels': {exc}") from None

    _check_params(tensors, config, where)
    params = {name: np.array(tensors[name], dtype=np.float32) for name in expected_shapes(config)}
    checksum = meta.get("params_sha256")
    if checksum is not None and checksum != params_checksum(params):
        raise ModelFileError(f"{where}: the parameters do not match their checksum (params_sha256): "
                             f"the file is corrupt or was edited without updating it")

    info: dict[str, Any] = {"format_version": version, "created_by": meta.get("created_by"), "file": where}
    for key in _JSON_KEYS:
        info[key] = _json(meta, key, where) if key in meta else None
    source = meta.get("source")
    return CompiledModel(config, params, labels, None, source, metadata=info)
