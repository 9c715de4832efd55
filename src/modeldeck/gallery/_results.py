"""What the gallery answers: people, enrolment reports and ranked identities, as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Box",
    "Candidate",
    "EnrollReport",
    "EnrolledImage",
    "Identification",
    "IdentifiedFace",
    "PersonInfo",
    "SkippedImage",
    "as_box",
]

Box = tuple[float, float, float, float]


def as_box(value: Any) -> Box:
    """``(x1, y1, x2, y2)`` floats from a tuple, an object with ``xyxy`` or a mapping."""
    if hasattr(value, "xyxy"):
        value = value.xyxy
    elif isinstance(value, Mapping):
        value = (value["x1"], value["y1"], value["x2"], value["y2"])
    x1, y1, x2, y2 = (float(v) for v in value)
    return x1, y1, x2, y2


@dataclass(frozen=True, slots=True)
class PersonInfo:
    name: str
    images: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "images": self.images}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PersonInfo:
        return cls(name=str(data["name"]), images=int(data["images"]))


@dataclass(frozen=True, slots=True)
class EnrolledImage:
    """One stored vector: its id (for ``remove_image``), where it came from, and the face's box."""

    image_id: int
    source: str
    box: Box | None = None  # known right after enrolling; not stored

    def to_dict(self) -> dict[str, Any]:
        box = list(self.box) if self.box is not None else None
        return {"image_id": self.image_id, "source": self.source, "box": box}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnrolledImage:
        box = as_box(data["box"]) if data.get("box") is not None else None
        return cls(image_id=int(data["image_id"]), source=str(data["source"]), box=box)


@dataclass(frozen=True, slots=True)
class SkippedImage:
    """An image that added nothing, with the error code and message that say why."""

    source: str
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkippedImage:
        return cls(source=str(data["source"]), code=str(data["code"]), message=str(data["message"]))


@dataclass(frozen=True, slots=True)
class EnrollReport:
    """What ``enroll`` did: the vectors added, the images skipped, and the person's total afterwards."""

    name: str
    added: tuple[EnrolledImage, ...]
    skipped: tuple[SkippedImage, ...]
    images: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "added": [item.to_dict() for item in self.added],
            "skipped": [item.to_dict() for item in self.skipped],
            "images": self.images,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnrollReport:
        return cls(
            name=str(data["name"]),
            added=tuple(EnrolledImage.from_dict(item) for item in data["added"]),
            skipped=tuple(SkippedImage.from_dict(item) for item in data["skipped"]),
            images=int(data["images"]),
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """One enrolled person ranked for a probe face: their best (smallest) distance and its image."""

    name: str
    distance: float
    image_id: int
    match: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distance": self.distance, "image_id": self.image_id, "match": self.match}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        return cls(
            name=str(data["name"]),
            distance=float(data["distance"]),
            image_id=int(data["image_id"]),
            match=bool(data["match"]),
        )


@dataclass(frozen=True, slots=True)
class IdentifiedFace:
    """One face of the probe: ``name`` is the best candidate within the threshold, else None (unknown)."""

    box: Box
    score: float
    candidates: tuple[Candidate, ...]

    @property
    def name(self) -> str | None:
        return self.candidates[0].name if self.candidates and self.candidates[0].match else None

    @property
    def unknown(self) -> bool:
        return self.name is None

    @property
    def distance(self) -> float | None:
        """The best candidate's distance (None when the gallery is empty)."""
        return self.candidates[0].distance if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "score": self.score,
            "name": self.name,
            "distance": self.distance,
            "candidates": [c.to_dict() for c in self.candidates],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IdentifiedFace:
        return cls(
            box=as_box(data["box"]),
            score=float(data["score"]),
            candidates=tuple(Candidate.from_dict(c) for c in data["candidates"]),
        )


@dataclass(frozen=True, slots=True)
class Identification:
    """Every face found in the probe (or only the largest), each with its ranked candidates."""

    faces: tuple[IdentifiedFace, ...]
    threshold: float
    metric: str
    model: str

    @property
    def names(self) -> tuple[str | None, ...]:
        return tuple(face.name for face in self.faces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "faces": [face.to_dict() for face in self.faces],
            "threshold": self.threshold,
            "metric": self.metric,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identification:
        return cls(
            faces=tuple(IdentifiedFace.from_dict(f) for f in data["faces"]),
            threshold=float(data["threshold"]),
            metric=str(data["metric"]),
            model=str(data["model"]),
        )
