"""The Open Inference Protocol against the task API on the same ``embed`` server, side by side in one run.

    python benchmarks/protocols.py embed [--duration 10] [--rounds 2]
    python benchmarks/protocols.py repository   # RSS of server + workers around unload / load

``throughput``: 32 closed-loop clients, one text per request, alternating rounds of the task API
(``/v1/models/embed/predict``, JSON) and OIP with binary tensors (a BYTES input and an FP32 output
as binary data, what ``tritonclient.http`` sends by default); the ratio is OIP over the task API.
``response CPU``: with 4 clients (none refused), the server process's own CPU time (its model
runs in a worker process, whose time is the same either way) per request of 16 texts, with the
FP32 ``[16, 384]`` output as binary data and as JSON ``data``; and the time to write that output alone, in this process.
Results go to .bench/protocols-embed.json. ``repository``: server and worker RSS (psutil) with
``ner`` and ``embed`` served, after unloading each through the model repository extension, and
after loading ``ner`` again (.bench/protocols-repository.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import time
from collections import Counter
from typing import Any

import psutil
from _common import save, sentences, server

from modeldeck.cli._http import Connection

CONCURRENCY = 32
CPU_CLIENTS = 4


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def task_api_request(port: int, texts: list[str]) -> bytes:
    body = json.dumps({"inputs": texts}).encode()
    return _post(port, "/v1/models/embed/predict", body, {"Content-Type": "application/json"})


def oip_request(port: int, texts: list[str], *, binary_output: bool) -> bytes:
    data = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    header = {
        "inputs": [
            {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "parameters": {"binary_data_size": len(data)}}
        ],
        "outputs": [{"name": "embedding", "parameters": {"binary_data": binary_output}}],
    }
    head = json.dumps(header).encode()
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
    return _post(port, "/v2/models/embed/infer", head + data, headers)


async def closed_loop(port: int, requests: list[bytes], duration: float, clients: int = CONCURRENCY) -> dict[str, Any]:
    """``clients`` clients, each sending the next request when its answer arrives."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    stop_at = time.perf_counter() + duration
    counter = iter(range(10**9))

    async def client() -> None:
        connection = Connection("127.0.0.1", port, 60.0)
        try:
            while time.perf_counter() < stop_at:
                raw = requests[next(counter) % len(requests)]
                started = time.perf_counter()
                status, body = await connection.request(raw)
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[str(status)] += 1
                    samples.setdefault(str(status), body[:300].decode("utf-8", "replace"))
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "ok": len(latencies),
        "errors": dict(errors),
        "error_samples": samples,
    }


def cpu_per_request(pid: int, port: int, requests: list[bytes], duration: float) -> dict[str, Any]:
    process = psutil.Process(pid)
    before = process.cpu_times()
    # Few clients: no request is refused or late, so the CPU is spent on answered requests only.
    result = asyncio.run(closed_loop(port, requests, duration, clients=CPU_CLIENTS))
    after = process.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return {**result, "server_cpu_ms_per_request": cpu / max(1, result["ok"]) * 1000}


def encode_cost(rounds: int = 200) -> dict[str, float]:
    """Microseconds to write one FP32 [16, 384] output, binary vs JSON (the response part that differs)."""
    import numpy as np
    from pydantic_core import to_json

    from modeldeck.serving._tensors import encode_tensor

    array = np.random.default_rng(0).normal(size=(16, 384)).astype(np.float32)

    def binary() -> bytes:
        head, raw = encode_tensor("embedding", array, True)
        return to_json(head) + (raw or b"")

    def as_json() -> bytes:
        return to_json(encode_tensor("embedding", array, False)[0])

    times = {}
    for name, fn in (("fp32_binary", binary), ("fp32_json", as_json)):
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        times[name] = best * 1e6
    return times


