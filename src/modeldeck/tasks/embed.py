"""Text embeddings: one float32 vector per text; long texts are embedded in token windows and averaged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np
from pydantic import Field, StrictBool

from ..types import ModelInfo, OnnxSessionOptions
from ._backend import BackendBase
from ._chunking import token_chunks
from ._deadline import check_deadline
from .base import Options, Task, check_text
from .results import Embedding

if TYPE_CHECKING:
    from .._similarity import SimilarityResult
    from ..runtimes.onnx_text import OnnxSentenceEncoder
    from ..runtimes.transformers import TokenizedText

__all__ = ["EmbedOptions", "EmbedTask", "OnnxEmbedder", "SentenceEncoder", "SentenceTransformersEmbedder"]


class SentenceEncoder(Protocol):
    """What ``EmbedTask`` drives: the model's own tokenizer and one ``encode`` call per batch of texts."""

    name: str
    device: str

    @property
    def dim(self) -> int: ...

    @property
    def max_content_tokens(self) -> int: ...

    def tokenize(self, text: str) -> TokenizedText: ...

    def encode(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray: ...

    def memory_bytes(self) -> int | None: ...


class EmbedOptions(Options):
    normalize: StrictBool = Field(default=False, description="scale each vector to unit L2 norm")


@dataclass(frozen=True, slots=True)
class _Chunks:
    """The pieces of one text the model sees whole, with their token counts as weights."""

    texts: tuple[str, ...]
    weights: tuple[int, ...]


class SentenceTransformersEmbedder(BackendBase):
    """A sentence-transformers model: its own pooling and normalisation, exactly as it defines them."""

    runtime: SentenceEncoder

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.sentence_transformers import SentenceTransformerRuntime

        return cls(SentenceTransformerRuntime.load(info.path, device=device))


class OnnxEmbedder(BackendBase):
    """A sentence-transformers model exported by ``modeldeck.optimize``: pooling and normalisation in the graph."""

    runtime: OnnxSentenceEncoder

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, session: OnnxSessionOptions | None = None) -> Self:
        from ..runtimes.onnx_text import OnnxSentenceEncoder

        return cls(OnnxSentenceEncoder.load(info.path, device=device, session=session))

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}


class EmbedTask(Task[_Chunks, tuple[np.ndarray, int], Embedding, EmbedOptions]):
    name = "embed"
    result_type: ClassVar[type] = Embedding
    options_type = EmbedOptions
    runtime: SentenceEncoder

    @property
    def dim(self) -> int:
        return self.runtime.dim

    def describe(self) -> dict[str, Any]:
        # Surfaces check a requested size (OpenAI's ``dimensions``) against it before the model runs.
        return {**super().describe(), "dim": self.dim}

    def preprocess(self, raw: Any, options: EmbedOptions) -> _Chunks:
        text = check_text(raw, max_chars=self.max_text_chars)
        tokens = self.runtime.tokenize(text)
        size = self.runtime.max_content_tokens
        if len(tokens) <= size:
            return _Chunks((text,), (max(len(tokens), 1),))
        # Cutting the original string at token offsets keeps every chunk within the model's window,
        # so nothing is truncated; each chunk is re-tokenized identically because cuts fall between words.
        offsets = tokens.offsets
        ranges = token_chunks(tokens.word_ids, size)
        return _Chunks(
            tuple(text[offsets[s][0] : offsets[e - 1][1]] for s, e in ranges),
            tuple(e - s for s, e in ranges),
        )

    def forward(self, batch: Sequence[_Chunks]) -> list[tuple[np.ndarray, int]]:
        # One encode call per batch_size chunks of the whole batch (per-item calls would cost most of
        # the throughput), with the batch's deadline checked between calls: a long text stops there.
        texts = [t for item in batch for t in item.texts]
        parts = []
        for start in range(0, len(texts), self.batch_size):
            check_deadline()
            parts.append(self.runtime.encode(texts[start : start + self.batch_size], batch_size=self.batch_size))
        vectors = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out: list[tuple[np.ndarray, int]] = []
        at = 0
        for item in batch:
            n = len(item.texts)
            if n == 1:
                vector = vectors[at].copy()
            else:
                weights = np.asarray(item.weights, dtype=np.float64)
                vector = (weights @ vectors[at : at + n].astype(np.float64) / weights.sum()).astype(np.float32)
            out.append((vector, n))
            at += n
        return out

    def postprocess(self, raw: tuple[np.ndarray, int], encoded: _Chunks, options: EmbedOptions) -> Embedding:
        vector, chunks = raw
        if options.normalize:
            norm = float(np.linalg.norm(vector.astype(np.float64)))
            if norm > 0:
                vector = (vector / norm).astype(np.float32)
        vector.flags.writeable = False
        return Embedding(vector=vector, chunks=chunks)

    def similarity(
        self, queries: str | Sequence[str], corpus: str | Sequence[str], *, top_k: int | None = None
    ) -> SimilarityResult:
        """Cosine similarity of every query to every corpus text, with ranked hits (see ``similarity``)."""
        from .._similarity import similarity

        return similarity(queries, corpus, model=self, top_k=top_k)
