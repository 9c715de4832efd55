"""Spark scaling: `ner` through modeldeck.spark.predict on local[2] vs local[1], side by side in one run.

    python benchmarks/spark.py [--rows 20000] [--partitions 8]

Each master runs in a fresh interpreter with its own SparkSession. A warm-up job first loads
the model in every Python worker (that cost is reported apart as `warmup_s`), then the timed
job runs predict over the cached input and writes to Spark's `noop` sink, which computes every
row and stores nothing. For reference the same rows also go through `predict_arrow` in this
process (one core, no Spark). Results are written to .bench/spark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from _common import save, sentences

MASTERS = ("local[1]", "local[2]")


def run_one(master: str, rows: int, partitions: int) -> dict[str, Any]:
    """In a child process: one session on ``master``; the timed predict over ``rows`` sentences."""
    from pyspark.sql import SparkSession

    from modeldeck.spark import predict

    spark = (
        SparkSession.builder.master(master).appName("modeldeck-bench").config("spark.ui.enabled", "false").getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        df = spark.createDataFrame(list(enumerate(sentences(rows))), "id long, text string").repartition(partitions)
        df.cache().count()
        started = time.perf_counter()
        predict(df.limit(partitions * 8).repartition(partitions), "ner", "text").write.format("noop").mode(
            "overwrite"
        ).save()
        warmup = time.perf_counter() - started
        started = time.perf_counter()
        predict(df, "ner", "text").write.format("noop").mode("overwrite").save()
        seconds = time.perf_counter() - started
    finally:
        spark.stop()
    return {"master": master, "rows": rows, "partitions": partitions, "warmup_s": warmup, "seconds": seconds,
            "rows_per_s": rows / seconds}  # fmt: skip


def run_local(rows: int) -> dict[str, Any]:
    """The same rows through predict_arrow in this process: what one core does without Spark."""
    import modeldeck
    from modeldeck.jobs import predict_arrow

    task = modeldeck.load("ner", batch_size=32)
    texts = sentences(rows)
    predict_arrow(task, texts[:256], task.default_options)
    started = time.perf_counter()
    for start in range(0, rows, 10_000):  # Spark's Arrow batch size
        predict_arrow(task, texts[start : start + 10_000], task.default_options)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def busy_cores(seconds: float = 1.0) -> float:
    """Cores' worth of CPU that other processes use right now (Linux /proc/stat), before we start."""

    def ticks() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    busy0, total0 = ticks()
    time.sleep(seconds)
    busy1, total1 = ticks()
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--one", metavar="MASTER", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.rows, args.partitions)))
        return

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}  # the workers run this interpreter
    runs: dict[str, dict[str, Any]] = {}
    busy = busy_cores()
    print(f"ner over {args.rows:,} rows in {args.partitions} partitions ({os.cpu_count()} cores, {busy:.2f} busy)")
    if busy > 0.3:
        print("  warning: other processes hold CPU; local[2] cannot scale on cores it does not get")
    for master in MASTERS:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            master,
            "--rows",
            str(args.rows),
            "--partitions",
            str(args.partitions),
        ]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        runs[master] = json.loads(out.strip().splitlines()[-1])
        r = runs[master]
        print(f"  {master:<9} {r['rows_per_s']:8.1f} rows/s  ({r['seconds']:.1f} s; warm-up job {r['warmup_s']:.1f} s)")
    local = run_local(args.rows)
    ratio = runs["local[2]"]["rows_per_s"] / runs["local[1]"]["rows_per_s"]
    print(f"  in-process predict_arrow, no Spark: {local['rows_per_s']:.1f} rows/s")
    print(f"  local[2] / local[1]: {ratio:.2f}x (target >= 1.6x)")
    result = {
        "busy_cores_before": busy,
        "busy_cores_after": busy_cores(),
        "runs": runs,
        "in_process": local,
        "local2_over_local1": ratio,
        "local1_over_in_process": runs["local[1]"]["rows_per_s"] / local["rows_per_s"],
    }
    print(f"  saved {save('spark', result)}")


if __name__ == "__main__":
    main()
