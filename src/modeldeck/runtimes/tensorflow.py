"""TensorFlow adapter: a SavedModel directory run through one of its signatures (``serving_default``).

Keras 3 ``model.export(DIR)`` writes such a directory too. The signature's ``TensorSpec``s give
the input and output names, dtypes and shapes (the batch dimension is ``None`` when dynamic).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelDeckError, ModelFileError, UnknownModelError, UnknownNameError
from .base import import_framework
from .tensors import BINARY_SUFFIX, STRING, TensorSpec

__all__ = ["DEFAULT_SIGNATURE", "SavedModelRuntime", "find_saved_model"]

DEFAULT_SIGNATURE = "serving_default"


def _tf() -> Any:
    return import_framework("tensorflow", package="tensorflow-cpu", extra="tensorflow", purpose="SavedModel models")


def find_saved_model(path: str | Path) -> Path:
    """The SavedModel directory: ``path`` itself, or the folder of a ``saved_model.pb`` given directly."""
    path = Path(path)
    if path.is_file() and path.name == "saved_model.pb":
        path = path.parent
    if not (path / "saved_model.pb").is_file():
        raise UnknownModelError(
            f"{str(path)!r} is not a SavedModel directory (no saved_model.pb in it)",
            hint="point at the folder that tf.saved_model.save or model.export wrote",
        )
    return path


def _spec(name: str, spec: Any) -> TensorSpec:
    dtype = STRING if spec.dtype.name == "string" else spec.dtype.name
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorSpec(name=name, shape=shape, dtype=dtype)


def _as_numpy(value: Any, *, binary: bool = False) -> np.ndarray:
    array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    # tf.string comes back as bytes; text is str here, except in a binary (``*_bytes``) output.
    if array.dtype.kind in "OS" and not binary:
        flat = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in array.reshape(-1)]
        array = np.array(flat, dtype=object).reshape(array.shape)
    return array


def _signature_def(directory: Path, signature: str) -> dict[str, Any]:
    """One ``SignatureDef`` of ``saved_model.pb`` as JSON, in the form TensorFlow Serving prints it.

    ``tf.saved_model.load`` keeps neither the method name (predict, classify, regress) nor the
    graph's tensor names, so they are read from the file itself.
    """
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((directory / "saved_model.pb").read_bytes())
    for graph in proto.meta_graphs:
        if signature in graph.signature_def:
            found: dict[str, Any] = json_format.MessageToDict(
                graph.signature_def[signature],
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,
            )
            return found
    return {}


class SavedModelRuntime:
    """A SavedModel and the one signature it runs; ``run`` calls it with a batch of named arrays."""

    name = "tensorflow"

    def __init__(self, loaded: Any, function: Any, *, path: Path, signature: str, tf: Any) -> None:
        self._loaded = loaded  # the signature's variables live as long as this object does
        self._function = function
        self._tf = tf
        self.path = path
        self.signature = signature
        #: The signature's ``SignatureDef`` as JSON (TensorFlow Serving's metadata shows it as is).
        self.signature_def = _signature_def(path, signature)
        self.device = "cpu"
        args, kwargs = function.structured_input_signature
        if args:
            raise ModelFileError(
                f"signature {signature!r} of {str(path)!r} takes positional inputs; modeldeck feeds inputs by name",
                hint="export the model with named inputs (Keras model.export does)",
            )
        self.inputs = tuple(_spec(name, spec) for name, spec in sorted(kwargs.items()))
        outputs = function.structured_outputs
        if not isinstance(outputs, Mapping):
            outputs = {"output_0": outputs}
        self.outputs = tuple(_spec(name, spec) for name, spec in sorted(outputs.items()))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", signature: str = DEFAULT_SIGNATURE) -> SavedModelRuntime:
        if device != "cpu":
            raise ConfigError(
                f"the tensorflow runtime runs on 'cpu' only (tensorflow-cpu), not {device!r}",
                hint="use device='cpu'",
            )
        directory = find_saved_model(path)
        tf = _tf()
        try:
            loaded = tf.saved_model.load(str(directory))
        except ModelDeckError:
            raise
        except Exception as exc:  # TensorFlow raises its own error types for unreadable or newer files
            raise ModelFileError(
                f"TensorFlow {tf.__version__} cannot load the SavedModel {str(directory)!r} "
                f"({type(exc).__name__}: {str(exc)[:300]})",
                hint="export it again (tf.saved_model.save or model.export) with this TensorFlow or an older one",
            ) from None
        signatures = dict(loaded.signatures)
        if signature not in signatures:
            err = UnknownNameError("signature", signature, signatures)
            err.message = f"the SavedModel {directory.name!r} has no signature {signature!r}"
            raise err
        return cls(loaded, signatures[signature], path=directory, signature=signature, tf=tf)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        args = {name: tf.convert_to_tensor(value) for name, value in feeds.items()}
        outputs = self._function(**args)
        if not isinstance(outputs, Mapping):
            outputs = {"output_0": outputs}
        return {
            spec.name: _as_numpy(outputs[spec.name], binary=spec.name.endswith(BINARY_SUFFIX)) for spec in self.outputs
        }

    def describe(self) -> dict[str, Any]:
        return {
            "tensorflow": self._tf.__version__,
            "signature": self.signature,
            "method_name": self.signature_def.get("method_name", ""),
            "signature_def": self.signature_def,
            "directory": self.path.name,
        }

    def memory_bytes(self) -> int | None:
        try:
            variables = getattr(self._function, "variables", None) or getattr(self._loaded, "variables", ())
            return sum(int(np.prod(v.shape)) * v.dtype.size for v in variables)
        except (TypeError, ValueError, AttributeError):
            return None

    def __repr__(self) -> str:
        return f"<SavedModelRuntime {self.path.name} signature={self.signature!r}>"
