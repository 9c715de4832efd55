"""Dataset runs: the same tasks over local files or Spark DataFrames, with per-row errors.

``run_job`` runs a task over local files (see docs/jobs.md); it and its readers and writers
(pyarrow.parquet, pyarrow.csv) are imported only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from ._core import ERROR_TYPE, output_schema, predict_arrow

if TYPE_CHECKING:
    from ._runner import JobSummary, run_job
    from ._writers import read_manifest

__all__ = ["ERROR_TYPE", "JobSummary", "output_schema", "predict_arrow", "read_manifest", "run_job"]

__getattr__ = lazy_getattr(
    __name__,
    {
        "JobSummary": ("modeldeck.jobs._runner", "JobSummary"),
        "run_job": ("modeldeck.jobs._runner", "run_job"),
        "read_manifest": ("modeldeck.jobs._writers", "read_manifest"),
    },
)
