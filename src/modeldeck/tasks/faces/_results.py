"""Results of the face tasks: faces with boxes and landmarks, their embeddings, and a verification verdict.

Boxes are ``(x1, y1, x2, y2)`` floats in the pixels of the image the caller sent (after EXIF
orientation), clipped to it; landmarks are ``(x, y)`` points in the same pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import _pyarrow, readonly_array

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EmbeddedFace", "Face", "FaceEmbeddings", "Faces", "Verification"]

Box = tuple[float, float, float, float]
Point = tuple[float, float]


def _box(values: Sequence[Any]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


def _points(values: Sequence[Sequence[Any]]) -> tuple[Point, ...]:
    return tuple((float(p[0]), float(p[1])) for p in values)


def _face_fields() -> list[tuple[str, Any]]:
    pa = _pyarrow()
    return [
        ("box", pa.list_(pa.float64(), 4)),
        ("score", pa.float64()),
        ("landmarks", pa.list_(pa.list_(pa.float64(), 2))),
    ]


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face: ``box`` in original-image pixels, the detector's ``score``, ``landmarks`` (may be empty)."""

    box: Box
    score: float
    landmarks: tuple[Point, ...] = ()

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": self.score, "landmarks": [list(p) for p in self.landmarks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Face:
        return cls(box=_box(data["box"]), score=float(data["score"]), landmarks=_points(data.get("landmarks") or ()))

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        return _pyarrow().struct(_face_fields())


class _FaceList:
    """Sequence behaviour shared by ``Faces`` and ``FaceEmbeddings``."""

    __slots__ = ()
    faces: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.faces)

    def __getitem__(self, index: int) -> Any:
        return self.faces[index]

    @property
    def boxes(self) -> np.ndarray:
        """``(N, 4)`` float32 boxes, read-only."""
        return readonly_array(np.array([f.box for f in self.faces], dtype=np.float32).reshape(-1, 4), np.float32)

    @property
    def scores(self) -> np.ndarray:
        return readonly_array([f.score for f in self.faces], np.float32)

    def largest(self) -> Any:
        """The face with the largest box (the first one on a tie); ``IndexError`` when there is none."""
        if not self.faces:
            raise IndexError("no faces")
        return max(self.faces, key=lambda f: f.area)


@dataclass(frozen=True, slots=True)
class Faces(_FaceList):
    """The faces found in one image, highest score first, and that image's size."""

    faces: tuple[Face, ...]
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return {"faces": [f.to_dict() for f in self.faces], "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faces:
        return cls(
            faces=tuple(Face.from_dict(f) for f in data["faces"]), width=int(data["width"]), height=int(data["height"])
        )

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([("faces", pa.list_(Face.arrow_type())), ("width", pa.int64()), ("height", pa.int64())])


@dataclass(frozen=True, slots=True, eq=False)
class EmbeddedFace:
    """A face and its embedding: ``vector`` is float32 and read-only."""

    box: Box
    score: float
    landmarks: tuple[Point, ...]
    vector: np.ndarray

    def __post_init__(self) -> None:
        vector = readonly_array(self.vector, np.float32)
        if vector.ndim != 1:
            raise ValueError(f"a face embedding must be 1-D, got shape {vector.shape}")
        object.__setattr__(self, "vector", vector)

    @property
    def face(self) -> Face:
        return Face(box=self.box, score=self.score, landmarks=self.landmarks)

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])

    @property
    def area(self) -> float:
        return self.face.area

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EmbeddedFace):
            return NotImplemented
        return self.face == other.face and np.array_equal(self.vector, other.vector)

    def __hash__(self) -> int:
        return hash((self.face, self.vector.tobytes()))

    def to_dict(self) -> dict[str, Any]:
        return {**self.face.to_dict(), "vector": self.vector.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddedFace:
        face = Face.from_dict(data)
        return cls(box=face.box, score=face.score, landmarks=face.landmarks, vector=np.asarray(data["vector"]))

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([*_face_fields(), ("vector", pa.list_(pa.float32()))])


@dataclass(frozen=True, slots=True)
class FaceEmbeddings(_FaceList):
    """Every face found in one image with its embedding, highest detection score first.

    ``model`` is ``"name@version"`` of the embedding model: vectors compare only within one model.
    """

    faces: tuple[EmbeddedFace, ...]
    width: int
    height: int
    model: str

    @property
    def vectors(self) -> np.ndarray:
        """``(N, dim)`` float32, read-only; ``(0, 0)`` when no face was found."""
        if not self.faces:
            return readonly_array(np.zeros((0, 0), dtype=np.float32), np.float32)
        return readonly_array(np.stack([f.vector for f in self.faces]), np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "faces": [f.to_dict() for f in self.faces],
            "width": self.width,
            "height": self.height,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaceEmbeddings:
        return cls(
            faces=tuple(EmbeddedFace.from_dict(f) for f in data["faces"]),
            width=int(data["width"]),
            height=int(data["height"]),
            model=str(data["model"]),
        )

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("faces", pa.list_(EmbeddedFace.arrow_type())), ("width", pa.int64()), ("height", pa.int64()),
             ("model", pa.string())]
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verification:
    """Whether two images show the same person.

    ``match`` is ``distance <= threshold``; ``confidence`` is a logistic of the margin,
    ``1 / (1 + exp(-(threshold - distance) / (0.1 * threshold)))``: 0.5 at the threshold, above
    0.5 exactly when ``match``, near 1 (or 0) a tenth of the threshold or more below (or above) it.
    ``faces`` counts the faces found in each image.
    """

    distance: float
    threshold: float
    match: bool
    confidence: float
    model: str
    metric: str
    faces: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "distance": self.distance,
            "threshold": self.threshold,
            "match": self.match,
            "confidence": self.confidence,
            "model": self.model,
            "metric": self.metric,
            "faces": list(self.faces),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verification:
        n_a, n_b = (int(v) for v in data["faces"])
        return cls(
            distance=float(data["distance"]),
            threshold=float(data["threshold"]),
            match=bool(data["match"]),
            confidence=float(data["confidence"]),
            model=str(data["model"]),
            metric=str(data["metric"]),
            faces=(n_a, n_b),
        )

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("distance", pa.float64()), ("threshold", pa.float64()), ("match", pa.bool_()),
             ("confidence", pa.float64()), ("model", pa.string()), ("metric", pa.string()),
             ("faces", pa.list_(pa.int64(), 2))]
        )  # fmt: skip
