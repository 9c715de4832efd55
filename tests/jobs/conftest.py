"""Fixtures for job tests: the real default models, loaded once, and small input files."""

from __future__ import annotations

from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="session")
def ner() -> Any:
    pytest.importorskip("spacy")
    import modeldeck

    return modeldeck.load("ner")


@pytest.fixture(scope="session")
def embed() -> Any:
    pytest.importorskip("sentence_transformers")
    import modeldeck

    return modeldeck.load("embed", batch_size=16)
