"""One local[2] SparkSession per test module, with Python workers on this interpreter."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modeldeck.spark import LOAD_LOG_ENV


@pytest.fixture(scope="module")
def load_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file each model load in a Python worker appends a line to (see ``modeldeck.spark``)."""
    return tmp_path_factory.mktemp("spark") / "loads.tsv"


@pytest.fixture(scope="module")
def spark(load_log: Path) -> Iterator[object]:
    pytest.importorskip("pyspark")
    pytest.importorskip("pandas")  # mapInArrow needs it
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.skip("Spark needs Java")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYSPARK_PYTHON", sys.executable)  # read once, when the context starts
        session = (
            SparkSession.builder.master("local[2]")
            .appName("modeldeck-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            # Small Arrow batches, so each partition reaches the model as several batches.
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "16")
            .config(f"spark.executorEnv.{LOAD_LOG_ENV}", str(load_log))
            .getOrCreate()
        )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
