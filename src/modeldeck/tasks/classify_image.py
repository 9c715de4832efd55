"""Image classification: the best k labels of an image with their scores, best first.

The task owns the pixels: each backend says how its family preprocesses (``ImagePreprocessing``:
size, resize and crop, channel order, scaling, mean and std, layout), the task applies it with
Pillow and NumPy, stacks a batch and hands it to the backend's ``classify``. Scores are the
model's softmax (applied here when the model gives logits), so they sum to 1 over all classes.
Backends live in ``tasks/_image_classifiers.py``: torchvision classifiers, Keras applications, and
TorchScript / torch.export / ONNX / Keras classifiers described by a ``modeldeck.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field

from ..errors import ConfigError, InferenceError
from ..images import Image
from ..types import ModelInfo
from ._backend import Backend
from ._image_prep import ImagePreprocessing, preprocess_image
from ._image_task import ImageTask
from .base import InputKind, Options
from .classify import ClassifyResult, Label

__all__ = [
    "ClassifyImageOptions",
    "ClassifyImageTask",
    "ClassifyResult",
    "ImageClassifier",
    "Label",
    "imagenet_classes",
]

#: What a classifier's scores are: logits (the task applies a softmax), probabilities, or "auto":
#: a row that is already a distribution (non-negative, summing to 1) is taken as probabilities.
ScoreKind = Literal["logits", "probabilities", "auto"]


@cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in class-id order, as shipped in ``modeldeck/data/imagenet-1k.json``.

    Taken from torchvision's weights metadata (``ResNet18_Weights.IMAGENET1K_V1.meta["categories"]``);
    a test checks the file against it. Cached: the file never changes while the process runs.
    """
    text = resources.files("modeldeck").joinpath("data", "imagenet-1k.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["classes"])


class ClassifyImageOptions(Options):
    top_k: int = Field(default=5, ge=1, description="keep the best k labels")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, description="drop labels scoring below this")


class ImageClassifier(Backend, Protocol):
    """One framework's image classifier: how it wants its pixels, and scores for a stacked batch."""

    #: Class names in output order; ``len(labels)`` is the model's number of outputs.
    labels: tuple[str, ...]
    preprocessing: ImagePreprocessing
    #: Whether ``classify`` returns logits (softmax applied by the task), probabilities, or "auto".
    scores: ScoreKind

    def classify(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, H, W) or (N, H, W, C) float32 per ``preprocessing.layout`` -> (N, len(labels)) scores."""
        ...


def is_distribution(scores: np.ndarray) -> bool:
    """Non-negative scores that sum to 1: a model that ends in a softmax (Keras applications do)."""
    return bool(scores.size) and bool((scores >= 0).all()) and abs(float(scores.sum()) - 1.0) <= 1e-4


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


class ClassifyImageTask(ImageTask[np.ndarray, np.ndarray, ClassifyResult, ClassifyImageOptions]):
    name = "classify-image"
    options_type = ClassifyImageOptions
    result_type: ClassVar[type] = ClassifyResult
    input_kind: ClassVar[InputKind] = "image"
    default_batch_size: ClassVar[int] = 16
    #: Keras: ``safe_mode=False`` opts in to Lambda layers; SavedModel: which ``signature`` to run.
    load_args: ClassVar[frozenset[str]] = frozenset({"safe_mode", "signature"})
    backend: ImageClassifier

    def __init__(self, info: ModelInfo, backend: ImageClassifier | None = None, **kwargs: Any) -> None:
        if backend is None:
            raise ConfigError(
                "classify-image needs a backend", hint="load it with modeldeck.load or ClassifyImageTask.from_model"
            )
        super().__init__(info, backend, **kwargs)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.backend.labels

    @property
    def preprocessing(self) -> ImagePreprocessing:
        return self.backend.preprocessing

    def prepare(self, image: Image, options: ClassifyImageOptions) -> np.ndarray:
        return preprocess_image(image, self.backend.preprocessing)

    def forward(self, batch: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not batch:
            return []
        scores = np.asarray(self.backend.classify(np.stack(batch)))
        expected = (len(batch), len(self.backend.labels))
        if scores.shape != expected:
            raise InferenceError(
                f"model {self.info.name!r} returned scores of shape {scores.shape}, expected {expected}",
                hint="the model's output must be one score per class; check its labels",
            )
        return list(scores)

    def postprocess(self, raw: np.ndarray, encoded: np.ndarray, options: ClassifyImageOptions) -> ClassifyResult:
        values = raw.astype(np.float64)
        kind = self.backend.scores
        if kind == "auto":
            kind = "probabilities" if is_distribution(values) else "logits"
        probs = softmax(values) if kind == "logits" else values
        order = np.argsort(-probs, kind="stable")[: options.top_k]
        labels = self.backend.labels
        return ClassifyResult(tuple(Label(labels[i], float(probs[i])) for i in order if probs[i] >= options.min_score))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "num_classes": len(self.backend.labels),
            "preprocessing": self.backend.preprocessing.model_dump(mode="json"),
            "scores": self.backend.scores,
        }


def card_labels(value: object, *, where: str) -> tuple[str, ...] | None:
    """``labels`` from a card or ``modeldeck.json``: a list of names, or ``"imagenet"`` for the shipped 1000."""
    if value is None:
        return None
    if value == "imagenet":
        return imagenet_classes()
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"{where}: 'labels' must be a list of class names or \"imagenet\", got {value!r}",
            hint='list every class name in output order, or write "labels": "imagenet"',
        )
    if not value:
        raise ConfigError(f"{where}: 'labels' is empty", hint="list every class name in output order")
    return tuple(value)


def card_scores(value: object, *, where: str, default: ScoreKind = "auto") -> ScoreKind:
    """``scores`` from a card or ``modeldeck.json``: what the model outputs."""
    if value is None:
        return default
    if value not in ("logits", "probabilities", "auto"):
        raise ConfigError(
            f'{where}: \'scores\' must be "logits", "probabilities" or "auto", got {value!r}',
            hint="logits: the task applies a softmax; probabilities: taken as they are",
        )
    return value  # type: ignore[return-value]
