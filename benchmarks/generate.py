"""Served text generation: batched decoding vs one request at a time, measured side by side in one run.

    python benchmarks/generate.py [--duration 15] [--clients 16] [--max-tokens 32]

A tiny random-weight GPT-2 (2 layers, 64-dim, built here with the tests' builder) is served by
``modeldeck serve`` twice: with adaptive batching (up to 32 rows decoded together, each with its
own options) and with ``--no-batching`` (max batch size 1). ``--clients`` concurrent clients
post ``/v1/completions`` requests (greedy, ``max_tokens`` each, no stop) for ``--duration``
seconds; the figure is generated tokens per second, from the responses' usage. Both servers run
with ``OMP_NUM_THREADS=1``: a model this small gains nothing from intra-op threads. Results are
also written to .bench/generate.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import save, sentences, server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tiny-model builder lives with the tests
from tests.tasks.gpt2_models import save_tiny_gpt2


async def load(url: str, *, clients: int, duration: float, max_tokens: int) -> dict[str, Any]:
    prompts = sentences(256)
    tokens = 0
    requests = 0
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def client(index: int, http: httpx.AsyncClient) -> None:
        nonlocal tokens, requests, errors
        i = index
        while time.perf_counter() < stop_at:
            body = {"model": "gen", "prompt": prompts[i % len(prompts)], "max_tokens": max_tokens, "temperature": 0}
            i += clients
            started = time.perf_counter()
            response = await http.post(f"{url}/v1/completions", json=body)
            if response.status_code != 200:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            tokens += response.json()["usage"]["completion_tokens"]
            requests += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "tokens_per_s": tokens / elapsed,
        "requests_per_s": requests / elapsed,
        "requests": requests,
        "errors": errors,
        "latency_p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "latency_p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
    }


def bench(model: Path, extra_args: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    env = {"OMP_NUM_THREADS": "1"}
    with server(f"gen=generate:{model}", extra_args=extra_args, env=env) as (url, _):
        asyncio.run(load(url, clients=args.clients, duration=min(3.0, args.duration), max_tokens=args.max_tokens))
        result = asyncio.run(load(url, clients=args.clients, duration=args.duration, max_tokens=args.max_tokens))
        stats = httpx.get(f"{url}/v1/models/gen").json()["batching"]["stats"]
    result["mean_batch_size"] = stats["mean_batch_size"]
    return result


def _row(name: str, result: dict[str, Any], baseline: float) -> None:
    print(
        f"  {name:<24} {result['tokens_per_s']:8.1f} tokens/s  ({result['tokens_per_s'] / baseline:5.2f}x)  "
        f"{result['requests_per_s']:6.1f} req/s  p50 {result['latency_p50_ms']:7.1f} ms  "
        f"p95 {result['latency_p95_ms']:7.1f} ms  mean batch {result['mean_batch_size']:5.1f}  "
        f"errors {result['errors']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = save_tiny_gpt2(Path(folder) / "tiny-gpt2", n_embd=64)
        sequential = bench(model, ("--no-batching",), args)
        batched = bench(model, (), args)
    base = sequential["tokens_per_s"]
    print(f"generate (tiny GPT-2), {args.clients} clients, {args.max_tokens} tokens per request, {args.duration:.0f} s")
    _row("served, no batching", sequential, base)
    _row("served, batched", batched, base)
    ratio = batched["tokens_per_s"] / base
    print(f"  batched / no batching: {ratio:.2f}x")
    path = save("generate", {"args": vars(args), "no_batching": sequential, "batched": batched, "ratio": ratio})
    print(f"  saved {path}")


if __name__ == "__main__":
    main()
