"""face-detect: boxes, scores and landmarks of every face in an image (dlib HOG by default, offline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pydantic import Field

from ...images import DEFAULT_MAX_IMAGE_PIXELS, Image
from ...runtimes.dlib import DlibRuntime
from ...types import ModelInfo
from .._image_task import ImageTask
from ..base import DEFAULT_MAX_TEXT_CHARS, Options, unsupported_runtime
from ._detectors import DetectionOptions, FaceDetector, FoundFace, check_detector_options, find_faces, load_detector
from ._results import Face, Faces

__all__ = ["FaceDetectOptions", "FaceDetectTask", "landmarker_for"]

RUNTIMES = ("dlib", "opencv")


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

    def __init__(
        self,
        info: ModelInfo,
        detector: FaceDetector,
        *,
        batch_size: int = 8,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.detector = detector
        self.max_image_pixels = max_image_pixels
        self._landmarker: DlibRuntime | None = None
        super().__init__(info, detector.runtime, batch_size=batch_size, options=options)

    @classmethod
    def from_model(
        cls,
        info: ModelInfo,
        *,
        device: str = "cpu",
        batch_size: int = 8,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        **options: Any,
    ) -> Self:
        if info.runtime not in RUNTIMES:
            raise unsupported_runtime(cls.name, info, RUNTIMES)
        detector = load_detector(info, device=device)
        return cls(info, detector, batch_size=batch_size, max_image_pixels=max_image_pixels, options=options)

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
