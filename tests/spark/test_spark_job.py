"""run_spark_job (what `modeldeck run --engine spark` calls): files in, files out, refusals up front."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import modeldeck
from modeldeck.errors import EmptyInputError, InputError, JobError, OptionError
from modeldeck.jobs import predict_arrow
from modeldeck.jobs._spark_job import _worker_python, run_spark_job

pytestmark = [pytest.mark.spark, pytest.mark.timeout(180)]

TEXTS = ["Tim Cook visited Paris.", "", "Angela Merkel met Emmanuel Macron in Berlin.", 'She said "hi" to Dr. Chen.']


@pytest.fixture
def parquet_input(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"id": list(range(len(TEXTS))), "text": TEXTS}), path)
    return path


def test_parquet_round_trip_matches_local_columns(spark, parquet_input, tmp_path):
    output = tmp_path / "ents.parquet"
    summary = run_spark_job("ner", str(parquet_input), str(output), column="text")

    assert (summary.rows, summary.errors, summary.output) == (len(TEXTS), 1, str(output))
    assert summary.describe().startswith(f"4 rows (1 errors) -> {output} [parquet, spark] in ")
    assert summary.seconds > 0 and summary.rows_per_s > 0
    table = pq.read_table(output).sort_by("id")
    assert table.column_names == ["id", "text", "result", "error"]
    assert table.column("text").to_pylist() == TEXTS
    local = modeldeck.load("ner")
    results, errors = predict_arrow(local, TEXTS, local.default_options)
    assert table.column("result").to_pylist() == results.to_pylist()
    assert table.column("error").to_pylist() == errors.to_pylist()


def test_csv_in_json_lines_out(spark, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('id,body\n0,Tim Cook visited Paris.\n1,"She said ""hi"" to Dr. Chen, in Rome."\n')
    output = tmp_path / "out.jsonl"
    summary = run_spark_job("ner", str(source), str(output), column="body", options={"labels": ["PERSON"]})
    assert summary.format == "json"

    assert (summary.rows, summary.errors) == (2, 0)
    lines = [json.loads(line) for part in sorted(output.glob("part-*")) for line in part.read_text().splitlines()]
    rows = {row["id"]: row for row in lines}
    assert rows["1"]["body"] == 'She said "hi" to Dr. Chen, in Rome.'  # RFC 4180 quotes, not backslashes
    assert [e["label"] for row in lines for e in row["result"]["entities"]] == ["PERSON"] * 2


def test_existing_output_is_refused_unless_overwrite(spark, parquet_input, tmp_path):
    output = tmp_path / "ents.parquet"
    output.mkdir()
    (output / "keep.txt").write_text("not mine")
    with pytest.raises(JobError, match=r"already exists.*--overwrite"):
        run_spark_job("ner", str(parquet_input), str(output), column="text")
    assert (output / "keep.txt").exists()

    summary = run_spark_job("ner", str(parquet_input), str(output), column="text", overwrite=True)
    assert summary.rows == len(TEXTS) and not (output / "keep.txt").exists()


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "match"),
    [
        ("missing.parquet", {}, InputError, "does not exist"),
        ("data.txt", {}, InputError, r"extension '\.txt'.*\.parquet"),
        ("empty.csv", {}, EmptyInputError, "is empty"),
        (None, {"output_format": "xml"}, OptionError, "unknown output format 'xml'"),
        (None, {"column": None}, InputError, "which column"),
        (None, {"column": "body"}, InputError, "available columns: 'id', 'text'"),
        (None, {"options": {"colour": "red"}}, OptionError, "unknown option 'colour'"),
    ],
)
def test_bad_jobs_fail_before_work(spark, parquet_input, tmp_path, source, kwargs, error, match):
    path = parquet_input if source is None else tmp_path / source
    if source == "empty.csv":
        path.write_text("")
    with pytest.raises(error, match=match):
        run_spark_job("ner", str(path), str(tmp_path / "out.parquet"), **{"column": "text", **kwargs})
    assert not (tmp_path / "out.parquet").exists()


def test_corrupt_parquet_is_an_input_error(spark, tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="cannot read"):
        run_spark_job("ner", str(bad), str(tmp_path / "out.parquet"), column="text")


def test_worker_python_defaults_to_this_interpreter_on_a_local_master(monkeypatch):
    import sys

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    assert _worker_python("local[2]", {}) == sys.executable
    assert _worker_python("spark://host:7077", {}) is None
    assert _worker_python("yarn", {"spark.pyspark.python": "/opt/py/bin/python"}) == "/opt/py/bin/python"
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3")
    assert _worker_python("local[2]", {}) is None


def test_cli_run_engine_spark_matches_the_local_engine(spark, parquet_input, tmp_path, capsys):
    from modeldeck.cli.main import main

    common = ["run", "ner", "--input", str(parquet_input), "--column", "text", "--quiet"]
    assert main([*common, "--output", str(tmp_path / "spark-out"), "--engine", "spark", "--master", "local[2]"]) == 0
    assert main([*common, "--output", str(tmp_path / "local-out")]) == 0
    on_spark = pq.read_table(tmp_path / "spark-out").sort_by("id")
    locally = pq.read_table(tmp_path / "local-out").sort_by("id")
    assert on_spark.column_names == locally.column_names == ["id", "text", "result", "error"]
    for name in ("id", "text", "result", "error"):  # engine parity, row for row
        assert on_spark.column(name).to_pylist() == locally.column(name).to_pylist()
    assert "spark" in capsys.readouterr().out
