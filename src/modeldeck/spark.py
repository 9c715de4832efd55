"""Tasks over Spark DataFrames: ``predict(df, task, column)`` adds typed ``result`` and ``error`` columns.

Everything that can be checked is checked on the driver before a job runs (task, column,
its type, option names and values, output column names); the model itself is loaded only on
the executors, once per Python worker process, and each batch goes through the same
``predict_arrow`` as the local runner, so both engines give the same rows.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InputError, InputTypeError, OptionError
from .runtimes.base import import_framework

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from .tasks.base import Task

__all__ = ["LOAD_LOG_ENV", "predict"]

#: When set in an executor's environment (``spark.executorEnv.MODELDECK_SPARK_LOAD_LOG``), every
#: model load in a Python worker appends ``pid<TAB>task<TAB>model<TAB>batch_size<TAB>options<TAB>seconds``
#: to this file: the way to see that a model is loaded once per worker, not once per batch.
LOAD_LOG_ENV = "MODELDECK_SPARK_LOAD_LOG"

_CacheKey = tuple[str, "str | None", int, str]

# The one piece of module-level mutable state in modeldeck (an exception to STYLE rule 9).
# Spark runs the mapInArrow function in Python worker processes that it reuses from task to
# task (``spark.python.worker.reuse``, on by default), and nothing else lives as long as such a
# process: not the function (unpickled afresh for every task), not a broadcast (it holds data,
# not a loaded model). Keeping loaded tasks here is what makes "one load per worker" possible;
# the key holds everything the load depends on, so two predict() calls never share a model
# loaded with other options.
_LOADED: dict[_CacheKey, Task[Any, Any, Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class _Job:
    """What every executor needs to answer one predict() call; small and picklable."""

    task: str
    model: str | None
    batch_size: int
    options_json: str  # canonical JSON of the options the caller set: part of the cache key
    column: str
    #: For a tensor task, the input columns (or one struct column); empty for the others.
    tensor_columns: tuple[str, ...] = ()

    @property
    def key(self) -> _CacheKey:
        return (self.task, self.model, self.batch_size, self.options_json)


def _pyspark_types() -> Any:
    return import_framework("pyspark.sql.types", package="pyspark", extra="spark", purpose="modeldeck.spark")


def predict(
    df: DataFrame,
    task: str,
    column: str | Sequence[str] | None,
    *,
    model: str | None = None,
    batch_size: int = 32,
    **options: Any,
) -> DataFrame:
    """``df`` with every input column plus ``result`` (the task's result struct) and ``error``.

    A row whose value is null, empty or otherwise unusable, or that the model fails on, gets
    ``error = {code, message}`` and a null ``result``; every other row gets its result. Bad
    arguments (unknown task, missing or non-text column, unknown option, a clash with the
    output columns) raise here, before Spark runs anything.

    A ``tensor`` task reads one column per model input (``column=["features", "mask"]`` or
    ``"features,mask"``), or one struct column whose fields are the inputs; ``None`` reads every column.
    """
    job, schema = _plan(df.schema, task, column, model=model, batch_size=batch_size, options=options)
    return df.mapInArrow(functools.partial(_predict_batches, job), schema)


def _plan(
    input_schema: StructType,
    task: str,
    column: str | Sequence[str] | None,
    *,
    model: str | None,
    batch_size: int,
    options: Mapping[str, Any],
) -> tuple[_Job, StructType]:
    """Driver-side checks; returns what the executors run and the output's Spark schema."""
    import pyarrow as pa
    from pydantic import ValidationError
    from pyspark.sql.pandas.types import from_arrow_type

    from .jobs._core import output_schema, tensor_columns
    from .tasks import TASKS
    from .tasks.base import option_error

    types = _pyspark_types()
    task_cls = TASKS.get(task)  # an unknown task raises UnknownNameError listing the valid ones
    names = input_schema.fieldNames()
    reads: tuple[str, ...] = ()
    if task_cls.input_kind == "tensor":
        reads = tensor_columns(column) or tuple(names)
        missing = [c for c in reads if c not in names]
    else:
        if not isinstance(column, str):
            raise InputError(f"{task} reads one column, got {column!r}", hint="name the column of inputs")
        missing = [] if column in names else [column]
    if missing:
        raise InputError(
            f"the DataFrame has no column {', '.join(map(repr, missing))}",
            hint=f"available columns: {', '.join(map(repr, names)) or '(none)'}",
        )
    if not reads and isinstance(column, str):
        kind = input_schema[column].dataType
        if not isinstance(kind, (types.StringType, types.BinaryType)):
            raise InputTypeError(
                f"column {column!r} has type {kind.simpleString()}, but {task} reads text (string or binary)",
                hint=f"cast it first, e.g. df.withColumn({column!r}, df[{column!r}].cast('string'))",
            )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise OptionError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if model is not None and not isinstance(model, str):
        raise OptionError(f"model must be a name, name@version or path, got {type(model).__name__}")
    try:
        parsed = task_cls.options_type.model_validate(dict(options))
    except ValidationError as exc:
        raise option_error(task, task_cls.options_type, exc) from None
    # Only the names: the input's own types stay exactly as Spark has them.
    arrow = output_schema(pa.schema([pa.field(name, pa.null()) for name in names]), task_cls.result_type)
    added = [types.StructField(f.name, from_arrow_type(f.type), nullable=True) for f in arrow][len(names) :]
    job = _Job(
        task=task,
        model=model,
        batch_size=batch_size,
        options_json=json.dumps(parsed.model_dump(mode="json", exclude_unset=True), sort_keys=True),
        column=",".join(reads) if reads else str(column),
        tensor_columns=reads,
    )
    return job, types.StructType([*input_schema.fields, *added])


def _predict_batches(job: _Job, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Runs on the executors: one output batch per input batch, rows in order."""
    import pyarrow as pa

    from .jobs._core import output_schema, predict_arrow, tensor_examples

    task = None
    for batch in batches:
        if task is None:  # an empty partition loads nothing
            task = _cached_task(job)
        if job.tensor_columns:
            values = tensor_examples(batch, job.tensor_columns)
        else:
            values = batch.column(job.column).to_pylist()
        results, errors = predict_arrow(task, values, task.default_options)
        schema = output_schema(batch.schema, task.result_type)
        yield pa.RecordBatch.from_arrays([*batch.columns, results, errors], schema=schema)


def _cached_task(job: _Job) -> Task[Any, Any, Any, Any]:
    """The task for ``job`` in this worker process, loaded on first use and reused after that."""
    with _LOAD_LOCK:
        task = _LOADED.get(job.key)
        if task is None:
            task = _LOADED[job.key] = _load(job)
        return task


def _load(job: _Job) -> Task[Any, Any, Any, Any]:
    from ._api import load

    started = time.perf_counter()
    task = load(job.task, model=job.model, batch_size=job.batch_size, **json.loads(job.options_json))
    log = os.environ.get(LOAD_LOG_ENV)
    if log:
        fields = (os.getpid(), job.task, job.model or "", job.batch_size, job.options_json)
        line = "\t".join(map(str, fields)) + f"\t{time.perf_counter() - started:.3f}\n"
        with open(log, "a", encoding="utf-8") as out:
            out.write(line)
    return task
