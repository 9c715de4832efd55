"""What every "named tensors in, named tensors out" runtime shares: its signature and one ``run``.

The ``tensor`` task (and ``classify-image`` over a model you bring) drives Keras, TensorFlow
SavedModel, TorchScript, torch.export and ONNX models through this one interface: ``inputs`` and
``outputs`` describe the signature with the batch dimension first, ``run`` takes a whole batch
(arrays stacked along dimension 0) and returns every output by name, as NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import UnknownModelError
from .base import Runtime

__all__ = [
    "BINARY_SUFFIX",
    "STRING",
    "TensorModel",
    "TensorSpec",
    "dtype_name",
    "find_model_file",
    "fixed_batch_size",
    "numpy_dtype",
    "output_names",
    "signature_dict",
]

#: The dtype name of a tensor of text (TensorFlow ``tf.string``, Keras ``"string"``, ONNX ``tensor(string)``).
STRING = "string"
#: An output whose name ends so holds binary strings, kept as ``bytes`` (TensorFlow Serving's convention).
BINARY_SUFFIX = "_bytes"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One named input or output. ``shape`` starts with the batch dimension and holds ``None`` where
    a dimension is dynamic; ``shape`` is ``None`` when the model does not say (TorchScript), and
    ``dtype`` (a NumPy dtype name, or ``"string"``) is ``None`` likewise."""

    name: str
    shape: tuple[int | None, ...] | None
    dtype: str | None

    @property
    def example_shape(self) -> tuple[int | None, ...] | None:
        """The shape of one example: the signature's shape without its batch dimension."""
        return None if self.shape is None else self.shape[1:]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        shape = data.get("shape")
        return cls(
            name=str(data["name"]),
            shape=None if shape is None else tuple(None if d is None else int(d) for d in shape),
            dtype=None if data.get("dtype") is None else str(data["dtype"]),
        )


@runtime_checkable
class TensorModel(Runtime, Protocol):
    """A loaded model with a signature: a batch of named arrays in, named arrays out."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch (every feed stacked along dimension 0); every output by name, batch first."""
        ...

    def describe(self) -> dict[str, Any]:
        """The framework facts worth showing (backend, signature name, file)."""
        ...


def dtype_name(dtype: Any) -> str:
    """A NumPy dtype name for ``dtype`` (anything ``np.dtype`` takes), or ``"string"`` for text."""
    if isinstance(dtype, str) and dtype in (STRING, "str", "bytes", "object"):
        return STRING
    dt = np.dtype(dtype)
    return STRING if dt.kind in "OUSV" else dt.name


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The NumPy dtype that holds a tensor of ``name``; text is held as an object array of ``str``."""
    return np.dtype(object) if name == STRING else np.dtype(name)


def fixed_batch_size(inputs: Sequence[TensorSpec]) -> int | None:
    """The batch size every input fixes in its signature (1 for a batch-1 export), or ``None`` when dynamic."""
    sizes = {spec.shape[0] for spec in inputs if spec.shape}
    if len(sizes) == 1:
        (size,) = sizes
        return size
    return None


def output_names(count: int, names: Sequence[str] | None = None) -> tuple[str, ...]:
    """Names for ``count`` outputs: the model's own, else ``output`` for one and ``output_0``... for several."""
    if names is not None and len(names) == count and len(set(names)) == count:
        return tuple(names)
    return ("output",) if count == 1 else tuple(f"output_{i}" for i in range(count))


def signature_dict(inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec]) -> dict[str, Any]:
    return {"inputs": [s.to_dict() for s in inputs], "outputs": [s.to_dict() for s in outputs]}


def find_model_file(path: str | Path, suffixes: Sequence[str], what: str) -> Path:
    """``path`` when it is a file; in a folder, its one file with one of ``suffixes``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise UnknownModelError(f"no {what} at {str(path)!r}", hint="fix the path, or import the model first")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in suffixes)
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) or "none"
    raise UnknownModelError(
        f"{str(path)!r} must hold exactly one {what} ({' or '.join(suffixes)}), found: {names}",
        hint="point at the model file itself",
    )
