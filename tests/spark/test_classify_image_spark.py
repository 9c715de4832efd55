"""``modeldeck.spark.predict`` over classify-image gives the same rows as the local runner."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modeldeck.jobs import run_job

from ..vision.classifier_graphs import colour_model

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(300)]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_image_column_gives_the_same_rows_as_the_local_runner(spark, tmp_path):
    from modeldeck.spark import predict

    model = str(colour_model(tmp_path / "model"))
    rng = np.random.default_rng(7)
    images = [png(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)) for i in range(40)]
    images[11] = b"not an image"
    table = pa.table({"id": list(range(40)), "image": pa.array(images, pa.binary())})
    pq.write_table(table, tmp_path / "rows.parquet")
    run_job("classify-image", tmp_path / "rows.parquet", tmp_path / "local", column="image", model=model,
            options={"top_k": 2}, progress=False)  # fmt: skip
    local = sorted(pq.read_table(tmp_path / "local").to_pylist(), key=lambda r: r["id"])
    df = spark.read.parquet(str(tmp_path / "rows.parquet"))
    out = predict(df, "classify-image", "image", model=model, top_k=2)
    rows = sorted((r.asDict(recursive=True) for r in out.collect()), key=lambda r: r["id"])
    assert [r["error"] for r in rows] == [r["error"] for r in local]
    assert rows[11]["result"] is None and rows[11]["error"]["code"] == "MD104"
    for mine, theirs in zip(rows, local, strict=True):
        if theirs["result"] is None:
            continue
        assert [lab["label"] for lab in mine["result"]["labels"]] == [
            lab["label"] for lab in theirs["result"]["labels"]
        ]
        np.testing.assert_allclose(
            [lab["score"] for lab in mine["result"]["labels"]],
            [lab["score"] for lab in theirs["result"]["labels"]],
            atol=1e-6,
        )
        assert len(mine["result"]["labels"]) == 2
