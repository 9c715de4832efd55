"""Prometheus metrics of one server, kept on a registry of its own (never the global one)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ModelDeckError

__all__ = [
    "CONTENT_TYPE",
    "BatchMetrics",
    "RequestMetricsMiddleware",
    "ServerMetrics",
    "SurfaceRoute",
    "surface_router",
]

_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """Every metric the server exports; one instance per app, on ``app.state``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        r = self.registry
        # Every HTTP request, by served model ("" where none was named), status and surface.
        self.requests = Counter(
            "modeldeck_requests",
            "HTTP requests by served model, status code and surface",
            ["model", "status", "surface"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "modeldeck_request_seconds",
            "HTTP request time to the response's first byte, by served model and surface",
            ["model", "surface"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter("modeldeck_items", "Inputs received by model", ["model"], registry=r)
        self.item_errors = Counter(
            "modeldeck_item_errors", "Inputs answered with an error, by error code", ["model", "code"], registry=r
        )
        self.batch_size = Histogram(
            "modeldeck_batch_size", "Items per model batch", ["model"], buckets=_BATCH_SIZE_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "modeldeck_batch_seconds", "Model time per batch", ["model"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue_wait = Histogram(
            "modeldeck_queue_wait_seconds",
            "Time from enqueue to batch start",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.flushes = Counter("modeldeck_batch_flushes", "Batches by flush reason", ["model", "reason"], registry=r)
        self.dropped = Counter(
            "modeldeck_dropped",
            "Requests dropped before the model (expired, cancelled)",
            ["model", "reason"],
            registry=r,
        )
        self.queue_depth = Gauge("modeldeck_queue_depth", "Items waiting per model", ["model"], registry=r)
        self.model_ready = Gauge("modeldeck_model_ready", "1 once a model is loaded", ["model"], registry=r)
        self.worker_rss = Gauge(
            "modeldeck_worker_resident_memory_bytes",
            "Resident memory of each model's worker process",
            ["model"],
            registry=r,
        )

    def observe_worker(self, model: str, pid: int | None) -> None:
        """Refresh a worker's RSS (read at scrape time; Linux /proc only, skipped elsewhere)."""
        if pid is None:
            return
        try:
            with open(f"/proc/{pid}/statm") as statm:
                pages = int(statm.read().split()[1])
        except (OSError, ValueError, IndexError):
            return
        self.worker_rss.labels(model).set(pages * os.sysconf("SC_PAGE_SIZE"))

    def for_model(self, model: str) -> BatchMetrics:
        return BatchMetrics(self, model)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class BatchMetrics:
    """The batcher's observer for one model, writing into the server's metrics."""

    metrics: ServerMetrics
    model: str

    def batch_done(self, size: int, reason: str, seconds: float) -> None:
        self.metrics.batch_size.labels(self.model).observe(size)
        self.metrics.batch_seconds.labels(self.model).observe(seconds)
        self.metrics.flushes.labels(self.model, reason).inc()

    def queue_wait(self, seconds: float) -> None:
        self.metrics.queue_wait.labels(self.model).observe(seconds)

    def dropped(self, reason: str) -> None:
        self.metrics.dropped.labels(self.model, reason).inc()

    def failed(self, count: int) -> None:
        # Item errors are counted with their code where the server maps them.
        pass


class SurfaceRoute(APIRoute):
    """A route of one HTTP surface (task API, OpenAI, ...): its requests are counted under ``surface``,
    and with ``error_response`` its errors are answered in the surface's own shape (a protocol's)
    instead of by the app's handlers (the task API's shape)."""

    surface: ClassVar[str] = "other"
    error_response: ClassVar[Callable[[ModelDeckError], Response] | None] = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        answer = type(self).error_response
        if answer is None:
            return handler

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ModelDeckError as exc:
                return answer(exc)

        return handle


def surface_router(
    surface: str, *, error_response: Callable[[ModelDeckError], Response] | None = None, **options: Any
) -> APIRouter:
    """An ``APIRouter`` whose routes count under ``surface`` in the request metrics and, with
    ``error_response``, answer their errors in that shape.

    The label comes from the route that answered (Starlette keeps it in ``scope["route"]``), so a
    surface is one router and no table of paths has to follow the routes.
    """
    attributes: dict[str, Any] = {"surface": surface}
    if error_response is not None:
        attributes["error_response"] = staticmethod(error_response)
    route_class = type(f"{surface.title()}Route", (SurfaceRoute,), attributes)
    return APIRouter(route_class=route_class, **options)


class RequestMetricsMiddleware:
    """Counts every request once, under the status its client saw, and its time to first byte.

    The surface is the answering route's (``SurfaceRoute``; ``other`` for an unknown path, the
    OpenAPI document and the docs page). A route that serves a model names it in
    ``request.state.metrics_model`` once the name is resolved; whatever answers afterwards (a
    handler, an error handler, a validation error) is counted under it, so a malformed body is a
    400 in the metrics as it was on the wire. Requests that name no model count under ``model=""``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start" and status is None:
                status = int(message["status"])
                self._record(scope, status, started)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BaseException:
            if status is None:
                self._record(scope, 500, started)  # the server's error middleware answers it
            raise

    @staticmethod
    def _record(scope: Scope, status: int, started: float) -> None:
        model = scope.get("state", {}).get("metrics_model") or ""
        route = scope.get("route")
        surface = route.surface if isinstance(route, SurfaceRoute) else SurfaceRoute.surface
        metrics: ServerMetrics = scope["app"].state.metrics
        metrics.requests.labels(model, str(status), surface).inc()
        metrics.request_seconds.labels(model, surface).observe(time.perf_counter() - started)
