"""NER fine-tuning: span data checked and aligned to tokens, entity-level metrics, a real run into the store."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.errors import ConfigError, InputError
from modeldeck.evaluation.ner import entity_metrics
from modeldeck.finetuning import FinetuneReport, finetune
from modeldeck.finetuning._spans import IGNORE, align_tags, bio_tags, read_spans

from .conftest import minilm_path
from .ner_data import write_jsonl, write_ner_splits


def test_span_rows_are_checked_and_bad_ones_counted_by_reason(tmp_path: Path) -> None:
    good = [
        {"text": "Anna lives in Oslo.", "entities": [[0, 4, "PER"], [14, 18, "CITY"]]},
        {"text": "Nothing to see here.", "entities": []},
        {"text": "Hooli hired Marek.", "entities": [{"start": 12, "end": 17, "label": "PER"}, [0, 5, "ORG"]]},
    ]
    bad: list[object] = [
        "{not json",
        {"text": "  ", "entities": []},
        {"text": "Oslo", "entities": [[0, 9, "CITY"]]},  # past the end
        {"text": "Oslo", "entities": [[-1, 2, "CITY"]]},
        {"text": "New York City", "entities": [[0, 8, "CITY"], [4, 13, "CITY"]]},  # overlapping
        {"text": "Oslo", "entities": [[0, 4]]},
        {"text": "Oslo", "entities": [[0, 4, ""]]},
        {"text": "Oslo", "entities": "CITY"},
        [1, 2, 3],
    ]
    data = read_spans(write_jsonl(tmp_path / "d.jsonl", [good[0], *bad, good[1], good[2]]))
    assert data.texts == tuple(str(row["text"]) for row in good)
    assert data.entities == (((0, 4, "PER"), (14, 18, "CITY")), (), ((0, 5, "ORG"), (12, 17, "PER")))
    assert dict(data.bad) == {
        "not json": 1,
        "empty text": 1,
        "out of range": 2,
        "overlapping": 1,
        "malformed entities": 3,
        "not an object": 1,
    }
    assert data.bad_rows == 9 and data.counts() == Counter({"PER": 2, "CITY": 1, "ORG": 1})
    assert bio_tags(["CITY", "PER"]) == ("O", "B-CITY", "I-CITY", "B-PER", "I-PER")


def test_unusable_ner_data_stops_before_any_model_loads(tmp_path: Path, settings: Settings) -> None:
    none = write_jsonl(tmp_path / "none.jsonl", [{"text": "no entities here", "entities": []}] * 4)
    with pytest.raises(InputError, match="label set is empty"):
        finetune("ner", data=none, name="m", base="/nonexistent", settings=settings)
    with pytest.raises(InputError, match="does not exist"):
        finetune("ner", data=tmp_path / "missing.jsonl", name="m", settings=settings)
    csv = tmp_path / "d.csv"
    csv.write_text("text,entities\n", encoding="utf-8")
    with pytest.raises(InputError, match="must be JSON Lines"):
        finetune("ner", data=csv, name="m", settings=settings)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"text": "caf\xe9", "entities": []}\n')
    with pytest.raises(InputError, match="cannot read"):
        finetune("ner", data=latin, name="m", settings=settings)
    broken = write_jsonl(tmp_path / "broken.jsonl", ["{oops", {"text": ""}])
    with pytest.raises(InputError, match=r"no usable rows \(1 empty text, 1 not json\)"):
        finetune("ner", data=broken, name="m", settings=settings)
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": "Anna", "entities": [[0, 4, "PER"]]}] * 3)
    valid = write_jsonl(tmp_path / "v.jsonl", [{"text": "Oslo", "entities": [[0, 4, "CITY"]]}])
    with pytest.raises(InputError, match="entity labels the training data lacks: 'CITY'"):
        finetune("ner", data=train, valid=valid, name="m", settings=settings)
    with pytest.raises(ConfigError, match="BERT-family"):
        finetune("ner", data=train, name="m", base="awd-lstm", settings=settings)


def test_spans_align_to_token_offsets_and_misfits_are_counted() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    text = "Flights from Kraków to New York stopped."
    enc = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=64)
    offsets = np.asarray(enc["offset_mapping"])
    tags = bio_tags(["CITY"])
    tag_ids = {t: i for i, t in enumerate(tags)}
    aligned = align_tags(offsets, [(13, 19, "CITY"), (23, 31, "CITY")], tag_ids)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    named = [(tok, tags[t] if t != IGNORE else None) for tok, t in zip(tokens, aligned.tags, strict=True)]
    assert named[0] == ("[CLS]", None) and named[-1] == ("[SEP]", None)  # special tokens carry no loss
    city = [tok for tok, tag in named if tag and tag != "O"]
    first = [tag for _, tag in named if tag and tag.startswith("B-")]
    assert "".join(city).replace("#", "") == "krakownewyork" and len(first) == 2
    assert (aligned.unaligned, aligned.truncated) == (0, 0)
    # A span that cuts a word ("Yor" of "York") still tags the token it overlaps, and is counted.
    cut = align_tags(offsets, [(27, 30, "CITY")], tag_ids)
    assert cut.unaligned == 1 and tags[cut.tags[tokens.index("york")]] == "B-CITY"
    # max_length cuts the text before "York": that span is counted as truncated, not tagged.
    short = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=6)
    lost = align_tags(np.asarray(short["offset_mapping"]), [(13, 19, "CITY"), (23, 31, "CITY")], tag_ids)
    assert (lost.unaligned, lost.truncated) == (0, 1)


def test_entity_metrics_equal_a_hand_count() -> None:
    truth = [
        [(0, 4, "PER"), (14, 18, "CITY")],
        [(0, 5, "ORG"), (12, 17, "PER")],
        [(3, 9, "CITY")],
        [],
    ]
    predicted = [
        [(0, 4, "PER"), (14, 18, "ORG")],  # right PER; CITY labelled ORG: a false ORG and a missed CITY
        [(0, 5, "ORG"), (12, 16, "PER")],  # PER one char short: no partial credit
        [(3, 9, "CITY")],
        [(0, 2, "PER")],  # spurious
    ]
    m = entity_metrics(truth, predicted)
    # By hand: PER tp 1 of 3 predicted, 2 true; ORG tp 1 of 2 predicted, 1 true; CITY tp 1 of 1, 2 true.
    assert m["labels"] == ["CITY", "ORG", "PER"]
    assert (m["entities"], m["predicted"], m["correct"]) == (5, 6, 3)
    assert m["per_label"]["PER"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 2, "f1": 0.4, "support": 2})
    assert m["per_label"]["ORG"] == pytest.approx({"precision": 1 / 2, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["per_label"]["CITY"] == pytest.approx({"precision": 1.0, "recall": 1 / 2, "f1": 2 / 3, "support": 2})
    assert (m["micro_precision"], m["micro_recall"]) == pytest.approx((3 / 6, 3 / 5))
    assert m["micro_f1"] == pytest.approx(2 * 0.5 * 0.6 / 1.1)
    assert m["macro_f1"] == pytest.approx((0.4 + 2 / 3 + 2 / 3) / 3)
    assert m["macro_precision"] == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)
    # Labels asked for: one the data never has scores zero and lowers the macro mean; micro is unchanged.
    wider = entity_metrics(truth, predicted, ["CITY", "ORG", "PER", "DATE"])
    assert wider["per_label"]["DATE"]["f1"] == 0 and wider["macro_f1"] == pytest.approx(m["macro_f1"] * 3 / 4)
    assert wider["micro_f1"] == pytest.approx(m["micro_f1"])


def _capitalised_runs(text: str, label: str) -> list[tuple[int, int, str]]:
    """The trivial baseline: every run of capitalised words is an entity of the most frequent training label."""
    return [(m.start(), m.end(), label) for m in re.finditer(r"[A-Z]\w*(?: [A-Z]\w*)*", text)]


@pytest.fixture(scope="module")
def ner_splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_ner_splits(tmp_path_factory.mktemp("ner"), train=64, valid=16, test=48)


# Three epochs, three groups more per epoch: the whole encoder trains by the last one (8 groups).
MINILM_RECIPE: dict[str, Any] = {"epochs": 3, "batch_size": 8, "max_length": 32, "unfreeze_per_epoch": 3}


@pytest.fixture(scope="module")
def tuned_ner(ner_splits: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[FinetuneReport, Settings]:
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    report = finetune(
        "ner",
        data=ner_splits["train"],
        valid=ner_splits["valid"],
        test=ner_splits["test"],
        name="people",
        settings=settings,
        **MINILM_RECIPE,
    )
    return report, settings


@pytest.mark.slow
@pytest.mark.timeout(1500)  # minutes on a busy 2-core machine
def test_minilm_tags_unseen_names_far_better_than_a_trivial_baseline(
    tuned_ner: tuple[FinetuneReport, Settings], ner_splits: dict[str, Path]
) -> None:
    report, _ = tuned_ner
    train, test = read_spans(ner_splits["train"]), read_spans(ner_splits["test"])
    majority = train.counts().most_common(1)[0][0]
    baseline = entity_metrics(test.entities, [_capitalised_runs(t, majority) for t in test.texts])["micro_f1"]
    tuned = report.metrics["test"]["micro_f1"]
    # The test rows name people, companies and cities the training rows never saw. Measured on the
    # project's machine: 0.50 against 0.28 (docs/finetune.md).
    assert tuned >= baseline + 0.15, (tuned, baseline)
    assert report.model == "people@1" and report.labels == ("CITY", "ORG", "PER")
    assert [h["trainable_groups"] for h in report.history] == [1, 4, 7][: len(report.history)]
    assert report.data_notes["spans"]["train"] == {
        "spans": sum(len(e) for e in train.entities),
        "unaligned": 0,
        "truncated": 0,
        "unknown_label": 0,
    }


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_store_version_answers_char_spans_and_eval_ner_scores_what_training_measured(
    tuned_ner: tuple[FinetuneReport, Settings],
    ner_splits: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report, settings = tuned_ner
    assert report.model is not None
    ner = modeldeck.load("ner", model=report.model, settings=settings)
    assert ner.labels == ("CITY", "ORG", "PER")
    test = read_spans(ner_splits["test"])
    results = ner(list(test.texts))
    for text, result in zip(test.texts, results, strict=True):
        assert all(text[e.start : e.end] == e.text and e.score is not None for e in result.entities)
    predicted = [[(e.start, e.end, e.label) for e in r.entities] for r in results]
    reference = entity_metrics(test.entities, predicted, ["CITY", "ORG", "PER"])

    monkeypatch.setenv("MODELDECK_HOME", str(settings.home))
    assert main(["eval", "ner", "--model", report.model, "--data", str(ner_splits["test"]), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for key in ("micro_precision", "micro_recall", "micro_f1", "macro_f1", "entities", "predicted", "correct"):
        assert evaluated[key] == pytest.approx(reference[key]), key
        assert evaluated[key] == pytest.approx(report.metrics["test"][key]), key  # the served model = the trained
    assert evaluated["per_label"].keys() == reference["per_label"].keys()
    for label, row in reference["per_label"].items():
        assert evaluated["per_label"][label] == pytest.approx(row), label
    info = ner.info
    assert info.tasks == ("ner",) and info.card["labels"] == ["CITY", "ORG", "PER"]
    assert info.card["metrics"]["test"]["micro_f1"] == pytest.approx(reference["micro_f1"])
    files = {p.name for p in info.path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "curves.png"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl", ".pth")) for name in files)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_cli_finetune_ner_reports_bad_rows_and_eval_renders_tables(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from .ner_data import rows

    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "160")  # rich tables as wide as a terminal would show them
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [
            *rows(24, 0),
            "{oops",
            {"text": "Oslo", "entities": [[0, 40, "CITY"]]},
            {"text": "Anna Novak", "entities": []},
        ],
    )
    argv = ["finetune", "ner", "--data", str(train), "--base", str(tiny_bert), "--name", "tiny-ner"]
    argv += ["--epochs", "2", "--max-length", "32", "--valid-split", "0.2", "--quiet"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "tiny-ner@1" and out["bad_rows"] == {"data": 2, "valid": 0}
    assert out["data_notes"]["bad_row_reasons"]["data"] == {"not json": 1, "out of range": 1}
    assert [set(h) >= {"valid_f1", "valid_precision", "valid_recall"} for h in out["history"]] == [True, True]
    assert main(argv) == 0  # the next version, rendered as tables
    printed = capsys.readouterr().out
    assert "tiny-ner@2" in printed and "valid F1" in printed and "1 not json" in printed
    assert main(["eval", "ner", "--model", "tiny-ner@2", "--data", str(train)]) == 0
    printed = capsys.readouterr().out
    assert "per label" in printed and "bad rows: not json" in printed
