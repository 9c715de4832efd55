"""The ONNX Runtime back-end of ``detect`` for torchvision R-CNN variants made by ``modeldeck optimize``.

The graph (``runtimes/onnx_export.py: export_torchvision_detector``) runs one image through the
model's own transform, backbone, RPN and box head, and stops where torchvision's
``postprocess_detections`` begins: every proposal's decoded, clipped box and softmax score per
class. The request's selection then runs here, in the order torchvision runs it and with the
torch back-end's meaning of each option (``tasks/_rcnn.py``): scores above ``confidence``, boxes
narrower than 0.01 pixel dropped, NMS per class at ``iou`` (across classes when
``agnostic_nms``), the wanted ``classes``, the best ``max_detections``, then the boxes scaled back
to the original image. Each image runs alone, so its answer is the torch back-end's answer for a
batch of one (torchvision pads a batch to its largest image, which moves a detector's answers
slightly).

``OnnxDetector`` is what ``(detect, onnxruntime)`` names: it opens the graph once and hands it to
this back-end when the graph's metadata says modeldeck exported an R-CNN, else to the YOLO one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import InputError, UnknownModelError
from ..runtimes.onnx import OnnxRuntime
from ..runtimes.onnx_export import FAMILY_KEY, RCNN_FAMILY, resized_size
from ._backend import BackendBase
from ._rcnn import RCNNDetector
from ._yolo import YoloDetector, nms
from .detect import Decoded, DetectOptions

if TYPE_CHECKING:
    from ..images import Image
    from ..types import ModelInfo, OnnxSessionOptions

__all__ = ["OnnxDetector", "OnnxRCNNDetector", "Resized", "select"]

#: torchvision's ``remove_small_boxes`` size in ``postprocess_detections``, in resized-image pixels.
_MIN_BOX = 1e-2


@dataclass(frozen=True, slots=True)
class Resized:
    """One image as the graph takes it, and what brings its boxes back to the original."""

    image: np.ndarray  # (3, H, W) float32 in [0, 1], the original size
    resized: np.ndarray  # (h, w, 0) float32: only its shape is read, the size the transform resizes to
    scale: np.ndarray  # (4,) float32: original over resized width, height, width, height


def select(
    boxes: np.ndarray,
    scores: np.ndarray,
    scale: np.ndarray,
    options: DetectOptions,
    classes: frozenset[int] | None,
) -> Decoded:
    """One image's detections from the graph's candidates, as the torch back-end selects them.

    ``boxes`` (P, K, 4) and ``scores`` (P, K) are per proposal and class (class id ``k + 1``:
    the background is not in the graph's output), in resized-image pixels; ``scale`` multiplies
    them back to the original image.
    """
    count = scores.shape[1] if scores.ndim == 2 else 0
    b = boxes.reshape(-1, 4)
    s = scores.reshape(-1)
    c = np.tile(np.arange(1, count + 1, dtype=np.int64), scores.shape[0] if count else 0)
    keep = s > options.confidence
    keep &= (b[:, 2] - b[:, 0] >= _MIN_BOX) & (b[:, 3] - b[:, 1] >= _MIN_BOX)
    if classes is not None:  # NMS runs within a class (or after this filter, agnostic), so filtering first is the same
        keep &= np.isin(c, np.fromiter(classes, dtype=np.int64, count=len(classes)))
    b, s, c = b[keep], s[keep], c[keep]
    order = nms(b, s, options.iou) if options.agnostic_nms else nms(b, s, options.iou, classes=c)
    order = order[: options.max_detections]
    return Decoded(
        xyxy=(b[order] * scale.astype(np.float32)).astype(np.float32),
        score=s[order].astype(np.float32),
        class_id=c[order],
    )


class OnnxRCNNDetector(BackendBase):
    """A ``Detector`` over an ``OnnxRuntime`` holding a modeldeck R-CNN export (boxes only: ``detect``)."""

    option_defaults: ClassVar[Mapping[str, Any]] = RCNNDetector.option_defaults

    def __init__(self, runtime: OnnxRuntime) -> None:
        self.runtime = runtime
        names = {spec.name for spec in runtime.outputs}
        sizes = (runtime.metadata.get("min_size", ""), runtime.metadata.get("max_size", ""))
        if (
            runtime.metadata.get(FAMILY_KEY) != RCNN_FAMILY
            or not {"boxes", "scores"} <= names
            or not all(x.isdigit() for x in sizes)
        ):
            raise UnknownModelError(
                f"{runtime.path.name} is not a torchvision R-CNN that modeldeck exported "
                f"(metadata {dict(runtime.metadata)}, outputs {sorted(names)})",
                hint="make the variant with `modeldeck optimize detect --model NAME`",
            )
        self.min_size, self.max_size = int(sizes[0]), int(sizes[1])
        try:
            labels = json.loads(runtime.metadata.get("labels", ""))
        except ValueError:
            labels = None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise UnknownModelError(
                f"{runtime.path.name}: the graph's metadata has no class names ('labels')",
                hint="make the variant again with `modeldeck optimize detect`",
            )
        self.labels: tuple[str, ...] = tuple(labels)
        self.has_masks = False

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, session: OnnxSessionOptions | None = None) -> OnnxRCNNDetector:
        return cls(OnnxRuntime.load(info.path, device=device, session=session))

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}

    def prepare(self, image: Image, options: DetectOptions) -> Resized:
        # What TorchvisionRuntime.to_tensor gives: (3, H, W) float32 in [0, 1]; the graph normalises and resizes.
        chw = np.asarray(image.pixels, dtype=np.uint8).transpose(2, 0, 1)
        height, width = chw.shape[1:]
        h, w = resized_size((height, width), self.min_size, self.max_size)
        if h < 1 or w < 1:
            raise InputError(
                f"a {height} x {width} (height x width) image resizes to {h} x {w} pixels for this detector "
                f"(shorter side to {self.min_size}, longer side at most {self.max_size})",
                hint="crop or pad the image nearer to a square",
            )
        # torchvision's resize_boxes: float32 original size over float32 resized size, per axis.
        ratio_w, ratio_h = np.float32(width) / np.float32(w), np.float32(height) / np.float32(h)
        return Resized(
            image=np.ascontiguousarray(chw, dtype=np.float32) / np.float32(255.0),
            resized=np.zeros((h, w, 0), dtype=np.float32),
            scale=np.array([ratio_w, ratio_h, ratio_w, ratio_h], dtype=np.float32),
        )

    def forward(self, batch: Sequence[Resized]) -> list[tuple[np.ndarray, np.ndarray]]:
        # One run per image: the graph takes images of any size, one at a time (see the module docstring).
        out = []
        for item in batch:
            boxes, scores = self.runtime.run({"image": item.image, "resized": item.resized}, ("boxes", "scores"))
            out.append((boxes, scores))
        return out

    def decode(
        self,
        raw: tuple[np.ndarray, np.ndarray],
        prepared: Resized,
        options: DetectOptions,
        classes: frozenset[int] | None,
    ) -> Decoded:
        return select(raw[0], raw[1], prepared.scale, options, classes)


class OnnxDetector(BackendBase):
    """``(detect, onnxruntime)`` and ``(segment, onnxruntime)``: a YOLO export, or an R-CNN variant modeldeck made.

    Only its ``load`` is used: it returns the back-end that fits the graph (one registry slot
    per task and runtime, two ONNX detector formats behind it).
    """

    @classmethod
    def load(
        cls, info: ModelInfo, *, device: str, session: OnnxSessionOptions | None = None
    ) -> OnnxRCNNDetector | YoloDetector:
        runtime = OnnxRuntime.load(info.path, device=device, session=session)
        if runtime.metadata.get(FAMILY_KEY) == RCNN_FAMILY:
            return OnnxRCNNDetector(runtime)
        return YoloDetector(runtime, card_labels=info.card.get("labels"))
