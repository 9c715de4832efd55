"""face-detect: boxes, scores and landmarks of every face in an image (dlib HOG by default, offline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from ...images import Image
from ...runtimes.dlib import DlibRuntime
from ...types import ModelInfo
from .._image_task import ImageTask
from ..base import Options
from ._detectors import DetectionOptions, FaceDetector, FoundFace, check_detector_options, find_faces
from ._results import Face, Faces

__all__ = ["FaceDetectOptions", "FaceDetectTask", "landmarker_for"]


class FaceDetectOptions(DetectionOptions):
    landmarks: Literal[5, 68] | None = Field(
        default=5, description="landmark points per face: 5 or 68 (dlib shape predictors; YuNet's own 5), or none"
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    image: Image
    options: Any


def landmarker_for(detector: FaceDetector) -> DlibRuntime:
    """dlib's shape predictors: from the detector's own runtime when it is dlib, else from face_recognition_models."""
    runtime = detector.runtime
    if isinstance(runtime, DlibRuntime):
        return runtime
    from ...runtimes.dlib import face_models_dir

    return DlibRuntime(face_models_dir())


class FaceDetectTask(ImageTask[Prepared, list[FoundFace], Faces, FaceDetectOptions]):
    name = "face-detect"
    result_type: ClassVar[type] = Faces
    options_type: ClassVar[type[Options]] = FaceDetectOptions

    default_batch_size: ClassVar[int] = 8
    backend: FaceDetector

    def __init__(self, info: ModelInfo, backend: FaceDetector, **kwargs: Any) -> None:
        self.detector = backend
        self._landmarker: DlibRuntime | None = None
        super().__init__(info, backend, **kwargs)

    @property
    def landmarker(self) -> DlibRuntime:
        if self._landmarker is None:
            self._landmarker = landmarker_for(self.detector)
        return self._landmarker

    def check_options(self, options: FaceDetectOptions) -> FaceDetectOptions:
        check_detector_options(self.name, self.detector.kind, options)
        return options

    def prepare(self, image: Image, options: FaceDetectOptions) -> Prepared:
        return Prepared(image, options)

    def forward(self, batch: Sequence[Prepared]) -> list[list[FoundFace]]:
        out = []
        for item in batch:
            wants = item.options.landmarks
            landmarker = self.landmarker if wants is not None else None
            out.append(find_faces(self.detector, landmarker, item.image.pixels, item.options, wants))
        return out

    def postprocess(self, raw: list[FoundFace], encoded: Prepared, options: FaceDetectOptions) -> Faces:
        faces = tuple(
            Face(box=f.box, score=f.score, landmarks=tuple((float(x), float(y)) for x, y in f.landmarks)) for f in raw
        )
        return Faces(faces=faces, width=encoded.image.width, height=encoded.image.height)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["detector"] = self.detector.kind
        return out
