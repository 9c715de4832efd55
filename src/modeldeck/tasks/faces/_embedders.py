"""Face embedders: dlib's ResNet (128-D), FaceNet (torch, 512-D) and ONNX models (ArcFace, SFace, VGG-Face).

Every embedder sees faces aligned from dlib's 5-point landmarks: dlib's ResNet aligns them itself
(``compute_face_descriptor``, 150x150, 25% padding); the others get ``dlib.get_face_chip`` crops of
their input size. An embedder declares its ``metric`` (``euclidean`` or ``cosine``), the
``threshold`` at or below which two faces are the same person, and its ``dim``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np

from ...errors import ConfigError, OptionError
from .._backend import Backend, BackendBase

if TYPE_CHECKING:
    from ...runtimes.dlib import DlibRuntime
    from ...runtimes.onnx import OnnxRuntime
    from ...types import ModelInfo, OnnxSessionOptions
    from ._detectors import FoundFace

__all__ = ["DlibEmbedder", "FaceEmbedder", "FacenetEmbedder", "OnnxEmbedder", "distance", "match_confidence"]

METRICS = ("euclidean", "cosine")
#: The sidecar file next to an ONNX embedder that declares what its card would.
SIDECAR = "modeldeck.json"


class FaceEmbedder(Backend, Protocol):
    """A face-embed backend: dlib's ``aligner`` finds and aligns faces, the model embeds them."""

    aligner: DlibRuntime
    dim: int
    metric: str
    threshold: float
    uses_jitter: ClassVar[bool]

    def embed(
        self, images: Sequence[np.ndarray], faces: Sequence[Sequence[FoundFace]], aligner: DlibRuntime, num_jitters: int
    ) -> list[np.ndarray]:
        """``(k_i, dim)`` float32 vectors per image for its ``k_i`` faces, computed in one batch."""
        ...


def distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """Euclidean distance, or cosine distance ``1 - cos(a, b)`` (in [0, 2])."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if metric == "euclidean":
        return float(np.linalg.norm(x - y))
    denom = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(1.0 - (x @ y) / denom) if denom > 0 else 1.0


def match_confidence(dist: float, threshold: float) -> float:
    """``1 / (1 + exp(-(threshold - distance) / (0.1 * threshold)))``: 0.5 at the threshold, > 0.5 on a match."""
    scale = 0.1 * threshold if threshold > 0 else 0.01
    z = (threshold - dist) / scale
    return 1.0 / (1.0 + math.exp(-z)) if z >= -700 else 0.0


def _aligner(folder: Path, device: str, detector: str, *, recognition: bool = False) -> DlibRuntime:
    """dlib's detector (``hog`` or ``cnn``) and shape predictors, warmed up, for finding and aligning faces."""
    if detector not in ("hog", "cnn"):
        raise OptionError(f"face-embed: detector must be 'hog' or 'cnn', got {detector!r}")
    from ...runtimes.dlib import DlibRuntime

    dlib = DlibRuntime.load(folder, device=device, detector=detector)
    dlib.warm_up(landmarks=(5,), recognition=recognition)
    return dlib


def _card(info: ModelInfo) -> dict[str, Any]:
    card = {**_sidecar(Path(info.path)), **dict(info.card)}
    if "metric" in card:
        _metric(card["metric"], repr(info.name))
    return card


class DlibEmbedder(BackendBase):
    """dlib_face_recognition_resnet_model_v1: 128-D, euclidean, 0.6 (dlib's own threshold, 99.38% on LFW)."""

    uses_jitter: ClassVar[bool] = True
    runtime: DlibRuntime

    def __init__(self, runtime: DlibRuntime, card: Mapping[str, Any]) -> None:
        super().__init__(runtime)
        self.aligner = runtime
        self.dim = int(card.get("dim", 128))
        self.metric = str(card.get("metric", "euclidean"))
        self.threshold = float(card.get("threshold", 0.6))

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, detector: str = "hog") -> Self:
        """``detector`` picks dlib's ``"hog"`` (fast) or ``"cnn"`` (MMOD: more poses, ~1 s per 512x512 on a CPU)."""
        return cls(_aligner(Path(info.path), device, detector, recognition=True), _card(info))

    def embed(
        self, images: Sequence[np.ndarray], faces: Sequence[Sequence[FoundFace]], aligner: DlibRuntime, num_jitters: int
    ) -> list[np.ndarray]:
        return self.runtime.descriptors(images, [[f.shape for f in fs] for fs in faces], num_jitters=num_jitters)


