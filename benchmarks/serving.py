"""Served throughput and latency vs. the raw in-process model, measured side by side in one run.

    python benchmarks/serving.py embed  [--duration 20]   # adaptive vs no batching vs SentenceTransformer.encode
    python benchmarks/serving.py ner    [--duration 20]   # adaptive batching vs nlp.pipe
    python benchmarks/serving.py memory [--duration 300]  # RSS with ner+embed through a long load

Every figure is printed with its ratio to the baseline measured in the same run; results are
also written to .bench/serving-<what>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

from _common import rss_bytes, save, sentences, server

from modeldeck.cli._bench import BenchReport, run_bench

CONCURRENCY = 32


def bench(url: str, model: str, duration: float, texts: list[str]) -> BenchReport:
    asyncio.run(run_bench(url, model, concurrency=CONCURRENCY, duration=min(3.0, duration), texts=texts))  # warm-up
    return asyncio.run(run_bench(url, model, concurrency=CONCURRENCY, duration=duration, texts=texts))


def raw_embed(texts: list[str]) -> float:
    """Sentences per second of SentenceTransformer.encode(batch_size=32) in this process."""
    from sentence_transformers import SentenceTransformer

    import modeldeck

    path = modeldeck.ModelStore(modeldeck.Settings.from_env()).resolve("embed").path
    model = SentenceTransformer(str(path), device="cpu")
    model.encode(texts[:256], batch_size=32)
    started = time.perf_counter()
    model.encode(texts, batch_size=32)
    return len(texts) / (time.perf_counter() - started)


def raw_ner(texts: list[str]) -> float:
    """Texts per second of nlp.pipe(batch_size=32) on the same pipeline the ner task loads."""
    import modeldeck

    nlp = modeldeck.load("ner").runtime.nlp  # the task's own spaCy Language: same components, no server
    list(nlp.pipe(texts[:256], batch_size=32))
    started = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=32):
        pass
    return len(texts) / (time.perf_counter() - started)


def _row(name: str, report: BenchReport, baseline: float) -> dict[str, Any]:
    lat = report.latency_ms
    print(
        f"  {name:<22} {report.items_per_s:8.1f} items/s  ({report.items_per_s / baseline:5.2f}x raw)  "
        f"p50 {lat['p50']:6.1f} ms  p95 {lat['p95']:6.1f} ms  p99 {lat['p99']:6.1f} ms  "
        f"mean batch {report.mean_batch_size or 0:5.1f}  errors {report.errors or 0}"
    )
    return report.to_dict()


def run_embed(duration: float) -> dict[str, Any]:
    texts = sentences(4096)
    raw = raw_embed(texts)
    print(f"embed, {CONCURRENCY} clients, {duration:.0f} s per mode")
    print(f"  {'raw encode(bs=32)':<22} {raw:8.1f} items/s")
    with server("embed") as (url, _):
        adaptive = bench(url, "embed", duration, texts)
    with server("embed", extra_args=("--no-batching",)) as (url, _):
        unbatched = bench(url, "embed", duration, texts)
    result = {
        "raw_items_per_s": raw,
        "adaptive": _row("served, adaptive", adaptive, raw),
        "no_batching": _row("served, no batching", unbatched, raw),
        "adaptive_over_no_batching": adaptive.items_per_s / unbatched.items_per_s,
        "adaptive_over_raw": adaptive.items_per_s / raw,
    }
    print(
        f"  adaptive / no batching: {result['adaptive_over_no_batching']:.2f}x   "
        f"adaptive / raw: {result['adaptive_over_raw']:.2f}x"
    )
    return result


def run_ner(duration: float) -> dict[str, Any]:
    texts = sentences(4096)
    raw = raw_ner(texts)
    print(f"ner, {CONCURRENCY} clients, {duration:.0f} s")
    print(f"  {'raw nlp.pipe(bs=32)':<22} {raw:8.1f} items/s")
    with server("ner") as (url, _):
        adaptive = bench(url, "ner", duration, texts)
    result = {
        "raw_items_per_s": raw,
        "adaptive": _row("served, adaptive", adaptive, raw),
        "adaptive_over_raw": adaptive.items_per_s / raw,
    }
    print(f"  adaptive / raw: {result['adaptive_over_raw']:.2f}x")
    return result


def run_memory(duration: float, warmup: float = 30.0) -> dict[str, Any]:
    texts = sentences(4096)
    with server("ner,embed") as (url, pid):
        idle = rss_bytes(pid)

        async def load(seconds: float) -> None:
            await asyncio.gather(
                run_bench(url, "ner", concurrency=CONCURRENCY // 2, duration=seconds, texts=texts),
                run_bench(url, "embed", concurrency=CONCURRENCY // 2, duration=seconds, texts=texts),
            )

        asyncio.run(load(warmup))
        warm = rss_bytes(pid)
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(2.0):
                samples.append(rss_bytes(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        asyncio.run(load(duration))
        stop.set()
        sampler.join()
    peak = max(samples)
    result = {
        "rss_idle_mb": idle / 2**20,
        "rss_after_warmup_mb": warm / 2**20,
        "rss_peak_mb": peak / 2**20,
        "rss_last_mb": samples[-1] / 2**20,
        "peak_over_warm": peak / warm,
        "samples": len(samples),
        "duration_s": duration,
    }
    print(f"memory, ner+embed, {CONCURRENCY} clients, {duration:.0f} s after a {warmup:.0f} s warm-up")
    print(
        f"  RSS idle {result['rss_idle_mb']:.0f} MiB, after warm-up {result['rss_after_warmup_mb']:.0f} MiB, "
        f"peak {result['rss_peak_mb']:.0f} MiB ({(result['peak_over_warm'] - 1) * 100:+.1f}%), "
        f"last {result['rss_last_mb']:.0f} MiB"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["embed", "ner", "memory"])
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args()
    runners = {"embed": (run_embed, 20.0), "ner": (run_ner, 20.0), "memory": (run_memory, 300.0)}
    run, default = runners[args.what]
    result = run(args.duration or default)
    print(f"  saved {save(f'serving-{args.what}', result)}")


if __name__ == "__main__":
    main()
