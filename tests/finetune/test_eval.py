"""Classifier metrics against scikit-learn, and a fine-tuned model through the store, classify and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.evaluation.classify import classification_metrics


def test_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "never-predicted"]
    truth = list(rng.choice(labels, 200))
    predicted = [t if rng.random() < 0.6 else str(rng.choice(labels[:3])) for t in truth]
    m = classification_metrics(truth, predicted, labels)
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    assert m["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert m["macro_f1"] == pytest.approx(f.mean()) and m["macro_precision"] == pytest.approx(p.mean())
    for i, label in enumerate(labels):
        row = m["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    assert m["confusion"] == confusion_matrix(truth, predicted, labels=labels).tolist()


@pytest.mark.slow
@pytest.mark.timeout(1500)  # minutes on a busy 2-core machine
def test_cli_finetune_then_eval_then_classify_loads_the_version(
    tiny_bert: Path,
    splits: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    argv = [
        "finetune",
        "classify",
        "--data",
        str(splits["train"]),
        "--valid",
        str(splits["valid"]),
        "--test",
        str(splits["test"]),
        "--base",
        str(tiny_bert),
        "--name",
        "intents",
        "--epochs",
        "2",
        "--max-length",
        "16",
        "--lr",
        "1e-3",
        "--quiet",
        "--json",
    ]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["model"] == "intents@1" and first["labels"] == ["complaint", "praise", "question"]
    assert [h["epoch"] for h in first["history"]] == [1, 2]
    assert main([*argv[:-1], "--epochs", "1"]) == 0  # a second run is the next version, shown as tables
    out = capsys.readouterr().out
    assert "intents@2" in out and "fine-tuning history" in out

    plot = tmp_path / "confusion.png"
    assert (
        main(["eval", "classify", "--model", "intents@1", "--data", str(splits["test"]), "--json", "--plot", str(plot)])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    # The store's copy, loaded by the classify task's transformers backend, scores what training measured.
    assert report["model"] == "intents@1" and report["examples"] == 48
    assert report["accuracy"] == pytest.approx(first["metrics"]["test"]["accuracy"])
    assert report["confusion"] == first["metrics"]["test"]["confusion"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval", "classify", "--model", "intents@1", "--data", str(splits["test"])]) == 0
    assert "per class" in capsys.readouterr().out

    settings = Settings.from_env()
    info = modeldeck.ModelStore(settings).resolve("intents@1")
    assert info.runtime == "transformers" and info.tasks == ("classify",)
    card = info.card
    assert card["base"]["version"] == "local" and card["labels"] == ["complaint", "praise", "question"]
    assert card["data"]["data"].startswith("sha256:") and card["recipe"]["recipe"] == "ulmfit"
    files = {p.name for p in info.path.iterdir()}
    assert {"model.safetensors", "config.json", "curves.png"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl", ".pth")) for name in files)  # no pickle
    classify = modeldeck.load("classify", model="intents@1", settings=settings)
    assert classify.labels == ("complaint", "praise", "question")
    assert classify("Is the router reliable?").labels[0].label in classify.labels
