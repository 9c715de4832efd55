"""The real all-MiniLM-L6-v2, fine-tuned on a small data set, beats the majority class and frozen embeddings."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.finetuning import FinetuneReport, finetune
from modeldeck.finetuning._data import read_labelled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # minutes on a busy 2-core machine

# Small enough for two shared cores: short texts, 12 steps per epoch, six epochs.
RECIPE: dict[str, Any] = {"epochs": 6, "batch_size": 8, "max_length": 16, "unfreeze_per_epoch": 2, "seed": 0}


@pytest.fixture(scope="module")
def tuned(splits: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[FinetuneReport, Settings]:
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    report = finetune(
        "classify",
        data=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        name="intents",
        settings=settings,
        **RECIPE,
    )
    return report, settings


def test_beats_the_majority_class_and_logistic_regression_on_frozen_embeddings(
    tuned: tuple[FinetuneReport, Settings], splits: dict[str, Path]
) -> None:
    from sklearn.linear_model import LogisticRegression

    report, settings = tuned
    train, test = read_labelled(splits["train"]), read_labelled(splits["test"])
    embed = modeldeck.load("embed", settings=settings)  # the same base, frozen

    def vectors(texts: tuple[str, ...]) -> np.ndarray:
        return np.stack([r.vector for r in embed(list(texts))])

    baseline = LogisticRegression(max_iter=2000).fit(vectors(train.texts), train.labels)
    frozen = float(baseline.score(vectors(test.texts), test.labels))
    majority = Counter(test.labels).most_common(1)[0][1] / len(test)
    tuned_accuracy = report.metrics["test"]["accuracy"]
    assert tuned_accuracy >= majority + 0.25, (tuned_accuracy, majority)
    assert tuned_accuracy > frozen, (tuned_accuracy, frozen)
    assert report.model == "intents@1" and report.best_epoch is not None
    assert [h["trainable_groups"] for h in report.history][:3] == [1, 3, 5]  # 8 groups: embeddings, 6 blocks, head


def test_the_store_version_classifies_as_training_measured(
    tuned: tuple[FinetuneReport, Settings], splits: dict[str, Path]
) -> None:
    report, settings = tuned
    assert report.model is not None
    classify = modeldeck.load("classify", model=report.model, settings=settings)
    test = read_labelled(splits["test"])
    predicted = [r.labels[0].label for r in classify(list(test.texts))]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, test.labels, strict=True)]))
    assert accuracy == pytest.approx(report.metrics["test"]["accuracy"])
    card = classify.info.card
    assert card["base"]["name"] == "all-MiniLM-L6-v2" and card["metrics"]["test"]["accuracy"] == accuracy
    assert (classify.info.path / "curves.png").read_bytes()[:4] == b"\x89PNG"
