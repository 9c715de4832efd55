"""Open Inference Protocol tensors <-> NumPy: datatypes, JSON ``data`` (flat or nested) and binary tensor data.

Pure functions, no HTTP: ``split_body`` cuts a request body into its JSON header and binary part
(the binary tensor data extension), ``decode_tensor`` turns one request input into an array and
``encode_tensor`` one array into a response output (JSON data, or bytes after the header).
Binary data is little-endian, row-major; BOOL is one byte per element; BYTES is each element
with a 4-byte little-endian length before it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputDecodeError, RaggedTensorError, TensorDtypeError, TensorShapeError

__all__ = [
    "BYTES",
    "DATATYPES",
    "HEADER_LENGTH",
    "datatype_of",
    "decode_bytes",
    "decode_tensor",
    "encode_bytes",
    "encode_tensor",
    "split_body",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
BYTES = "BYTES"

#: OIP datatype -> the NumPy dtype of its binary form. BYTES is an object array: ``bytes`` elements
#: from binary data, ``str`` elements from JSON data.
DATATYPES: Mapping[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    BYTES: np.dtype(object),
}
_BY_NAME = {dtype.name: name for name, dtype in DATATYPES.items() if name != BYTES}


def datatype_of(dtype: Any) -> str:
    """The OIP datatype of a NumPy dtype (or a dtype name; ``"string"`` and text kinds are BYTES)."""
    if dtype is None or (isinstance(dtype, str) and dtype in ("string", "str", "bytes", "object")):
        return BYTES
    dt = np.dtype(dtype)
    if dt.kind in "OUSV":
        return BYTES
    name = _BY_NAME.get(dt.name)
    if name is None:
        raise TensorDtypeError(
            f"the model's dtype {dt.name} has no Open Inference Protocol datatype",
            hint=f"use one of: {', '.join(DATATYPES)}",
        )
    return name


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header and the binary part of a request body, by ``Inference-Header-Content-Length``."""
    if header_length is None:
        return body, memoryview(b"")
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if length < 0:
        raise InputDecodeError(
            f"{HEADER_LENGTH} must be a whole number of bytes, got {header_length!r}",
            hint="send the length of the JSON header in bytes, or leave the header out for a JSON-only body",
        )
    if length == 0:
        raise InputDecodeError(
            f"{HEADER_LENGTH}: 0 (a raw binary body without a JSON header) is not supported",
            hint="send the JSON inference header first and give its length",
        )
    if length > len(body):
        raise InputDecodeError(
            f"{HEADER_LENGTH} is {length}, beyond the body of {len(body)} bytes",
            hint="give the length of the JSON header only, in bytes",
        )
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def _shape(shape: Sequence[int], name: str) -> tuple[int, ...]:
    if any(d < 0 for d in shape):
        raise TensorShapeError(f"input {name!r} has shape {list(shape)}; dimensions must be >= 0")
    return tuple(shape)