class _ChipEmbedder(BackendBase):
    """A network over aligned square crops: the crops of a whole batch go through it together."""

    uses_jitter: ClassVar[bool] = False
    aligner: DlibRuntime
    size: int
    padding: float
    dim: int

    def run(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def embed(
        self, images: Sequence[np.ndarray], faces: Sequence[Sequence[FoundFace]], aligner: DlibRuntime, num_jitters: int
    ) -> list[np.ndarray]:
        chips: list[np.ndarray] = []
        counts = []
        for pixels, found in zip(images, faces, strict=True):
            chips.extend(aligner.chips(pixels, [f.shape for f in found], size=self.size, padding=self.padding))
            counts.append(len(found))
        vectors = self.run(chips) if chips else np.zeros((0, self.dim), dtype=np.float32)
        out, at = [], 0
        for n in counts:
            out.append(np.asarray(vectors[at : at + n], dtype=np.float32).reshape(n, -1))
            at += n
        return out


class FacenetEmbedder(_ChipEmbedder):
    """FaceNet InceptionResnetV1 (facenet-pytorch weights): 512-D unit vectors over 160x160 crops.

    The default threshold, 1.04 (euclidean on unit vectors), is DeepFace's tuned value for this
    network ("Facenet512", euclidean_l2); a card can override it.
    """

    def __init__(self, runtime: Any, card: Mapping[str, Any]) -> None:
        super().__init__(runtime)
        self.size = int(card.get("input_size", runtime.input_size))
        self.padding = float(card.get("padding", 0.25))
        self.dim = int(card.get("dim", 512))
        self.metric = str(card.get("metric", "euclidean"))
        self.threshold = float(card.get("threshold", 1.04))

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, detector: str = "hog") -> Self:
        from ...runtimes.dlib import face_models_dir
        from ...runtimes.facenet import FacenetRuntime

        aligner = _aligner(face_models_dir(), device, detector)
        embedder = cls(FacenetRuntime.load(Path(info.path), device=device), _card(info))
        embedder.aligner = aligner
        return embedder

    def run(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        return self.runtime.embed(chips)  # type: ignore[no-any-return]


class OnnxEmbedder(_ChipEmbedder):
    """An ONNX face embedder whose preprocessing the card (or a ``modeldeck.json`` beside it) declares:

    ``input_size`` (side in pixels; read from a fixed input shape when absent), ``mean`` and ``std``
    (one number or one per channel, applied as ``(x - mean) / std`` to 0..255 values), ``color``
    (``RGB`` or ``BGR``), ``layout`` (``NCHW`` default, or ``NHWC``), ``metric``, ``threshold``,
    optional ``padding`` (alignment margin, default 0.25) and ``normalize`` (L2-normalise the
    output, default true).
    """

    runtime: OnnxRuntime

    def __init__(self, runtime: Any, card: Mapping[str, Any], where: str) -> None:
        super().__init__(runtime)
        missing = [k for k in ("mean", "std", "color", "metric", "threshold") if k not in card]
        if missing:
            raise ConfigError(
                f"ONNX face embedder {where}: the card does not declare {', '.join(missing)}",
                hint=f'put them in the catalog card or in {SIDECAR} beside the .onnx file, e.g. {{"input_size": 112, '
                '"mean": 127.5, "std": 127.5, "color": "RGB", "metric": "cosine", "threshold": 0.68}',
            )
        self.layout = str(card.get("layout", "NCHW")).upper()
        if self.layout not in ("NCHW", "NHWC"):
            raise ConfigError(f"ONNX face embedder {where}: layout must be NCHW or NHWC, got {self.layout!r}")
        spec = runtime.input
        shape_side = spec.dim(2 if self.layout == "NCHW" else 1) if spec.rank == 4 else None
        size = card.get("input_size", shape_side)
        if not isinstance(size, int) or size < 8:
            raise ConfigError(
                f"ONNX face embedder {where}: 'input_size' must be declared (the graph's input size is dynamic)",
                hint='add e.g. "input_size": 112',
            )
        self.size = size
        self.padding = float(card.get("padding", 0.25))
        self.mean = np.asarray(card["mean"], dtype=np.float32).reshape(-1)
        self.std = np.asarray(card["std"], dtype=np.float32).reshape(-1)
        if self.mean.size not in (1, 3) or self.std.size not in (1, 3) or np.any(self.std == 0):
            raise ConfigError(f"ONNX face embedder {where}: mean and std must be one number or three, std non-zero")
        self.color = str(card["color"]).upper()
        if self.color not in ("RGB", "BGR"):
            raise ConfigError(f"ONNX face embedder {where}: color must be RGB or BGR, got {card['color']!r}")
        self.metric = _metric(card["metric"], where)
        self.threshold = float(card["threshold"])
        self.normalize = bool(card.get("normalize", True))
        out = runtime.outputs[0]
        self.dim = int(card.get("dim") or (out.shape[-1] if out.shape and out.shape[-1] else 0))
        self.input_name = spec.name
        self.dtype = spec.dtype if spec.dtype is not None else np.dtype(np.float32)

    @classmethod
    def load(
        cls, info: ModelInfo, *, device: str, detector: str = "hog", session: OnnxSessionOptions | None = None
    ) -> Self:
        from ...runtimes.dlib import face_models_dir
        from ...runtimes.onnx import OnnxRuntime

        aligner = _aligner(face_models_dir(), device, detector)
        runtime = OnnxRuntime.load(Path(info.path), device=device, session=session)
        embedder = cls(runtime, _card(info), repr(info.name))
        embedder.aligner = aligner
        return embedder

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}

    def run(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        batch = np.stack([np.asarray(c, dtype=np.float32) for c in chips])
        if self.color == "BGR":
            batch = batch[..., ::-1]
        batch = (batch - self.mean) / self.std
        if self.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        out = self.runtime.run({self.input_name: np.ascontiguousarray(batch, dtype=self.dtype)})[0]
        vectors = np.asarray(out, dtype=np.float32).reshape(len(chips), -1)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        return vectors


def _metric(value: object, where: str) -> str:
    if value not in METRICS:
        raise ConfigError(f"face embedder {where}: metric must be one of {', '.join(METRICS)}, got {value!r}")
    return str(value)


def _sidecar(path: Path) -> dict[str, Any]:
    folder = path if path.is_dir() else path.parent
    file = folder / SIDECAR
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{str(file)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{str(file)!r} must hold a JSON object")
    card = data.get("card", data)
    return dict(card) if isinstance(card, dict) else {}
