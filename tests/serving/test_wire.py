"""Embeddings stay float32 bytes from the worker to the surface, which encodes them once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic_core import to_json

from modeldeck.config import Settings
from modeldeck.errors import EmptyInputError, InferenceError
from modeldeck.serving.models import ProcessModel, run_items
from modeldeck.serving.specs import ModelSpec
from modeldeck.serving.wire import EmbeddingAnswer, as_json, embedding_matrix
from modeldeck.tasks.base import Options, Task, check_text
from modeldeck.tasks.results import Embedding
from modeldeck.types import ModelInfo

from ..support import EchoTask, echo_info


class ToyEmbedTask(Task[str, str, Embedding, Options]):
    """An ``embed`` task whose vector is drawn from a seed made of the text: a float32 value per dimension."""

    name = "embed"
    options_type = Options
    dim = 5

    def preprocess(self, raw: Any, options: Options) -> str:
        return check_text(raw)

    def forward(self, batch: Sequence[str]) -> list[str]:
        return list(batch)

    def postprocess(self, raw: str, encoded: str, options: Options) -> Embedding:
        rng = np.random.default_rng(sum(raw.encode()))
        return Embedding(rng.normal(size=self.dim).astype(np.float32) / 3, chunks=len(raw) // 4 + 1)


def toy_embed(spec: Any = None, settings: Any = None) -> ToyEmbedTask:
    """A worker-process loader (module level, so a spawned process can import it)."""
    info = ModelInfo(name="toy", version="1", tasks=("embed",), runtime="python", path=Path("."))
    return ToyEmbedTask(info)


def test_an_embedding_answer_is_its_float32_bytes_and_encodes_as_the_task_did():
    task = toy_embed()
    (result,) = task(["a sentence of text"])
    answer, bad = run_items(task, [("a sentence of text", {}), ("", {})])
    assert isinstance(answer, EmbeddingAnswer) and isinstance(bad, EmptyInputError)
    assert answer.data == result.vector.astype("<f4").tobytes() and answer.shape == (5,)
    assert answer.to_json() == to_json(result.to_dict())  # the task API's bytes are unchanged
    assert as_json(answer) == answer.to_json() and as_json(b"{}") == b"{}"
    np.testing.assert_array_equal(answer.vector, result.vector)
    assert not answer.vector.flags.writeable
    # Other results still travel as their JSON.
    assert json.loads(run_items(EchoTask(echo_info()), [("hi", {})])[0]) == {"text": "hi"}


def test_embedding_matrix_joins_the_bytes_in_order_and_raises_what_does_not_fit():
    task = toy_embed()
    texts = ["one", "two two", "three three three"]
    answers = run_items(task, [(text, {}) for text in texts])
    matrix = embedding_matrix(answers)
    assert matrix.dtype == np.float32 and matrix.shape == (3, 5)
    np.testing.assert_array_equal(matrix, np.stack([r.vector for r in task(texts)]))
    assert embedding_matrix([]).shape == (0, 0)
    with pytest.raises(EmptyInputError):
        embedding_matrix([*answers, EmptyInputError("empty text")])
    with pytest.raises(InferenceError, match="not an embedding"):
        embedding_matrix([answers[0], b'{"text": "hi"}'])
    with pytest.raises(InferenceError, match="shape"):
        embedding_matrix([answers[0], EmbeddingAnswer(b"\0" * 8, (2,))])


@pytest.mark.timeout(60)
def test_a_worker_process_sends_embeddings_as_bytes(tmp_path):
    settings = Settings.from_env({}, home=tmp_path / "home", models=("embed",))
    worker = ProcessModel(ModelSpec("embed", "embed", None), settings, loader=toy_embed)
    worker.start()
    try:
        answer, bad = worker.run_batch([("over the pipe", {}), ("  ", {})])
    finally:
        worker.close()
    assert isinstance(answer, EmbeddingAnswer) and isinstance(bad, EmptyInputError)
    np.testing.assert_array_equal(answer.vector, toy_embed()(["over the pipe"])[0].vector)
