"""Served throughput and latency vs. the raw in-process model, measured side by side in one run.

    python benchmarks/serving.py embed  [--duration 20]   # adaptive vs no batching vs SentenceTransformer.encode
    python benchmarks/serving.py ner    [--duration 20]   # adaptive batching vs nlp.pipe
    python benchmarks/serving.py memory [--duration 300]  # RSS with ner+embed through a long load
    python benchmarks/serving.py overload [--duration 20] # embed at 8x capacity: admission by expected wait
    python benchmarks/serving.py surfaces --baseline OLD/src [--duration 10] [--rounds 2]
        # embed through the task API and OpenAI's /v1/embeddings (float, base64), 32 clients:
        # this tree's server vs another source tree's (e.g. `git archive main`), alternated

Every figure is printed with its ratio to the baseline measured in the same run; results are
also written to .bench/serving-<what>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

import httpx
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


def _retry_after(body: bytes) -> float:
    # The load generator's minimal client returns no headers; the message carries the same figure,
    # which the Retry-After header gives in whole seconds, at least 1.
    import re

    found = re.search(rb"retry in ([0-9.]+)s", body)
    return float(max(1, round(float(found.group(1))))) if found else 1.0


async def _closed_loop(url: str, clients: int, duration: float, texts: list[str]) -> dict[str, Any]:
    """``clients`` closed-loop clients for ``duration`` s; each refused one waits its Retry-After, as a
    client should. Latencies of admitted (200) and refused (429) requests are kept apart."""
    import itertools
    import json

    from modeldeck.cli._http import Connection, build_post

    endpoint = f"{url}/v1/models/embed/predict"
    bodies = itertools.cycle([build_post(endpoint, json.dumps({"inputs": t}).encode())[2] for t in texts])
    host, port, _ = build_post(endpoint, b"")
    admitted: list[float] = []
    refused: list[float] = []
    other: dict[str, int] = {}
    stop_at = time.perf_counter() + duration

    async def client() -> None:
        connection = Connection(host, port, 120.0)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    status, body = await connection.request(next(bodies))
                except (OSError, asyncio.IncompleteReadError):
                    # The server closed an idle keep-alive connection while this client waited: reconnect.
                    connection.close()
                    connection = Connection(host, port, 120.0)
                    other["reconnect"] = other.get("reconnect", 0) + 1
                    continue
                seconds = time.perf_counter() - started
                if status == 200:
                    admitted.append(seconds)
                elif status == 429:
                    refused.append(seconds)
                    await asyncio.sleep(_retry_after(body))
                else:
                    other[str(status)] = other.get(str(status), 0) + 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    admitted.sort()
    refused.sort()

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q / 100 * len(values)))] * 1000 if values else 0.0

    return {
        "clients": clients,
        "seconds": elapsed,
        "admitted": len(admitted),
        "refused": len(refused),
        "other": other,
        "items_per_s": len(admitted) / elapsed,
        "admitted_ms": {"p50": pct(admitted, 50), "p99": pct(admitted, 99), "max": pct(admitted, 100)},
        "refused_ms": {"p50": pct(refused, 50), "p99": pct(refused, 99), "max": pct(refused, 100)},
    }


def run_overload(duration: float) -> dict[str, Any]:
    """embed at its peak (32 clients, one batch's worth) and at 8x that, on one server."""
    texts = sentences(4096)
    print(f"embed overload, {duration:.0f} s per load")
    with server("embed") as (url, _):
        asyncio.run(_closed_loop(url, CONCURRENCY, min(5.0, duration), texts))  # warm-up
        peak = asyncio.run(_closed_loop(url, CONCURRENCY, duration, texts))
        loaded = asyncio.run(_closed_loop(url, 8 * CONCURRENCY, duration, texts))
        detail = httpx.get(f"{url}/v1/models/embed", timeout=10).json()
    stats = detail["batching"]["stats"]
    batch_s = (stats["alpha"] or 0.0) + (stats["beta"] or 0.0) * detail["batching"]["max_batch_size"]
    max_wait_s = detail["batching"]["max_queue_wait_ms"] / 1000.0
    bound_ms = (2 * max_wait_s + batch_s) * 1000
    result = {
        "peak": peak,
        "overload": loaded,
        "max_queue_wait_ms": max_wait_s * 1000,
        "batch_ms": batch_s * 1000,
        "p99_bound_ms": bound_ms,
        "throughput_ratio": loaded["items_per_s"] / peak["items_per_s"],
    }
    for name, row in (("peak, 32 clients", peak), ("8x, 256 clients", loaded)):
        a, r = row["admitted_ms"], row["refused_ms"]
        print(
            f"  {name:<18} {row['items_per_s']:7.1f} items/s  admitted {row['admitted']:6d} p50 {a['p50']:7.1f} "
            f"p99 {a['p99']:7.1f} max {a['max']:7.1f} ms  refused {row['refused']:6d} p50 {r['p50']:5.1f} "
            f"p99 {r['p99']:5.1f} ms  other {row['other'] or 0}"
        )
    print(
        f"  8x/peak throughput {result['throughput_ratio']:.2f}x; admitted p99 {loaded['admitted_ms']['p99']:.0f} ms "
        f"vs bound 2 x {max_wait_s * 1000:.0f} + batch {batch_s * 1000:.0f} = {bound_ms:.0f} ms"
    )
    return result


def _server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the server process itself, not its model workers."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _throughput(url: str, path: str, bodies: list[bytes], clients: int, duration: float) -> dict[str, Any]:
    """``clients`` closed-loop clients posting ``bodies`` in turn to ``path`` for ``duration`` s."""
    import itertools

    from modeldeck.cli._http import Connection, build_post

    endpoint = f"{url}{path}"
    requests = itertools.cycle([build_post(endpoint, body)[2] for body in bodies])
    host, port, _ = build_post(endpoint, b"")
    latencies: list[float] = []
    failed: dict[str, int] = {}
    stop_at = time.perf_counter() + duration

    async def client() -> None:
        connection = Connection(host, port, 120.0)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                status, _ = await connection.request(next(requests))
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    failed[str(status)] = failed.get(str(status), 0) + 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0.0
    return {"ok": len(latencies), "failed": failed, "items_per_s": len(latencies) / elapsed, "p50_ms": p50}


def run_surfaces(duration: float, baseline: str, rounds: int) -> dict[str, Any]:
    """This tree's server against ``baseline``'s (another checkout's ``src``), alternated, same load."""
    import json
    import os
    from pathlib import Path

    texts = sentences(4096)
    surfaces = {
        "task": ("/v1/models/embed/predict", [json.dumps({"inputs": t}).encode() for t in texts]),
        "openai float": (
            "/v1/embeddings",
            [json.dumps({"model": "embed", "input": t, "encoding_format": "float"}).encode() for t in texts],
        ),
        "openai base64": (
            "/v1/embeddings",
            [json.dumps({"model": "embed", "input": t, "encoding_format": "base64"}).encode() for t in texts],
        ),
    }
    trees = {"old": str(Path(baseline).resolve()), "new": str(Path(__file__).resolve().parent.parent / "src")}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {tree: {s: [] for s in surfaces} for tree in trees}
    print(f"embed, {CONCURRENCY} clients, {duration:.0f} s per surface, {rounds} rounds alternating old/new")
    for round_ in range(rounds):
        order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
        for tree in order:
            env = {"PYTHONPATH": os.pathsep.join([trees[tree], os.environ.get("PYTHONPATH", "")])}
            with server("embed", env=env) as (url, pid):
                warm = surfaces["task"]
                asyncio.run(_throughput(url, warm[0], warm[1], CONCURRENCY, min(3.0, duration)))
                for name, (path, bodies) in surfaces.items():
                    cpu = _server_cpu_s(pid)
                    row = asyncio.run(_throughput(url, path, bodies, CONCURRENCY, duration))
                    row["server_cpu_ms_per_item"] = (_server_cpu_s(pid) - cpu) * 1000 / max(1, row["ok"])
                    runs[tree][name].append(row)
                    print(
                        f"  round {round_ + 1} {tree:<3} {name:<14} {row['items_per_s']:7.1f} items/s  "
                        f"p50 {row['p50_ms']:6.1f} ms  server CPU {row['server_cpu_ms_per_item']:5.2f} ms/item  "
                        f"failed {row['failed'] or 0}"
                    )
    result: dict[str, Any] = {"runs": runs, "ratios": {}}
    for name in surfaces:
        old = sum(r["items_per_s"] for r in runs["old"][name]) / rounds
        new = sum(r["items_per_s"] for r in runs["new"][name]) / rounds
        old_cpu = sum(r["server_cpu_ms_per_item"] for r in runs["old"][name]) / rounds
        new_cpu = sum(r["server_cpu_ms_per_item"] for r in runs["new"][name]) / rounds
        result["ratios"][name] = {"throughput": new / old, "server_cpu_per_item": new_cpu / old_cpu}
        print(
            f"  {name:<14} new/old throughput {new / old:5.2f}x ({old:.1f} -> {new:.1f} items/s), "
            f"server CPU per item {new_cpu / old_cpu:5.2f}x ({old_cpu:.2f} -> {new_cpu:.2f} ms)"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["embed", "ner", "memory", "overload", "surfaces"])
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--baseline", help="surfaces: the src folder of the tree to compare against")
    parser.add_argument("--rounds", type=int, default=2, help="surfaces: old/new pairs, alternated")
    args = parser.parse_args()
    if args.what == "surfaces":
        if not args.baseline:
            parser.error("surfaces needs --baseline OLD/src (e.g. from `git archive main | tar -x -C OLD`)")
        result = run_surfaces(args.duration or 10.0, args.baseline, args.rounds)
        print(f"  saved {save('serving-surfaces', result)}")
        return
    runners = {
        "embed": (run_embed, 20.0),
        "ner": (run_ner, 20.0),
        "memory": (run_memory, 300.0),
        "overload": (run_overload, 20.0),
    }
    run, default = runners[args.what]
    result = run(args.duration or default)
    print(f"  saved {save(f'serving-{args.what}', result)}")


if __name__ == "__main__":
    main()
