"""Face detector back-ends (dlib HOG / CNN, OpenCV Haar, YuNet) behind one small interface, and their options.

A back-end returns raw boxes, scores and (YuNet only) its own landmarks; ``find_faces`` then
adds dlib landmarks where asked, clips boxes to the image, drops small faces, and sorts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

import numpy as np
from pydantic import Field

from ...errors import OptionError
from .._backend import Backend, BackendBase
from ..base import Options

if TYPE_CHECKING:
    from ...runtimes.dlib import DlibRuntime
    from ...runtimes.opencv import OpenCVRuntime
    from ...types import ModelInfo

__all__ = [
    "DetectionOptions",
    "DlibFaceDetector",
    "FaceDetector",
    "FoundFace",
    "OpenCVFaceDetector",
    "check_detector_options",
    "find_faces",
]


class DetectionOptions(Options):
    """Options of face detection, shared by face-detect, face-embed and face-verify."""

    upsample: int = Field(
        default=1, ge=0, le=3, description="dlib: upsample the image this many times (finds smaller faces, slower)"
    )
    threshold: float | None = Field(
        default=None,
        description="drop faces scoring below this; default per detector: dlib HOG 0.0 (its adjust_threshold), "
        "dlib CNN 0.0 (MMOD confidence), YuNet 0.9, Haar none",
    )
    min_face_size: int = Field(
        default=0, ge=0, le=10_000, description="drop faces whose box is smaller than this many pixels a side"
    )
    max_faces: int | None = Field(default=None, ge=1, le=10_000, description="keep at most this many faces, best first")
    scale_factor: float = Field(default=1.1, gt=1.0, le=2.0, description="Haar: image pyramid step")
    min_neighbors: int = Field(default=5, ge=0, le=100, description="Haar: neighbouring detections a face needs")
    nms: float = Field(default=0.3, gt=0.0, le=1.0, description="YuNet: IoU above which overlapping faces are merged")


#: Options each detector reads; setting one that the loaded detector ignores is an ``OptionError``.
_SPECIFIC = {"upsample": ("hog", "cnn"), "scale_factor": ("haar",), "min_neighbors": ("haar",), "nms": ("yunet",)}


def check_detector_options(task: str, kind: str, options: Options) -> None:
    for name in options.model_fields_set:
        kinds = _SPECIFIC.get(name)
        if kinds is not None and kind not in kinds:
            raise OptionError(
                f"{task}: option {name!r} applies to the {' and '.join(kinds)} detector(s), not to {kind}",
                hint="remove it, or load a model with that detector",
            )


@dataclass(frozen=True, slots=True)
class FoundFace:
    """A face as found: ``raw_box`` as the detector gave it (may leave the image), ``box`` clipped."""

    box: tuple[float, float, float, float]
    raw_box: np.ndarray
    score: float
    landmarks: np.ndarray  # (K, 2), K = 0 when none were asked for
    shape: Any = None  # the dlib shape the landmarks came from, reused for alignment


class FaceDetector(Backend, Protocol):
    """A face-detect backend: boxes and scores (and native landmarks where the model has them)."""

    kind: str

    def detect(self, pixels: np.ndarray, options: DetectionOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Boxes ``(N, 4)`` x1 y1 x2 y2 in image pixels, scores ``(N,)``, and native landmarks or None."""
        ...


class DlibFaceDetector(BackendBase):
    """dlib's HOG or CNN (MMOD) detector; the card's ``detector`` picks one (default ``hog``)."""

    runtime: DlibRuntime

    def __init__(self, runtime: DlibRuntime) -> None:
        super().__init__(runtime)
        self.kind = runtime.detector_kind

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ...runtimes.dlib import DlibRuntime

        runtime = DlibRuntime.load(info.path, device=device, detector=str(info.card.get("detector", "hog")))
        runtime.warm_up()
        return cls(runtime)

    def detect(self, pixels: np.ndarray, options: DetectionOptions) -> tuple[np.ndarray, np.ndarray, None]:
        threshold = 0.0 if options.threshold is None else options.threshold
        boxes, scores = self.runtime.detect(pixels, upsample=options.upsample, threshold=threshold)
        return boxes, scores, None


class OpenCVFaceDetector(BackendBase):
    """OpenCV's detectors: a Haar cascade (``.xml``) or YuNet (``.onnx``), told apart by the file."""

    kind: str
    runtime: OpenCVRuntime

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> OpenCVFaceDetector:
        from ...runtimes.opencv import OpenCVRuntime

        runtime = OpenCVRuntime.load(info.path, device=device)
        return _HaarDetector(runtime) if runtime.kind == "haar" else _YuNetDetector(runtime)

    def detect(self, pixels: np.ndarray, options: DetectionOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raise NotImplementedError


class _HaarDetector(OpenCVFaceDetector):
    kind = "haar"

    def detect(self, pixels: np.ndarray, options: DetectionOptions) -> tuple[np.ndarray, np.ndarray, None]:
        boxes, scores = self.runtime.detect_haar(
            pixels,
            scale_factor=options.scale_factor,
            min_neighbors=options.min_neighbors,
            min_size=options.min_face_size,
        )
        if options.threshold is not None:
            keep = scores >= options.threshold
            boxes, scores = boxes[keep], scores[keep]
        return boxes, scores, None


class _YuNetDetector(OpenCVFaceDetector):
    kind = "yunet"

    def detect(self, pixels: np.ndarray, options: DetectionOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        threshold = 0.9 if options.threshold is None else options.threshold
        return self.runtime.detect_yunet(pixels, score_threshold=threshold, nms_threshold=options.nms)


def _clip(box: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def find_faces(
    detector: FaceDetector,
    landmarker: DlibRuntime | None,
    pixels: np.ndarray,
    options: DetectionOptions,
    landmarks: Literal[5, 68] | None,
    *,
    native_landmarks: bool = True,
) -> list[FoundFace]:
    """Detect, filter, sort (score, highest first) and add landmarks: ``landmarks`` points from dlib's
    shape predictors, except that YuNet's own 5 points are used when 5 are asked of YuNet and
    ``native_landmarks`` allows it (alignment for dlib's embedders needs dlib's own 5 points)."""
    height, width = pixels.shape[:2]
    boxes, scores, native = detector.detect(pixels, options)
    order = np.argsort(-scores, kind="stable")
    found: list[tuple[np.ndarray, tuple[float, float, float, float], float, np.ndarray | None]] = []
    for i in order:
        clipped = _clip(boxes[i], width, height)
        if min(clipped[2] - clipped[0], clipped[3] - clipped[1]) < max(options.min_face_size, 1):
            continue
        found.append((boxes[i], clipped, float(scores[i]), None if native is None else native[i]))
        if options.max_faces is not None and len(found) >= options.max_faces:
            break
    shapes: list[Any] = [None] * len(found)
    if native is None or landmarks != 5 or not native_landmarks:
        native = None
    if landmarks is not None and found and native is None:
        assert landmarker is not None
        shapes = landmarker.shapes(pixels, np.array([f[0] for f in found]), landmarks)
    out = []
    for (raw, clipped, score, own), shape in zip(found, shapes, strict=True):
        if landmarks is None:
            points = np.zeros((0, 2))
        elif shape is not None:
            points = landmarker.points(shape)  # type: ignore[union-attr]
        else:
            points = np.asarray(own, dtype=np.float64).reshape(-1, 2)
        out.append(FoundFace(box=clipped, raw_box=raw, score=score, landmarks=points, shape=shape))
    return out
