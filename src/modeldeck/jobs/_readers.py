"""Streaming readers for job inputs: Parquet, CSV, JSON Lines and folders of text or image files.

Every reader is checked when it is opened (path, emptiness, corruption, the column and its
type), before any model loads, and then yields bounded ``(RecordBatch, values)`` pairs so memory
stays flat however large the input is. ``values`` are the task column's values as the task
should see them; a value the reader could not turn into a row (a line that is not JSON, a
text file that is not UTF-8) is a ``ModelDeckError`` there, and becomes that row's error.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..errors import EmptyInputError, InputDecodeError, InputError, InputTypeError, ModelDeckError
from ._core import tensor_columns, tensor_examples

__all__ = [
    "IMAGE_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "InputKind",
    "Source",
    "open_source",
]

InputKind = Literal["text", "image", "image-pair", "tensor"]
Chunk = tuple[pa.RecordBatch, list[Any]]
#: Turns a batch of rows into the task's input values (a column's values, or tensor examples).
Values = Callable[[pa.RecordBatch], list[Any]]

TEXT_EXTENSIONS = frozenset({".txt", ".md"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Lines read to fix a JSON Lines file's columns and their types.
_JSON_SCHEMA_LINES = 1000
# A batch of files read from a folder stops growing here (large images), whatever its row count.
_FOLDER_BATCH_BYTES = 64 << 20


@dataclass
class Source:
    """An opened, checked input: its schema, the task column, and how to stream its rows."""

    path: Path
    format: str
    schema: pa.Schema
    column: str
    #: Row count when it is known without reading the data (Parquet metadata, a folder listing).
    total_rows: int | None
    #: Files of a folder left out because their extension does not fit the task.
    skipped: int
    _reader: Any = field(repr=False)

    def batches(self, skip: int = 0) -> Iterator[Chunk]:
        """``(batch, values)`` pairs in input order, starting after the first ``skip`` rows."""
        return self._reader(skip)  # type: ignore[no-any-return]


def open_source(path: str | Path, column: str | None, *, kind: InputKind = "text", batch_rows: int = 1024) -> Source:
    """Open and check an input; raises an ``InputError`` naming the file and the fix.

    For a ``tensor`` task ``column`` names the input columns (``"features,mask"``), or one struct
    column whose fields are the inputs; left out, every column is an input.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input path {str(path)!r} does not exist", hint="check the path given as input")
    if kind == "tensor":
        return _open_tensor_table(path, column, batch_rows)
    if path.is_dir():
        return _open_folder(path, column, kind, batch_rows)
    fmt = _table_format(path, "use .parquet, .csv, .jsonl (or .ndjson), or a folder of text or image files")
    if column is None:
        raise InputError(f"which column of {str(path)!r} holds the inputs?", hint="name it with column=... (--column)")
    opener = {"parquet": _open_parquet, "csv": _open_csv, "jsonl": _open_jsonl}[fmt]
    source = opener(path, column, batch_rows)
    _check_column(source, kind)
    return source


def _table_format(path: Path, hint: str) -> str:
    """The reader a table file needs, from its extension; an empty file is refused before it is read."""
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format of {str(path)!r} from its extension {path.suffix!r}", hint=hint)
    if path.stat().st_size == 0:
        raise EmptyInputError(f"input file {str(path)!r} is empty", hint="check that the file was written completely")
    return fmt


def _tensor_row(row: dict[str, Any], names: tuple[str, ...] | None) -> Any:
    if names is None:
        return row
    if len(names) == 1 and isinstance(row.get(names[0]), dict):
        return row[names[0]]  # one object-valued key: its keys are the inputs
    return {name: row.get(name) for name in names}


def _open_tensor_table(path: Path, column: str | None, batch_rows: int) -> Source:
    if path.is_dir():
        raise InputError(
            f"a tensor task reads a table, not the folder {str(path)!r}",
            hint="give a .parquet, .csv or .jsonl file with one column per model input (or one struct column)",
        )
    fmt = _table_format(path, "use .parquet, .csv or .jsonl (or .ndjson)")
    names = tensor_columns(column)

    def values(batch: pa.RecordBatch) -> list[Any]:
        return tensor_examples(batch, names)

    if fmt == "jsonl":
        # From the parsed JSON, not the Arrow columns: Arrow would widen a column's ints to floats
        # when one row holds a float, and a model that takes ints would then refuse every row.
        source = _open_jsonl(path, None, batch_rows, row_values=lambda row: _tensor_row(row, names))
    else:
        opener = {"parquet": _open_parquet, "csv": _open_csv}[fmt]
        source = opener(path, None, batch_rows, values)
    missing = [n for n in names or () if n not in source.schema.names]
    if missing:
        raise InputError(
            f"{str(path)!r} has no column(s) {', '.join(map(repr, missing))}",
            hint=f"available columns: {', '.join(source.schema.names)}",
        )
    source.column = ",".join(names or source.schema.names)
    return source


