"""face-embed: one vector per face, after detection (dlib HOG) and alignment on dlib's 5 landmarks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ...errors import MultipleFacesError, NoFaceError, OptionError, OptionFix
from ...images import Image
from ...types import ModelInfo
from .._image_task import ImageTask
from ..base import Options
from ._detectors import DetectionOptions, DlibFaceDetector, FoundFace, check_detector_options, find_faces
from ._embedders import FaceEmbedder
from ._results import EmbeddedFace, FaceEmbeddings

__all__ = ["CONFIDENT_FRACTION", "FaceEmbedOptions", "FaceEmbedTask", "confident_faces", "select_face"]


class FaceEmbedOptions(DetectionOptions):
    # Embedding wants faces large enough to describe well; upsampling also brings HOG false positives.
    upsample: int = Field(
        default=0, ge=0, le=3, description="dlib: upsample the image this many times (finds smaller faces, slower)"
    )
    num_jitters: int = Field(
        default=0,
        ge=0,
        le=100,
        description="dlib ResNet: average this many randomly jittered copies (slower, steadier)",
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    image: Image
    options: Any


#: A face counts as one of "several" only if it scores at least this fraction of the image's best face.
#: Measured with dlib HOG on every face photo the tests use (``python benchmarks/face_scores.py``):
#: a second real face scores >= 0.94x the best, the false detections (the astronaut's mission
#: patch, suit edges) <= 0.35x at upsample 1 and <= 0.08x at upsample 0. Other detectors' scores
#: (dlib CNN, YuNet) sit on a similar 0..~1.5 scale, or are all equal (Haar).
CONFIDENT_FRACTION = 0.5


def confident_faces(faces: Sequence[EmbeddedFace]) -> list[EmbeddedFace]:
    """The faces (highest score first) that score at least ``CONFIDENT_FRACTION`` of the best one."""
    if not faces:
        return []
    best = max(f.score for f in faces)
    if best <= 0:  # a negative threshold was asked for: no scale to compare on, so every face counts
        return list(faces)
    return [f for f in faces if f.score >= CONFIDENT_FRACTION * best]


def select_face(result: FaceEmbeddings, *, largest: bool = False, what: str = "the image") -> EmbeddedFace:
    """The one face of ``result``, chosen by detection confidence.

    Faces scoring under ``CONFIDENT_FRACTION`` of the best are ignored (false detections such as a
    patch on a sleeve). ``NoFaceError`` if there is no face, ``MultipleFacesError`` if several
    confident ones remain, unless ``largest``, which takes the largest box among the confident faces.
    """
    if not result.faces:
        raise NoFaceError(
            f"no face was found in {what} ({result.width}x{result.height})",
            hint="send a photo with a clearly visible, roughly frontal face; for small faces pass upsample=1 or 2",
            fix=OptionFix("upsample", 1, "upsample=1"),
        )
    confident = confident_faces(result.faces)
    if len(confident) > 1 and not largest:
        ignored = len(result.faces) - len(confident)
        raise MultipleFacesError(
            f"{len(confident)} faces were found in {what}, where one was expected"
            + (f" ({ignored} weaker detection(s) ignored)" if ignored else ""),
            hint="crop the image to one face, or pass largest=True to use the largest face",
            fix=OptionFix("largest", True, "largest=True"),
        )
    return max(confident, key=lambda f: f.area) if largest else confident[0]


class FaceEmbedTask(ImageTask[Prepared, list[tuple[FoundFace, np.ndarray]], FaceEmbeddings, FaceEmbedOptions]):
    name = "face-embed"
    result_type: ClassVar[type] = FaceEmbeddings
    options_type: ClassVar[type[Options]] = FaceEmbedOptions

    #: ``detector="hog"`` (fast) or ``"cnn"`` (MMOD: more poses, ~1 s per 512x512 on a CPU) at load time.
    load_args: ClassVar[frozenset[str]] = frozenset({"detector"})
    default_batch_size: ClassVar[int] = 16
    backend: FaceEmbedder

    def __init__(self, info: ModelInfo, backend: FaceEmbedder, **kwargs: Any) -> None:
        self.dlib = backend.aligner
        self.detector = DlibFaceDetector(backend.aligner)
        self.embedder = backend
        super().__init__(info, backend, **kwargs)

    # -- what the model is (F2's Gallery keys on these) -----------------------------------

    @property
    def model_id(self) -> str:
        """``"name@version"``: vectors compare only within one embedding model."""
        return f"{self.info.name}@{self.info.version}"

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def metric(self) -> str:
        return self.embedder.metric

    @property
    def threshold(self) -> float:
        return self.embedder.threshold

    def check_options(self, options: FaceEmbedOptions) -> FaceEmbedOptions:
        check_detector_options(self.name, self.detector.kind, options)
        if "num_jitters" in options.model_fields_set and options.num_jitters and not self.embedder.uses_jitter:
            raise OptionError(f"{self.name}: num_jitters applies to dlib's ResNet only, not to {self.model_id}")
        return options

    # -- stages ---------------------------------------------------------------------------

    def prepare(self, image: Image, options: FaceEmbedOptions) -> Prepared:
        return Prepared(image, options)

    def forward(self, batch: Sequence[Prepared]) -> list[list[tuple[FoundFace, np.ndarray]]]:
        faces = [
            find_faces(self.detector, self.dlib, p.image.pixels, p.options, 5, native_landmarks=False) for p in batch
        ]
        vectors: list[np.ndarray | None] = [None] * len(batch)
        # One embedding call per distinct num_jitters (in practice: one call for the whole batch).
        for jitters in sorted({p.options.num_jitters for p in batch}):
            idx = [i for i, p in enumerate(batch) if p.options.num_jitters == jitters]
            got = self.embedder.embed([batch[i].image.pixels for i in idx], [faces[i] for i in idx], self.dlib, jitters)
            for i, v in zip(idx, got, strict=True):
                vectors[i] = v
        return [list(zip(f, v, strict=True)) for f, v in zip(faces, vectors, strict=True)]  # type: ignore[arg-type]

    def postprocess(
        self, raw: list[tuple[FoundFace, np.ndarray]], encoded: Prepared, options: FaceEmbedOptions
    ) -> FaceEmbeddings:
        faces = tuple(
            EmbeddedFace(
                box=f.box,
                score=f.score,
                landmarks=tuple((float(x), float(y)) for x, y in f.landmarks),
                vector=vector,
            )
            for f, vector in raw
        )
        return FaceEmbeddings(faces=faces, width=encoded.image.width, height=encoded.image.height, model=self.model_id)

    def embed_one(self, image: Any, *, largest: bool = False, **options: Any) -> EmbeddedFace:
        """The embedding of the one face in ``image``.

        Raises ``NoFaceError`` when no face is found and ``MultipleFacesError`` when several are,
        unless ``largest=True``, which takes the face with the largest box.
        """
        return select_face(self(image, **options), largest=largest)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(model_id=self.model_id, dim=self.dim, metric=self.metric, threshold=self.threshold)
        return out
