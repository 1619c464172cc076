"""Weight files: one safetensors file holding every parameter and JSON metadata.

A file holds the parameters under their TransformerLens names (float32) and, in the
safetensors header's ``__metadata__`` (string values only):

``format``          ``"rasp_compiler.model"``
``format_version``  ``"2"`` (see :data:`SUPPORTED_VERSIONS`)
``created_by``      ``"rasp_compiler <version>"``
``config``          JSON of :class:`ModelConfig` (values encoded by :mod:`.values`)
``labels``          JSON of :class:`ModelLabels`
``params_sha256``   checksum of the parameters (name order, name + NUL + float32 bytes)
``sha256``          required: checksum of every other metadata entry and every tensor
                    (see :func:`file_checksum`), so no edit of config, labels, graph,
                    program or weights goes unnoticed
``graph``           JSON of the compiled program graph (when known)
``program``         JSON: where the program came from (``origin``, ``output``), when known
``source``          text RASP of the program, when it came from text
``extra``           JSON of ``model.metadata["extra"]``, when set
``one_hot_guard``   JSON: the categorical subspaces the run-time one-hot guard checks
                    (a model in its compiled basis only; see :mod:`rasp_compiler.model.guard`)

Nothing is ever unpickled or evaluated: loading parses JSON and copies arrays. Before
reading the tensors, the header length is checked against the file size, JSON nesting
is bounded, and the size the config implies must be the file's size. Writes
are atomic (temporary file in the same directory, fsync, rename), so a crash never
leaves a half-written file under the target name.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rasp_compiler.errors import ModelFileError
from rasp_compiler.export.metadata import (
    check_graph_json, check_program_json, config_from_json, config_to_json, expected_shapes, graph_metadata, labels_from_json,
)
from rasp_compiler.export.safetensors_bytes import safetensors_bytes
from rasp_compiler.model.compiled import CompiledModel
from rasp_compiler.model.guard import OneHotGuard

FORMAT = "rasp_compiler.model"
FORMAT_VERSION = "2"
SUPPORTED_VERSIONS = ("2",)
_JSON_KEYS = ("graph", "program", "extra")  # optional metadata keys holding JSON
MAX_HEADER_BYTES = 256 * 2**20  # the JSON header of a weight file (value sets of big programs are long)
MAX_JSON_DEPTH = 100  # nesting of any JSON in the file (deeper would overflow Python's parser stack)


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


def file_checksum(meta: Mapping[str, str], tensors: Mapping[str, np.ndarray]) -> str:
    """sha256 over every metadata entry but ``sha256`` itself (sorted by key: UTF-8 key,
    NUL, UTF-8 value, NUL) and then every tensor (sorted by name: name, NUL, dtype, NUL,
    shape, NUL, little-endian C-order bytes)."""
    h = hashlib.sha256(b"rasp_compiler.model sha256\0")
    for key in sorted(k for k in meta if k != "sha256"):
        h.update(key.encode("utf-8") + b"\0" + str(meta[key]).encode("utf-8") + b"\0")
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(f"{name}\0{arr.dtype.str}\0{list(arr.shape)}\0".encode("utf-8"))
        h.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of [ and { in JSON text, outside strings (no parsing, no recursion)."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    data = np.frombuffer(text, dtype=np.uint8)
    if not len(data):
        return 0
    quote, backslash = data == ord('"'), data == ord("\\")
    escaped = np.zeros(len(data) + 1, bool)  # a quote after an odd run of backslashes is escaped
    idx = np.flatnonzero(backslash)
    if len(idx):
        breaks = np.flatnonzero(np.diff(idx) != 1)
        starts = idx[np.r_[0, breaks + 1]]
        ends = idx[np.r_[breaks, len(idx) - 1]]
        odd = (ends - starts + 1) % 2 == 1
        escaped[ends[odd] + 1] = True
    escaped = escaped[:len(data)]
    real_quote = quote & ~escaped
    inside = (np.cumsum(real_quote) % 2 == 1) & ~real_quote
    step = np.zeros(len(data), np.int64)
    step[((data == ord("[")) | (data == ord("{"))) & ~inside] = 1
    step[((data == ord("]")) | (data == ord("}"))) & ~inside] = -1
    return int(np.cumsum(step).max(initial=0))


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
    if getattr(model, "one_hot", None) is not None:  # the model's own, never copied metadata (variants have none)
        out["one_hot_guard"] = model.one_hot.to_json()
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


def _check_finite(params: Mapping[str, np.ndarray], where: str) -> None:
    for name in sorted(params):
        arr = params[name]
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ModelFileError(f"{where}: tensor {name} holds {arr[tuple(bad)]} at {tuple(int(i) for i in bad)}; "
                                 "weights must be finite numbers")


def _check_target(path: Path) -> None:
    """Refuse targets that cannot be a file, before any work (``''``, ``.``, a directory,
    a path under a file)."""
    if str(path) in ("", ".") or path.name in ("", ".", ".."):
        raise ModelFileError(f"{str(path)!r} is not a file name; give a path such as model.safetensors")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory; give a file name such as {path / 'model.safetensors'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ModelFileError(f"{path}: {parent} is a file, not a directory, so nothing can be written "
                                     "under it; choose another path")
            break


def save_model(model: CompiledModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to one safetensors file at ``path``, atomically; returns the path.

    Missing parent directories are created. Raises :class:`ModelFileError` if the
    model's parameters do not match its config or a token cannot be written exactly.
    """
    if isinstance(path, (str, os.PathLike)) and os.fspath(path) in ("", "."):
        raise ModelFileError(f"{os.fspath(path)!r} is not a file name; give a path such as model.safetensors")
    path = Path(path)
    params = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in model.params.items()}
    _check_params(params, model.config, f"refusing to write {path}")
    _check_finite(params, f"refusing to write {path}")
    _check_target(path)
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
    meta["sha256"] = file_checksum(meta, params)
    atomic_write(path, safetensors_bytes(params, meta))
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
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


