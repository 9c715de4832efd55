"""The task API: ``GET /v1/models``, ``GET /v1/models/{name}`` and ``POST /v1/models/{name}/predict``."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Settings
from ..errors import InputDecodeError, InputError, OptionError, ServiceError
from .deck import Deck, Deployment
from .errors import error_body, error_responses
from .handlers import FastJSONResponse
from .metrics import surface_router
from .tfserving import model_version_status

__all__ = ["PredictRequest", "PredictResponse", "router"]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: Any = Field(description="One input, or a list of inputs answered in order.")
    options: dict[str, Any] = Field(default_factory=dict, description="Task options, e.g. {'normalize': true}.")
    timeout_ms: float | None = Field(default=None, gt=0, description="Deadline for this request.")


class PredictResponse(BaseModel):
    model: str
    version: str
    outputs: list[dict[str, Any]] = Field(description="One entry per input: a result, or {'error': {code, message}}.")


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


router = surface_router("task", tags=["models"])


@router.get("/v1/models", responses=error_responses(401))
async def list_models(request: Request) -> dict[str, Any]:
    deck: Deck = request.app.state.deck
    models = []
    for spec in deck.specs:
        deployment = deck.deployments.get(spec.alias)
        entry = deployment.describe() if deployment else {"name": spec.alias, "task": spec.task}
        if deployment is None and spec.alias in deck.variants:  # chosen before loading, shown while it loads
            entry["variant"] = deck.variants[spec.alias].to_dict()
        entry["ready"] = deployment is not None
        models.append(entry)
    # The same list in OpenAI's shape ("object": "list", "data"), so OpenAI clients can list models.
    data = [
        {"id": m["name"], "object": "model", "created": getattr(deck.deployments.get(m["name"]), "created", 0),
         "owned_by": "modeldeck"}
        for m in models
    ]  # fmt: skip
    return {"models": models, "object": "list", "data": data}


@router.get("/v1/models/{name}", responses=error_responses(401, 404, 422, 503))
async def show_model(name: str, request: Request) -> Response:
    deployment = request.app.state.deck.get(name)
    # TF Serving's status key too, so its clients read this route unchanged (docs/serving.md).
    return FastJSONResponse({**deployment.detail(), "model_version_status": model_version_status(deployment)})


@router.post(
    "/v1/models/{name}/predict",
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
