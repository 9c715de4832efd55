"""torch.export adapter: an ``ExportedProgram`` saved as ``.pt2``, with its signature read from the graph.

``torch.export.load`` reads the graph from its serialized schema and the weights as tensors (no
arbitrary pickle). Input names, shapes and dtypes come from the program's placeholders; a
dimension exported as dynamic (``torch.export.Dim``) shows up as ``None``. A program exported
without a dynamic batch dimension has a fixed batch size (often 1) and is run that many at a time.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelDeckError, ModelFileError
from .base import import_framework
from .tensors import TensorSpec, find_model_file, output_names
from .torchscript import named_outputs, refuse_pickle, to_numpy, torch_device

__all__ = ["TorchExportRuntime"]


def _torch() -> Any:
    return import_framework("torch", package="torch", extra="torch", purpose="torch.export models")


def _spec(name: str, value: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in getattr(value, "shape", ()))
    dtype = str(getattr(value, "dtype", "")).removeprefix("torch.") or None
    return TensorSpec(name=name, shape=shape, dtype=dtype)


def _schema_version(file: Path) -> str | None:
    """The serialized schema version a ``.pt2`` was written with, for the error when it is too new."""
    try:
        with zipfile.ZipFile(file) as archive:
            model_json = next((n for n in archive.namelist() if n.endswith("models/model.json")), None)
            if model_json is None:
                return None
            head = archive.read(model_json).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError):
        return None
    match = re.search(r'"schema_version":\s*\{"major":\s*(\d+),\s*"minor":\s*(\d+)\}', head)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _check_schema(file: Path, torch: Any) -> None:
    """Refuse a ``.pt2`` written with a newer export schema than this torch reads: torch may load
    such a file without complaint and misread it."""
    written = _schema_version(file)
    try:
        from torch._export.serde.schema import SCHEMA_VERSION  # no public name for it
    except ImportError:
        return
    if written is not None and int(written.split(".")[0]) > int(SCHEMA_VERSION[0]):
        raise ModelFileError(
            f"{file.name!r} was exported with torch.export schema {written}, newer than the "
            f"{SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]} that torch {torch.__version__} reads",
            hint="load it with the torch version that exported it (or newer), or export it again with this one",
        )


class TorchExportRuntime:
    """A loaded ``ExportedProgram``; ``run`` calls its module with the user inputs in order."""

    name = "torch-export"

    def __init__(self, program: Any, torch: Any, *, path: Path, device: str = "cpu") -> None:
        self.program = program
        self._torch = torch
        self.path = path
        self.device = device
        self.module = program.module()
        placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
        user_inputs = list(program.graph_signature.user_inputs)
        self.inputs = tuple(_spec(str(n), placeholders[str(n)].meta.get("val")) for n in user_inputs)
        out_node = next(n for n in program.graph.nodes if n.op == "output")
        user_outputs = set(program.graph_signature.user_outputs)
        values = [a.meta.get("val") for a in out_node.args[0] if getattr(a, "name", None) in user_outputs]
        spec = program.call_spec.out_spec
        if spec is not None and spec.type is dict:
            names = tuple(str(k) for k in spec.context)
        else:
            names = output_names(len(values))
        self._output_names = names
        self.outputs = tuple(_spec(n, v) for n, v in zip(names, values, strict=False))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> TorchExportRuntime:
        file = find_model_file(path, (".pt2",), "torch.export file")
        if file.suffix != ".pt2":
            refuse_pickle(file, "torch.export .pt2 archive")
        torch = _torch()
        _check_schema(file, torch)
        try:
            program = torch.export.load(str(file))
            if device != "cpu":
                program = program.to(torch_device(device))  # type: ignore[union-attr]
        except ModelDeckError:
            raise
        except Exception as exc:  # torch raises SerializeError / RuntimeError for corrupt or newer files
            version = _schema_version(file)
            written = f" (written with export schema {version})" if version else ""
            raise ModelFileError(
                f"torch {torch.__version__} cannot load the torch.export file {file.name!r}{written}: "
                f"{type(exc).__name__}: {str(exc)[:300]}",
                hint="load it with the torch version that exported it, or export it again with this one",
            ) from None
        return cls(program, torch, path=file, device=device)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(feeds[s.name])).to(self.device) for s in self.inputs]
        with torch.no_grad():
            raw = self.module(*args)
        return {name: to_numpy(value) for name, value in named_outputs(raw, self._output_names).items()}

    def describe(self) -> dict[str, Any]:
        return {"torch": self._torch.__version__, "file": self.path.name}

    def memory_bytes(self) -> int | None:
        tensors = [*self.program.state_dict.values(), *self.program.constants.values()]
        return sum(t.numel() * t.element_size() for t in tensors if hasattr(t, "numel"))

    def __repr__(self) -> str:
        return f"<TorchExportRuntime {self.path.name} device={self.device!r}>"
