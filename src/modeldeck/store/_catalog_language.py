"""Hub language models (QA, generation, translation, classification) pinned to a commit, pulled on first use.

Every revision below is a full commit sha seen pinned in public code for that exact repository;
``allow_patterns`` keeps the pull to the PyTorch weights, the configs and the tokenizer files
(no TensorFlow, Flax, Rust or ONNX copies).
"""

from __future__ import annotations

from ._entry import CatalogEntry
from .sources import HFSource

__all__ = ["ENTRIES"]

# Configs, tokenizer files and the PyTorch weights; repos without safetensors ship pytorch_model.bin.
_TORCH_FILES = ("*.json", "*.txt", "model.safetensors", "pytorch_model.bin")

ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="distilbert-base-cased-distilled-squad",
        tasks=("qa",),
        runtime="transformers",
        source=HFSource(
            repo_id="distilbert/distilbert-base-cased-distilled-squad",
            revision="564e9b582944a57a3e586bbb98fd6f0a4118db7f",
            allow_patterns=_TORCH_FILES,
        ),
        license="Apache-2.0",
        card={
            "description": "DistilBERT (cased) fine-tuned on SQuAD v1.1 for extractive question answering",
            "language": "en",
            "max_seq_len": 384,
        },
    ),
    CatalogEntry(
        name="distilbert-sst2",
        tasks=("classify",),
        runtime="transformers",
        source=HFSource(
            repo_id="distilbert/distilbert-base-uncased-finetuned-sst-2-english",
            revision="714eb0fa89d2f80546fda750413ed43d93601a13",
            allow_patterns=_TORCH_FILES,
        ),
        license="Apache-2.0",
        card={
            "description": "DistilBERT (uncased) fine-tuned on SST-2: binary sentiment, NEGATIVE / POSITIVE",
            "language": "en",
            "labels": ["NEGATIVE", "POSITIVE"],
        },
    ),
    CatalogEntry(
        name="opus-mt-en-de",
        tasks=("translate",),
        runtime="transformers",
        source=HFSource(
            repo_id="Helsinki-NLP/opus-mt-en-de",
            revision="6183067f769a302e3861815543b9f312c71b0ca4",
            allow_patterns=(*_TORCH_FILES, "*.spm"),
        ),
        license="CC-BY-4.0",
        card={
            "description": "OPUS-MT English to German (MarianMT transformer); needs the sentencepiece package",
            "source_lang": "en",
            "target_lang": "de",
        },
    ),
    CatalogEntry(
        name="gpt2",
        tasks=("generate",),
        runtime="transformers",
        source=HFSource(
            repo_id="openai-community/gpt2",
            revision="607a30d783dfa663caf39e06633721c8d4cfcd7e",
            allow_patterns=("*.json", "*.txt", "model.safetensors"),
        ),
        license="MIT",
        card={"description": "GPT-2 small (124M parameters), causal language model", "language": "en"},
    ),
    CatalogEntry(
        name="distilgpt2",
        tasks=("generate",),
        runtime="transformers",
        source=HFSource(
            repo_id="distilbert/distilgpt2",
            revision="2290a62682d06624634c1f46a6ad5be0f47f38aa",
            allow_patterns=("*.json", "*.txt", "model.safetensors"),
        ),
        license="Apache-2.0",
        card={"description": "DistilGPT2 (82M parameters), distilled from GPT-2 small", "language": "en"},
    ),
)
