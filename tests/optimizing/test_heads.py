"""Tiny random-weight BERT heads (classification, NER, QA) through ONNX: the same logits, the same results."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.optimizing import optimize
from modeldeck.runtimes.onnx_export import export_transformers_head
from modeldeck.runtimes.onnx_text import OnnxHeadRuntime
from modeldeck.runtimes.transformers import TransformersRuntime

from ..support import TINY_WORDS, save_tiny_bert_ner
from ..tasks.language_models import QA_WORDS, save_tiny_bert_classifier, save_tiny_bert_qa

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _texts(words: list[str], count: int, longest: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    plain = [w for w in words if not w.startswith("##")]
    return [" ".join(rng.choice(plain) for _ in range(rng.randint(1, longest))).capitalize() for _ in range(count)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("heads")
    (root / "ner").mkdir()
    return {
        "classify": save_tiny_bert_classifier(root / "classify"),
        "ner": save_tiny_bert_ner(root / "ner"),
        "qa": save_tiny_bert_qa(root / "qa"),
    }


@pytest.mark.parametrize(
    ("task", "head"),
    [("classify", "sequence-classification"), ("ner", "token-classification"), ("qa", "question-answering")],
)
def test_onnx_logits_equal_torch(models: dict[str, Path], tmp_path: Path, task: str, head: str) -> None:
    torch_rt = TransformersRuntime.load(models[task], head=head)
    export_transformers_head(models[task], head, tmp_path / "onnx")
    onnx_rt = OnnxHeadRuntime.load_head(tmp_path / "onnx", head)
    texts = _texts(TINY_WORDS if task == "ner" else QA_WORDS, 40, 50)
    for text in texts:  # the same tokenizer, read without transformers
        a, b = torch_rt.tokenize(text), onnx_rt.tokenize(text)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.offsets, b.offsets)
        assert np.array_equal(a.word_ids, b.word_ids)
    assert onnx_rt.max_content_tokens == torch_rt.max_content_tokens
    assert onnx_rt.pair_special_tokens() == torch_rt.pair_special_tokens()
    if task == "classify":
        rows = [torch_rt.wrap(torch_rt.encode_plain(t)[: torch_rt.max_content_tokens]) for t in texts]
        assert onnx_rt.id2label == torch_rt.id2label and onnx_rt.problem_type == torch_rt.problem_type
        np.testing.assert_allclose(
            onnx_rt.sequence_logits(rows, batch_size=8), torch_rt.sequence_logits(rows, batch_size=8), atol=1e-4
        )
    elif task == "ner":
        windows = [torch_rt.tokenize(t).ids[: torch_rt.max_content_tokens] for t in texts]
        for x, y in zip(
            onnx_rt.token_probabilities(windows, batch_size=8),
            torch_rt.token_probabilities(windows, batch_size=8),
            strict=True,
        ):
            np.testing.assert_allclose(x, y, atol=1e-4)
    else:
        context = " ".join(texts)
        a = torch_rt.encode_qa("who founded the company ?", context, max_len=48, stride=16)
        b = onnx_rt.encode_qa("who founded the company ?", context, max_len=48, stride=16)
        assert len(a) == len(b) > 2  # several stride windows, cut at the same tokens
        for field in ("ids", "type_ids", "offsets", "context_mask", "word_ids"):
            for x, y in zip(getattr(a, field), getattr(b, field), strict=True):
                assert np.array_equal(x, y), field
        assert a.cls_index == b.cls_index
        for (s1, e1), (s2, e2) in zip(
            onnx_rt.span_logits(a.ids, a.type_ids, batch_size=4),
            torch_rt.span_logits(a.ids, a.type_ids, batch_size=4),
            strict=True,
        ):
            np.testing.assert_allclose(s1, s2, atol=1e-4)
            np.testing.assert_allclose(e1, e2, atol=1e-4)


@pytest.mark.parametrize("task", ["classify", "ner", "qa"])
def test_optimize_stores_a_variant_whose_results_are_identical(
    models: dict[str, Path], tmp_path: Path, task: str
) -> None:
    settings = Settings(home=tmp_path / "home")
    name = f"tiny-{task}"
    modeldeck.ModelStore(settings).import_model(models[task], name, version="1", tasks=(task,), runtime="transformers")
    calibration = tmp_path / "texts.txt"
    texts = _texts(TINY_WORDS if task == "ner" else QA_WORDS, 60, 90, seed=2)
    calibration.write_text("\n".join(texts), encoding="utf-8")
    report = optimize(task, model=f"{name}@1", calibration=calibration, timing_seconds=0.02, settings=settings)
    onnx = report.variant("onnx")
    assert onnx.accepted and onnx.accuracy["agreement"] == 1.0 and onnx.stored == f"{name}@onnx"
    original = modeldeck.load(task, model=f"{name}@1", settings=settings)
    variant = modeldeck.load(task, model=f"{name}@onnx", settings=settings)
    assert variant.info.runtime == "onnxruntime"
    inputs: list[object] = texts
    if task == "qa":
        inputs = [{"question": "who was born in paris ?", "context": t} for t in texts]
    for a, b in zip(original(inputs), variant(inputs), strict=True):
        da, db = a.to_dict(), b.to_dict()
        if task == "ner":
            assert [(e["start"], e["end"], e["label"]) for e in da["entities"]] == [
                (e["start"], e["end"], e["label"]) for e in db["entities"]
            ]
            assert [e["score"] for e in da["entities"]] == pytest.approx([e["score"] for e in db["entities"]], abs=1e-4)
        elif task == "classify":
            assert [x["label"] for x in da["labels"]] == [x["label"] for x in db["labels"]]
            assert [x["score"] for x in da["labels"]] == pytest.approx([x["score"] for x in db["labels"]], abs=1e-4)
        else:
            assert [(x["start"], x["end"], x["text"]) for x in da["answers"]] == [
                (x["start"], x["end"], x["text"]) for x in db["answers"]
            ]
    if task == "ner":
        assert sum(len(r.entities) for r in variant(inputs)) > 0  # the comparison compared something
