"""``modeldeck bench``: a closed-loop load generator against a running server.

Each of ``concurrency`` clients sends a request, waits for the answer and sends the next, for a
duration or a request count. The report gives throughput, latency percentiles, errors by status
and the server's own batch-size histogram over the run (scraped from ``/metrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, ServiceError
from ._http import Connection, build_post

__all__ = ["BenchReport", "percentile", "run_bench", "run_bench_command"]

_DEFAULT_TEXTS = (
    "Tim Cook visited Paris to meet the mayor on Tuesday.",
    "The quarterly report from Siemens showed strong growth in Asia.",
    "A quick brown fox jumps over the lazy dog near the river bank.",
    "Ada Lovelace wrote the first published algorithm in London.",
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``q`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class BenchReport:
    model: str
    concurrency: int
    requests: int
    items: int
    ok: int
    errors: dict[str, int]
    seconds: float
    requests_per_s: float
    items_per_s: float
    latency_ms: dict[str, float]
    batch_sizes: dict[str, float] = field(default_factory=dict)
    mean_batch_size: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batch_histogram(metrics_text: str, model: str) -> tuple[dict[str, float], float, float]:
    """Cumulative bucket counts, sum and count of ``modeldeck_batch_size`` for one model."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[str, float] = {}
    total = count = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "modeldeck_batch_size":
            continue
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            if sample.name.endswith("_bucket"):
                buckets[sample.labels["le"]] = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
    return buckets, total, count


async def run_bench(
    url: str,
    model: str,
    *,
    concurrency: int = 32,
    duration: float | None = 10.0,
    requests: int | None = None,
    texts: Sequence[str] = _DEFAULT_TEXTS,
    items_per_request: int = 1,
    timeout: float = 60.0,
    api_key: str | None = None,
) -> BenchReport:
    import httpx

    if concurrency < 1:
        raise InputError(f"concurrency must be >= 1, got {concurrency}")
    if items_per_request < 1:
        raise InputError(f"items_per_request must be >= 1, got {items_per_request}")
    if not texts:
        raise InputError("no input texts to send", hint="pass --input or --input-file")
    base = url.rstrip("/")
    endpoint = f"{base}/v1/models/{model}/predict"
    bodies = [
        json.dumps({"inputs": [texts[(i + j) % len(texts)] for j in range(items_per_request)]}).encode()
        for i in range(len(texts))
    ]
    requests_raw = itertools.cycle([build_post(endpoint, body, api_key=api_key)[2] for body in bodies])
    host, port, _ = build_post(endpoint, b"")
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        try:
            before = _batch_histogram((await client.get(f"{base}/metrics")).text, model)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"cannot reach the server at {base} ({exc})", hint="start it with: modeldeck serve"
            ) from None
        started = time.perf_counter()
        stop_at = started + (duration if duration is not None and requests is None else float("inf"))

        async def client_loop() -> None:
            nonlocal sent
            connection = Connection(host, port, timeout)
            try:
                while time.perf_counter() < stop_at and (requests is None or sent < requests):
                    sent += 1
                    t0 = time.perf_counter()
                    try:
                        status, _ = await connection.request(next(requests_raw))
                    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                        statuses[type(exc).__name__] += 1
                        continue
                    statuses[str(status)] += 1
                    latencies.append(time.perf_counter() - t0)
            finally:
                connection.close()

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        after = _batch_histogram((await client.get(f"{base}/metrics")).text, model)

    ok = statuses.pop("200", 0)
    latencies.sort()
    buckets = {le: after[0].get(le, 0.0) - before[0].get(le, 0.0) for le in after[0]}
    batches = after[2] - before[2]
    return BenchReport(
        model=model,
        concurrency=concurrency,
        requests=sent,
        items=ok * items_per_request,
        ok=ok,
        errors=dict(statuses),
        seconds=seconds,
        requests_per_s=ok / seconds if seconds else 0.0,
        items_per_s=ok * items_per_request / seconds if seconds else 0.0,
        latency_ms={f"p{q}": percentile(latencies, q) * 1000 for q in (50, 95, 99)},
        batch_sizes=buckets,
        mean_batch_size=(after[1] - before[1]) / batches if batches else None,
    )


def _print_report(report: BenchReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"bench {report.model}: {report.concurrency} clients, {report.seconds:.1f}s", box=None)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("requests ok", f"{report.ok:,}")
    table.add_row("errors", ", ".join(f"{k}: {v}" for k, v in report.errors.items()) or "0")
    table.add_row("throughput", f"{report.requests_per_s:,.1f} req/s, {report.items_per_s:,.1f} items/s")
    for name, value in report.latency_ms.items():
        table.add_row(f"latency {name}", f"{value:,.1f} ms")
    if report.mean_batch_size is not None:
        table.add_row("mean batch size", f"{report.mean_batch_size:.2f}")
    console.print(table)
    if report.batch_sizes:
        hist = Table("batch size <=", "batches", title="server batch sizes during the run", box=None)
        previous = 0.0
        for le, cumulative in report.batch_sizes.items():
            hist.add_row(_bucket_label(le), f"{cumulative - previous:,.0f}")
            previous = cumulative
        console.print(hist)


def _bucket_label(le: str) -> str:
    """A histogram bound as a size: Prometheus writes the bucket "1" as "1.0" and the last as "+Inf"."""
    try:
        value = float(le)
    except ValueError:
        return le
    return str(int(value)) if value.is_integer() else le


def _image_inputs(paths: Sequence[str]) -> list[str]:
    """Each image file base64-encoded, as a JSON client sends it (the server never reads paths)."""
    import base64

    encoded = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"image file {name!r} does not exist", hint="check the path given to --image")
        encoded.append(base64.b64encode(path.read_bytes()).decode("ascii"))
    return encoded


def run_bench_command(args: argparse.Namespace) -> int:
    texts: list[str] = list(args.texts or [])
    if args.input_file:
        path = Path(args.input_file)
        if not path.is_file():
            raise InputError(f"input file {str(path)!r} does not exist", hint="check the path given to --input-file")
        texts.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    images = list(getattr(args, "images", None) or [])
    if images and texts:
        raise InputError("pass --input/--input-file or --image, not both", hint="an image model takes images")
    texts.extend(_image_inputs(images))
    duration = args.duration if args.duration is not None or args.requests is not None else 10.0
    report = asyncio.run(
        run_bench(
            args.url,
            args.model,
            concurrency=args.concurrency,
            duration=duration,
            requests=args.requests,
            texts=texts or _DEFAULT_TEXTS,
            items_per_request=args.items_per_request,
            api_key=args.api_key or os.environ.get("MODELDECK_API_KEY") or None,
        )
    )
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        _print_report(report)
    return 0 if not report.errors else 1
