"""Job outputs written in committed chunks with a manifest, so a killed job resumes exactly once.

Parquet: a directory of ``part-NNNNN.parquet`` files and ``_manifest.json``. Each part is
written under a hidden temporary name, fsynced and renamed; only then is the manifest (which
lists the committed parts and the rows they cover) replaced, by temp file + rename. A part the
manifest does not list is a leftover of a killed run and is deleted on resume.

JSON Lines: one file and ``<name>.manifest.json`` beside it, which records the byte offset and
row count after each committed chunk; on resume the file is truncated to the last commit.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import JobError, OptionError

__all__ = ["MANIFEST_NAME", "OutputFormat", "OutputWriter", "manifest_path", "open_output", "read_manifest"]

OutputFormat = Literal["parquet", "jsonl"]
MANIFEST_NAME = "_manifest.json"
_KIND = "modeldeck-job-output"
_VERSION = 1
_PART = re.compile(r"^(\.)?part-\d{5,}\.parquet(\.tmp)?$")


def manifest_path(output: Path, fmt: OutputFormat) -> Path:
    return output / MANIFEST_NAME if fmt == "parquet" else output.with_name(output.name + ".manifest.json")


def read_manifest(output: str | Path, fmt: OutputFormat = "parquet") -> dict[str, Any] | None:
    """The manifest of a job output, or None when there is none."""
    path = manifest_path(Path(output), fmt)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise JobError(
            f"cannot read the job manifest {str(path)!r} ({exc})", hint="use overwrite to start again"
        ) from None
    if not isinstance(data, dict) or data.get("kind") != _KIND:
        raise JobError(f"{str(path)!r} is not a modeldeck job manifest", hint="use overwrite to start again")
    return data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def _write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class OutputWriter:
    """Streams output batches into an open part and commits it durably.

    ``write`` appends to the open part (memory stays at one batch); ``commit`` makes the open
    part durable and records it in the manifest. ``rows`` and ``errors`` count committed rows.
    """

    def __init__(self, path: Path, fmt: OutputFormat, schema: pa.Schema, manifest: dict[str, Any]) -> None:
        self.path = path
        self.format = fmt
        self.schema = schema
        self._manifest = manifest
        self._manifest_path = manifest_path(path, fmt)
        self._parquet: pq.ParquetWriter | None = None
        self._jsonl: BinaryIO | None = None
        self.pending_rows = 0
        self._pending_errors = 0

    @property
    def rows(self) -> int:
        return int(self._manifest["rows"])

    @property
    def errors(self) -> int:
        return int(self._manifest["errors"])

    @property
    def complete(self) -> bool:
        return bool(self._manifest["complete"])

    def _part_name(self) -> str:
        return f"part-{len(self._manifest['parts']):05d}.parquet"

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if self.format == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path / f".{self._part_name()}.tmp", self.schema)
            self._parquet.write_batch(batch)
        else:
            if self._jsonl is None:
                self._jsonl = self.path.open("ab")
            lines = [json.dumps(row, ensure_ascii=False, default=_json_default) for row in batch.to_pylist()]
            self._jsonl.write(("\n".join(lines) + "\n").encode("utf-8"))
        self.pending_rows += batch.num_rows
        self._pending_errors += batch.num_rows - batch.column("error").null_count

    def commit(self) -> None:
        """Make the open part durable, then record it: after this, a kill loses none of its rows."""
        if self.pending_rows == 0:
            return
        if self.format == "parquet":
            assert self._parquet is not None
            self._parquet.close()
            self._parquet = None
            name = self._part_name()
            tmp = self.path / f".{name}.tmp"
            _fsync_file(tmp)
            os.replace(tmp, self.path / name)
            _fsync_dir(self.path)
            part: dict[str, Any] = {"file": name}
        else:
            assert self._jsonl is not None
            self._jsonl.flush()
            os.fsync(self._jsonl.fileno())
            part = {"end": self._jsonl.tell()}
        self._manifest["parts"].append({**part, "rows": self.pending_rows, "errors": self._pending_errors})
        self._manifest["rows"] += self.pending_rows
        self._manifest["errors"] += self._pending_errors
        self.pending_rows = self._pending_errors = 0
        _write_atomic(self._manifest_path, self._manifest)

    def finish(self) -> None:
        """Commit the rest and mark the output complete (an empty job gets one empty, readable part)."""
        self.commit()
        if not self._manifest["parts"] and self.format == "parquet":
            pq.write_table(self.schema.empty_table(), self.path / self._part_name())
        self.close()
        self._manifest["complete"] = True
        _write_atomic(self._manifest_path, self._manifest)

    def close(self) -> None:
        """Release open files without committing (what was not committed is redone on resume)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")  # binary columns (images) as base64 text
    return str(value)  # dates, decimals


