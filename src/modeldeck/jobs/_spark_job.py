"""``modeldeck run --engine spark``: read a dataset with Spark, run a task over it, write the result.

The per-row work is ``modeldeck.spark.predict``; this module adds what a one-shot job needs
around it: a session, reading by file extension, refusing an existing output, and a summary
read back from what was written.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..errors import DependencyError, EmptyInputError, InputError, JobError, OptionError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["INPUT_FORMATS", "OUTPUT_FORMATS", "SparkJobSummary", "run_spark_job"]

# The local runner's extensions and format names (jobs/_readers.py, jobs/_runner.py); the values
# here are Spark's data source names.
INPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}
OUTPUT_FORMATS = {"parquet": "parquet", "jsonl": "json", "json": "json"}
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True, slots=True)
class SparkJobSummary:
    """What a finished Spark job did; ``seconds`` covers read, predict, write (not session start-up)."""

    rows: int
    errors: int
    seconds: float
    output: str
    format: str = "parquet"

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        fmt = "jsonl" if self.format == "json" else self.format
        return (
            f"{self.rows:,} rows ({self.errors:,} errors) -> {self.output} [{fmt}, spark]"
            f" in {self.seconds:.1f} s, {self.rows_per_s:,.1f} rows/s"
        )


def _input_kind(task: str) -> str:
    from ..tasks import TASKS

    return str(TASKS.get(task).input_kind)


def run_spark_job(
    task: str,
    input: str,
    output: str,
    *,
    column: str | None = None,
    model: str | None = None,
    options: Mapping[str, Any] | None = None,
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    overwrite: bool = False,
    output_format: str | None = None,
    batch_size: int = 32,
) -> SparkJobSummary:
    """Run ``task`` over ``column`` of ``input`` (Parquet, CSV with a header, or JSON Lines) into ``output``.

    ``output`` is written as Spark writes it, a directory of part files, in Parquet (default)
    or JSON Lines (``output_format="jsonl"`` or a ``.jsonl``/``.ndjson``/``.json`` output path).
    An existing output is refused unless ``overwrite``. If a SparkSession is already active in
    this process it is used as it is (``master`` and ``conf`` do not apply) and left running;
    otherwise one is built from ``master`` (default ``local[*]``) and ``conf`` and stopped at
    the end.
    """
    in_format = _input_format(input)
    out_format = _output_format(output, output_format)
    from ._runner import model_as_task

    task, model = model_as_task(task, model)
    if column is None and _input_kind(task) != "tensor":  # a tensor task reads every column by default
        raise InputError(f"which column of {input!r} holds the inputs?", hint="name it with column=... (--column)")
    if _is_local(input):
        local = Path(_local_path(input))
        if not local.exists():
            raise InputError(f"input path {input!r} does not exist", hint="check the path given as input")
        if local.is_file() and local.stat().st_size == 0:
            raise EmptyInputError(f"input file {input!r} is empty", hint="check that the file was written completely")
    if not overwrite and _is_local(output) and Path(_local_path(output)).exists():
        raise _output_exists(output)

    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise DependencyError("pyspark", extra="spark", purpose="--engine spark") from exc

    from ..spark import predict

    active = SparkSession.getActiveSession()
    spark = active or _session(master or "local[*]", conf or {})
    try:
        started = time.perf_counter()
        df = _read(spark, input, in_format)
        out = predict(df, task, column, model=model, batch_size=batch_size, **dict(options or {}))
        _write(out, output, out_format, overwrite=overwrite)
        written = _reader(spark, out_format, out.schema).load(output)
        rows, errors = written.selectExpr("count(1)", "count(error)").first()  # type: ignore[misc]
        seconds = time.perf_counter() - started
        return SparkJobSummary(rows=rows, errors=errors, seconds=seconds, output=output, format=out_format)
    finally:
        if active is None:
            spark.stop()


def _session(master: str, conf: Mapping[str, str]) -> SparkSession:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("modeldeck").config("spark.ui.enabled", "false")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    python = _worker_python(master, conf)
    if python is not None:
        spark.sparkContext.pythonExec = python
    return spark


def _worker_python(master: str, conf: Mapping[str, str]) -> str | None:
    """The interpreter for Python workers, where PySpark would not pick the right one itself.

    A session built in-process (not by spark-submit) starts workers with $PYSPARK_PYTHON, else
    `python3` from PATH; it ignores `spark.pyspark.python`. For `.venv/bin/modeldeck` that
    `python3` is usually not the venv that has modeldeck; on a local master the workers run on
    this machine, so this interpreter is the right one.
    """
    if "spark.pyspark.python" in conf:
        return conf["spark.pyspark.python"]
    if "PYSPARK_PYTHON" not in os.environ and master.startswith("local"):
        return sys.executable
    return None


def _is_local(path: str) -> bool:
    return urlparse(path).scheme in ("", "file")


def _local_path(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def _input_format(path: str) -> str:
    suffix = Path(urlparse(path).path.rstrip("/")).suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise InputError(
            f"cannot tell the format of input {path!r} from its extension {suffix or '(none)'!r}",
            hint=f"name it with one of: {', '.join(INPUT_FORMATS)}",
        )
    return INPUT_FORMATS[suffix]


def _output_format(path: str, requested: str | None) -> str:
    if requested is None:
        suffix = Path(urlparse(path).path.rstrip("/")).suffix.lower()
        return "json" if suffix in _JSONL_SUFFIXES else "parquet"
    if requested not in OUTPUT_FORMATS:
        raise OptionError(f"unknown output format {requested!r}", hint="valid formats: jsonl, parquet")
    return OUTPUT_FORMATS[requested]


def _output_exists(path: str) -> JobError:
    return JobError(f"output {path!r} already exists", hint="pass --overwrite to replace it, or choose another path")


def _read(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    reader = spark.read.format(fmt)
    if fmt == "csv":
        # RFC 4180 quoting ("" inside quotes), as pyarrow and the local runner read it; Spark's
        # default escape character is a backslash.
        reader = reader.option("header", "true").option("escape", '"')
    try:
        df = reader.load(path)
        df.schema  # noqa: B018 - resolve the schema now, so a corrupt file fails here
    except (PySparkException, Py4JJavaError) as exc:
        raise InputError(f"cannot read {path!r} as {fmt}: {_first_line(exc)}") from None
    return df


def _write(df: DataFrame, path: str, fmt: str, *, overwrite: bool) -> None:
    from pyspark.errors import AnalysisException

    try:
        df.write.format(fmt).mode("overwrite" if overwrite else "errorifexists").save(path)
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_ALREADY_EXISTS":
            raise _output_exists(path) from None
        raise


def _reader(spark: SparkSession, fmt: str, schema: Any) -> Any:
    reader = spark.read.format(fmt)
    return reader.schema(schema) if fmt == "json" else reader


def _first_line(exc: Exception) -> str:
    java = getattr(exc, "java_exception", None)  # a Py4JJavaError: the JVM's message, not the call
    text = str(java.getMessage() if java is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
