"""The ASGI app: models load in the lifespan, live on ``app.state``, and answer through batchers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..config import Settings
from ..errors import (
    InputDecodeError,
    InputError,
    InvalidTextError,
    ModelDeckError,
    NotFoundError,
    OptionError,
    ServiceError,
)
from .auth import ApiKeys, AuthMiddleware, document_keys
from .deck import Deck, Deployment
from .docs import add_docs
from .documents_routes import add_documents_routes
from .errors import error_body, error_headers, error_responses, status_for
from .gallery_routes import add_gallery_routes
from .limits import BodyLimitMiddleware
from .metrics import CONTENT_TYPE, RequestMetricsMiddleware, ServerMetrics
from .models import LocalModel, ProcessModel, ServedModel, WorkerProcess, deck_workers
from .openai_routes import add_openai_routes
from .playground import add_playground
from .specs import ModelSpec, SpecLoader, load_spec, parse_specs, task_loader

__all__ = ["create_app"]

log = logging.getLogger("modeldeck.serving")


class FastJSONResponse(JSONResponse):
    """JSON through pydantic-core's serializer: several times faster than json.dumps on vectors."""

    def render(self, content: Any) -> bytes:
        return to_json(content)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Any = Field(description="One input, or a list of inputs answered in order.")
    options: dict[str, Any] = Field(default_factory=dict, description="Task options, e.g. {'normalize': true}.")
    timeout_ms: float | None = Field(default=None, gt=0, description="Deadline for this request.")


