"""run_spark_job as the CLI calls it: no session yet, so it builds one from master and conf and stops it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeldeck.jobs._spark_job import run_spark_job

pytestmark = [pytest.mark.spark, pytest.mark.timeout(180)]


def test_builds_and_stops_its_own_session(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:
        pytest.skip("another test module left a session running")
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)  # workers must still run this interpreter
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["Tim Cook visited Paris.", None]}), source)

    summary = run_spark_job(
        "ner",
        str(source),
        str(tmp_path / "out.parquet"),
        column="text",
        master="local[1]",
        conf={"spark.ui.showConsoleProgress": "false"},
    )

    assert (summary.rows, summary.errors) == (2, 1)
    assert SparkSession.getActiveSession() is None
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["text", "result", "error"]
