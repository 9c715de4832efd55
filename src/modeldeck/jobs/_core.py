"""The one row-level contract shared by the local runner and Spark: results and errors as Arrow columns.

A job's output is its input columns, then ``result`` (the task's result struct, null when the
row failed) and ``error`` (``{code, message}``, null when the row succeeded), in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import InputError, ModelDeckError
from ..tasks.results import to_arrow

if TYPE_CHECKING:
    from ..tasks.base import Task

__all__ = ["ERROR_TYPE", "RESERVED_COLUMNS", "output_schema", "predict_arrow", "tensor_columns", "tensor_examples"]

ERROR_TYPE = pa.struct([("code", pa.string()), ("message", pa.string())])
RESERVED_COLUMNS = ("result", "error")


def output_schema(input_schema: pa.Schema, result_type: Any) -> pa.Schema:
    """Input columns + ``result`` + ``error``; refuses inputs that already use those names."""
    clash = [name for name in RESERVED_COLUMNS if name in input_schema.names]
    if clash:
        raise InputError(
            f"the input already has column(s) {', '.join(map(repr, clash))}, which the output adds",
            hint="rename those input columns first",
        )
    return pa.schema([*input_schema, pa.field("result", result_type.arrow_type()), pa.field("error", ERROR_TYPE)])


def predict_arrow(task: Task[Any, Any, Any, Any], values: Sequence[Any], options: Any) -> tuple[pa.Array, pa.Array]:
    """Run ``task`` over one batch of column values: (result column, error column), row for row.

    A bad value (null, wrong type, empty text) or a row the model fails on gets its error; the
    other rows get results. ``options`` is an already parsed options object of the task.
    """
    outputs = task.run_batch([(value, options) for value in values])
    results = [None if isinstance(out, ModelDeckError) else out for out in outputs]
    errors = [out.to_dict() if isinstance(out, ModelDeckError) else None for out in outputs]
    return to_arrow(results, task.result_type), pa.array(errors, type=ERROR_TYPE)


def tensor_columns(column: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """The columns a tensor task reads: ``"a,b"`` or ``["a", "b"]``; ``None`` means every column."""
    if column is None:
        return None
    names = column.split(",") if isinstance(column, str) else list(column)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise InputError(f"no column named in {column!r}", hint="name the input columns, e.g. 'features,mask'")
    return tuple(names)


def tensor_examples(batch: pa.RecordBatch, columns: Sequence[str] | None) -> list[Any]:
    """One tensor example per row: a lone struct column's values (its fields are the input names),
    else ``{column: value}`` over ``columns`` (every column when ``None``)."""
    names = list(columns) if columns else batch.schema.names
    if len(names) == 1 and pa.types.is_struct(batch.schema.field(names[0]).type):
        return batch.column(names[0]).to_pylist()  # type: ignore[no-any-return]
    values = {name: batch.column(name).to_pylist() for name in names}
    return [{name: values[name][row] for name in names} for row in range(batch.num_rows)]
