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


def test_multilabel_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    from modeldeck.evaluation.classify import multilabel_metrics

    rng = np.random.default_rng(1)
    labels = ["billing", "hardware", "urgent"]
    truth = [tuple(x for x in labels if rng.random() < 0.4) for _ in range(100)]
    predicted = [tuple(x for x in labels if (x in t) != (rng.random() < 0.25)) for t in truth]
    m = multilabel_metrics(truth, predicted, labels)
    binarize = MultiLabelBinarizer(classes=labels).fit([labels])
    t, p = binarize.transform(truth), binarize.transform(predicted)
    assert m["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert m["micro_f1"] == pytest.approx(f1_score(t, p, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    precision, recall, f1, support = precision_recall_fscore_support(t, p, zero_division=0)
    for i, label in enumerate(labels):
        row = m["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )


@pytest.mark.slow
@pytest.mark.timeout(1500)  # minutes on a busy 2-core machine
def test_multi_label_rows_train_a_sigmoid_classifier_that_classify_and_eval_read(
    tiny_bert: Path, tmp_path: Path, settings: Settings
) -> None:
    from modeldeck.evaluation.classify import evaluate_classify
    from modeldeck.finetuning import finetune

    rng = np.random.default_rng(0)
    words = {"billing": "invoice", "hardware": "printer", "urgent": "asap"}

    def write(path: Path, n: int) -> Path:
        rows = []
        for _ in range(n):
            tags = sorted(t for t in words if rng.random() < 0.5)
            text = " ".join(["please", "help", *(words[t] for t in tags)])
            rows.append(json.dumps({"text": text, "tags": tags}))
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return path

    train, valid, test = (
        write(tmp_path / "t.jsonl", 48),
        write(tmp_path / "v.jsonl", 12),
        write(tmp_path / "x.jsonl", 12),
    )
    report = finetune(
        "classify",
        data=train,
        valid=valid,
        test=test,
        base=str(tiny_bert),
        name="tags",
        settings=settings,
        label_column="tags",
        epochs=2,
        batch_size=16,
        max_length=16,
        lr=1e-3,
    )
    assert report.labels == ("billing", "hardware", "urgent")
    assert report.metrics["test"]["multi_label"] and "micro_f1" in report.metrics["test"]
    classify = modeldeck.load("classify", model=report.model, settings=settings)
    result = classify("please help invoice")
    assert result.multi_label and len(result.labels) == 3
    evaluated = evaluate_classify(classify, test, label_column="tags")
    assert evaluated.metrics["micro_f1"] == pytest.approx(report.metrics["test"]["micro_f1"])
    assert evaluated.metrics["accuracy"] == pytest.approx(report.metrics["test"]["accuracy"])
    assert "micro f1" in evaluated.render()
