"""The playground: the page at ``/`` that tries every served model through the public HTTP API.

The page and its assets ship in ``serving/static/`` and are served here with ETags (a repeat
visit revalidates and gets 304s), gzip when the client takes it, and a strict
Content-Security-Policy: scripts and styles from this server only, no inline code, no eval.
``GET /v1/metrics`` is the JSON view of the server's Prometheus metrics that the page's live
strip reads (raw counters and histogram buckets; rates and quantiles are taken over the
client's own polling window, as Prometheus' ``rate`` and ``histogram_quantile`` would).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..errors import NotFoundError
from .deck import Deck
from .metrics import ServerMetrics, surface_router

__all__ = ["CSP", "PlaygroundAssets", "metrics_view", "router"]

#: Everything from this server only; no inline script or style, no eval; images also from
#: ``blob:`` (a picked photo shown before upload) and ``data:``; the page is never framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Text assets below this size are sent as they are: gzip's header would cost more than it saves.
_GZIP_MIN_BYTES = 512
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")

router = surface_router("playground")

# Prometheus samples by name: (labels, value) pairs.
_Samples = dict[str, list[tuple[dict[str, str], float]]]


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def _media_type(name: str) -> str:
    if name.endswith((".js", ".mjs")):
        return "text/javascript; charset=utf-8"  # mimetypes varies by platform for .js
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, f"{name}/")
        elif not entry.name.startswith("."):
            yield name, entry


class PlaygroundAssets:
    """The static files of the page, read (and gzipped) once, on the first request that needs them."""

    def __init__(self, folder: Traversable | None = None) -> None:
        self._folder = folder
        self._lock = threading.Lock()
        self._assets: dict[str, Asset] | None = None

    def _load(self) -> dict[str, Asset]:
        folder = self._folder or resources.files("modeldeck.serving") / "static"
        assets = {}
        for name, entry in _walk(folder):
            body = entry.read_bytes()
            media = _media_type(name)
            packed = None
            if media.startswith(_COMPRESSIBLE) and len(body) >= _GZIP_MIN_BYTES:
                # mtime=0: the same file always compresses to the same bytes.
                packed = gzip.compress(body, compresslevel=9, mtime=0)
            assets[name] = Asset(body, packed, media, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        return assets

    @property
    def loaded(self) -> bool:
        return self._assets is not None

    def load(self) -> dict[str, Asset]:
        """Read every file once (blocking: the endpoints call it off the event loop)."""
        with self._lock:
            if self._assets is None:
                self._assets = self._load()
            return self._assets

    def get(self, name: str) -> Asset:
        asset = self.load().get(name)
        if asset is None:
            raise NotFoundError(
                f"no playground file {name!r}", hint="the page is at /; its files ship in modeldeck/serving/static/"
            )
        return asset


def _send(request: Request, asset: Asset) -> Response:
    headers = {**_SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    match = request.headers.get("if-none-match", "")
    if asset.etag in (tag.strip().removeprefix("W/") for tag in match.split(",")):
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


async def _find(request: Request, name: str) -> Asset:
    assets: PlaygroundAssets = request.app.state.playground
    if not assets.loaded:
        await run_in_threadpool(assets.load)  # the first request reads and gzips every file
    return assets.get(name)


@router.get("/", include_in_schema=False)
async def page(request: Request) -> Response:
    return _send(request, await _find(request, "index.html"))


@router.get("/playground/{path:path}", include_in_schema=False)
async def asset(path: str, request: Request) -> Response:
    return _send(request, await _find(request, path))


def _histogram(samples: _Samples, name: str, model: str) -> dict[str, Any]:
    # Summed over the other labels (request latency is also labelled by surface).
    buckets: dict[float, float] = {}
    total = count = 0.0
    for labels, value in samples.get(f"{name}_bucket", ()):
        if labels.get("model") == model and labels["le"] != "+Inf":
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    for labels, value in samples.get(f"{name}_sum", ()):
        if labels.get("model") == model:
            total += value
    for labels, value in samples.get(f"{name}_count", ()):
        if labels.get("model") == model:
            count += value
    ordered = sorted(buckets.items())
    return {
        "le": [bound for bound, _ in ordered],
        "cumulative": [int(c) for _, c in ordered],
        "sum": total,
        "count": int(count),
    }


def _by_label(samples: _Samples, name: str, model: str, label: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for labels, value in samples.get(name, ()):
        if labels.get("model") == model:
            counts[labels[label]] = counts.get(labels[label], 0) + int(value)
    return counts


def metrics_view(metrics: ServerMetrics, deck: Deck) -> dict[str, Any]:
    """The server's metrics per served model as plain JSON: counters, gauges and histogram buckets."""
    for name, deployment in deck.deployments.items():
        metrics.queue_depth.labels(name).set(deployment.batcher.depth)
    samples: _Samples = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    models = {}
    for spec in deck.specs:
        model = spec.alias
        depth = [v for labels, v in samples.get("modeldeck_queue_depth", ()) if labels.get("model") == model]
        models[model] = {
            "ready": model in deck.deployments,
            "requests": _by_label(samples, "modeldeck_requests_total", model, "status"),
            "items": int(sum(v for labels, v in samples.get("modeldeck_items_total", ()) if labels["model"] == model)),
            "item_errors": _by_label(samples, "modeldeck_item_errors_total", model, "code"),
            "queue_depth": int(depth[0]) if depth else 0,
            "latency_seconds": _histogram(samples, "modeldeck_request_seconds", model),
            "batch_size": _histogram(samples, "modeldeck_batch_size", model),
            "queue_wait_seconds": _histogram(samples, "modeldeck_queue_wait_seconds", model),
            "flushes": _by_label(samples, "modeldeck_batch_flushes_total", model, "reason"),
            "dropped": _by_label(samples, "modeldeck_dropped_total", model, "reason"),
        }
    return {"time": time.time(), "models": models}


@router.get("/v1/metrics", tags=["ops"])
async def metrics_json(request: Request) -> dict[str, Any]:
    """The Prometheus metrics of ``/metrics`` as JSON, per served model (what the playground's live strip reads).

    Counters are totals since start-up and histograms are cumulative buckets (``le`` upper bounds,
    ``cumulative`` counts, the ``+Inf`` bucket being ``count``): take differences between two reads
    for rates, and interpolate within the buckets for quantiles.
    """
    return metrics_view(request.app.state.metrics, request.app.state.deck)
