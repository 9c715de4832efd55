"""Test doubles for the gallery tests: a fake face-embed task that reads faces out of coloured blocks.

A fake photo is a row of 32x32 blocks; a block that is not white is one face whose red channel
is the person, green the variant (small noise) and blue the face's height in pixels (for
``largest``). Images go through ``modeldeck.images.load_image``, so corrupt, tiny and huge
inputs fail exactly as they do for the real task.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modeldeck.errors import MultipleFacesError, NoFaceError
from modeldeck.images import is_image_path, load_image, read_path
from modeldeck.tasks.base import Options, Task
from modeldeck.tasks.faces._results import EmbeddedFace, FaceEmbeddings
from modeldeck.types import ModelInfo

BLOCK = 32
DIM = 128


def person_vector(person: int, variant: int = 0) -> np.ndarray:
    base = np.random.default_rng(person).normal(size=DIM)
    base = 0.5 * base / np.linalg.norm(base)
    if variant:
        base = base + 0.02 * np.random.default_rng(10_000 + 31 * person + variant).normal(size=DIM) / np.sqrt(DIM)
    return base.astype(np.float32)


def fake_photo(*faces: tuple[int, int] | tuple[int, int, int]) -> np.ndarray:
    """One block per face ``(person, variant[, height])``; ``fake_photo()`` is a white photo with no face."""
    blocks = max(1, len(faces))
    pixels = np.full((BLOCK, BLOCK * blocks, 3), 255, dtype=np.uint8)
    for i, face in enumerate(faces):
        person, variant, height = (*face, BLOCK)[:3]
        pixels[:, i * BLOCK : (i + 1) * BLOCK] = (person, variant, height)
    return pixels


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def save_photo(path: Path, *faces: tuple[int, int] | tuple[int, int, int]) -> Path:
    path.write_bytes(png_bytes(fake_photo(*faces)))
    return path


@dataclass(frozen=True)
class FakeFace:
    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]
    vector: np.ndarray


@dataclass(frozen=True)
class FakeEmbeddings:
    faces: tuple[FakeFace, ...]
    width: int
    height: int
    model: str


class FakeEmbedder:
    """Follows the face-embed task contract: ``__call__``, ``embed_one``, ``model_id``, ``dim``, ``metric``."""

    dim = DIM
    metric = "euclidean"
    threshold = 0.6

    def __init__(self, model_id: str = "fake-faces@1", max_pixels: int = 1_000_000) -> None:
        self.model_id = model_id
        self.max_pixels = max_pixels
        self.calls = 0

    def __call__(self, image: Any) -> FakeEmbeddings:
        self.calls += 1
        if is_image_path(image):
            image = read_path(image)
        img = load_image(image, max_pixels=self.max_pixels)
        faces = []
        for i in range(img.width // BLOCK):
            r, g, b = (int(v) for v in img.pixels[0, i * BLOCK])
            if (r, g, b) == (255, 255, 255):
                continue
            vector = person_vector(r, g)
            vector.flags.writeable = False
            box = (float(i * BLOCK), 0.0, float((i + 1) * BLOCK), float(b))
            faces.append(FakeFace(box, 0.99, (), vector))
        return FakeEmbeddings(tuple(faces), img.width, img.height, self.model_id)

    def embed_one(self, image: Any, *, largest: bool = False) -> FakeFace:
        faces = self(image).faces
        if not faces:
            raise NoFaceError("no face found in the image", hint="use a photo with one visible face")
        if len(faces) > 1 and not largest:
            raise MultipleFacesError(f"{len(faces)} faces found in the image", hint="pass largest=True")
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


class FakeEmbedTask(Task[Any, Any, Any, Options]):
    """``FakeEmbedder`` as a real face-embed task, for a served deployment: batched, with results that
    serialize as the real task's do (``FaceEmbeddings``). ``batches`` records each batch's size."""

    name = "face-embed"
    input_kind = "image"
    options_type = Options

    def __init__(self, model_id: str = "fake-faces@1", max_pixels: int = 1_000_000) -> None:
        name, _, version = model_id.partition("@")
        info = ModelInfo(name=name, version=version, tasks=("face-embed",), runtime="python", path=Path("."))
        super().__init__(info, max_image_pixels=max_pixels)
        self.fake = FakeEmbedder(model_id, max_pixels)
        self.batches: list[int] = []
        self.gate: threading.Event | None = None  # set by a test to hold a batch inside the model
        self.entered = threading.Event()

    def preprocess(self, raw: Any, options: Options) -> Any:
        return load_image(raw, max_pixels=self.max_image_pixels)

    def forward(self, batch: Sequence[Any]) -> list[Any]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never released"
        self.batches.append(len(batch))
        return [self.fake(image) for image in batch]

    def postprocess(self, raw: Any, encoded: Any, options: Options) -> FaceEmbeddings:
        faces = tuple(EmbeddedFace(box=f.box, score=f.score, landmarks=(), vector=f.vector) for f in raw.faces)
        return FaceEmbeddings(faces=faces, width=raw.width, height=raw.height, model=raw.model)

    def describe(self) -> dict[str, Any]:
        fake = self.fake
        return {**super().describe(), "model_id": fake.model_id, "dim": fake.dim, "metric": fake.metric,
                "threshold": fake.threshold}  # fmt: skip
