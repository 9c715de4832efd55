"""Tensor models over tables: one column per input or one struct column, locally and on Spark, same rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import modeldeck
from modeldeck.cli.main import main
from modeldeck.errors import InputError
from modeldeck.jobs import run_job
from modeldeck.tasks.tensor_results import TensorResult

ROWS = 40


def _table(torch_dir: Path) -> tuple[pa.Table, list[dict]]:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(ROWS, 4)).astype(np.float32)
    masks = rng.integers(0, 2, size=(ROWS, 2)).astype(np.float32)
    features_list = features.tolist()
    features_list[5] = [1.0, 2.0, 3.0]  # a row of the wrong shape: that row's error, not the job's
    table = pa.table({"id": list(range(ROWS)), "features": features_list, "mask": masks.tolist()})
    examples = [{"features": f, "mask": m} for f, m in zip(features_list, masks.tolist(), strict=True)]
    return table, examples


def _expected(torch_dir: Path, examples: list[dict]) -> list[dict | None]:
    task = modeldeck.load(str(torch_dir / "two.pt2"))
    return [None if isinstance(r, Exception) else r.to_dict() for r in task.predict_each(examples)]


def test_columns_named_like_the_inputs(tmp_path, torch_dir):
    table, examples = _table(torch_dir)
    pq.write_table(table, tmp_path / "rows.parquet")
    summary = run_job(
        "tensor",
        tmp_path / "rows.parquet",
        tmp_path / "out",
        column="features,mask",
        model=str(torch_dir / "two.pt2"),
        progress=False,
    )
    assert (summary.rows, summary.errors) == (ROWS, 1)
    out = pq.read_table(tmp_path / "out")
    assert out.column_names == ["id", "features", "mask", "result", "error"]
    results = out.column("result").to_pylist()
    expected = _expected(torch_dir, examples)
    for got, want in zip(results, expected, strict=True):
        if want is None:
            assert got is None
            continue
        np.testing.assert_allclose(
            TensorResult.from_dict(got)["logits"], TensorResult.from_dict(want)["logits"], atol=1e-6
        )
    assert out.column("error").to_pylist()[5]["code"] == "MD122"


def test_one_struct_column_and_a_model_name_as_the_task(tmp_path, torch_dir, monkeypatch, capsys):
    for var in [v for v in os.environ if v.startswith("MODELDECK_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    assert main(["models", "import", str(torch_dir / "two.pt2"), "--name", "pair"]) == 0
    table, examples = _table(torch_dir)
    columns = [table.column("features").combine_chunks(), table.column("mask").combine_chunks()]
    struct = pa.StructArray.from_arrays(columns, names=["features", "mask"])
    pq.write_table(pa.table({"id": table.column("id"), "x": struct}), tmp_path / "rows.parquet")
    code = main(["run", "pair", "--input", str(tmp_path / "rows.parquet"), "--output", str(tmp_path / "out.jsonl"),
                 "--column", "x", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(lines) == ROWS and lines[5]["error"]["code"] == "MD122"
    expected = _expected(torch_dir, examples)
    assert [line["result"] is None for line in lines] == [e is None for e in expected]
    np.testing.assert_allclose(
        TensorResult.from_dict(lines[0]["result"])["total"], TensorResult.from_dict(expected[0])["total"], atol=1e-6
    )


def test_jsonl_rows_and_a_missing_column(tmp_path, onnx_dir):
    rows = [{"ids": [i, i + 1, i + 2]} for i in range(10)] + [{"ids": [1.5, 2, 3]}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run_job("tensor", tmp_path / "rows.jsonl", tmp_path / "out", model=str(onnx_dir / "ids.onnx"),
                      progress=False)  # fmt: skip
    assert (summary.rows, summary.errors) == (11, 1)
    results = pq.read_table(tmp_path / "out").column("result").to_pylist()
    assert [r["outputs"][0]["data"] for r in results[:3]] == [[3.0], [6.0], [9.0]]
    assert results[0]["outputs"][0]["dtype"] == "int64"
    with pytest.raises(InputError, match="no column"):
        run_job("tensor", tmp_path / "rows.jsonl", tmp_path / "out2", column="idz", model=str(onnx_dir / "ids.onnx"),
                progress=False)  # fmt: skip
