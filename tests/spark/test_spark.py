"""modeldeck.spark.predict on a real local[2] session: parity with local runs, schema, errors, loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modeldeck
from modeldeck.errors import InputError, InputTypeError, OptionError, UnknownNameError
from modeldeck.jobs import predict_arrow
from modeldeck.spark import predict
from modeldeck.tasks.results import NERResult

pytestmark = [pytest.mark.spark, pytest.mark.timeout(180)]

TEXTS = [
    "Tim Cook visited Paris.",
    "Angela Merkel met Emmanuel Macron in Berlin on Tuesday.",
    "The committee reviewed the contract with Siemens in London last week.",
    "nothing to see here",
    "Dr. Chen shipped three new trains for Amtrak. Maria Garcia celebrated in Tokyo. " * 20,
    "Apple bought a startup in Toronto for $1 billion in 2019.",
]


def _frame(spark: Any, texts: list[Any], partitions: int = 3, kind: str = "string") -> Any:
    return spark.createDataFrame(list(enumerate(texts)), f"id long, text {kind}").repartition(partitions)


def _by_id(df: Any) -> list[Any]:
    return df.orderBy("id").collect()


def _jobs_run(spark: Any) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup())


def test_ner_matches_local_runs_row_for_row(spark):
    rows = _by_id(predict(_frame(spark, TEXTS), "ner", "text"))

    local = modeldeck.load("ner")
    expected = local(TEXTS)
    arrow_results, arrow_errors = predict_arrow(local, TEXTS, local.default_options)
    assert [row.id for row in rows] == list(range(len(TEXTS)))
    assert [row.text for row in rows] == TEXTS  # input columns are kept
    got = [row.result.asDict(recursive=True) for row in rows]
    assert [NERResult.from_dict(g) for g in got] == expected
    assert got == arrow_results.to_pylist()  # the local runner's own columns, value for value
    assert [row.error for row in rows] == arrow_errors.to_pylist() == [None] * len(TEXTS)
    assert sum(len(r) for r in expected) > 10


def test_result_is_a_typed_struct(spark):
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructType

    schema = predict(_frame(spark, TEXTS[:1]), "ner", "text").schema
    assert schema.fieldNames() == ["id", "text", "result", "error"]
    result = schema["result"].dataType
    assert isinstance(result, StructType) and result.fieldNames() == ["entities"]
    entities = result["entities"].dataType
    assert isinstance(entities, ArrayType) and isinstance(entities.elementType, StructType)
    entity = entities.elementType
    assert entity.fieldNames() == ["text", "label", "start", "end", "score"]
    assert isinstance(entity["start"].dataType, LongType) and isinstance(entity["end"].dataType, LongType)
    assert isinstance(entity["label"].dataType, StringType) and isinstance(entity["score"].dataType, DoubleType)
    error = schema["error"].dataType
    assert error.fieldNames() == ["code", "message"]


def test_embed_vectors_equal_local_ones(spark):
    from pyspark.sql.types import ArrayType, FloatType

    texts = TEXTS[:4]
    out = predict(_frame(spark, texts, partitions=2), "embed", "text", normalize=True)
    assert out.schema["result"].dataType["vector"].dataType == ArrayType(FloatType(), True)
    rows = _by_id(out)

    expected = modeldeck.load("embed", normalize=True)(texts)
    for row, local in zip(rows, expected, strict=True):
        assert row.error is None
        vector = np.asarray(row.result.vector, dtype=np.float32)
        assert vector.shape == local.vector.shape == (384,)
        np.testing.assert_allclose(vector, local.vector, atol=1e-6)
        assert row.result.dim == 384 and row.result.chunks == local.chunks


def test_bad_rows_get_errors_and_the_others_results(spark):
    texts = ["Tim Cook visited Paris.", None, "", "   ", "Angela Merkel met Emmanuel Macron in Berlin."]
    rows = _by_id(predict(_frame(spark, texts, partitions=2), "ner", "text"))

    assert [row.error.code if row.error else None for row in rows] == [None, "MD102", "MD101", "MD101", None]
    assert [row.result is None for row in rows] == [False, True, True, True, False]
    local = modeldeck.load("ner")
    results, errors = predict_arrow(local, texts, local.default_options)
    assert [r.error.asDict() if r.error else None for r in rows] == errors.to_pylist()
    assert [r.result.asDict(recursive=True) if r.result else None for r in rows] == results.to_pylist()


def test_binary_column_is_decoded_as_utf8(spark):
    values = [b"Tim Cook visited Paris.", b"\xff\xfe not utf-8"]
    rows = _by_id(predict(_frame(spark, values, partitions=1, kind="binary"), "ner", "text"))
    assert rows[0].error is None and [e.text for e in rows[0].result.entities] == ["Tim Cook", "Paris"]
    assert rows[1].result is None and rows[1].error.code == "MD104"


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda df: predict(df, "ner", "body"), InputError, ["'body'", "available columns: 'id', 'text'"]),
        (lambda df: predict(df, "ner", "id"), InputTypeError, ["'id'", "bigint", "string or binary"]),
        (lambda df: predict(df, "ner", "text", colour="red"), OptionError, ["unknown option 'colour'", "min_score"]),
        (lambda df: predict(df, "ner", "text", min_score=2), OptionError, ["min_score", "2"]),
        (
            lambda df: predict(df, "sentiment", "text"),
            UnknownNameError,
            ["'sentiment'", "embed, face-detect", "ner, parse"],
        ),
        (lambda df: predict(df, "ner", "text", batch_size=0), OptionError, ["batch_size", ">= 1"]),
        (lambda df: predict(df.withColumnRenamed("id", "error"), "ner", "text"), InputError, ["'error'"]),
    ],
    ids=["missing-column", "not-text", "unknown-option", "bad-option-value", "unknown-task", "batch-size", "clash"],
)
def test_bad_arguments_raise_before_any_job(spark, call, error, words):
    df = _frame(spark, TEXTS[:2])
    before = _jobs_run(spark)
    with pytest.raises(error) as caught:
        call(df)
    assert _jobs_run(spark) == before
    for word in words:
        assert word in str(caught.value)


def test_one_model_load_per_python_worker(spark, load_log: Path):
    # batch_size=7 is used by no other test: this key's loads are this test's alone.
    df = spark.createDataFrame(
        [(i, f"Maria Garcia visited Rome on day {i}.") for i in range(400)], "id long, text string"
    )
    df = df.repartition(8)
    assert df.rdd.getNumPartitions() == 8
    out = predict(df, "ner", "text", batch_size=7)
    assert out.filter("error is null").count() == 400  # 8 partitions of 50 rows, in Arrow batches of 16

    loads = [line.split("\t") for line in load_log.read_text().splitlines()]
    pids = [pid for pid, task, _model, batch_size, *_ in loads if task == "ner" and batch_size == "7"]
    assert 1 <= len(pids) <= 2, pids  # local[2]: at most two Python workers at a time
    assert len(pids) == len(set(pids)), f"a worker loaded the model more than once: {pids}"


def test_importing_modeldeck_spark_loads_no_framework():
    import json
    import subprocess
    import sys

    probe = "import sys, json, modeldeck.spark; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert not loaded & {"pyspark", "pyarrow", "spacy", "torch", "pydantic", "numpy"}
