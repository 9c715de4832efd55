"""Keras 3 adapter: a ``.keras`` file loaded with ``safe_mode=True``, run as named tensors in and out.

Keras picks its backend once per process, when it is first imported. modeldeck runs Keras on
torch by default (no TensorFlow needed); a process that already imported Keras keeps the
backend it chose, and ``KERAS_BACKEND`` set by the user wins. A model that takes text
(a ``string`` input, e.g. in front of a ``TextVectorization`` layer) needs TensorFlow's string
tensors, so such a file picks the tensorflow backend when Keras is not imported yet.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelDeckError, ModelFileError, UnsafeModelFileError
from .base import import_framework
from .tensors import STRING, TensorSpec, dtype_name, find_model_file, output_names

__all__ = ["DEFAULT_BACKEND", "KerasRuntime", "choose_backend", "import_keras", "read_config"]

DEFAULT_BACKEND = "torch"
_BACKEND_PACKAGES: Mapping[str, tuple[str, str]] = {
    "torch": ("torch", "torch"),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "jax": ("jax", "keras"),
}
# Keras' first import reads KERAS_BACKEND; this lock keeps two loading threads from racing on it.
_IMPORT_LOCK = threading.Lock()


def read_config(file: Path) -> dict[str, Any]:
    """The model config stored in a ``.keras`` zip (read without Keras, to choose a backend first)."""
    try:
        with zipfile.ZipFile(file) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelFileError(
            f"{str(file)!r} is not a readable .keras file ({type(exc).__name__}: {exc})",
            hint="save the model again with model.save('name.keras') (Keras 3), then import it",
        ) from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{str(file)!r} holds no model config", hint="save the model again with Keras 3")
    return config


def _layers(config: Any) -> Iterator[dict[str, Any]]:
    """Every layer config nested in a model config (functional, sequential, nested models)."""
    if isinstance(config, dict):
        if "class_name" in config and isinstance(config.get("config"), dict):
            yield config
        for value in config.values():
            yield from _layers(value)
    elif isinstance(config, list):
        for value in config:
            yield from _layers(value)


def takes_text(config: Mapping[str, Any]) -> bool:
    return any(
        layer.get("class_name") == "InputLayer" and layer["config"].get("dtype") == STRING for layer in _layers(config)
    )


def lambda_layers(config: Mapping[str, Any]) -> list[str]:
    return [str(layer["config"].get("name", "?")) for layer in _layers(config) if layer.get("class_name") == "Lambda"]


def choose_backend(config: Mapping[str, Any]) -> str:
    """The backend Keras will run on in this process, if it is imported now for this model."""
    loaded = sys.modules.get("keras")
    if loaded is not None:
        return str(loaded.backend.backend())
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    if takes_text(config):
        import importlib.util

        if importlib.util.find_spec("tensorflow") is not None:
            return "tensorflow"
    return DEFAULT_BACKEND


def import_keras(backend: str = DEFAULT_BACKEND) -> Any:
    """Import Keras on ``backend`` unless it is already imported (then its backend stays)."""
    with _IMPORT_LOCK:
        if "keras" in sys.modules:
            return sys.modules["keras"]
        package, extra = _BACKEND_PACKAGES.get(backend, (backend, "keras"))
        import_framework(backend, package=package, extra=extra, purpose=f"Keras on the {backend} backend")
        # Keras reads KERAS_BACKEND once, during its first import, and has no other switch short of
        # writing ~/.keras/keras.json. Set it only around that import and put it back, so the
        # process environment (and any subprocess started later) is left as it was.
        previous = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = backend
        try:
            return import_framework("keras", package="keras", extra="keras", purpose="Keras 3 models")
        finally:
            if previous is None:
                del os.environ["KERAS_BACKEND"]
            else:
                os.environ["KERAS_BACKEND"] = previous


def _keras_device(device: str) -> str:
    if device == "cpu":
        return "cpu:0"
    if device == "cuda":
        return "gpu:0"
    if device.startswith("cuda:"):
        return "gpu:" + device.split(":", 1)[1]
    raise ConfigError(f"the keras runtime cannot use device {device!r}", hint="use 'cpu', 'cuda' or 'cuda:N'")


def _output_layer_names(model: Any) -> list[str]:
    """A functional model's ``output_names``; a Sequential has none, so the layers that make the outputs."""
    names = getattr(model, "output_names", None)  # Functional has it, Sequential does not
    if names:
        return list(names)
    history = [getattr(t, "_keras_history", None) for t in model.outputs]
    return [str(h.operation.name) for h in history if h is not None]