def _exists(path: Path, fmt: OutputFormat) -> bool:
    return path.exists() or manifest_path(path, fmt).exists()


def _remove(path: Path, fmt: OutputFormat) -> None:
    """Delete an output to overwrite it; a directory modeldeck did not write is refused."""
    if fmt == "parquet" and path.is_dir():
        if any(path.iterdir()) and not (path / MANIFEST_NAME).exists():
            raise JobError(
                f"output directory {str(path)!r} is not a modeldeck job output, so it is not overwritten",
                hint="remove it yourself, or choose another output path",
            )
        shutil.rmtree(path)
    elif path.is_dir():
        raise JobError(f"output {str(path)!r} is a directory; JSON Lines output is a file", hint="choose a file path")
    else:
        path.unlink(missing_ok=True)
    if fmt == "jsonl":
        manifest_path(path, fmt).unlink(missing_ok=True)


def _differences(recorded: Mapping[str, Any], job: Mapping[str, Any]) -> list[str]:
    return [f"{key}: {recorded.get(key)!r} -> {job[key]!r}" for key in job if recorded.get(key) != job[key]]


def open_output(
    path: str | Path,
    fmt: OutputFormat,
    schema: pa.Schema,
    job: Mapping[str, Any],
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> OutputWriter:
    """Prepare ``path`` for a job: refuse an existing output, or delete it, or resume it.

    ``job`` (task, model, column, input, options...) is recorded in the manifest; resuming an
    output whose manifest records another job, or another output schema, is refused.
    """
    if resume and overwrite:
        raise OptionError(
            "resume and overwrite cannot be combined", hint="resume continues an output, overwrite replaces it"
        )
    path = Path(path)
    job = dict(job)
    schema_text = schema.to_string(show_field_metadata=False, show_schema_metadata=False)
    if _exists(path, fmt):
        if overwrite:
            _remove(path, fmt)
        elif not resume:
            raise JobError(
                f"output {str(path)!r} already exists",
                hint="pass overwrite=True (--overwrite) to replace it, or resume=True (--resume) to continue it",
            )
        else:
            return _resume(path, fmt, schema, job, schema_text)
    if fmt == "parquet":
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    manifest = {
        "kind": _KIND,
        "version": _VERSION,
        "format": fmt,
        "job": job,
        "schema": schema_text,
        "parts": [],
        "rows": 0,
        "errors": 0,
        "complete": False,
    }
    _write_atomic(manifest_path(path, fmt), manifest)
    return OutputWriter(path, fmt, schema, manifest)


def _resume(path: Path, fmt: OutputFormat, schema: pa.Schema, job: dict[str, Any], schema_text: str) -> OutputWriter:
    manifest = read_manifest(path, fmt)
    if manifest is None or manifest.get("format") != fmt:
        raise JobError(
            f"output {str(path)!r} has no {fmt} job manifest, so it cannot be resumed",
            hint="pass overwrite=True (--overwrite) to start again",
        )
    diffs = _differences(manifest["job"], job)
    if diffs:
        raise JobError(
            f"output {str(path)!r} belongs to another job ({'; '.join(diffs)})",
            hint="resume with the same task, model, column, input and options, or overwrite",
        )
    if manifest["schema"] != schema_text:
        raise JobError(f"the input's columns changed since {str(path)!r} was started", hint="overwrite to start again")
    if fmt == "parquet":
        committed = {part["file"] for part in manifest["parts"]}
        for item in path.iterdir():
            if _PART.match(item.name) and item.name not in committed:
                item.unlink()  # written by a run killed before its manifest listed it
    else:
        end = manifest["parts"][-1]["end"] if manifest["parts"] else 0
        with contextlib.suppress(FileNotFoundError), path.open("rb+") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())
        if not path.exists():
            raise JobError(f"output {str(path)!r} is gone but its manifest is not", hint="overwrite to start again")
    return OutputWriter(path, fmt, schema, manifest)
