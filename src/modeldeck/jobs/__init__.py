"""Dataset runs: the same tasks over local files or Spark DataFrames, with per-row errors."""

from ._core import ERROR_TYPE, output_schema, predict_arrow

__all__ = ["ERROR_TYPE", "output_schema", "predict_arrow"]
