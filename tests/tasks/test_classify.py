"""Text classification on tiny random BERT classifiers through the real loading code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import EmptyInputError, InputTooLargeError, InputTypeError, OptionError
from modeldeck.tasks.classify import ClassifyResult, ClassifyTask, Label
from modeldeck.tasks.results import to_arrow

from .language_models import SENTIMENT_LABELS, save_tiny_bert_classifier

pytest.importorskip("transformers")

TEXTS = ["tim cook founded the company in paris", "who was born in london?", "a", "Café 😀  in   Berlin!"]
TOPICS = {0: "sports", 1: "politics", 2: "science", 3: "travel"}


def _load(path: Path, home: Path) -> ClassifyTask:
    task = modeldeck.load("classify", model=str(path), settings=Settings.from_env({}, home=home), batch_size=3)
    assert isinstance(task, ClassifyTask)
    return task


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> ClassifyTask:
    path = save_tiny_bert_classifier(tmp_path_factory.mktemp("tiny-cls"))
    return _load(path, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> ClassifyTask:
    path = save_tiny_bert_classifier(tmp_path_factory.mktemp("tiny-multi"), labels=TOPICS, multi_label=True)
    return _load(path, tmp_path_factory.mktemp("home"))


def _direct_logits(task: ClassifyTask, text: str) -> np.ndarray:
    import torch

    enc = task.runtime.tokenizer(text, return_tensors="pt", truncation=True)
    with torch.no_grad():
        return task.runtime.model(**enc).logits[0].numpy().astype(np.float64)


def test_softmax_scores_sorted_named_and_summing_to_one(classifier: ClassifyTask) -> None:
    results = classifier(TEXTS)
    assert classifier.labels == tuple(SENTIMENT_LABELS[i] for i in range(3))
    for text, result in zip(TEXTS, results, strict=True):
        assert not result.multi_label and not result.truncated
        assert {lab.label for lab in result} == set(SENTIMENT_LABELS.values())
        scores = [lab.score for lab in result]
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) == pytest.approx(1.0, abs=1e-9)
        logits = _direct_logits(classifier, text)
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        for lab in result:
            assert lab.score == pytest.approx(expected[classifier.labels.index(lab.label)], abs=1e-5)
        assert result.top == result[0] and result.top.label == SENTIMENT_LABELS[int(np.argmax(logits))]
        assert result.scores == {lab.label: lab.score for lab in result}


def test_top_k_and_multi_label_option(classifier: ClassifyTask) -> None:
    full = classifier(TEXTS[0])
    top = classifier(TEXTS[0], top_k=2)
    assert top.labels == full.labels[:2]
    sig = classifier(TEXTS[0], multi_label=True)
    assert sig.multi_label
    logits = _direct_logits(classifier, TEXTS[0])
    for lab in sig:
        expected = 1 / (1 + np.exp(-logits[classifier.labels.index(lab.label)]))
        assert lab.score == pytest.approx(expected, abs=1e-5)
    assert sum(lab.score for lab in sig) != pytest.approx(1.0, abs=1e-3)


def test_multi_label_models_default_to_sigmoid(multi: ClassifyTask) -> None:
    assert multi.multi_label_default and multi.describe()["multi_label"] is True
    result = multi(TEXTS[1])
    assert result.multi_label and len(result) == 4
    assert {lab.label for lab in result} == set(TOPICS.values())
    logits = _direct_logits(multi, TEXTS[1])
    expected = sorted(1 / (1 + np.exp(-logits)), reverse=True)
    np.testing.assert_allclose([lab.score for lab in result], expected, atol=1e-5)
    soft = multi(TEXTS[1], multi_label=False, top_k=1)
    assert not soft.multi_label and len(soft) == 1 and soft.top.label == result.top.label


def test_long_text_is_truncated_and_says_so(classifier: ClassifyTask) -> None:
    long = " ".join(["paris london berlin"] * 40)
    result = classifier(long)
    assert result.truncated
    limit = classifier.runtime.max_tokens
    cut = classifier.runtime.tokenizer(long, truncation=True, max_length=limit)
    assert len(cut["input_ids"]) == limit
    expected = _direct_logits(classifier, long)  # the tokenizer's own truncation to the model's window
    probs = np.exp(expected - expected.max()) / np.exp(expected - expected.max()).sum()
    assert result.scores[classifier.labels[int(np.argmax(probs))]] == pytest.approx(probs.max(), abs=1e-5)
    assert not classifier(" ".join(["paris"] * (limit - 2))).truncated
    assert classifier(" ".join(["paris"] * (limit - 1))).truncated


def test_megabyte_text_within_the_limit(classifier: ClassifyTask) -> None:
    big = ("tim cook went to paris . " * 40_000)[:1_000_000]
    result = classifier(big)
    assert result.truncated and len(result) == 3
    assert result.scores == classifier(big[:300]).scores
    small = ClassifyTask(classifier.info, classifier.backend, max_text_chars=100)
    with pytest.raises(InputTooLargeError, match="100"):
        small(big[:101])


def test_bad_inputs_and_options(classifier: ClassifyTask) -> None:
    with pytest.raises(EmptyInputError):
        classifier("  ")
    with pytest.raises(InputTypeError):
        classifier({"text": "a"})
    with pytest.raises(OptionError, match="top_k"):
        classifier("a", top_k=0)
    with pytest.raises(OptionError, match="valid options for classify"):
        classifier("a", labels=["x"])
    results = classifier.predict_each(["good", "", 3])
    assert isinstance(results[0], ClassifyResult)
    assert isinstance(results[1], EmptyInputError) and isinstance(results[2], InputTypeError)


def test_result_round_trips(classifier: ClassifyTask) -> None:
    results = [classifier(TEXTS[0]), classifier(TEXTS[1], top_k=1, multi_label=True)]
    for result in results:
        assert ClassifyResult.from_dict(result.to_dict()) == result
    assert to_arrow([*results, None], ClassifyResult).to_pylist() == [r.to_dict() for r in results] + [None]
    assert Label.from_dict({"label": "X", "score": 1}) == Label("X", 1.0)


def test_task_is_inferred_from_the_folder(classifier: ClassifyTask, tmp_path: Path) -> None:
    task = modeldeck.load(str(classifier.info.path), settings=Settings.from_env({}, home=tmp_path))
    assert task.name == "classify" and task.describe()["labels"] == list(classifier.labels)