def decode_bytes(raw: memoryview | bytes, count: int, name: str) -> list[bytes]:
    """``count`` BYTES elements, each a 4-byte little-endian length then that many bytes."""
    out: list[bytes] = []
    pos, end = 0, len(raw)
    for index in range(count):
        if pos + 4 > end:
            raise InputDecodeError(
                f"input {name!r}: the binary data ends before element {index} of {count} (no length prefix)",
                hint="prefix each BYTES element with its length as a 4-byte little-endian integer",
            )
        (size,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + size > end:
            raise InputDecodeError(
                f"input {name!r}: element {index} says {size} bytes but only {end - pos} remain",
                hint="check the length prefixes and binary_data_size",
            )
        out.append(bytes(raw[pos : pos + size]))
        pos += size
    if pos != end:
        raise InputDecodeError(
            f"input {name!r}: {end - pos} bytes are left after its {count} BYTES elements",
            hint="binary_data_size must be the size of the elements with their length prefixes",
        )
    return out


def encode_bytes(values: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def _from_binary(raw: memoryview, datatype: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == BYTES:
        array = np.empty(count, dtype=object)
        array[:] = decode_bytes(raw, count, name)
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise TensorShapeError(
            f"input {name!r} has {len(raw)} bytes of binary data; shape {list(shape)} of {datatype} "
            f"takes {count * dtype.itemsize}",
            hint="binary_data_size must equal the element count times the datatype's size",
        )
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if datatype == "BOOL" and array.size and np.frombuffer(raw, dtype=np.uint8).max() > 1:
        raise TensorDtypeError(f"input {name!r} is BOOL but holds bytes other than 0 and 1", hint="send 0 or 1")
    return array


def _flatten(data: Any, name: str) -> list[Any]:
    """Row-major elements of flat or nested JSON ``data``; nested rows must be even."""
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        if any(isinstance(v, list) for v in data):
            raise RaggedTensorError(f"input {name!r} mixes lists and values at one depth of its data")
        return data
    width = len(data[0])
    out: list[Any] = []
    for row in data:
        if not isinstance(row, list) or len(row) != width:
            raise RaggedTensorError(
                f"input {name!r} is a ragged nested list (rows of different lengths)",
                hint="send the data flat in row-major order, or nested with even rows",
            )
        out.extend(_flatten(row, name))
    return out


def _element_error(name: str, datatype: str, index: int, value: Any) -> TensorDtypeError:
    return TensorDtypeError(
        f"input {name!r} is {datatype} but element {index} is {type(value).__name__} {value!r:.40}",
        hint=f"send {_EXPECTED[datatype]} for {datatype}, or declare the datatype the data has",
    )


_EXPECTED: Mapping[str, str] = {
    name: "true/false"
    if name == "BOOL"
    else "strings"
    if name == BYTES
    else "numbers"
    if dt.kind == "f"
    else "whole numbers"
    for name, dt in DATATYPES.items()
}


def _from_json(data: Any, datatype: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    values = _flatten(data, name)
    count = math.prod(shape)
    if len(values) != count:
        raise TensorShapeError(
            f"input {name!r} has {len(values)} elements in its data; shape {list(shape)} takes {count}",
            hint="make the shape match the data (row-major, batch dimension first)",
        )
    if datatype == BYTES:
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise _element_error(name, datatype, index, value)
        array = np.empty(count, dtype=object)
        array[:] = values  # kept as str: a JSON string is text (or base64), binary elements are bytes
        return array.reshape(shape)
    dtype = DATATYPES[datatype]
    if datatype == "BOOL":
        ok: Any = bool
    elif dtype.kind == "f":
        ok = (int, float)
    else:
        ok = int
    for index, value in enumerate(values):
        # JSON true is a bool, which Python also counts as an int: only BOOL takes it.
        if not isinstance(value, ok) or (isinstance(value, bool) and datatype != "BOOL"):
            raise _element_error(name, datatype, index, value)
    if dtype.kind in "iu" and values:
        info = np.iinfo(dtype)
        low, high = min(values), max(values)
        if low < info.min or high > info.max:
            raise TensorDtypeError(
                f"input {name!r} has values from {low} to {high}, outside {datatype}'s range [{info.min}, {info.max}]",
                hint="send values the datatype can hold, or a wider datatype",
            )
    return np.array(values, dtype=dtype).reshape(shape)


def decode_tensor(name: str, datatype: str, shape: Sequence[int], data: Any, binary: memoryview | None) -> np.ndarray:
    """One request input as an array of ``shape``: from its ``binary`` data if any, else from JSON ``data``."""
    if datatype not in DATATYPES:
        raise TensorDtypeError(
            f"input {name!r} has datatype {datatype!r}, which is not supported here",
            hint=f"use one of: {', '.join(DATATYPES)}",
        )
    dims = _shape(shape, name)
    if binary is not None:
        return _from_binary(binary, datatype, dims, name)
    if data is None:
        raise InputDecodeError(
            f"input {name!r} has neither data nor binary_data_size",
            hint="send its values in data, or as binary data after the JSON header",
        )
    return _from_json(data, datatype, dims, name)


def encode_tensor(name: str, array: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """One response output: its JSON object, and its binary data when ``binary`` (else ``data`` is in the JSON)."""
    datatype = datatype_of(array.dtype)
    out: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if datatype == BYTES:
        elements = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.reshape(-1)]
        if binary:
            raw = encode_bytes(elements)
            out["parameters"] = {"binary_data_size": len(raw)}
            return out, raw
        out["data"] = [v.decode("utf-8", errors="replace") for v in elements]
        return out, None
    if binary:
        raw = np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()
        out["parameters"] = {"binary_data_size": len(raw)}
        return out, raw
    out["data"] = array.reshape(-1).tolist()
    return out, None
