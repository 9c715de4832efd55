"""YOLO ONNX back-end for detect and segment: ultralytics' letterbox, both head layouts, NMS and mask decoding.

Any ultralytics ONNX export works (YOLOv8, YOLO11, ...; ``yolo export format=onnx``):

* plain head ``[B, 4 + nc (+ nm), N]``: per anchor ``cx, cy, w, h``, ``nc`` class scores and, for
  a segmenter, ``nm`` mask coefficients. Decoding takes each anchor's best class, drops those
  under ``confidence``, then runs NMS (per class, unless ``agnostic_nms``) and keeps
  ``max_detections``, best first: what ultralytics' ``non_max_suppression`` does.
* end-to-end head ``[B, K, 6 (+ nm)]`` (``nms=True`` exports, YOLOv10 / YOLO26): rows of
  ``x1, y1, x2, y2, score, class`` already suppressed; decoding only filters and truncates.
* segmenters add prototypes ``[B, nm, H/4, W/4]``; an instance's mask is
  ``sigmoid(coefficients @ prototypes)``, cut to its box, brought up to the input size, un-padded,
  resized to the original image and thresholded at ``mask_threshold``.

Class names come from the export's ``names`` metadata, else the catalog card's ``labels``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import UnknownModelError
from ..runtimes.base import import_framework
from ..runtimes.onnx import OnnxRuntime
from ._backend import BackendBase
from .detect import Decoded, DetectOptions, SegmentOptions

if TYPE_CHECKING:
    from ..images import Image
    from ..types import ModelInfo, OnnxSessionOptions

__all__ = ["Letterboxed", "YoloDetector", "letterbox", "nms", "parse_names"]

DEFAULT_IMGSZ = 640
PAD_VALUE = 114
#: Candidates kept for NMS, best first, as ultralytics does: bounds the cost on a flat score map.
MAX_NMS = 30_000
#: Up to this many candidates, NMS computes their whole IoU matrix (n² bytes of booleans, a few float64 temporaries).
_MATRIX_NMS_LIMIT = 1024

Layout = Literal["plain", "end2end"]


def _cv2() -> Any:
    return import_framework("cv2", package="opencv-python-headless", extra="vision", purpose="YOLO preprocessing")


@dataclass(frozen=True, slots=True)
class Letterboxed:
    """One image resized into the model's input with its aspect kept and grey (114) bars around it."""

    canvas: np.ndarray  # (H, W, 3) uint8, the model's input size
    scale: float  # input pixels per original pixel
    pad: tuple[int, int]  # (left, top) bar widths in input pixels
    resized: tuple[int, int]  # (width, height) of the image inside the bars
    size: tuple[int, int]  # (width, height) of the original image


