"""Results of the vision tasks: boxes in original-image pixels, and instance masks as COCO RLE.

Boxes are ``[x1, y1, x2, y2]`` floats in the pixels of the image the caller sent (after EXIF
orientation), clipped to it. Masks are COCO run-length encodings (``{"size": [h, w], "counts": str}``),
which ``Mask.decode`` turns back into a bool array of the image's shape.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtimes.base import import_framework
from .results import _pyarrow, readonly_array

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Boxes", "DetectResult", "Detection", "Instance", "Mask", "SegmentResult"]


def _coco_mask() -> Any:
    return import_framework("pycocotools.mask", package="pycocotools", extra="vision", purpose="COCO RLE masks")


@contextlib.contextmanager
def _quiet_numpy2() -> Iterator[None]:
    """pycocotools' array wrapper predates NumPy 2's ``copy`` keyword; its warning is not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*copy keyword", category=DeprecationWarning)
        yield


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object: ``box`` is ``(x1, y1, x2, y2)`` in original-image pixels."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int
    label: str

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": self.score, "class_id": self.class_id, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Detection:
        x1, y1, x2, y2 = (float(v) for v in data["box"])
        return cls(
            box=(x1, y1, x2, y2), score=float(data["score"]), class_id=int(data["class_id"]), label=str(data["label"])
        )

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("box", pa.list_(pa.float64(), 4)), ("score", pa.float64()), ("class_id", pa.int64()),
             ("label", pa.string())]
        )  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Boxes:
    """Column views of a result's detections: ``xyxy`` (N, 4) float32, ``score`` (N,), ``class_id`` (N,)."""

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray
    label: tuple[str, ...]

    @classmethod
    def of(cls, detections: Sequence[Detection]) -> Boxes:
        return cls(
            xyxy=readonly_array(np.array([d.box for d in detections], dtype=np.float32).reshape(-1, 4), np.float32),
            score=readonly_array([d.score for d in detections], np.float32),
            class_id=readonly_array([d.class_id for d in detections], np.int64),
            label=tuple(d.label for d in detections),
        )

    def __len__(self) -> int:
        return len(self.label)


def _detections(xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, labels: Sequence[str]) -> list[Detection]:
    return [
        Detection(box=tuple(float(v) for v in box), score=float(s), class_id=int(c), label=labels[i])  # type: ignore[arg-type]
        for i, (box, s, c) in enumerate(zip(xyxy, score, class_id, strict=True))
    ]


@dataclass(frozen=True, slots=True)
class DetectResult:
    """Detections sorted by score (highest first), and the size of the image they refer to."""

    detections: tuple[Detection, ...]
    width: int
    height: int

    @classmethod
    def from_arrays(
        cls, xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, labels: Sequence[str], size: tuple[int, int]
    ) -> DetectResult:
        """``labels[i]`` names detection ``i``; rows are sorted by descending score here."""
        order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
        dets = _detections(np.asarray(xyxy)[order], np.asarray(score)[order], np.asarray(class_id)[order],
                           [labels[i] for i in order])  # fmt: skip
        return cls(detections=tuple(dets), width=int(size[0]), height=int(size[1]))

    def __len__(self) -> int:
        return len(self.detections)

    def __iter__(self) -> Iterator[Detection]:
        return iter(self.detections)

    def __getitem__(self, index: int) -> Detection:
        return self.detections[index]

    @property
    def boxes(self) -> Boxes:
        return Boxes.of(self.detections)

    def to_dict(self) -> dict[str, Any]:
        return {"detections": [d.to_dict() for d in self.detections], "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectResult:
        return cls(
            detections=tuple(Detection.from_dict(d) for d in data["detections"]),
            width=int(data["width"]),
            height=int(data["height"]),
        )

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("detections", pa.list_(Detection.arrow_type())), ("width", pa.int64()), ("height", pa.int64())]
        )


