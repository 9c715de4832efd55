"""The torchvision R-CNN back-end of the detect and segment tasks (Faster R-CNN, Mask R-CNN).

Class ids are torchvision's (the 91-id COCO space for the COCO weights, ``__background__`` at 0),
named by the model's categories. The options become a per-image ``Selection`` that the runtime
applies inside the model, so NMS, class filtering and the cut to ``max_detections`` happen before
the mask head runs; ``decode`` re-applies the cheap filters so the contract holds whatever ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..images import Image
from ..types import ModelInfo
from ._backend import BackendBase
from .detect import Decoded, DetectOptions, SegmentOptions

if TYPE_CHECKING:
    from ..runtimes.torchvision import RCNNOutput, Selection, TorchvisionRuntime

__all__ = ["RCNNDetector"]


@dataclass(frozen=True, slots=True)
class _Prepared:
    tensor: Any
    selection: Selection


class RCNNDetector(BackendBase):
    """A ``Detector`` over a ``TorchvisionRuntime``."""

    #: torchvision's own post-processing defaults (box_nms_thresh, box_detections_per_img), which its
    #: COCO scores were measured with; 100 is also what COCO evaluation counts per image.
    option_defaults: ClassVar[dict[str, Any]] = {"iou": 0.5, "max_detections": 100}

    def __init__(self, runtime: TorchvisionRuntime) -> None:
        self.runtime = runtime
        self.labels: tuple[str, ...] = runtime.categories
        self.has_masks: bool = runtime.has_masks

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> RCNNDetector:
        from ..runtimes.torchvision import TorchvisionRuntime

        return cls(TorchvisionRuntime.load(info.path, card=info.card, device=device))

    def _class_ids(self, classes: Sequence[int | str] | None) -> frozenset[int] | None:
        # The task has validated the names already (check_options); this only maps them to ids.
        if classes is None:
            return None
        return frozenset(self.labels.index(c) if isinstance(c, str) else int(c) for c in classes)

    def selection(self, options: DetectOptions) -> Selection:
        from ..runtimes.torchvision import Selection

        return Selection(
            confidence=options.confidence,
            iou=options.iou,
            max_detections=options.max_detections,
            classes=self._class_ids(options.classes),
            agnostic=options.agnostic_nms,
            mask_threshold=options.mask_threshold if isinstance(options, SegmentOptions) else 0.5,
            masks=isinstance(options, SegmentOptions),
        )

    def prepare(self, image: Image, options: DetectOptions) -> _Prepared:
        return _Prepared(tensor=self.runtime.to_tensor(image.pixels), selection=self.selection(options))

    def forward(self, batch: Sequence[_Prepared]) -> list[RCNNOutput]:
        return self.runtime.detect([p.tensor for p in batch], [p.selection for p in batch])

    def decode(
        self, raw: RCNNOutput, prepared: _Prepared, options: DetectOptions, classes: frozenset[int] | None
    ) -> Decoded:
        keep = raw.scores >= options.confidence
        if classes is not None:
            keep &= np.isin(raw.labels, np.fromiter(classes, dtype=np.int64, count=len(classes)))
        index = np.flatnonzero(keep)[: options.max_detections]
        masks = None
        if isinstance(options, SegmentOptions) and raw.masks is not None:
            masks = raw.masks[index]
        return Decoded(
            xyxy=raw.boxes[index].astype(np.float32),
            score=raw.scores[index].astype(np.float32),
            class_id=raw.labels[index],
            masks=masks,
        )

    def close(self) -> None:
        """Nothing to release beyond the model, which Python frees."""
