"""Semantic search over a small corpus: cosine scores of query embeddings against corpus embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import EmptyInputError, InputTypeError, OptionError
from .tasks.results import readonly_array

if TYPE_CHECKING:
    from .tasks.base import Task

__all__ = ["Hit", "SimilarityResult", "similarity"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One corpus text matched to a query: its index in the corpus, cosine score and text."""

    index: int
    score: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "score": self.score, "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hit:
        return cls(index=int(data["index"]), score=float(data["score"]), text=str(data["text"]))


@dataclass(frozen=True, slots=True, eq=False)
class SimilarityResult:
    """``scores[i, j]``: cosine of query ``i`` and corpus text ``j``; ``hits[i]``: the corpus ranked for query ``i``."""

    scores: np.ndarray
    hits: tuple[tuple[Hit, ...], ...]

    def __post_init__(self) -> None:
        scores = readonly_array(self.scores, np.float32)
        if scores.ndim != 2:
            raise ValueError(f"scores must be 2-D (queries x corpus), got shape {scores.shape}")
        object.__setattr__(self, "scores", scores)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimilarityResult):
            return NotImplemented
        return self.hits == other.hits and np.array_equal(self.scores, other.scores)

    def __hash__(self) -> int:
        return hash((self.scores.tobytes(), self.scores.shape, self.hits))

    @property
    def top(self) -> tuple[Hit | None, ...]:
        """The best hit for each query (``None`` when ``top_k`` left none)."""
        return tuple(hits[0] if hits else None for hits in self.hits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores.tolist(),
            "hits": [[hit.to_dict() for hit in hits] for hits in self.hits],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimilarityResult:
        scores = readonly_array(data["scores"], np.float32)
        if scores.size == 0:
            scores = readonly_array(np.zeros((len(data["hits"]), 0)), np.float32)
        return cls(scores=scores, hits=tuple(tuple(Hit.from_dict(h) for h in hits) for hits in data["hits"]))


def _texts(value: object, what: str) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        raise InputTypeError(f"{what} must be a string or a list of strings, got {type(value).__name__}")
    if not value:
        raise EmptyInputError(f"{what} is an empty list", hint=f"give at least one {what} text")
    return list(value)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def similarity(
    queries: str | Sequence[str],
    corpus: str | Sequence[str],
    *,
    model: Task[Any, Any, Any, Any] | str = "embed",
    top_k: int | None = None,
) -> SimilarityResult:
    """Embed ``queries`` and ``corpus`` with ``model`` and rank the corpus for each query by cosine.

    ``model`` is a loaded ``EmbedTask`` or a name for ``modeldeck.load``. ``top_k`` bounds each
    query's hits (at most the corpus size); ``None`` keeps them all.
    """
    from ._api import load
    from .tasks.base import Task

    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise OptionError(f"top_k must be a positive integer or None, got {top_k!r}", hint="for example top_k=5")
    query_texts = _texts(queries, "queries")
    corpus_texts = _texts(corpus, "corpus")
    task = load(model) if isinstance(model, str) else model
    if not isinstance(task, Task) or task.name != "embed":
        raise OptionError(
            f"similarity needs an embed model, got {getattr(task, 'name', type(task).__name__)!r}",
            hint="pass an EmbedTask or the name of an embedding model",
        )
    # One predict call embeds both sides, so they share batches.
    embeddings = task.predict([*query_texts, *corpus_texts], task.parse_options({"normalize": False}))
    vectors = np.stack([e.vector for e in embeddings]).astype(np.float64)
    unit = _unit_rows(vectors)
    scores = (unit[: len(query_texts)] @ unit[len(query_texts) :].T).astype(np.float32)
    keep = len(corpus_texts) if top_k is None else min(top_k, len(corpus_texts))
    hits = []
    for row in scores:
        order = np.argsort(-row, kind="stable")[:keep]
        hits.append(tuple(Hit(index=int(j), score=float(row[j]), text=str(corpus_texts[j])) for j in order))
    scores.flags.writeable = False
    return SimilarityResult(scores=scores, hits=tuple(hits))