def _spec(tensor: Any, name: str) -> TensorSpec:
    shape = tuple(None if d is None else int(d) for d in tensor.shape)
    return TensorSpec(name=name, shape=shape, dtype=dtype_name(str(tensor.dtype)))


class KerasRuntime:
    """A loaded Keras 3 model; ``run`` feeds a batch by input name and names every output."""

    name = "keras"

    def __init__(self, model: Any, keras: Any, *, path: Path, device: str = "cpu") -> None:
        self.model = model
        self._keras = keras
        self.path = path
        self.device = device
        self.backend = str(keras.backend.backend())
        self._scope = _keras_device(device)
        self.inputs = tuple(_spec(t, t.name) for t in model.inputs)
        # The structure the model was built with (one tensor, a list, a dict); a loaded Sequential has no
        # ``input`` attribute on the torch backend, and takes its one input bare.
        self._input_struct = getattr(model, "input", None)
        if self._input_struct is None:
            self._input_struct = model.inputs[0] if len(model.inputs) == 1 else list(model.inputs)
        names = output_names(len(model.outputs), _output_layer_names(model))
        self.outputs = tuple(_spec(t, n) for t, n in zip(model.outputs, names, strict=True))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", safe_mode: bool = True) -> KerasRuntime:
        """Load a ``.keras`` file. ``safe_mode=False`` is the explicit opt-in to run a ``Lambda``'s code."""
        file = find_model_file(path, (".keras",), "Keras model file")
        config = read_config(file)
        keras = import_keras(choose_backend(config))
        backend = str(keras.backend.backend())
        if takes_text(config) and backend != "tensorflow":
            raise ConfigError(
                f"{file.name!r} takes text (a 'string' input), which Keras runs only on the tensorflow backend; "
                f"this process already runs Keras on {backend!r}",
                hint="serve it in its own worker (the server's default), start Python with KERAS_BACKEND=tensorflow, "
                "or export it as a SavedModel with model.export(DIR)",
            )
        try:
            with keras.device(_keras_device(device)):
                model = keras.saving.load_model(str(file), compile=False, safe_mode=safe_mode)
        except ModelDeckError:
            raise
        except Exception as exc:  # Keras raises ValueError, TypeError, OSError... for files it cannot read
            lambdas = lambda_layers(config)
            if lambdas and "safe_mode" in str(exc):
                raise UnsafeModelFileError(
                    f"{file.name!r} has Lambda layer(s) {', '.join(map(repr, lambdas))} whose Python code would run "
                    "when loaded; refused (safe_mode=True)",
                    hint="only if you trust the file: modeldeck.load(path, safe_mode=False), "
                    "or rebuild the model without Lambda layers",
                ) from None
            raise ModelFileError(
                f"Keras {keras.__version__} cannot load {file.name!r} ({type(exc).__name__}: {str(exc)[:300]})",
                hint="save the model again with model.save('name.keras') in Keras 3, then import it",
            ) from None
        if not getattr(model, "inputs", None):
            raise ModelFileError(
                f"{file.name!r} is a subclassed Keras model with no input signature",
                hint="build it with keras.Input (functional or Sequential), or export it with model.export(DIR)",
            )
        return cls(model, keras, path=file, device=device)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        keras = self._keras
        batch = keras.tree.map_structure(lambda tensor: feeds[tensor.name], self._input_struct)
        with keras.device(self._scope):
            raw = self.model.predict_on_batch(batch)
        arrays = keras.tree.flatten(raw)
        return {spec.name: np.asarray(a) for spec, a in zip(self.outputs, arrays, strict=True)}

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "keras": self._keras.__version__, "file": self.path.name}

    def memory_bytes(self) -> int | None:
        try:
            return sum(int(np.prod(w.shape)) * np.dtype(str(w.dtype)).itemsize for w in self.model.weights)
        except (TypeError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"<KerasRuntime {self.path.name} backend={self.backend!r} device={self.device!r}>"
