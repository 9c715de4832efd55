"""ONNX Runtime adapter: one ``InferenceSession`` over a ``.onnx`` file, with its inputs, outputs and metadata.

The adapter is task-agnostic: YOLO detectors, face detectors (YuNet) and face embedders (ArcFace)
all drive it through ``inputs`` / ``outputs`` (name, shape, dtype), ``metadata`` (the exporter's
custom metadata map) and ``run(feeds)``. Dimensions an export left dynamic show up as ``None``
in ``TensorSpec.shape`` (ONNX Runtime reports them as a symbolic name or nothing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, InferenceError, UnknownModelError
from ..types import GRAPH_LEVELS, GraphLevel, OnnxSessionOptions
from . import tensors
from .base import import_framework

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

__all__ = [
    "GRAPH_LEVELS",
    "GraphLevel",
    "OnnxRuntime",
    "OnnxSessionOptions",
    "OnnxTensorModel",
    "TensorSpec",
    "default_threads",
    "find_onnx_file",
]

# onnxruntime's enum member for each level name (``types.GRAPH_LEVELS``), and back.
_GRAPH_LEVELS: Mapping[str, str] = MappingProxyType(
    {
        "disable": "ORT_DISABLE_ALL",
        "basic": "ORT_ENABLE_BASIC",
        "extended": "ORT_ENABLE_EXTENDED",
        "all": "ORT_ENABLE_ALL",
    }
)
_LEVEL_NAMES: Mapping[str, str] = MappingProxyType({member: name for name, member in _GRAPH_LEVELS.items()})

# ONNX Runtime's element type names, for the numeric tensors models take and give.
_DTYPES: Mapping[str, type[np.generic]] = MappingProxyType(
    {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(uint8)": np.uint8,
        "tensor(uint16)": np.uint16,
        "tensor(uint32)": np.uint32,
        "tensor(uint64)": np.uint64,
        "tensor(int8)": np.int8,
        "tensor(int16)": np.int16,
        "tensor(int32)": np.int32,
        "tensor(int64)": np.int64,
        "tensor(bool)": np.bool_,
    }
)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One graph input or output: ``shape`` holds ``None`` where the export left a dimension dynamic."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype[Any] | None  # None for a type numpy cannot hold (strings, sequences, maps)
    type: str  # ONNX Runtime's own name, e.g. "tensor(float)"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def dim(self, index: int) -> int | None:
        """The fixed size of dimension ``index``, or ``None`` when it is dynamic."""
        return self.shape[index]

    @classmethod
    def of(cls, arg: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in (arg.shape or ()))
        dtype = _DTYPES.get(arg.type)
        return cls(name=arg.name, shape=shape, dtype=np.dtype(dtype) if dtype is not None else None, type=arg.type)


def default_threads() -> int:
    """Intra-op threads: the CPUs this process may run on (2 on a two-core box), at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def find_onnx_file(path: str | Path) -> Path:
    """``path`` itself when it is a file; in a folder, its one ``.onnx`` file (or ``model.onnx``)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise UnknownModelError(f"no ONNX model at {str(path)!r}", hint="pull the model or fix its path")
    found = sorted(p for p in path.iterdir() if p.suffix == ".onnx" and p.is_file())
    if len(found) == 1:
        return found[0]
    if (path / "model.onnx").is_file():
        return path / "model.onnx"
    names = ", ".join(p.name for p in found) or "none"
    raise UnknownModelError(
        f"{str(path)!r} must hold exactly one .onnx file (or a model.onnx), found: {names}",
        hint="import the .onnx file itself: modeldeck models import FILE.onnx --name NAME --task TASK",
    )


def _providers(ort: Any, device: str) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError(
                f"device {device!r} needs onnxruntime's CUDA provider, which this install lacks",
                hint="install onnxruntime-gpu in place of onnxruntime, or use device='cpu'",
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ConfigError(f"the onnxruntime runtime cannot use device {device!r}", hint="use 'cpu' or 'cuda'")


class OnnxRuntime:
    """A loaded ONNX model. ``run(feeds)`` maps input names to arrays and returns every output, in order."""

    name = "onnxruntime"

    def __init__(self, session: InferenceSession, *, path: Path, device: str = "cpu") -> None:
        self.session = session
        self.path = path
        self.device = device
        self.inputs: tuple[TensorSpec, ...] = tuple(TensorSpec.of(a) for a in session.get_inputs())
        self.outputs: tuple[TensorSpec, ...] = tuple(TensorSpec.of(a) for a in session.get_outputs())
        meta = session.get_modelmeta()
        self.metadata: Mapping[str, str] = MappingProxyType(dict(meta.custom_metadata_map or {}))
        self.producer: str = meta.producer_name or ""

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        session: OnnxSessionOptions | None = None,
        spin: bool = False,
    ) -> OnnxRuntime:
        """Open ``path`` (a ``.onnx`` file, or a folder holding one) in a new session.

        ``session.threads`` caps intra-op parallelism (default: the CPUs available, at most 8); one
        inter-op thread, since these graphs are chains. ``session.graph_level`` is onnxruntime's graph
        optimisation level (``"all"`` fuses attention and layer norms where it can). ``spin=False``
        stops idle worker threads from busy-waiting between runs, which on a small machine would
        steal the CPU the server and the preprocessing need.
        """
        ort = import_framework("onnxruntime", package="onnxruntime", extra="vision", purpose="ONNX models")
        file = find_onnx_file(path)
        session = session or OnnxSessionOptions()
        options = ort.SessionOptions()
        options.intra_op_num_threads = session.threads if session.threads is not None else default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _GRAPH_LEVELS[session.graph_level])
        options.log_severity_level = 3  # errors only: the optimizer's notes are not the user's business
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            opened = ort.InferenceSession(str(file), sess_options=options, providers=_providers(ort, device))
        except (ConfigError, UnknownModelError):
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors for every kind of bad file
            raise UnknownModelError(
                f"{str(file)!r} is not an ONNX model this onnxruntime can load ({type(exc).__name__}: {exc})",
                hint="re-export the model (a newer onnxruntime may be needed for its opset), then import it again",
            ) from None
        return cls(opened, path=file, device=device)

    @property
    def input(self) -> TensorSpec:
        """The first input: most vision models take exactly one image tensor."""
        return self.inputs[0]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        """Run the graph once; returns the requested outputs (default: all, in graph order)."""
        try:
            return list(self.session.run(list(outputs) if outputs is not None else None, dict(feeds)))
        except Exception as exc:
            shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in feeds.items())
            raise InferenceError(f"onnxruntime failed on {shapes} ({type(exc).__name__}: {exc})") from None

    def session_options(self) -> dict[str, Any]:
        """The options the session runs with, read back from it (what ``GET /v1/models/{name}`` shows)."""
        options = self.session.get_session_options()
        level = options.graph_optimization_level
        return {
            "intra_op_threads": options.intra_op_num_threads,
            "inter_op_threads": options.inter_op_num_threads,
            "graph_level": _LEVEL_NAMES.get(level.name, level.name),
        }

    def memory_bytes(self) -> int | None:
        """The model file's size: its weights, for a file without external data (ORT reports no arena size)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return None

    def close(self) -> None:
        # Sessions free their memory when collected; dropping the reference is all there is to do.
        self.session = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<OnnxRuntime {self.path.name} device={self.device!r} inputs={self.input_names}>"