@dataclass(frozen=True, slots=True)
class Mask:
    """A binary mask as COCO compressed RLE: ``size`` is ``(height, width)``, ``counts`` the RLE string."""

    size: tuple[int, int]
    counts: str

    @classmethod
    def encode(cls, mask: np.ndarray) -> Mask:
        """RLE-encode a 2-D bool (or 0/1) array."""
        array = np.asarray(mask)
        if array.ndim != 2:
            raise ValueError(f"a mask must be 2-D, got shape {array.shape}")
        rle = _coco_mask().encode(np.asfortranarray(array.astype(np.uint8)))
        return cls(size=(int(rle["size"][0]), int(rle["size"][1])), counts=rle["counts"].decode("ascii"))

    def decode(self) -> np.ndarray:
        """The mask as a read-only bool array of shape ``size``."""
        with _quiet_numpy2():
            array = _coco_mask().decode(self.to_coco()).astype(bool)
        array.flags.writeable = False
        return array

    @property
    def area(self) -> int:
        with _quiet_numpy2():
            return int(_coco_mask().area(self.to_coco()))

    def to_coco(self) -> dict[str, Any]:
        """The dict pycocotools takes (``counts`` as bytes)."""
        return {"size": list(self.size), "counts": self.counts.encode("ascii")}

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "counts": self.counts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Mask:
        counts = data["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        if not isinstance(counts, str):  # uncompressed RLE (a list of run lengths): compress it
            h, w = (int(v) for v in data["size"])
            rle = _coco_mask().frPyObjects({"size": [h, w], "counts": list(counts)}, h, w)
            counts = rle["counts"].decode("ascii")
        h, w = (int(v) for v in data["size"])
        return cls(size=(h, w), counts=counts)

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([("size", pa.list_(pa.int64(), 2)), ("counts", pa.string())])


@dataclass(frozen=True, slots=True)
class Instance:
    """One segmented object: its box, score and class, and its mask over the whole image."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int
    label: str
    mask: Mask

    @property
    def detection(self) -> Detection:
        return Detection(box=self.box, score=self.score, class_id=self.class_id, label=self.label)

    def to_dict(self) -> dict[str, Any]:
        return {**self.detection.to_dict(), "mask": self.mask.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instance:
        det = Detection.from_dict(data)
        return cls(
            box=det.box, score=det.score, class_id=det.class_id, label=det.label, mask=Mask.from_dict(data["mask"])
        )

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        det = Detection.arrow_type()
        return pa.struct([*(det.field(i) for i in range(det.num_fields)), ("mask", Mask.arrow_type())])


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """Instances sorted by score (highest first), with the size of the image their masks cover."""

    instances: tuple[Instance, ...]
    width: int
    height: int

    @classmethod
    def from_arrays(
        cls,
        xyxy: np.ndarray,
        score: np.ndarray,
        class_id: np.ndarray,
        labels: Sequence[str],
        masks: np.ndarray | Sequence[Mask],
        size: tuple[int, int],
    ) -> SegmentResult:
        """``masks`` is (N, H, W) bool over the original image, or ready ``Mask`` objects."""
        order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
        dets = _detections(np.asarray(xyxy)[order], np.asarray(score)[order], np.asarray(class_id)[order],
                           [labels[i] for i in order])  # fmt: skip
        encoded = [m if isinstance(m, Mask) else Mask.encode(m) for m in (masks[i] for i in order)]
        instances = tuple(
            Instance(box=d.box, score=d.score, class_id=d.class_id, label=d.label, mask=m)
            for d, m in zip(dets, encoded, strict=True)
        )
        return cls(instances=instances, width=int(size[0]), height=int(size[1]))

    def __len__(self) -> int:
        return len(self.instances)

    def __iter__(self) -> Iterator[Instance]:
        return iter(self.instances)

    def __getitem__(self, index: int) -> Instance:
        return self.instances[index]

    @property
    def detections(self) -> tuple[Detection, ...]:
        return tuple(i.detection for i in self.instances)

    @property
    def boxes(self) -> Boxes:
        return Boxes.of(self.detections)

    def to_dict(self) -> dict[str, Any]:
        return {"instances": [i.to_dict() for i in self.instances], "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentResult:
        return cls(
            instances=tuple(Instance.from_dict(i) for i in data["instances"]),
            width=int(data["width"]),
            height=int(data["height"]),
        )

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("instances", pa.list_(Instance.arrow_type())), ("width", pa.int64()), ("height", pa.int64())]
        )
