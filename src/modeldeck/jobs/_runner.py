"""The local batch runner: stream an input through a task into a committed, resumable output."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from ..errors import ModelDeckError, OptionError, TooManyErrorsError
from ._core import ERROR_TYPE, output_schema, predict_arrow
from ._readers import open_source
from ._writers import OutputFormat, OutputWriter, open_output

if TYPE_CHECKING:
    from .._api import Loader
    from ..tasks.base import Task

__all__ = ["JobSummary", "run_job"]

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
# Rows read (and handed to the task) at a time: small enough for a flat memory profile,
# large enough that per-batch overheads (Arrow conversion, progress) stay negligible.
_READ_ROWS = 1024


@dataclass(frozen=True)
class JobSummary:
    """What a job did. ``rows`` and ``errors`` count the whole output, earlier runs included."""

    rows: int
    errors: int
    #: Wall time of this call, model loading included.
    seconds: float
    #: Rows processed by this call per second of processing (after the model loaded).
    rows_per_s: float
    output: Path
    #: Rows an earlier, interrupted run had committed; this call skipped them.
    resumed_rows: int = 0
    #: Files of an input folder left out because their extension does not fit the task.
    skipped_files: int = 0
    format: OutputFormat = "parquet"

    def describe(self) -> str:
        text = f"{self.rows:,} rows ({self.errors:,} errors) -> {self.output} [{self.format}]"
        text += f" in {self.seconds:.1f} s, {self.rows_per_s:,.1f} rows/s"
        if self.resumed_rows:
            text += f"; resumed after {self.resumed_rows:,} committed rows"
        if self.skipped_files:
            text += f"; {self.skipped_files:,} files skipped (not inputs of this task)"
        return text


def _output_format(output: Path, output_format: str | None) -> OutputFormat:
    if output_format is None:
        return "jsonl" if output.suffix.lower() in _JSONL_SUFFIXES else "parquet"
    if output_format not in ("parquet", "jsonl"):
        raise OptionError(f"unknown output format {output_format!r}", hint="valid formats: jsonl, parquet")
    return output_format  # type: ignore[return-value]


def model_as_task(task: str, model: str | None) -> tuple[str, str | None]:
    """``run churn``: a model name or path in place of a task runs that model with its own task."""
    from ..tasks import TASKS

    if model is not None or task in TASKS:
        return task, model
    from ..config import Settings
    from ..store import ModelStore

    info = ModelStore(Settings.from_env()).resolve(task, auto_pull=False)
    return info.task, task


def _task_class(task: str | Task[Any, Any, Any, Any]) -> type:
    if isinstance(task, str):
        from ..tasks import TASKS

        return TASKS.get(task)  # type: ignore[no-any-return]
    return type(task)


def _check_options(task_cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """Structural option checks (unknown keys, types) before the model loads; returns the JSON form."""
    from pydantic import ValidationError

    from ..tasks.base import option_error

    if not isinstance(options, Mapping):
        raise OptionError(f"options must be a mapping, got {type(options).__name__}")
    try:
        task_cls.options_type.model_validate(dict(options))
    except ValidationError as exc:
        raise option_error(task_cls.name, task_cls.options_type, exc) from None
    return json.loads(json.dumps(dict(options), default=str))  # type: ignore[no-any-return]


def _predict(task: Task[Any, Any, Any, Any], values: Sequence[Any], options: Any) -> tuple[pa.Array, pa.Array]:
    """``predict_arrow``, plus rows the reader already failed (a ``ModelDeckError`` as the value)."""
    bad = [i for i, value in enumerate(values) if isinstance(value, ModelDeckError)]
    if not bad:
        return predict_arrow(task, values, options)
    bad_set = set(bad)
    good = [value for i, value in enumerate(values) if i not in bad_set]
    results, errors = predict_arrow(task, good, options)
    # Splice: good rows index into the model's outputs, bad rows into the appended reader errors.
    order, next_good, next_bad = [], 0, len(good)
    for i in range(len(values)):
        if i in bad_set:
            order.append(next_bad)
            next_bad += 1
        else:
            order.append(next_good)
            next_good += 1
    take = pa.array(order, pa.int64())
    results = pa.concat_arrays([results, pa.nulls(len(bad), results.type)]).take(take)
    reader_errors = pa.array([values[i].to_dict() for i in bad], type=ERROR_TYPE)
    return results, pa.concat_arrays([errors, reader_errors]).take(take)


class _Progress:
    """A rich live bar (rows, rows/s, ETA when the total is known, errors); silent when disabled."""

    def __init__(self, enabled: bool, total: int | None, done: int, errors: int, label: str) -> None:
        self._bar: Any = None
        self._started = time.perf_counter()
        self._rows = 0  # processed by this run: the rate leaves out rows resumed from a commit
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows  {task.fields[rate]} rows/s"),
            TextColumn("errors {task.fields[errors]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._id = self._bar.add_task(label, total=total, completed=done, rate="-", errors=f"{errors:,}")

    @contextlib.contextmanager
    def live(self) -> Iterator[_Progress]:
        if self._bar is None:
            yield self
            return
        with self._bar:
            yield self

    def advance(self, rows: int, errors: int) -> None:
        self._rows += rows
        if self._bar is not None:
            rate = self._rows / max(time.perf_counter() - self._started, 1e-9)
            self._bar.update(self._id, advance=rows, rate=f"{rate:,.1f}", errors=f"{errors:,}")


def run_job(
    task: str | Task[Any, Any, Any, Any],
    input: str | Path,
    output: str | Path,
    *,
    column: str | None = None,
    model: str | None = None,
    batch_size: int = 32,
    options: Mapping[str, Any] | None = None,
    output_format: Literal["parquet", "jsonl"] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    max_errors: int | None = None,
    progress: bool = True,
    chunk_rows: int = 10_000,
    loader: Loader | None = None,
) -> JobSummary:
    """Run ``task`` over every row of ``input`` and write input columns + ``result`` + ``error``.

    ``task`` is a task name (the model is loaded with ``loader``, ``modeldeck.load`` by default;
    ``model`` and ``batch_size`` apply to that load) or an already loaded task, used as it is. Everything that
    can be checked without the model (input, column, options, output) is checked before it loads.
    Output is committed every ``chunk_rows`` rows; with ``resume=True`` a killed job continues
    after its last commit. A bad row gets an error entry and the job goes on, unless more than
    ``max_errors`` rows failed: then it commits what it did and raises ``TooManyErrorsError``.
    """
    started = time.perf_counter()
    if batch_size < 1:
        raise OptionError(f"batch_size must be >= 1, got {batch_size}")
    if chunk_rows < 1:
        raise OptionError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if max_errors is not None and max_errors < 0:
        raise OptionError(f"max_errors must be >= 0, got {max_errors}", hint="leave it out for no limit")
    output = Path(output)
    fmt = _output_format(output, output_format)
    if isinstance(task, str):
        task, model = model_as_task(task, model)
    task_cls = _task_class(task)
    options_json = _check_options(task_cls, options or {})
    read_rows = max(1, min(chunk_rows, max(_READ_ROWS, batch_size)))
    source = open_source(input, column, kind=task_cls.input_kind, batch_rows=read_rows)
    schema = output_schema(source.schema, task_cls.result_type)
    if output.resolve() == source.path.resolve():
        raise OptionError(f"the output {str(output)!r} is the input", hint="write the output somewhere else")
    job = {
        "task": task_cls.name,
        "model": model if isinstance(task, str) else f"{task.info.name}@{task.info.version}",
        "column": source.column,
        "input": str(source.path.resolve()),
        "input_bytes": source.path.stat().st_size if source.path.is_file() else None,
        "options": options_json,
    }
    writer = open_output(output, fmt, schema, job, resume=resume, overwrite=overwrite)
    resumed = writer.rows
    if writer.complete:
        return JobSummary(writer.rows, writer.errors, time.perf_counter() - started, 0.0, output, resumed,
                          source.skipped, fmt)  # fmt: skip

    if isinstance(task, str):
        from .._api import load

        loaded = (load if loader is None else loader)(task, model=model, batch_size=batch_size)
    else:
        loaded = task
    parsed = loaded.parse_options(options_json)

    bar = _Progress(progress, source.total_rows, resumed, writer.errors, f"{task_cls.name} {source.path.name}")
    processing = time.perf_counter()
    done = _stream(loaded, parsed, source.batches(skip=resumed), schema, writer, chunk_rows, max_errors, bar)
    seconds = time.perf_counter() - started
    rate = done / max(time.perf_counter() - processing, 1e-9)
    return JobSummary(writer.rows, writer.errors, seconds, rate, output, resumed, source.skipped, fmt)


def _stream(
    task: Task[Any, Any, Any, Any],
    options: Any,
    batches: Iterator[tuple[pa.RecordBatch, list[Any]]],
    schema: pa.Schema,
    writer: OutputWriter,
    chunk_rows: int,
    max_errors: int | None,
    bar: _Progress,
) -> int:
    """Predict batch by batch, committing every ``chunk_rows`` rows; returns the rows processed."""
    done = 0
    errors = writer.errors
    with bar.live():
        try:
            for batch, values in batches:
                results, row_errors = _predict(task, values, options)
                out = pa.RecordBatch.from_arrays([*batch.columns, results, row_errors], schema=schema)
                offset = 0
                while offset < out.num_rows:  # parts end exactly at multiples of chunk_rows
                    piece = out.slice(offset, chunk_rows - writer.pending_rows)
                    writer.write(piece)
                    offset += piece.num_rows
                    if writer.pending_rows >= chunk_rows:
                        writer.commit()
                done += out.num_rows
                errors += out.num_rows - row_errors.null_count
                bar.advance(out.num_rows, errors)
                if max_errors is not None and errors > max_errors:
                    writer.commit()  # keep the work done: a resume with a higher limit goes on from here
                    raise TooManyErrorsError(
                        f"{errors:,} rows failed, more than max_errors={max_errors:,}; stopped after "
                        f"{writer.rows:,} rows, all committed to {str(writer.path)!r}",
                        hint="look at the error column of the output, or raise the limit and resume",
                    )
            writer.finish()
        finally:
            writer.close()
    return done
