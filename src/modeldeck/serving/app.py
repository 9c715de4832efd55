"""The ASGI app: models load in the lifespan, live on ``app.state``, and answer through batchers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from .._version import __version__
from ..config import Settings
from . import documents_routes, gallery_routes, oip, openai_routes, ops_routes, playground, task_routes, tfserving
from .auth import ApiKeys, AuthMiddleware, document_keys
from .deck import Deck, build_model
from .docs import add_docs
from .documents_routes import DocumentsHolder
from .gallery_routes import GalleryHolder
from .handlers import add_error_handlers
from .limits import BodyLimitMiddleware
from .metrics import RequestMetricsMiddleware, ServerMetrics
from .models import deck_workers
from .playground import PlaygroundAssets
from .specs import SpecLoader, parse_specs, task_loader

__all__ = ["create_app"]

log = logging.getLogger("modeldeck.serving")


def create_app(settings: Settings | None = None, *, loader: SpecLoader | None = None) -> FastAPI:
    """Build the server for ``settings.models``; models load in the background after start-up.

    ``loader`` turns a spec into a task in this process (tests use it); by default each model
    runs in a worker process of its own (``MODELDECK_ISOLATION=thread`` keeps it in-process).
    """
    settings = settings or Settings.from_env()
    specs = parse_specs(settings.models)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deck: Deck = app.state.deck
        loading = asyncio.create_task(_load_deck(app, loader, settings))
        try:
            yield
        finally:
            deck.shutting_down = True
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            for deployment in deck.deployments.values():
                await deployment.stop()
            await app.state.gallery.aclose()

    app = FastAPI(
        title="modeldeck",
        version=__version__,
        lifespan=lifespan,
        description="Pre-trained models behind one typed task API, with adaptive micro-batching.",
        docs_url=None,  # served by add_docs from the package's own assets
        redoc_url=None,  # ReDoc has no offline bundle here; /docs covers it
    )
    app.state.settings = settings
    app.state.metrics = ServerMetrics()
    app.state.deck = Deck(
        specs, allow_failed=settings.allow_failed_models, settings=settings, loader=loader, metrics=app.state.metrics
    )
    #: Called when a model fails to load and failures are not allowed; ``serve`` sets it to stop uvicorn.
    app.state.stop_server = None
    app.state.auth = ApiKeys.from_settings(settings)
    app.state.gallery = GalleryHolder(
        settings, functools.partial(build_model, settings=settings, loader=loader), app.state.metrics
    )
    app.state.documents = DocumentsHolder(settings, task_loader(settings, loader))
    app.state.playground = PlaygroundAssets()
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(AuthMiddleware, keys=app.state.auth)  # added last: runs first
    add_error_handlers(app)
    app.include_router(ops_routes.router)
    app.include_router(task_routes.router)
    add_docs(app)
    app.include_router(openai_routes.router)
    app.include_router(oip.router)
    app.include_router(gallery_routes.router)
    app.include_router(documents_routes.router)
    app.include_router(playground.router)
    app.include_router(tfserving.router)
    document_keys(app, app.state.auth)
    return app


async def _load_deck(app: FastAPI, loader: SpecLoader | None, settings: Settings) -> None:
    deck: Deck = app.state.deck
    await run_in_threadpool(deck.choose_variants)  # before the workers are grouped by what they load
    in_process = loader is None and settings.isolation == "process"
    workers = await run_in_threadpool(deck_workers, deck.specs, settings) if in_process else {}
    # Every worker loads at once; a failure is reported below, by the model that meets it.
    await asyncio.gather(*(run_in_threadpool(w.start) for w in set(workers.values())), return_exceptions=True)
    for spec in list(deck.specs):  # a model loaded at run time joins deck.specs
        started = time.perf_counter()
        try:
            deployment = await deck.start(spec, worker=workers.get(spec.alias))
        except Exception as exc:
            deck.failed[spec.alias] = str(exc)
            log.error("model %s failed to load: %s", spec.alias, exc)
            if settings.allow_failed_models:
                continue  # serve the others; /readyz and /v1/models report this one as failed
            log.error("stopping: a served model failed to load (MODELDECK_ALLOW_FAILED_MODELS=1 serves the others)")
            if app.state.stop_server is not None:
                app.state.stop_server()
            return
        info, variant = deployment.model.info, deployment.variant
        log.info(
            "model %s ready (%s@%s%s) in %.1fs",
            spec.alias,
            info.name,
            info.version,
            f", preferred over {variant.preferred_over} by MODELDECK_PREFER_VARIANT" if variant is not None else "",
            time.perf_counter() - started,
        )
