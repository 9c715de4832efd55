"""``TensorResult``: the named output arrays of one example, with lossless dict, JSON and Arrow forms.

The plain form follows the Open Inference Protocol's tensors: a list of
``{"name", "dtype", "shape", "data"}`` with ``data`` flattened in row-major order, so dtype and
shape survive the round trip exactly. Text outputs (``dtype: "string"``) carry their values in
``strings`` instead, because one Arrow column cannot hold both numbers and text. Binary outputs
(named ``*_bytes``, TensorFlow Serving's convention) stay ``bytes`` and travel as ``dtype: "bytes"``
with base64 ``strings``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtimes.tensors import BINARY_SUFFIX, STRING, dtype_name, numpy_dtype
from .results import _pyarrow

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BINARY_SUFFIX", "BYTES", "TensorResult", "frozen_array"]


#: The wire dtype of a binary output; its ``strings`` hold base64.
BYTES = "bytes"


def frozen_array(values: Any, *, binary: bool = False) -> np.ndarray:
    """A private read-only copy of one output (text as an object array of ``str``, or of ``bytes`` if ``binary``)."""
    array = np.array(values, dtype=object if binary else None, copy=True)
    if binary:
        flat: list[Any] = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.reshape(-1)]
        array = np.empty(array.shape, dtype=object)
        array.reshape(-1)[:] = flat
    elif array.dtype.kind in "OSU":
        flat = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
        array = np.array(flat, dtype=object).reshape(array.shape)
    array.flags.writeable = False
    return array


def _binary(name: str, values: Any) -> bool:
    return name.endswith(BINARY_SUFFIX) and np.asarray(values).dtype.kind in "OSU"


@dataclass(frozen=True, slots=True, eq=False)
class TensorResult:
    """The outputs of one example by name, each without the batch dimension, read-only."""

    outputs: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        frozen = {
            str(name): frozen_array(value, binary=_binary(str(name), value)) for name, value in self.outputs.items()
        }
        object.__setattr__(self, "outputs", MappingProxyType(frozen))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.outputs)

    # Equality is by value: the same names, dtypes, shapes and numbers.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorResult):
            return NotImplemented
        return self.names == other.names and all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(self.outputs.values(), other.outputs.values(), strict=True)
        )

    def __hash__(self) -> int:
        return hash(tuple((n, a.shape, str(a.dtype)) for n, a in self.outputs.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {a!r}" for n, a in self.outputs.items())
        return f"TensorResult(outputs={{{inner}}})"

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        tensor = pa.struct(
            [
                ("name", pa.string()),
                ("dtype", pa.string()),
                ("shape", pa.list_(pa.int64())),
                ("data", pa.list_(pa.float64())),
                ("strings", pa.list_(pa.string())),
            ]
        )
        return pa.struct([("outputs", pa.list_(tensor))])

    def to_dict(self) -> dict[str, Any]:
        tensors = []
        for name, array in self.outputs.items():
            dtype = BYTES if _binary(name, array) else dtype_name(array.dtype)
            entry: dict[str, Any] = {"name": name, "dtype": dtype, "shape": list(array.shape)}
            if dtype == BYTES:
                entry["strings"] = [base64.b64encode(v).decode("ascii") for v in array.reshape(-1)]
            elif dtype == STRING:
                entry["strings"] = [str(v) for v in array.reshape(-1)]
            else:
                entry["data"] = array.reshape(-1).tolist()
            tensors.append(entry)
        return {"outputs": tensors}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorResult:
        outputs: dict[str, np.ndarray] = {}
        for entry in data["outputs"]:
            dtype = str(entry["dtype"])
            shape = tuple(int(d) for d in entry["shape"])
            if dtype == BYTES:
                binary = [base64.b64decode(v) for v in entry.get("strings") or ()]
                outputs[str(entry["name"])] = frozen_array(binary, binary=True).reshape(shape)
                continue
            values = entry.get("strings") if dtype == STRING else entry.get("data")
            outputs[str(entry["name"])] = np.array(values or [], dtype=numpy_dtype(dtype)).reshape(shape)
        return cls(outputs=outputs)
