"""similarity(): cosine scores and ranked hits over an EmbedTask."""

from __future__ import annotations

import numpy as np
import pytest

from modeldeck._similarity import Hit, SimilarityResult, similarity
from modeldeck.errors import EmptyInputError, InputTypeError, OptionError

QUERIES = ["How do I bake bread?", "Who won the football match?"]
CORPUS = ["The team scored twice and won the game.", "Knead the dough and bake it for 30 minutes.", "Tax rates rose."]


def test_scores_are_cosine_of_embeddings(embedder) -> None:
    result = similarity(QUERIES, CORPUS, model=embedder)
    q = np.stack([e.vector for e in embedder(QUERIES)]).astype(np.float64)
    c = np.stack([e.vector for e in embedder(CORPUS)]).astype(np.float64)
    expected = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (c / np.linalg.norm(c, axis=1, keepdims=True)).T
    assert result.scores.shape == (2, 3) and result.scores.dtype == np.float32
    assert not result.scores.flags.writeable
    np.testing.assert_allclose(result.scores, expected, atol=1e-5)


def test_ranking_and_top_k(embedder) -> None:
    result = embedder.similarity(QUERIES, CORPUS, top_k=2)
    assert [hits[0].index for hits in result.hits] == [1, 0]
    assert result.top[0].text == CORPUS[1]
    for row, hits in zip(result.scores, result.hits, strict=True):
        assert len(hits) == 2
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert all(h.score == pytest.approx(float(row[h.index])) for h in hits)
    assert all(len(h) == 3 for h in similarity(QUERIES, CORPUS, model=embedder, top_k=10).hits)


def test_strings_accepted(embedder) -> None:
    result = similarity("bread", "dough", model=embedder)
    assert result.scores.shape == (1, 1)
    assert result.hits == ((Hit(index=0, score=float(result.scores[0, 0]), text="dough"),),)


@pytest.mark.parametrize("top_k", [0, -1, 1.5, "3", True])
def test_bad_top_k(embedder, top_k) -> None:
    with pytest.raises(OptionError, match="top_k"):
        similarity(QUERIES, CORPUS, model=embedder, top_k=top_k)


def test_bad_inputs(embedder) -> None:
    with pytest.raises(EmptyInputError):
        similarity([], CORPUS, model=embedder)
    with pytest.raises(InputTypeError):
        similarity(QUERIES, 42, model=embedder)  # type: ignore[arg-type]
    with pytest.raises(EmptyInputError):
        similarity(QUERIES, ["ok", "  "], model=embedder)


def test_needs_an_embed_task(spacy_ner) -> None:
    with pytest.raises(OptionError, match="embed"):
        similarity("a", "b", model=spacy_ner)


def test_round_trip(embedder) -> None:
    result = similarity(QUERIES, CORPUS, model=embedder, top_k=2)
    assert SimilarityResult.from_dict(result.to_dict()) == result
