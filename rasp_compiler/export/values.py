"""Token and output values as JSON, so that they come back with the same Python type.

JSON already keeps ``str``, ``int``, finite ``float``, ``bool`` and ``None`` apart
(``1``, ``1.0``, ``true`` and ``"1"`` are four different things), so those are written
as themselves. Everything else a vocabulary may hold is a small tagged object:

    {"t": "tuple", "v": [...]}        a tuple (items encoded the same way)
    {"t": "frozenset", "v": [...]}    a frozenset
    {"t": "float", "v": "inf"}        a non-finite float: "inf", "-inf" or "nan"

``encode_value`` refuses anything else (a value that cannot be written exactly is
never written approximately). Numpy scalars are written as the Python numbers they
equal (``np.int64(3)`` comes back as ``3``). ``printable_value`` is the lenient variant used for
descriptive metadata (value sets in the program graph): where ``encode_value`` would
refuse, it writes ``{"t": "repr", "v": repr(value)}``, which reads back as that string.
"""

from __future__ import annotations

import math
from typing import Any

from rasp_compiler.errors import ModelFileError

_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def encode_value(value: Any) -> Any:
    """``value`` as JSON data that :func:`decode_value` turns back into an equal value of the same type."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # a numpy scalar: written as the Python number it equals
        if value is None or isinstance(value, (bool, str)):
            return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        value = float(value)
        if math.isfinite(value):
            return value
        return {"t": "float", "v": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if type(value) is tuple:
        return {"t": "tuple", "v": [encode_value(v) for v in value]}
    if type(value) is frozenset:
        return {"t": "frozenset", "v": sorted((encode_value(v) for v in value), key=repr)}
    raise ModelFileError(
        f"cannot write the value {value!r} of type {type(value).__name__} into a weight file: "
        f"tokens and output values must be str, int, float, bool, None or tuples of these")


def decode_value(data: Any) -> Any:
    """The inverse of :func:`encode_value` (and of :func:`printable_value`, up to repr)."""
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, dict) and set(data) == {"t", "v"}:
        tag, v = data["t"], data["v"]
        if tag == "tuple" and isinstance(v, list):
            return tuple(decode_value(x) for x in v)
        if tag == "frozenset" and isinstance(v, list):
            return frozenset(decode_value(x) for x in v)
        if tag == "float" and v in _NONFINITE:
            return _NONFINITE[v]
        if tag == "repr" and isinstance(v, str):
            return v
    raise ValueError(f"not an encoded value: {data!r}")


def printable_value(value: Any) -> Any:
    """Like :func:`encode_value`, but values it cannot encode become ``{"t": "repr", "v": repr(value)}``."""
    try:
        return encode_value(value)
    except ModelFileError:
        if isinstance(value, tuple):
            return {"t": "tuple", "v": [printable_value(v) for v in value]}
        return {"t": "repr", "v": repr(value)}
