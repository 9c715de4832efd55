"""Result types: immutable, lossless to_dict/from_dict, named views."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from modeldeck.tasks.results import Embedding, Entity, NERResult, ParseResult, Sentence, Token


def test_ner_result_views_and_round_trip() -> None:
    result = NERResult(
        (Entity("Tim Cook", "PERSON", 0, 8, None), Entity("Paris", "GPE", 17, 22, 0.25)),
    )
    assert result.labels == ("PERSON", "GPE")
    assert result.spans == ((0, 8), (17, 22))
    assert result.scores == (None, 0.25)
    assert result.by_label("GPE") == (result[1],)
    assert NERResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.entities[0].label = "ORG"  # type: ignore[misc]


def test_parse_result_round_trip() -> None:
    tokens = (Token("Hi", 0, 2, "INTJ", "UH", "hi", "ROOT", 0), Token("!", 2, 3, "PUNCT", ".", "!", "punct", 0))
    result = ParseResult(tokens, (Sentence("Hi!", 0, 3, 0, 2),))
    assert result.roots == (0,)
    assert ParseResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_embedding_copies_and_freezes_input() -> None:
    source = np.array([1.0, 2.0, 3.0])
    embedding = Embedding(source)
    source[0] = 99.0
    assert embedding.vector.dtype == np.float32 and embedding.vector[0] == 1.0
    assert not embedding.vector.flags.writeable
    assert Embedding.from_dict(embedding.to_dict()) == embedding
    assert embedding != Embedding(np.array([1.0, 2.0, 3.5]))
    with pytest.raises(ValueError, match="dim"):
        Embedding.from_dict({"vector": [1.0], "dim": 2, "chunks": 1})