def _check_column(source: Source, kind: InputKind) -> None:
    if source.column not in source.schema.names:
        raise InputError(
            f"{str(source.path)!r} has no column {source.column!r}",
            hint=f"available columns: {', '.join(source.schema.names)}",
        )
    dtype = source.schema.field(source.column).type
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    fits = (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_binary(dtype)
        or pa.types.is_large_binary(dtype)
        or pa.types.is_null(dtype)
        or getattr(pa.types, "is_string_view", lambda _: False)(dtype)
        or getattr(pa.types, "is_binary_view", lambda _: False)(dtype)
    )
    if not fits:
        what = "text" if kind == "text" else "encoded image bytes"
        raise InputTypeError(
            f"column {source.column!r} of {str(source.path)!r} holds {dtype} values; this task needs {what}",
            hint="pick a string (or binary) column with column=... (--column)",
        )


def _column_values(batch: pa.RecordBatch, column: str) -> list[Any]:
    return batch.column(batch.schema.get_field_index(column)).to_pylist()  # type: ignore[no-any-return]


# --- Parquet ---------------------------------------------------------------------------------


def _open_parquet(path: Path, column: str | None, batch_rows: int, values: Values | None = None) -> Source:
    try:
        meta = pq.ParquetFile(path)
        schema = meta.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise InputDecodeError(
            f"cannot read {str(path)!r} as Parquet ({exc})", hint="the file is corrupt or not Parquet"
        ) from None
    total = meta.metadata.num_rows
    if total == 0:
        raise EmptyInputError(f"input file {str(path)!r} has no rows", hint="check that the file was written")

    def read(skip: int) -> Iterator[Chunk]:
        # Skip whole row groups from the footer's counts, then slice inside the first one read.
        groups, offset = [], 0
        for index in range(meta.num_row_groups):
            rows = meta.metadata.row_group(index).num_rows
            if offset + rows <= skip:
                offset += rows
                continue
            groups.append(index)
        rest = skip - offset
        with pq.ParquetFile(path) as reader:
            for batch in reader.iter_batches(batch_size=batch_rows, row_groups=groups):
                if rest:
                    cut = min(rest, batch.num_rows)
                    batch, rest = batch.slice(cut), rest - cut
                    if batch.num_rows == 0:
                        continue
                yield batch, pick(batch)

    pick = values or (lambda batch: _column_values(batch, str(column)))
    return Source(path, "parquet", schema, column or "", total, 0, read)


# --- CSV -------------------------------------------------------------------------------------


def _open_csv(path: Path, column: str | None, batch_rows: int, values: Values | None = None) -> Source:
    def reader() -> pa_csv.CSVStreamingReader:
        # The input column is text whatever it looks like: a column of digits is still text to read.
        convert = pa_csv.ConvertOptions(column_types={column: pa.string()} if column else {})
        return pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 20), convert_options=convert)

    try:
        with reader() as probe:
            schema = probe.schema
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise InputDecodeError(f"cannot read {str(path)!r} as CSV ({exc})", hint="check the file's format") from None

    def read(skip: int) -> Iterator[Chunk]:
        with reader() as stream:
            for big in stream:
                for start in range(0, big.num_rows, batch_rows):
                    batch = big.slice(start, batch_rows)
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    if skip:
                        batch, skip = batch.slice(skip), 0
                    yield batch, pick(batch)

    pick = values or (lambda batch: _column_values(batch, str(column)))
    return Source(path, "csv", schema, column or "", None, 0, read)


# --- JSON Lines ------------------------------------------------------------------------------


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for every non-blank line, read as a stream."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def _parse_line(number: int, line: bytes) -> dict[str, Any] | ModelDeckError:
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return InputDecodeError(f"line {number} is not valid JSON ({exc})", hint="write one JSON object per line")
    if not isinstance(row, dict):
        return InputTypeError(f"line {number} is a JSON {type(row).__name__}, not an object", hint="one object a line")
    return row


def _fit(values: list[Any], dtype: pa.DataType) -> pa.Array:
    """``values`` as ``dtype``; a value that does not fit becomes null (its row's error says why)."""
    try:
        return pa.array(values, type=dtype)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        fitted = []
        for value in values:
            try:
                pa.array([value], type=dtype)
                fitted.append(value)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                fitted.append(None)
        return pa.array(fitted, type=dtype)


