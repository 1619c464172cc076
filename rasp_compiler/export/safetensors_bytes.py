"""safetensors files with the same bytes for the same content.

The safetensors library writes its ``__metadata__`` from a hash map, so two processes
saving the same tensors and metadata write the header keys in different orders and the
files (and every hash of them, e.g. a task set's manifest) differ. This writer follows the
published layout (8-byte little-endian header length, a JSON header padded with spaces to
a multiple of 8, then the tensors' bytes back to back) with every key sorted, so the bytes
depend only on the content. Any safetensors reader loads them.
"""

from __future__ import annotations

import json
import struct
from typing import Mapping

import numpy as np

_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
           "int16": "I16", "int8": "I8", "uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64",
           "bool": "BOOL"}


def safetensors_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The safetensors file of ``tensors`` (and string ``metadata``): tensors in name order,
    header keys sorted, no whitespace but the padding."""
    header: dict = {}
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"safetensors metadata must map str to str; not: {bad[:3]}")
        header["__metadata__"] = dict(sorted(metadata.items()))
    chunks, offset = [], 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        if arr.dtype.name not in _DTYPES:
            raise TypeError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored in safetensors")
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"data_offsets": [offset, offset + len(data)], "dtype": _DTYPES[arr.dtype.name],
                        "shape": list(arr.shape)}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


__all__ = ["safetensors_bytes"]
