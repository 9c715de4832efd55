"""Embeddings with the real all-MiniLM-L6-v2 weights."""

from __future__ import annotations

import numpy as np
import pytest

from modeldeck.tasks.results import Embedding


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_vector_shape_and_type(embedder) -> None:
    result = embedder("A man is eating food.")
    assert isinstance(result, Embedding)
    assert result.vector.shape == (384,) and result.dim == 384 == embedder.dim
    assert result.vector.dtype == np.float32
    assert result.chunks == 1
    assert not result.vector.flags.writeable
    with pytest.raises(ValueError):
        result.vector[0] = 1.0


def test_normalize_gives_unit_norm(embedder) -> None:
    vector = embedder("Some text to embed.", normalize=True).vector
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_matches_raw_sentence_transformers(embedder) -> None:
    texts = ["A man is eating food.", "The sky is blue today."]
    raw = embedder.runtime.model.encode(texts, convert_to_numpy=True)
    got = np.stack([r.vector for r in embedder(texts)])
    np.testing.assert_allclose(got, raw, atol=1e-5)


def test_similar_sentences_are_closer(embedder) -> None:
    a, b, c = embedder(["A man is eating food.", "A man is eating a piece of bread.", "The stock market crashed."])
    assert _cos(a.vector, b.vector) > _cos(a.vector, c.vector) + 0.2


def test_list_in_list_out_in_order(embedder) -> None:
    texts = [f"sentence number {i} about {'cats' if i % 2 else 'finance'}" for i in range(40)]
    results = embedder(texts)
    assert len(results) == 40
    singles = [embedder(texts[i]) for i in (0, 17, 39)]
    for i, single in zip((0, 17, 39), singles, strict=True):
        np.testing.assert_allclose(results[i].vector, single.vector, atol=1e-5)


def test_long_text_is_chunked_not_truncated(embedder) -> None:
    words = ["river", "mountain", "economy", "violin", "harvest", "galaxy"]
    text = " ".join(words[i % len(words)] + ("," if i % 7 == 0 else "") for i in range(600))
    encoded = embedder.preprocess(text, embedder.default_options)
    limit = embedder.runtime.max_content_tokens
    assert len(encoded.texts) > 1
    for chunk in encoded.texts:
        assert chunk in text
        assert len(embedder.runtime.tokenize(chunk)) <= limit
    assert sum(encoded.weights) == len(embedder.runtime.tokenize(text))
    result = embedder(text)
    assert result.chunks == len(encoded.texts) > 1
    assert np.isfinite(result.vector).all()
    chunk_vectors = embedder.runtime.encode(list(encoded.texts), batch_size=8)
    expected = np.average(chunk_vectors, axis=0, weights=encoded.weights)
    np.testing.assert_allclose(result.vector, expected, atol=1e-5)
    # The tail matters: changing only the last words changes the vector.
    assert not np.allclose(embedder(text + " quantum chromodynamics").vector, result.vector)


def test_round_trip_through_dict_and_json(embedder) -> None:
    import json

    result = embedder("round trip", normalize=True)
    data = result.to_dict()
    assert data["dim"] == 384 and data["chunks"] == 1 and isinstance(data["vector"][0], float)
    assert Embedding.from_dict(data) == result
    assert Embedding.from_dict(json.loads(json.dumps(data))) == result
    assert hash(Embedding.from_dict(data)) == hash(result)