def _open_jsonl(
    path: Path, column: str | None, batch_rows: int, row_values: Callable[[dict[str, Any]], Any] | None = None
) -> Source:
    # Columns and types come from the first lines (in order of first appearance); a key seen only
    # later is not kept. The task column is always text, so an int there is that row's error.
    rows = [_parse_line(number, line) for number, line in islice(_lines(path), _JSON_SCHEMA_LINES)]
    objects = [r for r in rows if isinstance(r, dict)]
    if not rows:
        raise EmptyInputError(f"input file {str(path)!r} has no rows", hint="write one JSON object per line")
    if not objects:
        raise InputDecodeError(f"{str(path)!r} holds no JSON object in its first lines", hint="is it JSON Lines?")
    names = list(dict.fromkeys(key for row in objects for key in row))
    fields = []
    for name in names:
        sample = [row.get(name) for row in objects]
        if name == column:
            if not any(isinstance(v, str) for v in sample) and any(v is not None for v in sample):
                kinds = sorted({type(v).__name__ for v in sample if v is not None})
                raise InputTypeError(
                    f"column {column!r} of {str(path)!r} holds {'/'.join(kinds)} values, not text",
                    hint="pick a column of strings with column=... (--column)",
                )
            fields.append(pa.field(name, pa.string()))
            continue
        try:
            dtype = pa.array(sample).type
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            dtype = pa.string()  # mixed kinds: kept as their JSON text
            fields.append(pa.field(name, dtype, metadata={b"modeldeck.json": b"1"}))
            continue
        fields.append(pa.field(name, pa.string() if pa.types.is_null(dtype) else dtype))
    schema = pa.schema(fields)

    def build(parsed: list[dict[str, Any] | ModelDeckError]) -> Chunk:
        arrays = []
        for f in schema:
            raw = [row.get(f.name) if isinstance(row, dict) else None for row in parsed]
            if f.metadata and b"modeldeck.json" in f.metadata:
                raw = [None if v is None else json.dumps(v, ensure_ascii=False) for v in raw]
            arrays.append(_fit(raw, f.type))
        batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
        pick = row_values or (lambda row: row.get(column))
        return batch, [pick(row) if isinstance(row, dict) else row for row in parsed]

    def read(skip: int) -> Iterator[Chunk]:
        lines = islice(_lines(path), skip, None)
        while True:
            block = list(islice(lines, batch_rows))
            if not block:
                return
            yield build([_parse_line(n, ln) for n, ln in block])

    return Source(path, "jsonl", schema, column or "", None, 0, read)


# --- folders ---------------------------------------------------------------------------------


def _open_folder(path: Path, column: str | None, kind: InputKind, batch_rows: int) -> Source:
    implied = "text" if kind == "text" else "image"
    if column not in (None, implied):
        raise InputError(
            f"a folder of {kind} files has the columns 'path' and {implied!r}, not {column!r}",
            hint=f"leave the column out, or pass column={implied!r}",
        )
    wanted = TEXT_EXTENSIONS if kind == "text" else IMAGE_EXTENSIONS
    files, skipped = [], 0
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in item.relative_to(path).parts):
            continue  # hidden files and folders (.git, .DS_Store) are not inputs
        if item.suffix.lower() in wanted:
            files.append(item)
        else:
            skipped += 1
    if not files:
        raise EmptyInputError(
            f"folder {str(path)!r} holds no {kind} files ({skipped} other file(s))",
            hint=f"{kind} files end in {', '.join(sorted(wanted))}",
        )
    data_type = pa.string() if kind == "text" else pa.binary()
    schema = pa.schema([pa.field("path", pa.string()), pa.field(implied, data_type)])

    def read(skip: int) -> Iterator[Chunk]:
        names: list[str] = []
        data: list[Any] = []
        values: list[Any] = []
        size = 0
        for item in files[skip:]:
            value: Any = item.read_bytes()
            size += len(value)
            if kind == "text":
                with contextlib.suppress(UnicodeDecodeError):  # else the task's own check names the bad byte
                    value = value.decode("utf-8")
            names.append(item.relative_to(path).as_posix())
            data.append(value if kind == "image" or isinstance(value, str) else None)
            values.append(value)
            if len(names) >= batch_rows or size >= _FOLDER_BATCH_BYTES:
                yield _folder_batch(schema, names, data), values
                names, data, values, size = [], [], [], 0
        if names:
            yield _folder_batch(schema, names, data), values

    return Source(path, f"{kind}-folder", schema, implied, len(files), skipped, read)


def _folder_batch(schema: pa.Schema, names: list[str], data: list[Any]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(names, schema[0].type), pa.array(data, schema[1].type)], schema=schema)
