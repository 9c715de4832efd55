"""Labelled data: formats, inferred columns, bad rows counted, stratified splits, clear errors before training."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeldeck.config import Settings
from modeldeck.errors import InputError, OptionError, UnknownNameError
from modeldeck.finetuning import finetune
from modeldeck.finetuning._data import LabelledData, infer_columns, read_labelled, stratified_split


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_csv_jsonl_and_parquet_read_the_same_rows_and_count_bad_ones(tmp_path: Path) -> None:
    good = [("the printer is jammed", "it"), ("invoice twice", "billing"), ("wifi down", "it"), ("refund", "billing")]
    csv = tmp_path / "d.csv"
    csv.write_text(
        "body,team\n" + "".join(f"{t},{lab}\n" for t, lab in good) + ",it\nno label here,\n   ,billing\n",
        encoding="utf-8",
    )
    jsonl = _jsonl(
        tmp_path / "d.jsonl",
        [{"body": t, "team": lab} for t, lab in good] + ["{not json", {"body": "x"}, {"body": 3, "team": "it"}],
    )
    parquet = tmp_path / "d.parquet"
    pq.write_table(
        pa.table({"body": [t for t, _ in good] + [None], "team": [lab for _, lab in good] + ["it"]}), parquet
    )
    for path, bad in ((csv, 3), (jsonl, 3), (parquet, 1)):
        data = read_labelled(path, "body", "team")
        assert list(zip(data.texts, data.labels, strict=True)) == good, path
        assert data.bad_rows == bad, path


def test_columns_are_inferred_from_usual_names_or_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("Sentence,Category\na,x\nb,y\n", encoding="utf-8")
    assert infer_columns(path, None, None) == ("Sentence", "Category")
    odd = tmp_path / "odd.csv"
    odd.write_text("words,tag\na,x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"--text-column.*words, tag"):
        infer_columns(odd, None, None)
    assert read_labelled(odd, "words", "tag").labels == ("x",)
    ints = tmp_path / "ints.csv"
    ints.write_text("text,label\na,1\nb,0\n", encoding="utf-8")
    assert read_labelled(ints).labels == ("1", "0")  # numeric labels become label names


def test_stratified_split_keeps_every_label_on_both_sides() -> None:
    labels = ["a"] * 20 + ["b"] * 10 + ["c"] * 2
    data = LabelledData(tuple(f"t{i}" for i in range(len(labels))), tuple(labels))
    train, valid = stratified_split(data, 0.2, seed=1)
    assert Counter(valid.labels) == {"a": 4, "b": 2, "c": 1}
    assert Counter(train.labels) == {"a": 16, "b": 8, "c": 1}
    assert set(train.texts).isdisjoint(valid.texts) and len(train) + len(valid) == len(data)
    assert stratified_split(data, 0.2, seed=1) == (train, valid)  # seeded


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,label\na,x\nb,x\nc,x\n", "single class"),
        ("text,label\na,x\nb,x\nc,y\n", "'y'.*fewer than 2 examples"),
        ("text,label\n,x\n  ,y\n", "no usable rows"),
    ],
)
def test_untrainable_data_stops_before_any_model_loads(
    tmp_path: Path, settings: Settings, content: str, message: str
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        finetune("classify", data=path, name="m", base="/nonexistent", settings=settings)


def test_unreadable_files_and_bad_settings_are_clear_errors(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(InputError, match="does not exist"):
        finetune("classify", data=tmp_path / "missing.csv", name="m", settings=settings)
    corrupt = tmp_path / "d.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"d\.parquet"):
        finetune("classify", data=corrupt, name="m", settings=settings, text_column="text", label_column="label")
    with pytest.raises(InputError, match="not a file"):
        finetune("classify", data=tmp_path, name="m", settings=settings)
    notes = tmp_path / "notes.txt"
    notes.write_text("text,label\na,x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"extension '\.txt'"):
        finetune("classify", data=notes, name="m", settings=settings, text_column="text", label_column="label")
    good = tmp_path / "g.csv"
    good.write_text("text,label\na,x\nb,x\nc,y\nd,y\n", encoding="utf-8")
    with pytest.raises(OptionError, match="epochs"):
        finetune("classify", data=good, name="m", settings=settings, epochs=0)
    with pytest.raises(OptionError, match="unknown option 'epoch'"):
        finetune("classify", data=good, name="m", settings=settings, epoch=3)
    with pytest.raises(OptionError, match="lm_epochs is stage 1 of the ulmfit recipe"):
        finetune("classify", data=good, name="m", settings=settings, recipe="plain", lm_epochs=2)
    with pytest.raises(UnknownNameError, match="classify"):
        finetune("summarize", data=good, name="m", settings=settings)
    valid = tmp_path / "v.csv"
    valid.write_text("text,label\na,x\nb,z\n", encoding="utf-8")
    with pytest.raises(InputError, match="labels the training data lacks: 'z'"):
        finetune("classify", data=good, valid=valid, name="m", settings=settings)


def test_unlabeled_texts_for_stage_1_skip_empty_and_unreadable_rows(tmp_path: Path) -> None:
    from modeldeck.finetuning._recipe import _read_unlabeled

    path = _jsonl(tmp_path / "u.jsonl", [{"body": "more domain text"}, {"body": "  "}, "{broken", {"body": "again"}])
    assert _read_unlabeled(path, "body") == ("more domain text", "again")
