"""TorchScript adapter: a ``torch.jit`` archive (``.ts``, or a ``.pt`` holding TorchScript) as named tensors.

TorchScript archives carry their code as TorchScript, which ``torch.jit.load`` compiles without
unpickling Python objects. A ``.pt`` written by ``torch.save(module)`` is a pickle whose loading
would import and run code: it is refused with ``UnsafeModelFileError``, never loaded.

A TorchScript module names its inputs (``forward``'s arguments) but not their shapes or dtypes;
a ``modeldeck.json`` beside the file may declare them (``inputs`` / ``outputs``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelDeckError, ModelFileError, UnsafeModelFileError
from .base import import_framework
from .tensors import TensorSpec, find_model_file, output_names

__all__ = ["TORCHSCRIPT_SUFFIXES", "TorchScriptRuntime", "is_torchscript", "named_outputs", "torch_device"]

TORCHSCRIPT_SUFFIXES = (".ts", ".pt", ".pth", ".torchscript", ".jit")
_PICKLE_PROTOCOL_BYTE = b"\x80"


def _torch() -> Any:
    return import_framework("torch", package="torch", extra="torch", purpose="TorchScript and torch.export models")


def is_torchscript(file: Path) -> bool:
    """Whether ``file`` is a TorchScript archive: a zip with a ``code/`` folder and ``constants.pkl``."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def refuse_pickle(file: Path, what: str) -> None:
    """Raise for a torch file that is a pickled object rather than a ``what`` archive."""
    try:
        with file.open("rb") as fh:
            head = fh.read(2)
    except OSError as exc:
        raise ModelFileError(f"cannot read {str(file)!r} ({exc})", hint="check the file") from None
    if zipfile.is_zipfile(file) or head[:1] == _PICKLE_PROTOCOL_BYTE:
        raise UnsafeModelFileError(
            f"{file.name!r} is a pickled torch object (torch.save), not a {what}; loading it would run its code",
            hint="save the model with torch.jit.script(model).save('model.ts') or "
            "torch.export.save(torch.export.export(model, args), 'model.pt2')",
        )


def torch_device(device: str) -> str:
    if device == "cpu" or device == "cuda" or device.startswith("cuda:"):
        return device
    raise ConfigError(f"the torch runtimes cannot use device {device!r}", hint="use 'cpu', 'cuda' or 'cuda:N'")


def named_outputs(raw: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
    """A module's return value as ``{name: tensor}``: a dict keeps its keys, a tuple is numbered."""
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, (tuple, list)):
        return dict(zip(output_names(len(raw), names), raw, strict=True))
    return {output_names(1, names)[0]: raw}


def to_numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy()) if hasattr(tensor, "detach") else np.asarray(tensor)


class TorchScriptRuntime:
    """A loaded TorchScript module; inputs by ``forward``'s argument names, outputs named by structure."""

    name = "torchscript"

    def __init__(self, module: Any, torch: Any, *, path: Path, device: str = "cpu") -> None:
        self.module = module
        self._torch = torch
        self.path = path
        self.device = device
        schema = module.forward.schema
        self.inputs = tuple(TensorSpec(a.name, None, None) for a in schema.arguments[1:])
        returns = str(schema.returns[0].type) if schema.returns else "Tensor"
        if returns == "Tensor":
            self.outputs: tuple[TensorSpec, ...] = (TensorSpec("output", None, None),)
        elif returns.startswith("Tuple[") and "Tensor" in returns:
            count = returns.count("Tensor")
            self.outputs = tuple(TensorSpec(n, None, None) for n in output_names(count))
        else:  # a Dict[str, Tensor]: the names are known once it has run
            self.outputs = ()

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> TorchScriptRuntime:
        file = find_model_file(path, TORCHSCRIPT_SUFFIXES, "TorchScript file")
        if not is_torchscript(file):
            refuse_pickle(file, "TorchScript archive")
            raise ModelFileError(
                f"{file.name!r} is not a TorchScript archive", hint="save it with torch.jit.script(model).save(PATH)"
            )
        torch = _torch()
        try:
            module = torch.jit.load(str(file), map_location=torch_device(device))
        except ModelDeckError:
            raise
        except Exception as exc:  # torch raises RuntimeError for corrupt archives and unknown operators
            raise ModelFileError(
                f"torch {torch.__version__} cannot load the TorchScript file {file.name!r} "
                f"({type(exc).__name__}: {str(exc)[:300]})",
                hint="save it again with torch.jit.script(model).save(PATH) using this torch or an older one",
            ) from None
        module.eval()
        return cls(module, torch, path=file, device=device)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(feeds[s.name])).to(self.device) for s in self.inputs]
        with torch.inference_mode():
            raw = self.module(*args)
        names = [s.name for s in self.outputs] or None
        return {name: to_numpy(value) for name, value in named_outputs(raw, names).items()}

    def describe(self) -> dict[str, Any]:
        return {"torch": self._torch.__version__, "file": self.path.name}

    def memory_bytes(self) -> int | None:
        tensors = [*self.module.parameters(), *self.module.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def __repr__(self) -> str:
        return f"<TorchScriptRuntime {self.path.name} device={self.device!r}>"