def embed(duration: float, rounds: int) -> dict[str, Any]:
    texts = sentences(512)
    with server("embed") as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        task_api = [task_api_request(port, [t]) for t in texts]
        oip = [oip_request(port, [t], binary_output=True) for t in texts]
        asyncio.run(closed_loop(port, task_api, 3.0))  # warm-up: both paths, the worker, the batcher's timings
        asyncio.run(closed_loop(port, oip, 3.0))
        runs: dict[str, list[dict[str, Any]]] = {"task_api": [], "oip_binary": []}
        for _ in range(rounds):  # alternated, so drift in the machine's load hits both alike
            runs["task_api"].append(asyncio.run(closed_loop(port, task_api, duration)))
            runs["oip_binary"].append(asyncio.run(closed_loop(port, oip, duration)))
        groups = [texts[i : i + 16] for i in range(0, len(texts), 16)]
        binary = [oip_request(port, g, binary_output=True) for g in groups]
        as_json = [oip_request(port, g, binary_output=False) for g in groups]
        cpu = {"fp32_binary": [], "fp32_json": []}
        for _ in range(rounds):
            cpu["fp32_binary"].append(cpu_per_request(pid, port, binary, duration))
            cpu["fp32_json"].append(cpu_per_request(pid, port, as_json, duration))
    throughput = {k: statistics.median(r["requests_per_s"] for r in v) for k, v in runs.items()}
    server_cpu = {k: statistics.median(r["server_cpu_ms_per_request"] for r in v) for k, v in cpu.items()}
    return {
        "concurrency": CONCURRENCY,
        "duration_s": duration,
        "rounds": rounds,
        "throughput_requests_per_s": throughput,
        "oip_over_task_api": throughput["oip_binary"] / throughput["task_api"],
        "server_cpu_ms_per_request_of_16": server_cpu,
        "binary_over_json_cpu": server_cpu["fp32_binary"] / server_cpu["fp32_json"],
        "encode_us_fp32_16x384": (encode := encode_cost()),
        "binary_over_json_encode": encode["fp32_binary"] / encode["fp32_json"],
        "runs": runs,
        "cpu_runs": cpu,
    }


def _memory(pid: int) -> dict[str, Any]:
    """RSS of the server process and of each of its worker processes, in MiB (psutil)."""
    server_process = psutil.Process(pid)
    workers = server_process.children(recursive=True)
    mib = 2**20
    return {
        "server_mib": server_process.memory_info().rss / mib,
        "workers": len(workers),
        "workers_mib": sum(w.memory_info().rss for w in workers) / mib,
        "total_mib": (server_process.memory_info().rss + sum(w.memory_info().rss for w in workers)) / mib,
    }


def repository() -> dict[str, Any]:
    """Server + worker RSS with ner and embed served, after unloading each, and after loading ner again."""
    import httpx

    texts = sentences(64)
    with server("ner,embed") as (url, pid):
        with httpx.Client(base_url=url, timeout=120) as client:

            def use(model: str) -> None:  # a few requests, so each worker has run batches
                for i in range(0, 64, 16):
                    client.post(f"/v1/models/{model}/predict", json={"inputs": texts[i : i + 16]}).raise_for_status()

            use("ner")
            use("embed")
            steps = {"served ner+embed": _memory(pid)}
            client.post("/v2/repository/models/embed/unload").raise_for_status()
            steps["embed unloaded"] = _memory(pid)
            client.post("/v2/repository/models/ner/unload").raise_for_status()
            steps["ner unloaded too"] = _memory(pid)
            client.post("/v2/repository/models/ner/load").raise_for_status()
            use("ner")
            steps["ner loaded again"] = _memory(pid)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["embed", "repository"])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.what == "repository":
        steps = repository()
        for name, memory in steps.items():
            print(
                f"{name:18s} server {memory['server_mib']:7.1f} MiB + {memory['workers']} worker(s) "
                f"{memory['workers_mib']:7.1f} MiB = {memory['total_mib']:7.1f} MiB"
            )
        save("protocols-repository", steps)
        return
    result = embed(args.duration, args.rounds)
    print(f"throughput at {CONCURRENCY} clients, req/s (median of {args.rounds} alternating rounds):")
    for name, value in result["throughput_requests_per_s"].items():
        print(f"  {name:12s} {value:8.1f}")
    print(f"  OIP binary / task API: {result['oip_over_task_api']:.3f}x")
    print("server CPU per request of 16 texts (FP32 [16, 384] output), ms:")
    for name, value in result["server_cpu_ms_per_request_of_16"].items():
        print(f"  {name:12s} {value:8.3f}")
    print(f"  binary / JSON: {result['binary_over_json_cpu']:.3f}x ({CPU_CLIENTS} clients)")
    print("writing that output alone (best of 200), us:")
    for name, value in result["encode_us_fp32_16x384"].items():
        print(f"  {name:12s} {value:8.1f}")
    print(f"  binary / JSON: {result['binary_over_json_encode']:.3f}x")
    save("protocols-embed", result)


if __name__ == "__main__":
    main()
