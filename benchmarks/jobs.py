"""The local batch runner vs. the raw model, and its memory as the input grows, measured in one run.

    python benchmarks/jobs.py embed  [--rows 20000] [--rounds 2]  # run_job("embed") vs encode(batch_size=32)
    python benchmarks/jobs.py memory [--rows 20000]   # peak RSS of run_job("ner") on rows/10 vs rows rows

``embed`` times both on the same sentences in this process, alternating rounds so that load from
other processes hits both alike (model loading excluded from both);
``run_job`` reads them from Parquet and writes a committed Parquet output, so the ratio is the
whole job against bare inference. ``memory`` runs each size in a fresh subprocess and reads its
peak RSS (``ru_maxrss``); each row carries a 1 KiB payload column, so the larger input is about
20 MiB more data than the smaller one. Results go to .bench/jobs-<what>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import save, sentences

PAYLOAD = 1024


def write_input(path: Path, rows: int, *, payload: bool = False) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {"id": list(range(rows)), "text": sentences(rows)}
    if payload:
        rng = random.Random(0)  # incompressible, so the file on disk is as large as the data
        columns["payload"] = [rng.randbytes(PAYLOAD // 2).hex() for _ in range(rows)]
    pq.write_table(pa.table(columns), path)
    return path


def run_embed(rows: int, rounds: int) -> dict[str, Any]:
    """Raw encode and run_job alternate ``rounds`` times on the same data; the best of each is compared."""
    from sentence_transformers import SentenceTransformer

    import modeldeck
    from modeldeck.jobs import run_job

    texts = sentences(rows)
    path = modeldeck.ModelStore(modeldeck.Settings.from_env()).resolve("embed").path
    model = SentenceTransformer(str(path), device="cpu")
    task = modeldeck.load("embed", batch_size=32)
    model.encode(texts[:256], batch_size=32)
    task(texts[:256])
    raw, job = [], []
    with tempfile.TemporaryDirectory() as tmp:
        source = write_input(Path(tmp) / "in.parquet", rows)
        for _ in range(rounds):
            started = time.perf_counter()
            model.encode(texts, batch_size=32)
            raw.append(rows / (time.perf_counter() - started))
            summary = run_job(task, source, Path(tmp) / "out", column="text", overwrite=True, progress=False)
            job.append(summary.rows_per_s)
    print(f"embed over {rows:,} sentences, batch size 32, {rounds} alternating rounds (best of each)")
    print(f"  {'raw encode(bs=32)':<26} {max(raw):8.1f} rows/s   rounds: {', '.join(f'{r:.1f}' for r in raw)}")
    print(f"  {'run_job parquet->parquet':<26} {max(job):8.1f} rows/s   rounds: {', '.join(f'{r:.1f}' for r in job)}")
    print(f"  run_job / raw: {max(job) / max(raw):.2f}x")
    return {"rows": rows, "raw_rows_per_s": raw, "job_rows_per_s": job, "job_over_raw": max(job) / max(raw)}


def child_rss(source: str, output: str) -> None:
    """In a fresh process: RSS after loading the model, then peak RSS over the job."""
    import modeldeck
    from modeldeck.jobs import run_job

    task = modeldeck.load("ner")
    task(["warm up the pipeline"])
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    summary = run_job(task, source, output, column="text", progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": summary.rows, "loaded_rss": loaded, "peak_rss": peak, "rows_per_s": summary.rows_per_s}))


def run_memory(rows: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(f"peak RSS of run_job('ner'), {PAYLOAD} B payload per row, each size in a fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (rows // 10, rows):
            source = write_input(Path(tmp) / f"in-{n}.parquet", n, payload=True)
            cmd = [sys.executable, __file__, "_child", str(source), str(Path(tmp) / f"out-{n}")]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            result["input_bytes"] = source.stat().st_size
            out[str(n)] = result
            mib = {key: result[key] / 2**20 for key in ("input_bytes", "loaded_rss", "peak_rss")}
            growth = mib["peak_rss"] - mib["loaded_rss"]
            print(f"  {n:>7,} rows  input {mib['input_bytes']:6.1f} MiB  RSS after load {mib['loaded_rss']:7.1f} MiB"
                  f"  peak {mib['peak_rss']:7.1f} MiB  growth during job {growth:6.1f} MiB")  # fmt: skip
    small, large = out[str(rows // 10)], out[str(rows)]
    out["peak_ratio"] = large["peak_rss"] / small["peak_rss"]
    print(f"  peak RSS {rows:,} / {rows // 10:,} rows: {out['peak_ratio']:.3f}x for 10x the input")
    return out


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "_child":
        child_rss(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["embed", "memory"])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2, help="embed: alternating rounds of each")
    args = parser.parse_args()
    result = run_embed(args.rows, args.rounds) if args.what == "embed" else run_memory(args.rows)
    print(f"  saved {save(f'jobs-{args.what}', result)}")


if __name__ == "__main__":
    main()
