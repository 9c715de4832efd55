"""Operations: ``/healthz``, ``/readyz`` and the Prometheus ``/metrics``."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from .deck import Deck
from .handlers import FastJSONResponse
from .metrics import CONTENT_TYPE, ServerMetrics, surface_router

__all__ = ["router"]

router = surface_router("ops", tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={200: {"description": "every model is loaded (or, with failures allowed, settled)"},
               503: {"description": "loading, a model failed to load, or shutting down"}},
)  # fmt: skip
async def readyz(request: Request) -> Response:
    deck: Deck = request.app.state.deck
    status = deck.status
    body = {
        "status": status,
        "models": {spec.alias: deck.state(spec.alias) for spec in deck.specs},
    }
    return FastJSONResponse(body, status_code=200 if status in ("ready", "degraded") else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    server_metrics: ServerMetrics = request.app.state.metrics
    for name, deployment in request.app.state.deck.deployments.items():
        server_metrics.queue_depth.labels(name).set(deployment.batcher.depth)
        server_metrics.observe_worker(name, getattr(deployment.model, "pid", None))
    return Response(server_metrics.render(), media_type=CONTENT_TYPE)
