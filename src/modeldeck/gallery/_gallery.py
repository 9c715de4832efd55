"""``Gallery``: enrol named people's faces and identify the faces of new photos, one model per file."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..errors import (
    ConfigError,
    EmptyInputError,
    GalleryModelMismatchError,
    InputError,
    InputTypeError,
    NoFaceError,
    NotFoundError,
    OptionError,
)
from ._results import (
    Box,
    Candidate,
    EnrolledImage,
    EnrollReport,
    Identification,
    IdentifiedFace,
    PersonInfo,
    SkippedImage,
    as_box,
)
from ._search import Snapshot, build_snapshot, empty_snapshot, rank
from ._store import GalleryMeta, GalleryStore

if TYPE_CHECKING:
    from .._api import Loader

__all__ = ["MAX_NAME_CHARS", "Gallery"]

MAX_NAME_CHARS = 200


def _model_ref_id(ref: str, settings: Settings | None = None) -> str:
    """``name@version`` of a model reference, resolved through the store without loading it."""
    from ..store import ModelStore

    info = ModelStore(settings or Settings.from_env()).resolve(ref, task="face-embed")
    return f"{info.name}@{info.version}"


def _load_embedder(ref: str, settings: Settings | None, loader: Loader) -> Any:
    from ..tasks import TASKS

    if ref in TASKS:
        return loader(ref, settings=settings)
    return loader("face-embed", model=ref, settings=settings)


def _check_embedder(task: Any) -> Any:
    missing = [attr for attr in ("model_id", "dim", "metric", "threshold", "embed_one") if not hasattr(task, attr)]
    if missing or not callable(task):
        raise InputTypeError(
            f"model must be a model reference or a loaded face-embed task, got {type(task).__name__}",
            hint='pass "face-embed", a model name, or modeldeck.load("face-embed")',
        )
    if task.metric not in ("euclidean", "cosine"):
        raise ConfigError(f"the face-embed model uses an unknown metric {task.metric!r}")
    return task


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise InputTypeError(f"a person's name must be a string, got {type(name).__name__}", hint="pass a name")
    clean = name.strip()
    if not clean:
        raise EmptyInputError("a person's name is empty", hint="pass a non-empty name")
    if len(clean) > MAX_NAME_CHARS or "/" in clean or any(ord(ch) < 32 for ch in clean):
        raise InputError(
            f"invalid person name {clean[:40]!r}",
            hint=f"use at most {MAX_NAME_CHARS} characters, no '/' and no control characters",
        )
    return clean


def _source_of(raw: object, index: int) -> str:
    if isinstance(raw, os.PathLike):
        return str(raw)
    from ..images import is_image_path

    return str(raw) if is_image_path(raw) else f"image {index + 1}"


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


class Gallery:
    """People and their face vectors in one SQLite file, identified by nearest neighbour.

    ``model`` is a model reference (``"face-embed"``, ``"name@version"``, a path), a loaded
    ``face-embed`` task, or None for the model the gallery records. A reference is loaded on the
    first call that embeds an image, so ``people()`` and ``remove_person()`` load no model.
    ``settings`` (image size limits, model home) apply to a model loaded from a reference.
    A new gallery file is created when ``create`` is true; otherwise a missing file raises
    ``GalleryNotFoundError``. Opening a gallery with a model other than the one that built it
    raises ``GalleryModelMismatchError``: distances between two models' vectors mean nothing.

    One object may be shared by threads; several objects and processes may use one file at
    once (readers never wait for a writer; writers take turns). Calls to the embedder take turns
    too (a task is not safe to call from two threads), unless ``serialize_embedding`` is false:
    the server's embedder submits to a batched deployment, where concurrent calls batch together.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: Any = "face-embed",
        *,
        create: bool = True,
        settings: Settings | None = None,
        loader: Loader | None = None,
        serialize_embedding: bool = True,
    ) -> None:
        from .._api import load

        self.path = Path(path)
        self._settings = settings
        self._loader: Loader = load if loader is None else loader
        self._load_lock = threading.Lock()
        self._embed_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialize_embedding else contextlib.nullcontext()
        )
        self._task: Any = _check_embedder(model) if model is not None and not isinstance(model, str) else None
        self._ref: str | None = model if isinstance(model, str) else None
        self._meta: GalleryMeta | None = None
        self._store = GalleryStore(self.path, create=create)
        try:
            if create and self._store.is_blank():
                # New (or an empty SQLite file): the model says what the file will hold.
                task = self.embedder
                self._meta = self._store.create(
                    GalleryMeta(task.model_id, int(task.dim), str(task.metric), float(task.threshold))
                )
            else:
                self._meta = self._store.read_meta()
            if self._task is not None:
                self._check_model(self._task.model_id)
            elif self._ref is not None:
                self._check_model(_model_ref_id(self._ref, self._settings))
        except BaseException:
            self._store.close()
            raise
        self._snapshot = empty_snapshot(-1, self.dim)
        self._snapshot_lock = threading.Lock()

    # -- what the gallery holds

    @property
    def model_id(self) -> str:
        return self._recorded.model_id

    @property
    def dim(self) -> int:
        return self._recorded.dim

    @property
    def metric(self) -> str:
        return self._recorded.metric

    @property
    def threshold(self) -> float:
        return self._recorded.threshold

    @property
    def _recorded(self) -> GalleryMeta:
        assert self._meta is not None, "the gallery's meta is read when it opens"
        return self._meta

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise GalleryModelMismatchError(
                f"the gallery {str(self.path)!r} was built with {self.model_id}, not {model_id}: "
                "vectors of two models cannot be compared",
                hint=f"open it with model={self.model_id!r}, or enroll the people again into a new gallery",
            )

    @property
    def embedder(self) -> Any:
        """The face-embed task, loaded on first use when the gallery was opened with a reference."""
        with self._load_lock:
            if self._task is None:
                ref = self._ref if self._ref is not None else (self._meta.model_id if self._meta else "face-embed")
                task = _check_embedder(_load_embedder(ref, self._settings, self._loader))
                if self._meta is not None:
                    self._check_model(task.model_id)
                self._task = task
            return self._task

    def _current(self) -> Snapshot:
        """The in-memory matrix, reloaded only when the file's generation moved."""
        with self._snapshot_lock:
            if self._store.generation() != self._snapshot.generation:
                generation, rows = self._store.all_vectors()
                self._snapshot = build_snapshot(generation, rows, self.dim, self.metric)
            return self._snapshot

    # -- reading

    def __len__(self) -> int:
        """The number of people."""
        return self._store.count_people()

    def people(self) -> list[PersonInfo]:
        """Everyone enrolled, by name, with how many images (vectors) each has."""
        return [PersonInfo(name, count) for name, count in self._store.people()]

    def images(self, name: str) -> list[EnrolledImage]:
        """The vectors stored for one person: their ids (for ``remove_image``) and sources."""
        rows = self._store.images(_check_name(name))
        if not rows:
            raise self._no_person(name)
        return [EnrolledImage(image_id, source) for image_id, source in rows]

    def search(self, vector: Any, *, top_k: int = 5, threshold: float | None = None) -> tuple[Candidate, ...]:
        """Rank the people closest to one embedding vector (the search ``identify`` runs per face)."""
        top_k, limit = self._check_search(top_k, threshold)
        return rank(self._current(), self._query(vector), self.metric, top_k, limit)

    def identify(
        self, image: Any, *, top_k: int = 5, threshold: float | None = None, largest: bool = False
    ) -> Identification:
        """Identify every face in ``image`` (or only the largest), each with up to ``top_k`` candidates.

        A face is ``unknown`` (``name`` None) when its best candidate is farther than
        ``threshold`` (default: the model's). An image without a face raises ``NoFaceError``.
        """
        top_k, limit = self._check_search(top_k, threshold)
        task = self.embedder
        with self._embed_lock:
            result = task(image)
        faces = list(result.faces)
        if not faces:
            raise NoFaceError("no face was found in the image to identify", hint="send a photo with a visible face")
        if largest:
            from ..tasks.faces._embed import confident_faces

            # The largest among the confident faces: a big, weak false detection is not a face to name.
            faces = [max(confident_faces(faces), key=lambda f: _area(as_box(f.box)))]
        snap = self._current()
        identified = tuple(
            IdentifiedFace(as_box(f.box), float(f.score), rank(snap, self._query(f.vector), self.metric, top_k, limit))
            for f in faces
        )
        return Identification(identified, limit, self.metric, self.model_id)

    def _check_search(self, top_k: int, threshold: float | None) -> tuple[int, float]:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise OptionError(f"top_k must be an integer >= 1, got {top_k!r}")
        limit = self.threshold if threshold is None else threshold
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise OptionError(f"threshold must be a number > 0, got {threshold!r}")
        return top_k, float(limit)

    def _vector(self, vector: Any) -> np.ndarray:
        data = np.asarray(vector, dtype=np.float32).reshape(-1)
        if data.shape[0] != self.dim:
            raise InputError(
                f"a vector of this gallery has {self.dim} dimensions, got {data.shape[0]}",
                hint=f"embed with {self.model_id}",
            )
        return data

    def _query(self, vector: Any) -> np.ndarray:
        query = self._vector(vector)
        if self.metric == "cosine":
            query = query / (float(np.linalg.norm(query)) or 1.0)
        return query

    # -- writing

    def enroll(
        self,
        name: str,
        images: Any,
        *,
        largest: bool = False,
        sources: Sequence[str] | None = None,
        on_image: Callable[[str, BaseException | None], None] | None = None,
    ) -> EnrollReport:
        """Add one vector per image of ``name`` (created if new); return what was added and skipped.

        ``images`` is one image or a list (paths, bytes, arrays, PIL images). An image with no
        face, several faces (unless ``largest``) or that cannot be decoded is skipped and
        reported; if no image succeeds, the first one's error is raised and nothing is written.
        ``on_image(source, error_or_None)`` is called after each image (progress bars).
        """
        person = _check_name(name)
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise EmptyInputError(f"no images given to enroll {person!r}", hint="pass at least one image")
        if sources is not None and len(sources) != len(batch):
            raise OptionError(f"sources has {len(sources)} labels for {len(batch)} images")
        labels = [str(s) for s in sources] if sources is not None else [_source_of(r, i) for i, r in enumerate(batch)]
        task = self.embedder
        found: list[tuple[str, np.ndarray, Box]] = []
        skipped: list[tuple[SkippedImage, InputError]] = []
        for raw, label in zip(batch, labels, strict=True):
            error: InputError | None = None
            try:
                with self._embed_lock:
                    face = task.embed_one(raw, largest=largest)
                found.append((label, self._vector(face.vector), as_box(face.box)))
            except InputError as exc:
                skipped.append((SkippedImage(label, exc.code, exc.message), exc))
                error = exc
            if on_image is not None:
                on_image(label, error)
        if not found:
            first = skipped[0][1]
            if len(skipped) > 1:
                first.message = (
                    f"none of the {len(skipped)} images of {person!r} could be enrolled; first: {first.message}"
                )
            raise first
        ids, total = self._store.add(person, [(v.astype("<f4").tobytes(), label) for label, v, _ in found])
        added = tuple(EnrolledImage(i, label, box) for i, (label, _, box) in zip(ids, found, strict=True))
        return EnrollReport(person, added, tuple(s for s, _ in skipped), total)

    def add_vectors(self, name: str, vectors: Any, *, sources: Sequence[str] | None = None) -> list[int]:
        """Store vectors already computed with this gallery's model (bulk imports); return their ids."""
        person = _check_name(name)
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self.dim or matrix.shape[0] == 0:
            raise InputError(
                f"vectors must have shape (n, {self.dim}) with n >= 1, got {matrix.shape}",
                hint=f"embed with {self.model_id}",
            )
        if not np.isfinite(matrix).all():
            raise InputError("vectors contain NaN or infinity")
        labels = [str(s) for s in sources] if sources is not None else ["vector"] * matrix.shape[0]
        if len(labels) != matrix.shape[0]:
            raise OptionError(f"sources has {len(labels)} labels for {matrix.shape[0]} vectors")
        rows = [(row.astype("<f4").tobytes(), label) for row, label in zip(matrix, labels, strict=True)]
        return self._store.add(person, rows)[0]

    def remove_person(self, name: str) -> int:
        """Remove a person and every vector of theirs; return how many vectors went."""
        removed = self._store.remove_person(_check_name(name))
        if removed is None:
            raise self._no_person(name)
        return removed

    def remove_image(self, image_id: int) -> str:
        """Remove one stored vector; a person left with none is removed too. Returns the person's name."""
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise InputTypeError(f"an image id must be an integer, got {type(image_id).__name__}")
        name = self._store.remove_image(image_id)
        if name is None:
            raise NotFoundError(f"no image {image_id} in the gallery", hint="list a person's images for their ids")
        return name

    def _no_person(self, name: str) -> NotFoundError:
        return NotFoundError(f"no person named {name!r} in the gallery", hint="list the people: gallery.people()")

    # -- lifecycle

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Gallery path={str(self.path)!r} model={self.model_id!r} people={len(self)}>"
