"""What a model's answer looks like between the worker and the HTTP surfaces.

Most results travel as their JSON bytes, made where they are computed, so a surface only splices
them into its response. An embedding travels as its raw float32 bytes and shape instead
(``EmbeddingAnswer``): each surface encodes it once, in the form it answers (JSON numbers for the
task API, base64 of the same bytes for OpenAI's ``encoding_format="base64"``, a binary tensor for
a tensor protocol), rather than the worker writing JSON that the server parses back.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic_core import to_json

from ..errors import InferenceError, ModelDeckError
from ..tasks.results import Embedding

__all__ = ["Answer", "EmbeddingAnswer", "as_json", "embedding_matrix", "encode_result"]

_FLOAT32 = np.dtype("<f4")


@dataclass(frozen=True, slots=True)
class EmbeddingAnswer:
    """One embedding as it leaves the model: little-endian float32 bytes of shape ``(dim,)``, and how
    many chunks of the text were embedded to make it."""

    data: bytes
    shape: tuple[int, ...]
    chunks: int = 1

    @classmethod
    def of(cls, result: Embedding) -> EmbeddingAnswer:
        return cls(result.vector.astype(_FLOAT32, copy=False).tobytes(), tuple(result.vector.shape), result.chunks)

    def __reduce__(self) -> tuple[type[EmbeddingAnswer], tuple[bytes, tuple[int, ...], int]]:
        # Pickled per answer on the worker's pipe: plain arguments cost half of the dataclass's own state.
        return (EmbeddingAnswer, (self.data, self.shape, self.chunks))

    @property
    def vector(self) -> np.ndarray:
        """The vector, read-only, over the answer's own bytes (no copy)."""
        return np.frombuffer(self.data, dtype=_FLOAT32).reshape(self.shape)

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def to_json(self) -> bytes:
        """The same bytes the worker used to send: ``Embedding.to_dict()`` as JSON."""
        return to_json({"vector": self.vector.tolist(), "dim": self.shape[0], "chunks": self.chunks})


#: One input's answer from a deployment: JSON bytes, an embedding, or that input's error.
Answer = bytes | EmbeddingAnswer | ModelDeckError


def encode_result(result: Any) -> bytes | EmbeddingAnswer:
    """A task's result as it travels from the model to the server (run where the model runs)."""
    if isinstance(result, Embedding):
        return EmbeddingAnswer.of(result)
    return to_json(result.to_dict())


def as_json(answer: Answer) -> bytes | ModelDeckError:
    """An answer in the JSON form every surface can splice (embeddings encoded here, once)."""
    return answer.to_json() if isinstance(answer, EmbeddingAnswer) else answer


def embedding_matrix(answers: Sequence[Answer]) -> np.ndarray:
    """``(N, dim)`` float32 from the answers of an embed deployment, in order; the first error is raised.

    For surfaces that answer tensors (the Open Inference Protocol's FP32 output): the bytes are
    joined as they came from the worker, never through JSON.
    """
    rows: list[bytes] = []
    dim: int | None = None
    for index, answer in enumerate(answers):
        if isinstance(answer, ModelDeckError):
            raise answer
        if not isinstance(answer, EmbeddingAnswer):
            raise InferenceError(
                f"answer {index} is not an embedding (the model does not serve the embed task)",
                hint="ask an embed model for an embedding matrix",
            )
        if dim is not None and answer.shape != (dim,):
            raise InferenceError(f"answer {index} has shape {answer.shape}, the others ({dim},)")
        dim = answer.shape[0]
        rows.append(answer.data)
    return np.frombuffer(b"".join(rows), dtype=_FLOAT32).reshape(len(rows), dim or 0)
