"""A tiny planted detector for tests: boxes (and elliptical masks) at fixed fractions of the image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modeldeck.images import Image
from modeldeck.tasks.detect import Decoded, DetectOptions, DetectTask, SegmentOptions, SegmentTask
from modeldeck.types import ModelInfo

LABELS = ("cat", "dog", "person")
# (x1, y1, x2, y2) as fractions of the image, score, class id
PLANTED = (
    ((0.10, 0.10, 0.50, 0.60), 0.91, 0),
    ((0.55, 0.40, 0.95, 0.90), 0.62, 1),
    ((0.05, 0.70, 0.30, 0.95), 0.20, 2),
)


class FakeDetector:
    """Follows ``modeldeck.tasks.detect.Detector``; ``batches`` records the size of every forward call."""

    labels = LABELS
    runtime = None

    def __init__(self, *, has_masks: bool = False) -> None:
        self.has_masks = has_masks
        self.batches: list[int] = []
        self.seen: list[tuple[int, int]] = []

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> FakeDetector:
        return cls()

    def prepare(self, image: Image, options: DetectOptions) -> Image:
        return image

    def forward(self, batch: Sequence[Image]) -> list[tuple[int, int]]:
        self.batches.append(len(batch))
        self.seen.extend(image.size for image in batch)
        return [image.size for image in batch]

    def decode(
        self, raw: tuple[int, int], prepared: Image, options: DetectOptions, classes: frozenset[int] | None
    ) -> Decoded:
        width, height = raw
        keep = [
            (box, score, cid)
            for box, score, cid in PLANTED
            if score >= options.confidence and (classes is None or cid in classes)
        ][: options.max_detections]
        xyxy = np.array([[b[0] * width, b[1] * height, b[2] * width, b[3] * height] for b, _, _ in keep], np.float32)
        xyxy = xyxy.reshape(-1, 4)
        score = np.array([s for _, s, _ in keep], np.float32)
        class_id = np.array([c for _, _, c in keep], np.int64)
        masks = None
        if self.has_masks:
            yy, xx = np.mgrid[0:height, 0:width]
            masks = np.zeros((len(keep), height, width), dtype=bool)
            for i, (x1, y1, x2, y2) in enumerate(xyxy):
                cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
                masks[i] = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        return Decoded(xyxy=xyxy, score=score, class_id=class_id, masks=masks)


def fake_info(task: str = "detect") -> ModelInfo:
    return ModelInfo(name="fake-detector", version="0.1", tasks=(task,), runtime="fake", path=Path("."))


def detect_task(**kwargs: Any) -> DetectTask:
    return DetectTask(fake_info(), FakeDetector(), **kwargs)


def segment_task(**kwargs: Any) -> SegmentTask:
    return SegmentTask(fake_info("segment"), FakeDetector(has_masks=True), **kwargs)


__all__ = ["LABELS", "PLANTED", "FakeDetector", "SegmentOptions", "detect_task", "fake_info", "segment_task"]