def letterbox(pixels: np.ndarray, shape: tuple[int, int]) -> Letterboxed:
    """Fit ``pixels`` (H, W, 3) uint8 into ``shape`` = (height, width) the way ultralytics' exporter expects.

    Scale by ``r = min(new_h / h, new_w / w)`` (up or down), round the resized size, resize
    bilinearly, and split the remaining padding between the two sides, the odd pixel going to
    the bottom / right (``round(d - 0.1)`` before, ``round(d + 0.1)`` after).
    """
    h, w = pixels.shape[:2]
    new_h, new_w = shape
    r = min(new_h / h, new_w / w)
    unpad_w, unpad_h = round(w * r), round(h * r)
    dw, dh = (new_w - unpad_w) / 2, (new_h - unpad_h) / 2
    # The exporter pads round(d - 0.1) before and round(d + 0.1) after: the odd pixel goes after,
    # so the image starts at (left, top) and the bars after it fill the canvas exactly.
    left, top = round(dw - 0.1), round(dh - 0.1)
    # A very thin image can round to zero pixels across; keep one so that the model sees something.
    unpad_w, unpad_h = max(unpad_w, 1), max(unpad_h, 1)
    if (unpad_w, unpad_h) != (w, h):
        cv2 = _cv2()
        resized = cv2.resize(np.ascontiguousarray(pixels), (unpad_w, unpad_h), interpolation=cv2.INTER_LINEAR)
    else:
        resized = pixels
    canvas = np.full((new_h, new_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + unpad_h, left : left + unpad_w] = resized
    return Letterboxed(canvas=canvas, scale=r, pad=(left, top), resized=(unpad_w, unpad_h), size=(w, h))


def parse_names(text: str | None) -> dict[int, str] | None:
    """Class names from ultralytics' ``names`` metadata (a dict literal ``"{0: 'person', ...}"``, or a list)."""
    if not text or len(text) > 1_000_000:
        return None
    try:
        value = ast.literal_eval(text)  # literals only: nothing in the file can run code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return _names_from(value)


def _names_from(value: object) -> dict[int, str] | None:
    if isinstance(value, Mapping):
        out: dict[int, str] = {}
        for key, name in value.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                return None
            if index < 0:
                return None
            out[index] = str(name)
        return out
    if isinstance(value, (list, tuple)):
        return {i: str(name) for i, name in enumerate(value)}
    return None


def _imgsz(runtime: OnnxRuntime) -> tuple[int, int]:
    shape = runtime.input.shape
    if len(shape) == 4 and shape[2] is not None and shape[3] is not None:
        return int(shape[2]), int(shape[3])
    text = runtime.metadata.get("imgsz")
    if text:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = None
        if isinstance(value, int) and value > 0:
            return value, value
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
            return int(value[0]), int(value[1])
    return DEFAULT_IMGSZ, DEFAULT_IMGSZ


def _layout(shape: Sequence[int | None], nm: int, end2end: bool | None) -> Layout | None:
    """Which head an output of ``shape`` (B, a, b) is; ``None`` when its static shape cannot tell."""
    if end2end is not None:
        return "end2end" if end2end else "plain"
    a, b = shape[1], shape[2]
    if b == 6 + nm and a != 6 + nm:
        return "end2end"
    if a is not None:
        return "plain"
    return None


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, classes: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best score first.

    A box is dropped when its IoU with a better kept box of the same class (any class when
    ``classes`` is None) is above ``iou``, as torchvision's ``batched_nms``; equal scores keep
    their input order. Up to ``_MATRIX_NMS_LIMIT`` boxes it fills the IoU matrix once; beyond,
    it compares the best remaining box with the rest, round by round.
    """
    n = len(boxes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    b = np.asarray(boxes, dtype=np.float64)[order]
    cls = None if classes is None else np.asarray(classes)[order]
    if n <= _MATRIX_NMS_LIMIT:
        keep = _nms_matrix(b, cls, iou)
    else:
        if cls is not None:  # offset each class far apart, so that boxes of two classes never overlap
            b = b + cls[:, None].astype(np.float64) * (float(np.abs(b).max()) * 2 + 1)
        keep = _nms_rounds(b, iou)
    return order[keep]


def _areas(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _nms_matrix(b: np.ndarray, cls: np.ndarray | None, iou: float) -> np.ndarray:
    """``b`` sorted best first; the pairwise IoU once, then one cheap pass in score order."""
    areas = _areas(b)
    w = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = areas[:, None] + areas[None, :] - inter
    overlaps = inter > iou * union  # IoU above the threshold, without dividing (union > 0 where inter > 0)
    if cls is not None:
        overlaps &= cls[:, None] == cls[None, :]
    alive = np.ones(len(b), dtype=bool)
    for i in range(len(b)):
        if alive[i]:
            alive[i + 1 :] &= ~overlaps[i, i + 1 :]
    return np.nonzero(alive)[0]


def _nms_rounds(b: np.ndarray, iou: float) -> np.ndarray:
    """``b`` sorted best first; keep the best remaining box and drop what it overlaps, until none remain."""
    areas = _areas(b)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    rest = np.arange(len(b))
    keep: list[int] = []
    while rest.size:
        i, rest = int(rest[0]), rest[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        rest = rest[inter <= iou * (areas[i] + areas[rest] - inter)]
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _Kept:
    """Detections of one image in input (letterboxed) pixels, best first, with their mask coefficients."""

    xyxy: np.ndarray  # (n, 4) float32
    score: np.ndarray  # (n,) float32
    class_id: np.ndarray  # (n,) int64
    coeffs: np.ndarray  # (n, nm) float32


def _decode_plain(pred: np.ndarray, nc: int, nm: int, options: DetectOptions, classes: frozenset[int] | None) -> _Kept:
    """``pred`` is (4 + nc + nm, N): boxes as cx, cy, w, h; class scores; mask coefficients."""
    scores = pred[4 : 4 + nc]
    best = scores.max(axis=0)
    (candidates,) = np.nonzero(best >= options.confidence)
    rows = pred[:, candidates].T.astype(np.float32, copy=False)  # (n, C): only the survivors are gathered
    score = best[candidates].astype(np.float32, copy=False)
    class_id = rows[:, 4 : 4 + nc].argmax(axis=1).astype(np.int64)
    if classes is not None:
        wanted = np.isin(class_id, np.fromiter(classes, dtype=np.int64, count=len(classes)))
        rows, score, class_id = rows[wanted], score[wanted], class_id[wanted]
    if len(score) > MAX_NMS:
        top = np.argsort(-score, kind="stable")[:MAX_NMS]
        rows, score, class_id = rows[top], score[top], class_id[top]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    keep = nms(xyxy, score, options.iou, None if options.agnostic_nms else class_id)[: options.max_detections]
    return _Kept(xyxy[keep], score[keep], class_id[keep], rows[keep, 4 + nc : 4 + nc + nm])


def _decode_end2end(pred: np.ndarray, nm: int, options: DetectOptions, classes: frozenset[int] | None) -> _Kept:
    """``pred`` is (K, 6 + nm): x1, y1, x2, y2, score, class, mask coefficients; already suppressed."""
    rows = pred.astype(np.float32, copy=False)
    score = rows[:, 4]
    class_id = np.rint(rows[:, 5]).astype(np.int64)
    wanted = score >= options.confidence
    if classes is not None:
        wanted &= np.isin(class_id, np.fromiter(classes, dtype=np.int64, count=len(classes)))
    (index,) = np.nonzero(wanted)
    index = index[np.argsort(-score[index], kind="stable")][: options.max_detections]
    return _Kept(rows[index, :4].copy(), score[index].copy(), class_id[index], rows[index, 6 : 6 + nm])


def _to_original(xyxy: np.ndarray, box: Letterboxed) -> np.ndarray:
    left, top = box.pad
    w, h = box.size
    out = (xyxy.astype(np.float64) - np.array([left, top, left, top], dtype=np.float64)) / box.scale
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out.astype(np.float32)


def _bilinear_taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bilinear resize with half-pixel centres (cv2 INTER_LINEAR, torch align_corners=False), per output pixel:
    the two input pixels it reads and the weight of the second."""
    src = np.clip((np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5, 0, in_size - 1)
    lo = np.floor(src).astype(np.int64)
    return lo, np.minimum(lo + 1, in_size - 1), src - lo


def _mask_axis(proto: int, input_size: int, start: int, inner: int, original: int) -> np.ndarray:
    """(original, proto): prototype cells up to the input size, the bars cut off, down (or up) to the original.

    Bilinear resizing is linear, so the two resizes ultralytics does one after the other compose
    into one matrix per axis; a mask is then ``rows @ cells @ cols.T``.
    """
    lo, hi, frac = _bilinear_taps(input_size, proto)
    up = np.zeros((input_size, proto), dtype=np.float64)
    at = np.arange(input_size)
    np.add.at(up, (at, lo), 1.0 - frac)
    np.add.at(up, (at, hi), frac)
    up = up[start : start + inner]
    lo, hi, frac = _bilinear_taps(original, inner)
    return up[lo] * (1.0 - frac)[:, None] + up[hi] * frac[:, None]


def _masks(
    protos: np.ndarray, kept: _Kept, box: Letterboxed, input_hw: tuple[int, int], threshold: float
) -> np.ndarray:
    """(n, H, W) bool masks over the original image, as ultralytics' ``process_mask`` + ``scale_masks``.

    Each mask is ``sigmoid(coefficients @ prototypes)`` kept inside its box (in prototype cells),
    resized bilinearly to the input size, cut to the image inside the bars and resized to the
    original size, then thresholded. Outside its box a mask is zero, and bilinear resizing only
    mixes neighbours, so only the cells in the box and the output pixels they reach are computed.
    """
    w, h = box.size
    n = len(kept.score)
    out = np.zeros((n, h, w), dtype=bool)
    if n == 0:
        return out
    nm, mh, mw = protos.shape
    ih, iw = input_hw
    left, top = box.pad
    inner_w, inner_h = box.resized
    rows = _mask_axis(mh, ih, top, inner_h, h).astype(np.float32)  # (h, mh)
    cols = _mask_axis(mw, iw, left, inner_w, w).astype(np.float32)  # (w, mw)
    reach_rows, reach_cols = rows != 0, cols != 0
    flat = protos.astype(np.float32, copy=False)
    coeffs = kept.coeffs.astype(np.float32, copy=False)
    # Cells inside each box, as ultralytics' crop_mask: x1 * mw / iw <= col < x2 * mw / iw.
    sx, sy = mw / iw, mh / ih
    x_from = np.clip(np.ceil(kept.xyxy[:, 0] * sx), 0, mw).astype(np.int64)
    x_to = np.clip(np.ceil(kept.xyxy[:, 2] * sx), 0, mw).astype(np.int64)
    y_from = np.clip(np.ceil(kept.xyxy[:, 1] * sy), 0, mh).astype(np.int64)
    y_to = np.clip(np.ceil(kept.xyxy[:, 3] * sy), 0, mh).astype(np.int64)
    for i in range(n):
        cy0, cy1, cx0, cx1 = y_from[i], y_to[i], x_from[i], x_to[i]
        if cy0 >= cy1 or cx0 >= cx1:
            continue
        (out_rows,) = np.nonzero(reach_rows[:, cy0:cy1].any(axis=1))
        (out_cols,) = np.nonzero(reach_cols[:, cx0:cx1].any(axis=1))
        if not out_rows.size or not out_cols.size:
            continue  # the box lies in the bars
        r0, r1, c0, c1 = out_rows[0], out_rows[-1] + 1, out_cols[0], out_cols[-1] + 1
        logits = coeffs[i] @ flat[:, cy0:cy1, cx0:cx1].reshape(nm, -1)
        cells = (1.0 / (1.0 + np.exp(-logits))).reshape(cy1 - cy0, cx1 - cx0)
        probs = rows[r0:r1, cy0:cy1] @ cells @ cols[c0:c1, cx0:cx1].T
        out[i, r0:r1, c0:c1] = probs > threshold
    return out


class YoloDetector(BackendBase):
    """The ``Detector`` for ultralytics YOLO ONNX exports (see the module docstring)."""

    def __init__(self, runtime: OnnxRuntime, *, card_labels: object = None) -> None:
        self.runtime = runtime
        spec = runtime.input
        if spec.rank != 4 or spec.dim(1) not in (None, 3):
            raise UnknownModelError(
                f"{runtime.path.name}: input {spec.name!r} has shape {_shape(spec.shape)}, not [batch, 3, height, "
                "width]: this is not a YOLO image model",
                hint="export the model with ultralytics: yolo export model=yolo11n.pt format=onnx",
            )
        preds = [o for o in runtime.outputs if o.rank == 3]
        protos = [o for o in runtime.outputs if o.rank == 4]
        if len(preds) != 1 or len(protos) > 1:
            found = ", ".join(f"{o.name}{_shape(o.shape)}" for o in runtime.outputs)
            raise UnknownModelError(
                f"{runtime.path.name}: expected one detection output [batch, channels, anchors] (and, for a "
                f"segmenter, one prototype output [batch, 32, h, w]); found {found}",
                hint="export the model with ultralytics: yolo export model=yolo11n.pt format=onnx",
            )
        self.input_name = spec.name
        self.input_dtype = spec.dtype if spec.dtype is not None and spec.dtype.kind == "f" else np.dtype(np.float32)
        self.imgsz: tuple[int, int] = _imgsz(runtime)  # (height, width)
        self.batch_limit: int | None = spec.dim(0)
        self.pred_name = preds[0].name
        self.proto_name = protos[0].name if protos else None
        self.has_masks = self.proto_name is not None
        proto_channels = protos[0].dim(1) if protos else 0
        self.nm = int(proto_channels) if proto_channels is not None else 32
        flag = runtime.metadata.get("end2end")
        self._end2end_meta = None if flag is None else flag.strip().lower() in ("true", "1", "yes")
        self._pred_shape = preds[0].shape
        self.layout: Layout | None = _layout(self._pred_shape, self.nm, self._end2end_meta)
        names = parse_names(runtime.metadata.get("names"))
        if names is None and card_labels is not None:
            names = _names_from(card_labels)
        self._names = names or {}
        self.labels: tuple[str, ...] = self._labels(self._classes_in(self._pred_shape))

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, session: OnnxSessionOptions | None = None) -> YoloDetector:
        runtime = OnnxRuntime.load(info.path, device=device, session=session)
        return cls(runtime, card_labels=info.card.get("labels"))

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}

    def _classes_in(self, shape: Sequence[int | None]) -> int | None:
        if self.layout == "plain" and shape[1] is not None:
            nc = int(shape[1]) - 4 - (self.nm if self.has_masks else 0)
            if nc < 1:
                raise UnknownModelError(
                    f"{self.runtime.path.name}: detection output {_shape(shape)} has no room for class scores",
                    hint="expected [batch, 4 + classes (+ 32 mask coefficients), anchors]",
                )
            return nc
        return None

    def _labels(self, nc: int | None) -> tuple[str, ...]:
        count = nc if nc is not None else (max(self._names) + 1 if self._names else 0)
        return tuple(self._names.get(i, str(i)) for i in range(count))

    # -- the Detector protocol ----------------------------------------------------------------

    def prepare(self, image: Image, options: DetectOptions) -> Letterboxed:
        return letterbox(image.pixels, self.imgsz)

    def forward(self, batch: Sequence[Letterboxed]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        step = self.batch_limit or len(batch)
        out: list[tuple[np.ndarray, np.ndarray | None]] = []
        for start in range(0, len(batch), max(step, 1)):
            chunk = batch[start : start + step]
            # A fixed-batch export needs exactly that many images: pad the last chunk with blanks.
            rows = self.batch_limit or len(chunk)
            h, w = self.imgsz
            tensor = np.zeros((rows, 3, h, w), dtype=self.input_dtype)
            for i, item in enumerate(chunk):
                np.divide(item.canvas.transpose(2, 0, 1), 255.0, out=tensor[i], dtype=self.input_dtype)
            names = [self.pred_name] + ([self.proto_name] if self.proto_name else [])
            results = self.runtime.run({self.input_name: tensor}, names)
            pred, protos = results[0], (results[1] if len(results) > 1 else None)
            for i in range(len(chunk)):
                out.append((pred[i], protos[i] if protos is not None else None))
        return out

    def decode(
        self,
        raw: tuple[np.ndarray, np.ndarray | None],
        prepared: Letterboxed,
        options: DetectOptions,
        classes: frozenset[int] | None,
    ) -> Decoded:
        pred, protos = raw
        nm = self.nm if self.has_masks else 0
        layout = self.layout or _layout((None, *pred.shape), nm, self._end2end_meta)
        if layout == "end2end":
            kept = _decode_end2end(pred, nm, options, classes)
        else:
            nc = int(pred.shape[0]) - 4 - nm
            kept = _decode_plain(pred, nc, nm, options, classes)
        masks = None
        if isinstance(options, SegmentOptions) and protos is not None:
            masks = _masks(protos, kept, prepared, self.imgsz, options.mask_threshold)
        return Decoded(_to_original(kept.xyxy, prepared), kept.score, kept.class_id, masks)

    def close(self) -> None:
        self.runtime.close()


def _shape(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
