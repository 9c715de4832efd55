"""The backends of ``classify-image``: one class per framework, each an ``ImageClassifier``.

- ``TorchvisionClassifier``: a torchvision architecture plus state dict; the published weights'
  transforms and category names (``runtimes/torchvision_classify.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from ..types import ModelInfo
from ._backend import BackendBase
from ._image_prep import ImagePreprocessing, parse_preprocessing
from .classify_image import ScoreKind, card_labels

if TYPE_CHECKING:
    from ..runtimes.torchvision_classify import TorchvisionClassifierRuntime

__all__ = ["TorchvisionClassifier"]


class TorchvisionClassifier(BackendBase):
    """A torchvision classifier; it gives logits, so the task applies the softmax."""

    scores: ClassVar[ScoreKind] = "logits"
    runtime: TorchvisionClassifierRuntime

    def __init__(self, runtime: Any, *, labels: tuple[str, ...], preprocessing: ImagePreprocessing) -> None:
        super().__init__(runtime)
        self.labels = labels
        self.preprocessing = preprocessing

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.torchvision_classify import TorchvisionClassifierRuntime

        runtime = TorchvisionClassifierRuntime.load(info.path, card=info.card, device=device)
        labels = card_labels(info.card.get("labels"), where=f"model {info.name!r}") or runtime.categories
        where = f"model {info.name!r} preprocessing"
        return cls(runtime, labels=labels, preprocessing=parse_preprocessing(runtime.preprocessing, where=where))

    def classify(self, batch: np.ndarray) -> np.ndarray:
        return self.runtime.classify(batch)
