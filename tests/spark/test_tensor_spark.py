"""``modeldeck.spark.predict`` over a tensor model gives the same rows as the local runner."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from modeldeck.jobs import run_job

from ..tensor.builders import build_torch
from ..tensor.test_tensor_jobs import _table

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(300)]


def test_tensor_columns_give_the_same_rows_as_the_local_runner(spark, tmp_path):
    from modeldeck.spark import predict

    build_torch(tmp_path)
    model = str(tmp_path / "two.pt2")
    table, _ = _table(tmp_path)
    pq.write_table(table, tmp_path / "rows.parquet")
    run_job("tensor", tmp_path / "rows.parquet", tmp_path / "local", column="features,mask", model=model,
            progress=False)  # fmt: skip
    local = pq.read_table(tmp_path / "local").to_pylist()
    df = spark.read.parquet(str(tmp_path / "rows.parquet"))
    out = predict(df, "tensor", ["features", "mask"], model=model)
    rows = sorted((r.asDict(recursive=True) for r in out.collect()), key=lambda r: r["id"])
    assert [r["error"] for r in rows] == [r["error"] for r in local]
    assert rows[5]["error"]["code"] == "MD122"
    for mine, theirs in zip(rows, local, strict=True):
        if theirs["result"] is None:
            assert mine["result"] is None
            continue
        for a, b in zip(mine["result"]["outputs"], theirs["result"]["outputs"], strict=True):
            assert (a["name"], a["dtype"], a["shape"]) == (b["name"], b["dtype"], b["shape"])
            np.testing.assert_allclose(a["data"], b["data"], atol=1e-6)


def test_a_struct_column_and_driver_side_checks(spark, tmp_path):
    from pyspark.sql import functions as F

    from modeldeck.errors import InputError
    from modeldeck.spark import predict

    build_torch(tmp_path)
    model = str(tmp_path / "two.pt2")
    table, _ = _table(tmp_path)
    df = spark.createDataFrame(table.to_pandas()).select("id", F.struct("features", "mask").alias("x"))
    rows = sorted((r.asDict(recursive=True) for r in predict(df, "tensor", "x", model=model).collect()),
                  key=lambda r: r["id"])  # fmt: skip
    assert sum(r["error"] is not None for r in rows) == 1 and rows[0]["result"]["outputs"][0]["name"] == "logits"
    with pytest.raises(InputError, match="'nope'"):
        predict(df, "tensor", ["x", "nope"], model=model)
