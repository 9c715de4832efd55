"""Dataset runs: the same tasks over local files or Spark DataFrames, with per-row errors.

``run_job`` runs a task over local files (see docs/jobs.md); it and its readers and writers
(pyarrow.parquet, pyarrow.csv) are imported only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._core import ERROR_TYPE, output_schema, predict_arrow

if TYPE_CHECKING:
    from ._runner import JobSummary, run_job
    from ._writers import read_manifest

__all__ = ["ERROR_TYPE", "JobSummary", "output_schema", "predict_arrow", "read_manifest", "run_job"]

_LAZY = {
    "JobSummary": ("modeldeck.jobs._runner", "JobSummary"),
    "run_job": ("modeldeck.jobs._runner", "run_job"),
    "read_manifest": ("modeldeck.jobs._writers", "read_manifest"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(module_name), attribute)
    raise AttributeError(f"module 'modeldeck.jobs' has no attribute {name!r}")