class PredictResponse(BaseModel):
    model: str
    version: str
    outputs: list[dict[str, Any]] = Field(description="One entry per input: a result, or {'error': {code, message}}.")


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
            gallery = getattr(app.state, "gallery", None)
            if gallery is not None:
                gallery.close()

    app = FastAPI(
        title="modeldeck",
        version=__version__,
        lifespan=lifespan,
        description="Pre-trained models behind one typed task API, with adaptive micro-batching.",
        docs_url=None,  # served by add_docs from the package's own assets
        redoc_url=None,  # ReDoc has no offline bundle here; /docs covers it
    )
    app.state.settings = settings
    app.state.deck = Deck(specs, allow_failed=settings.allow_failed_models)
    #: Called when a model fails to load and failures are not allowed; ``serve`` sets it to stop uvicorn.
    app.state.stop_server = None
    app.state.metrics = ServerMetrics()
    app.state.auth = ApiKeys.from_settings(settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(AuthMiddleware, keys=app.state.auth)  # added last: runs first
    _add_error_handlers(app)
    _add_routes(app)
    add_docs(app)
    document_keys(app, app.state.auth)
    add_openai_routes(app)
    add_gallery_routes(app, task_loader(settings, loader))
    add_documents_routes(app, task_loader(settings, loader))
    add_playground(app)
    return app


def _build_model(
    spec: ModelSpec, settings: Settings, loader: SpecLoader | None, worker: WorkerProcess | None
) -> ServedModel:
    """Load one model where it will run (blocking: called from a worker thread)."""
    if loader is not None:
        return LocalModel(loader(spec))
    if worker is not None:
        model = ProcessModel(spec, settings, worker=worker)
        model.start()
        return model
    return LocalModel(load_spec(spec, settings))


async def _load_deck(app: FastAPI, loader: SpecLoader | None, settings: Settings) -> None:
    deck: Deck = app.state.deck
    in_process = loader is None and settings.isolation == "process"
    workers = await run_in_threadpool(deck_workers, deck.specs, settings) if in_process else {}
    # Every worker loads at once; a failure is reported below, by the model that meets it.
    await asyncio.gather(*(run_in_threadpool(w.start) for w in set(workers.values())), return_exceptions=True)
    for spec in deck.specs:
        started = time.perf_counter()
        try:
            model = await run_in_threadpool(_build_model, spec, settings, loader, workers.get(spec.alias))
            deployment = Deployment(spec.alias, model, settings, app.state.metrics)
            await deployment.start()
        except Exception as exc:
            deck.failed[spec.alias] = str(exc)
            log.error("model %s failed to load: %s", spec.alias, exc)
            if settings.allow_failed_models:
                continue  # serve the others; /readyz and /v1/models report this one as failed
            log.error("stopping: a served model failed to load (MODELDECK_ALLOW_FAILED_MODELS=1 serves the others)")
            if app.state.stop_server is not None:
                app.state.stop_server()
            return
        deck.deployments[spec.alias] = deployment
        log.info("model %s ready (%s) in %.1fs", spec.alias, model.info.name, time.perf_counter() - started)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelDeckError)
    async def _modeldeck_error(request: Request, exc: ModelDeckError) -> Response:
        return FastJSONResponse(error_body(exc), status_code=status_for(exc), headers=error_headers(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own errors (unparseable body, unknown route, wrong method) in our error shape.
        if exc.status_code == 400:
            error: ModelDeckError = InputDecodeError(
                "the body could not be read as UTF-8 JSON", hint="encode the request body as UTF-8 JSON"
            )
        elif exc.status_code == 404:
            error = NotFoundError(f"no route {request.url.path!r}", hint="see /docs for the routes")
        else:
            error = InputError(str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; a path served by several
            # routes (GET and DELETE of one resource) allows the methods of all of them.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return FastJSONResponse(error_body(error), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if any(err.get("type") == "json_invalid" for err in exc.errors()) and _lone_surrogate(await request.body()):
            text_error = InvalidTextError(
                "the body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), which is not text",
                hint="send well-formed Unicode: pair the surrogate or remove it",
            )
            return FastJSONResponse(error_body(text_error), status_code=status_for(text_error))
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            if err.get("type") == "json_invalid":
                problems.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})")
            elif err.get("type") == "extra_forbidden":
                problems.append(f"unknown field {where!r}")
            else:
                problems.append(f"{where}: {err.get('msg')}")
        error = InputDecodeError(
            "; ".join(problems) or "the request body is invalid",
            hint='send JSON like {"inputs": "text" or ["a", "b"], "options": {}}',
        )
        return FastJSONResponse(error_body(error), status_code=400 if "JSON" in error.message else 422)


def _lone_surrogate(body: bytes) -> bool:
    """JSON that the server's parser refused but the standard library reads: its escapes name lone surrogates."""
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    allowed: set[str] = set()
    for route in request.app.router.routes:
        methods = getattr(route, "methods", None)
        if methods and route.matches(request.scope)[0] is not Match.NONE:
            allowed |= methods
    return sorted(allowed)


def _add_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        responses={200: {"description": "every model is loaded (or, with failures allowed, settled)"},
                   503: {"description": "loading, a model failed to load, or shutting down"}},
    )  # fmt: skip
    async def readyz(request: Request) -> Response:
        deck: Deck = request.app.state.deck
        status = deck.status
        body = {
            "status": status,
            "models": {
                spec.alias: "ready"
                if spec.alias in deck.deployments
                else ("failed" if spec.alias in deck.failed else "loading")
                for spec in deck.specs
            },
        }
        return FastJSONResponse(body, status_code=200 if status in ("ready", "degraded") else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
    )
    async def metrics(request: Request) -> Response:
        server_metrics: ServerMetrics = request.app.state.metrics
        for name, deployment in request.app.state.deck.deployments.items():
            server_metrics.queue_depth.labels(name).set(deployment.batcher.depth)
            server_metrics.observe_worker(name, getattr(deployment.model, "pid", None))
        return Response(server_metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", tags=["models"], responses=error_responses(401))
    async def list_models(request: Request) -> dict[str, Any]:
        deck: Deck = request.app.state.deck
        models = []
        for spec in deck.specs:
            deployment = deck.deployments.get(spec.alias)
            entry = deployment.describe() if deployment else {"name": spec.alias, "task": spec.task}
            entry["ready"] = deployment is not None
            models.append(entry)
        # The same list in OpenAI's shape ("object": "list", "data"), so OpenAI clients can list models.
        data = [
            {"id": m["name"], "object": "model", "created": getattr(deck.deployments.get(m["name"]), "created", 0),
             "owned_by": "modeldeck"}
            for m in models
        ]  # fmt: skip
        return {"models": models, "object": "list", "data": data}

    @app.get("/v1/models/{name}", tags=["models"], responses=error_responses(401, 404, 422, 503))
    async def show_model(name: str, request: Request) -> Response:
        return FastJSONResponse(request.app.state.deck.get(name).detail())

    @app.post(
        "/v1/models/{name}/predict",
        tags=["models"],
        response_model=PredictResponse,
        description=_PREDICT_DESCRIPTION,
        openapi_extra=_PREDICT_OPENAPI,
        responses={
            200: {"content": {"image/png": {}}, "description": "JSON outputs, or with render=png the image"},
            **error_responses(400, 401, 404, 413, 422, 429, 500, 503, 504),
        },
    )
    async def predict(
        name: str,
        request: Request,
        render: Literal["png"] | None = Query(None, description="png: answer one image drawn with its results"),
    ) -> Response:
        state = request.app.state
        deployment: Deployment = state.deck.get(name)
        request.state.metrics_model = deployment.name  # RequestMetricsMiddleware labels the response with it
        body, form_render = await _read_predict_body(request, deployment.input_kind)
        render = render or form_render
        if render is not None:
            _check_render(render, deployment, body)
        response = await _predict(deployment, body, state.settings)
        if render is not None:
            one = body.inputs[0] if isinstance(body.inputs, list) else body.inputs
            response = await _render(response, one, state.settings)
        return response


async def _predict(deployment: Deployment, body: PredictRequest, settings: Settings) -> Response:
    model = deployment.model
    single = not isinstance(body.inputs, list)
    inputs = [body.inputs] if single else body.inputs
    if not inputs:
        raise InputError("inputs is an empty list", hint="send at least one input")
    model.check_options(body.options)
    timeout = body.timeout_ms / 1000.0 if body.timeout_ms else settings.request_timeout_s
    answers = await deployment.answer(inputs, body.options, timeout)
    parts: list[bytes] = []
    for answer in answers:
        if isinstance(answer, bytes):
            parts.append(answer)
            continue
        if single or isinstance(answer, (ServiceError, OptionError)):
            raise answer  # a lone input, overload, deadline, shutdown or bad options: the request's status
        deployment.metrics.item_errors.labels(deployment.name, answer.code).inc()
        parts.append(to_json(error_body(answer)))
    head = b'{"model":%s,"version":%s,"outputs":[' % (to_json(deployment.name), to_json(model.info.version))
    return Response(head + b",".join(parts) + b"]}", media_type="application/json")


# --- predict request bodies: JSON, multipart uploads, raw image bytes ---------------------------------

_FILE_FIELDS = ("image", "images", "file")
_FORM_HINT = "send files in the field 'image' (repeatable), with optional 'options' (a JSON object) and 'timeout_ms'"
_PREDICT_DESCRIPTION = """Run the model on one input or a list, answered in order.

The body is JSON (`{"inputs": X or [X, ...], "options": {...}, "timeout_ms": 500}`; images as base64
strings or data URLs), or `multipart/form-data` with one or more files in the field `image` (also
`images` or `file`), an optional `options` field holding a JSON object and an optional `timeout_ms`:
one file is answered like a single input, several like a list (a pair task such as face-verify takes
the files two at a time). A body of type `image/*` is one image.
With `render=png` (query or form field) a single image is answered as a PNG with its results drawn."""
_PREDICT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "options": {"type": "string", "description": "task options as a JSON object"},
                        "timeout_ms": {"type": "number", "exclusiveMinimum": 0},
                        "render": {"type": "string", "enum": ["png"]},
                    },
                    "required": ["image"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _validation_error(exc: ValidationError) -> RequestValidationError:
    # The same shape FastAPI gives a bad JSON body, without holding on to the body itself.
    return RequestValidationError([{k: v for k, v in err.items() if k != "input"} for err in exc.errors()])


async def _read_predict_body(request: Request, input_kind: str = "image") -> tuple[PredictRequest, str | None]:
    """The request as ``PredictRequest`` (files become bytes inputs), and a ``render`` form field."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request, input_kind)
    if media.startswith("image/") or media == "application/octet-stream":
        return PredictRequest(inputs=await request.body()), None
    try:
        return PredictRequest.model_validate_json(await request.body()), None
    except ValidationError as exc:
        raise _validation_error(exc) from None


async def _read_form(request: Request, input_kind: str) -> tuple[PredictRequest, str | None]:
    settings: Settings = request.app.state.settings
    try:
        # Files spool to disk past 1 MB; BodyLimitMiddleware still caps the whole stream.
        form = await request.form(max_files=settings.max_queue, max_fields=16)
    except StarletteHTTPException as exc:
        raise InputDecodeError(f"the multipart body could not be read ({exc.detail})", hint=_FORM_HINT) from None
    inputs: list[Any] = []
    fields: dict[str, Any] = {}
    try:
        for key, value in form.multi_items():
            if key in _FILE_FIELDS:
                inputs.append(value if isinstance(value, str) else await value.read())
            elif key in ("options", "timeout_ms", "render") and isinstance(value, str) and key not in fields:
                fields[key] = value
            else:
                raise InputDecodeError(f"unexpected form field {key!r}", hint=_FORM_HINT)
    finally:
        await form.close()
    if not inputs:
        raise InputError("the form holds no image", hint=_FORM_HINT)
    if input_kind == "image-pair":
        # A pair task (face-verify) reads the files two at a time: a, b[, a, b ...].
        if len(inputs) % 2:
            raise InputError(
                f"the form holds {len(inputs)} images; this model compares pairs",
                hint="send the images of each pair one after the other, an even number in all",
            )
        inputs = [[inputs[i], inputs[i + 1]] for i in range(0, len(inputs), 2)]
    options: Any = {}
    if fields.get("options", "").strip():
        try:
            options = json.loads(fields["options"])
        except json.JSONDecodeError as exc:
            raise InputDecodeError(f"the 'options' field is not valid JSON ({exc})", hint=_FORM_HINT) from None
    # A lone pair stays in a list: a bare [a, b] would read as two inputs.
    single = len(inputs) == 1 and input_kind != "image-pair"
    body = {"inputs": inputs[0] if single else inputs, "options": options}
    if fields.get("timeout_ms", "").strip():
        body["timeout_ms"] = fields["timeout_ms"]
    render = fields.get("render") or None
    if render not in (None, "png"):
        raise OptionError(f"render must be 'png', got {render!r}", hint="use render=png")
    try:
        return PredictRequest.model_validate(body), render
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _check_render(render: str, deployment: Deployment, body: PredictRequest) -> None:
    task = deployment.model.task
    if deployment.input_kind != "image":
        raise OptionError(
            f"render={render} draws image results, but model {deployment.name!r} serves the {task} task",
            hint="leave out render",
        )
    if isinstance(body.inputs, list) and len(body.inputs) != 1:
        raise OptionError(f"render={render} draws one image, got {len(body.inputs)} inputs", hint="send one image")


async def _render(response: Response, raw: Any, settings: Settings) -> Response:
    """The one input image drawn with its result, as PNG (drawing runs off the event loop)."""
    result = json.loads(bytes(response.body))["outputs"][0]
    png = await run_in_threadpool(_draw_png, raw, result, settings.max_image_pixels)
    return Response(png, media_type="image/png")


def _draw_png(raw: Any, result: dict[str, Any], max_pixels: int) -> bytes:
    import io

    from .._draw import draw
    from ..images import load_image

    # Decoded here, never read as a path: a string from a client is base64 (the model accepted it already).
    out = io.BytesIO()
    draw(load_image(raw, max_pixels=max_pixels), result).save(out, format="PNG")
    return out.getvalue()
