"""Results convert losslessly to Arrow: every to_dict field has a typed column and comes back equal."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from modeldeck.tasks.results import Embedding, Entity, NERResult, ParseResult, Sentence, Token, to_arrow


def roundtrip(results, result_type):
    array = to_arrow(results, result_type)
    assert array.type == result_type.arrow_type()
    return [None if row is None else result_type.from_dict(row) for row in array.to_pylist()]


def test_ner_results_roundtrip_through_arrow():
    results = [
        NERResult((Entity("Tim Cook", "PERSON", 0, 8), Entity("Paris", "GPE", 17, 22, 0.875))),
        NERResult(()),
        None,
    ]
    assert roundtrip(results, NERResult) == results


def test_parse_results_roundtrip_through_arrow():
    tokens = (Token("Hi", 0, 2, "INTJ", "UH", "hi", "ROOT", 0), Token(".", 2, 3, "PUNCT", ".", ".", "punct", 0))
    result = ParseResult(tokens, (Sentence("Hi.", 0, 3, 0, 2),))
    assert roundtrip([result], ParseResult) == [result]


def test_embedding_stays_float32_exactly():
    vector = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    array = to_arrow([Embedding(vector, chunks=2)], Embedding)
    assert array.type.field("vector").type == pa.list_(pa.float32())
    back = roundtrip([Embedding(vector, chunks=2)], Embedding)[0]
    assert back.vector.dtype == np.float32 and np.array_equal(back.vector, vector) and back.chunks == 2


ALL_TASKS = ["ner", "parse", "embed", "classify", "qa", "generate", "chat", "translate", "detect", "segment",
             "face-detect", "face-embed", "face-verify", "tensor", "classify-image"]  # fmt: skip


def test_the_list_below_names_every_registered_task():
    from modeldeck.tasks import TASKS

    assert sorted(TASKS.names()) == sorted(ALL_TASKS)


@pytest.mark.parametrize("task", ALL_TASKS)
def test_every_task_declares_its_result_type(task):
    from modeldeck.tasks import TASKS

    cls = TASKS.get(task)
    assert isinstance(cls.result_type.arrow_type(), pa.StructType)
