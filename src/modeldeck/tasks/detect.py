"""Object detection and instance segmentation over detector back-ends (YOLO ONNX, torchvision R-CNN).

The tasks own what every detector shares: image input, options, class filtering by name and the
result types. A back-end (``Detector``) owns its model's preprocessing, forward pass and decoding,
and returns boxes already scaled back to the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

import numpy as np
from pydantic import Field, StrictBool

from ..errors import OptionError, UnknownModelError
from ..images import Image
from ..types import ModelInfo
from ._backend import Backend
from ._image_task import ImageTask
from .base import Options
from .vision_results import DetectResult, SegmentResult

__all__ = ["Decoded", "DetectOptions", "DetectTask", "Detector", "SegmentOptions", "SegmentTask"]


class DetectOptions(Options):
    confidence: float = Field(default=0.25, ge=0.0, le=1.0, description="drop detections scoring below this")
    iou: float = Field(default=0.7, gt=0.0, le=1.0, description="IoU above which NMS suppresses the weaker box")
    max_detections: int = Field(default=300, ge=1, le=10_000, description="keep at most this many, best first")
    classes: list[int | str] | None = Field(
        default=None, description="keep only these classes (ids or names); default: all"
    )
    agnostic_nms: StrictBool = Field(default=False, description="suppress overlapping boxes across classes")


class SegmentOptions(DetectOptions):
    mask_threshold: float = Field(default=0.5, gt=0.0, lt=1.0, description="mask probability counted as inside")


class Decoded(NamedTuple):
    """A back-end's output for one image, in original-image pixels."""

    xyxy: np.ndarray  # (N, 4) float
    score: np.ndarray  # (N,)
    class_id: np.ndarray  # (N,) int
    masks: np.ndarray | None = None  # (N, H, W) bool over the original image, for segmentation


class Detector(Backend, Protocol):
    """What a detection back-end provides; ``labels[i]`` names class id ``i``."""

    labels: tuple[str, ...]
    has_masks: bool

    def prepare(self, image: Image, options: DetectOptions) -> Any:
        """Per-image preprocessing (letterbox, normalise); runs before batching."""
        ...

    def forward(self, batch: Sequence[Any]) -> list[Any]:
        """One model call for the batch; one raw output per prepared image."""
        ...

    def decode(self, raw: Any, prepared: Any, options: DetectOptions, classes: frozenset[int] | None) -> Decoded:
        """Boxes (and masks) for one image, filtered by ``options`` and the class ids in ``classes``."""
        ...


@dataclass(frozen=True, slots=True)
class _Prepared:
    size: tuple[int, int]  # (width, height) of the original image
    data: Any


DetResT = TypeVar("DetResT", DetectResult, SegmentResult)
DetOptT = TypeVar("DetOptT", bound=DetectOptions)


class _DetectionTask(ImageTask[_Prepared, Any, DetResT, DetOptT]):
    """What detect and segment share: a detector back-end, class filters by id or name, decoding."""

    default_batch_size: ClassVar[int] = 8
    backend: Detector

    def __init__(self, info: ModelInfo, backend: Detector, **kwargs: Any) -> None:
        if self.name == "segment" and not backend.has_masks:
            raise UnknownModelError(
                f"model {info.name!r} predicts boxes only, so it cannot serve the segment task",
                hint="use the detect task with it, or a segmentation model (Mask R-CNN, a YOLO -seg export)",
            )
        self.detector = backend
        super().__init__(info, backend, **kwargs)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.detector.labels

    def check_options(self, options: DetOptT) -> DetOptT:
        self._class_ids(options)  # unknown class names fail at validation, not per image
        return options

    def _class_ids(self, options: DetectOptions) -> frozenset[int] | None:
        if options.classes is None:
            return None
        labels = self.labels
        ids = set()
        for item in options.classes:
            if isinstance(item, str):
                if item not in labels:
                    known = ", ".join(labels[:12]) + (", …" if len(labels) > 12 else "")
                    raise OptionError(f"{self.name}: unknown class {item!r} in 'classes'", hint=f"classes: {known}")
                ids.add(labels.index(item))
            elif 0 <= item < max(len(labels), 1):
                ids.add(item)
            else:
                raise OptionError(
                    f"{self.name}: class id {item} in 'classes' is out of range",
                    hint=f"ids run from 0 to {len(labels) - 1}",
                )
        return frozenset(ids)

    def prepare(self, image: Image, options: DetOptT) -> _Prepared:
        return _Prepared(size=image.size, data=self.detector.prepare(image, options))

    def forward(self, batch: Sequence[_Prepared]) -> list[Any]:
        return self.detector.forward([p.data for p in batch])

    def _decode(self, raw: Any, encoded: _Prepared, options: DetectOptions) -> Decoded:
        return self.detector.decode(raw, encoded.data, options, self._class_ids(options))

    def _label(self, class_id: int) -> str:
        labels = self.labels
        return labels[class_id] if 0 <= class_id < len(labels) else str(class_id)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["labels"] = list(self.labels)
        return out


class DetectTask(_DetectionTask[DetectResult, DetectOptions]):
    name = "detect"
    result_type: ClassVar[type] = DetectResult
    options_type: ClassVar[type[Options]] = DetectOptions

    def postprocess(self, raw: Any, encoded: _Prepared, options: DetectOptions) -> DetectResult:
        d = self._decode(raw, encoded, options)
        labels = [self._label(int(c)) for c in d.class_id]
        return DetectResult.from_arrays(d.xyxy, d.score, d.class_id, labels, encoded.size)


class SegmentTask(_DetectionTask[SegmentResult, SegmentOptions]):
    name = "segment"
    result_type: ClassVar[type] = SegmentResult
    options_type: ClassVar[type[Options]] = SegmentOptions

    def postprocess(self, raw: Any, encoded: _Prepared, options: SegmentOptions) -> SegmentResult:
        d = self._decode(raw, encoded, options)
        if d.masks is None:
            raise RuntimeError(f"the {type(self.detector).__name__} back-end returned no masks")
        labels = [self._label(int(c)) for c in d.class_id]
        return SegmentResult.from_arrays(d.xyxy, d.score, d.class_id, labels, d.masks, encoded.size)