class OnnxTensorModel:
    """An ``OnnxRuntime`` seen as a tensor model: the graph's inputs and outputs as its signature."""

    name = "onnxruntime"

    def __init__(self, runtime: OnnxRuntime) -> None:
        def spec(s: TensorSpec) -> tensors.TensorSpec:
            dtype = tensors.STRING if s.type == "tensor(string)" else (s.dtype.name if s.dtype is not None else None)
            return tensors.TensorSpec(name=s.name, shape=s.shape, dtype=dtype)

        self.runtime = runtime
        self.device = runtime.device
        self.inputs = tuple(spec(s) for s in runtime.inputs)
        self.outputs = tuple(spec(s) for s in runtime.outputs)

    @classmethod
    def load(
        cls, path: str | Path, *, device: str = "cpu", session: OnnxSessionOptions | None = None
    ) -> OnnxTensorModel:
        return cls(OnnxRuntime.load(path, device=device, session=session))

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = self.runtime.run(feeds)
        return {spec.name: np.asarray(a) for spec, a in zip(self.outputs, arrays, strict=True)}

    def describe(self) -> dict[str, Any]:
        return {"file": self.runtime.path.name, "producer": self.runtime.producer}

    def session_options(self) -> dict[str, Any]:
        return self.runtime.session_options()

    def memory_bytes(self) -> int | None:
        return self.runtime.memory_bytes()

    def close(self) -> None:
        self.runtime.close()