def _remove_stale_temporaries(path: Path) -> None:
    """A save killed outright (SIGKILL, power loss) cannot clean up; the next save of the
    same target removes temporaries whose writing process no longer exists."""
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running: another process is saving
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        try:
            tmp.unlink()
        except OSError:
            pass


def _json(meta: dict, key: str, where: str) -> Any:
    depth = json_depth(meta[key])
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(f"{where}: metadata {key!r} is JSON nested {depth} deep (limit {MAX_JSON_DEPTH})")
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
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise ModelFileError(f"{where}: not a readable safetensors file: only {size} bytes, it may be truncated")
            n = int.from_bytes(head, "little")
            if n > size - 8 or n > MAX_HEADER_BYTES:
                raise ModelFileError(
                    f"{where}: not a readable safetensors file: its header claims {n:,} bytes but the file has "
                    f"{size - 8:,} after the length field (limit "
                    f"{MAX_HEADER_BYTES:,}); it is truncated, corrupt or not a weight file")
            header_bytes = fh.read(n)
    except OSError as exc:
        raise ModelFileError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
    try:
        depth = json_depth(header_bytes)
        if depth > MAX_JSON_DEPTH:
            raise ModelFileError(f"{where}: the header's JSON is nested {depth} deep (limit {MAX_JSON_DEPTH}); "
                                 "it is corrupt or not a weight file")
        header = json.loads(header_bytes)
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ValueError("__metadata__ must map names to strings")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{where}: not a readable safetensors file, unreadable header ({exc})") from None

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

    want = 8 + n + 4 * sum(int(np.prod(shape)) for shape in expected_shapes(config).values())
    if size > want + max(2**20, want // 10):  # never read far more than the config accounts for
        raise ModelFileError(f"{where}: the file has {size:,} bytes but its config (d_model={config.d_model}, "
                             f"d_mlp={config.d_mlp}, {config.n_layers} layers) accounts for {want:,}: it is "
                             "padded, corrupt or its config was edited")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ModelFileError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
    try:
        tensors = safetensors.numpy.load(data)
    except Exception as exc:  # safetensors raises SafetensorError (and others on odd bytes)
        raise ModelFileError(f"{where}: not a readable safetensors file, it may be truncated or corrupt "
                             f"({exc})") from None
    _check_params(tensors, config, where)
    if "sha256" not in meta:
        raise ModelFileError(f"{where}: metadata has no 'sha256' integrity checksum, so edits to it could not "
                             "be detected; save the model again with rasp_compiler")
    if meta["sha256"] != file_checksum(meta, tensors):
        raise ModelFileError(f"{where}: the file does not match its checksum (sha256 over the metadata and "
                             "every tensor): it is corrupt or was edited")
    params = {name: np.array(tensors[name], dtype=np.float32) for name in expected_shapes(config)}
    checksum = meta.get("params_sha256")
    if checksum is not None and checksum != params_checksum(params):
        raise ModelFileError(f"{where}: the parameters do not match their checksum (params_sha256): "
                             f"the file is corrupt or was edited without updating it")
    _check_finite(params, where)

    info: dict[str, Any] = {"format_version": version, "created_by": meta.get("created_by"), "file": where}
    for key in _JSON_KEYS:
        info[key] = _json(meta, key, where) if key in meta else None
    for key, check in (("graph", check_graph_json), ("program", check_program_json)):
        try:
            check(info[key])
        except ValueError as exc:
            raise ModelFileError(f"{where}: bad metadata {key!r}: {exc}") from None
    one_hot = None
    if "one_hot_guard" in meta:
        try:
            one_hot = OneHotGuard.from_json(_json(meta, "one_hot_guard", where), config.d_model)
        except ValueError as exc:
            raise ModelFileError(f"{where}: bad metadata 'one_hot_guard': {exc}") from None
    source = meta.get("source")
    return CompiledModel(config, params, labels, None, source, metadata=info, one_hot=one_hot)
