"""TensorFlow Serving's REST API on modeldeck's port: version status, metadata, predict, classify and regress.

Follows ``tensorflow_serving/g3doc/api_rest.md`` and the server's own JSON mapping: row
(``instances`` -> ``predictions``) and columnar (``inputs`` -> ``outputs``) predict, ``{"b64": ...}``
for binary strings in requests and for outputs whose name ends in ``_bytes``, classify and regress
on a SavedModel signature that declares them, and every error as ``{"error": "message"}``.

modeldeck serves one version of each model, through one signature: a SavedModel's own
(``serving_default`` unless its ``modeldeck.json`` names another), or for a task model a
synthetic ``serving_default`` that takes texts or images. Its TF Serving version number is the
model's version where that is a whole number, else 1. Every inference goes through
``Deployment.answer``, so these requests are batched with the task API's.

Two extensions of the request body, neither TF Serving's: ``options`` (the task options, as on
``POST /v1/models/{name}/predict``) and ``timeout_ms``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..errors import (
    InferenceError,
    InputDecodeError,
    InputError,
    ModelDeckError,
    NotFoundError,
    OptionError,
    RaggedTensorError,
    TensorNameError,
)
from ..runtimes.tensors import STRING
from ..tasks.tensor_results import BYTES
from ._tfs_json import ExampleEncoder, decoded, is_b64
from .deck import Deck, Deployment
from .errors import error_headers, error_responses, status_for
from .metrics import surface_router

__all__ = ["model_version_status", "router"]


PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
VERBS = ("predict", "classify", "regress")
_BODY_HINT = 'send {"instances": [...]} (row format) or {"inputs": ...} (columnar format)'
_DTYPES = {
    "float16": "DT_HALF", "float32": "DT_FLOAT", "float64": "DT_DOUBLE", "bool": "DT_BOOL", STRING: "DT_STRING",
    "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64",
    "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
}  # fmt: skip


class TFServingResponse(JSONResponse):
    """JSON with ``NaN`` and ``Infinity`` tokens for non-finite floats, as TF Serving writes them."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")


class TFServingError(JSONResponse):
    """TF Serving's error shape, ``{"error": "message"}``; an invalid argument is 400 as TF Serving answers it."""

    def __init__(self, exc: ModelDeckError) -> None:
        status = status_for(exc)
        super().__init__({"error": str(exc)}, status_code=400 if status == 422 else status, headers=error_headers(exc))


router = surface_router("tfserving", error_response=TFServingError, tags=["tfserving"])


# --- the served model as TF Serving sees it ---------------------------------------------------------


def tf_version(deployment: Deployment) -> int:
    """TF Serving numbers versions; modeldeck's is a string (a digest for a local folder)."""
    version = deployment.model.info.version
    return int(version) if version.isdigit() else 1


def model_version_status(deployment: Deployment) -> list[dict[str, Any]]:
    """``GetModelStatusResponse.model_version_status`` for the one version modeldeck serves."""
    return [
        {
            "version": str(tf_version(deployment)),
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
    ]


def _served(request: Request, name: str, version: str | None = None, label: str | None = None) -> Deployment:
    deck: Deck = request.app.state.deck
    deployment = deck.get(name)
    request.state.metrics_model = deployment.name  # RequestMetricsMiddleware labels the response with it
    served = tf_version(deployment)
    if version is not None and version != str(served) and version != deployment.model.info.version:
        raise NotFoundError(
            f"model {name!r} has no version {version!r}",
            hint=f"modeldeck serves one version of each model: {served}, or leave out /versions/",
        )
    if label is not None:
        raise NotFoundError(
            f"model {name!r} has no version label {label!r}",
            hint="modeldeck serves one version of each model, with no labels: leave out /labels/",
        )
    return deployment


def _signature(deployment: Deployment) -> tuple[str, dict[str, Any]]:
    """The served signature's name and ``SignatureDef`` JSON (inputs, outputs, method_name)."""
    described = deployment.model.describe()
    runtime = described.get("runtime") or {}
    if deployment.model.task == "tensor" and runtime.get("signature_def"):
        return str(runtime["signature"]), dict(runtime["signature_def"])
    if deployment.model.task == "tensor":
        sig = described.get("signature") or {}
        return DEFAULT_SIGNATURE, {
            "inputs": {spec["name"]: _tensor_info(spec) for spec in sig.get("inputs", ())},
            "outputs": {spec["name"]: _tensor_info(spec) for spec in sig.get("outputs", ())},
            "method_name": PREDICT,
        }
    # A task model: a batch of texts or encoded images in, one result per item out.
    out = {"name": "outputs", "dtype": "float32", "shape": [None, None]} if deployment.model.task == "embed" else None
    return DEFAULT_SIGNATURE, {
        "inputs": {"inputs": _tensor_info({"name": "inputs", "dtype": STRING, "shape": [None]})},
        "outputs": {"outputs": _tensor_info(out or {"name": "outputs", "dtype": STRING, "shape": [None]})},
        "method_name": PREDICT,
    }


def _tensor_info(spec: Mapping[str, Any]) -> dict[str, Any]:
    shape = spec.get("shape")
    dims = [{"size": str(-1 if d is None else d), "name": ""} for d in shape or ()]
    return {
        "dtype": _DTYPES.get(str(spec.get("dtype")), "DT_INVALID"),
        "tensor_shape": {"dim": dims, "unknown_rank": shape is None},
        "name": str(spec["name"]),
    }


def _check_signature(deployment: Deployment, body: Mapping[str, Any], method: str) -> dict[str, Any]:
    name, signature = _signature(deployment)
    asked = body.get("signature_name")
    if asked not in (None, "", name):
        raise InputError(
            f"model {deployment.name!r} has no signature {asked!r}: modeldeck serves its signature {name!r} only",
            hint=f"leave out signature_name or send {name!r}; serve another signature as a model of its own "
            '("signature" in the SavedModel\'s modeldeck.json)',
        )
    if method != PREDICT and signature.get("method_name") != method:
        verb = method.rpartition("/")[2]
        raise InputError(
            f"signature {name!r} of model {deployment.name!r} is a {signature.get('method_name') or 'plain'!r} "
            f"signature, not a {verb} one",
            hint=f"call :predict, or serve a signature exported with method name {method!r}",
        )
    return signature


# --- routes -----------------------------------------------------------------------------------------


async def _status(request: Request, name: str, version: str | None, label: str | None) -> Response:
    return TFServingResponse({"model_version_status": model_version_status(_served(request, name, version, label))})


async def _metadata(request: Request, name: str, version: str | None, label: str | None) -> Response:
    deployment = _served(request, name, version, label)
    signature_name, signature = _signature(deployment)
    return TFServingResponse(
        {
            "model_spec": {"name": deployment.name, "signature_name": "", "version": str(tf_version(deployment))},
            "metadata": {"signature_def": {"signature_def": {signature_name: signature}}},
        }
    )


def _docs(summary: str, ok: str, *statuses: int, body: bool = False) -> dict[str, Any]:
    error = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
    texts = {
        400: "malformed JSON, or inputs that do not fit the signature",
        404: "no such model, version or label",
        413: "the body or an input is over its limit",
        429: "overloaded (see Retry-After)",
        500: "the model failed",
        503: "the model is loading, failed to load, or the server is shutting down",
        504: "the deadline passed",
    }
    # 413 comes in TF Serving's shape from here, or in modeldeck's from the body-size middleware.
    either = {"type": "object", "required": ["error"]}
    docs: dict[str, Any] = {
        "summary": summary,
        "responses": {
            200: {"description": ok, "content": {"application/json": {"schema": {"type": "object"}}}},
            **{
                s: {"description": texts[s], "content": {"application/json": {"schema": either if s == 413 else error}}}
                for s in statuses
            },
            **error_responses(401),  # the API-key middleware answers before these routes, in modeldeck's shape
        },
    }
    if body:
        docs["openapi_extra"] = {
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
        }
    return docs


_GET = (400, 404, 503)
_POST = (400, 404, 413, 429, 500, 503, 504)


@router.get("/v1/models/{name}/versions/{version}", **_docs("TF Serving: version status", "status", *_GET))
async def version_status(request: Request, name: str, version: str) -> Response:
    return await _status(request, name, version, None)


@router.get("/v1/models/{name}/labels/{label}", **_docs("TF Serving: label status", "status", *_GET))
async def label_status(request: Request, name: str, label: str) -> Response:
    return await _status(request, name, None, label)


@router.get("/v1/models/{name}/metadata", **_docs("TF Serving: model metadata", "GetModelMetadataResponse", *_GET))
async def metadata(request: Request, name: str) -> Response:
    return await _metadata(request, name, None, None)


@router.get(
    "/v1/models/{name}/versions/{version}/metadata",
    **_docs("TF Serving: metadata of a version", "GetModelMetadataResponse", *_GET),
)
async def version_metadata(request: Request, name: str, version: str) -> Response:
    return await _metadata(request, name, version, None)


@router.get(
    "/v1/models/{name}/labels/{label}/metadata",
    **_docs("TF Serving: metadata of a label", "GetModelMetadataResponse", *_GET),
)
async def label_metadata(request: Request, name: str, label: str) -> Response:
    return await _metadata(request, name, None, label)


_VERB_OK = "predictions / outputs (predict) or results (classify, regress)"
_VERB_TEXT = "ends in :predict, :classify or :regress (TF Serving's verb)"


# TF Serving puts the verb after a colon in the last segment (``/v1/models/half:predict``). Starlette
# would match modeldeck's ``GET /v1/models/{name}`` for that path too, so the verbs are POSTs to the
# same templates as the GET routes, and the last segment is split here: ``Allow`` stays true.
@router.post(
    "/v1/models/{name}",
    **_docs(f"TF Serving: predict, classify or regress; name {_VERB_TEXT}", _VERB_OK, *_POST, body=True),
)
async def infer(request: Request, name: str) -> Response:
    return await _infer(request, name, None, None)


@router.post(
    "/v1/models/{name}/versions/{version}",
    **_docs(
        f"TF Serving: predict, classify or regress on a version; version {_VERB_TEXT}", _VERB_OK, *_POST, body=True
    ),
)
async def version_infer(request: Request, name: str, version: str) -> Response:
    return await _infer(request, name, version, None)


@router.post(
    "/v1/models/{name}/labels/{label}",
    **_docs(f"TF Serving: predict, classify or regress on a label; label {_VERB_TEXT}", _VERB_OK, *_POST, body=True),
)
async def label_infer(request: Request, name: str, label: str) -> Response:
    return await _infer(request, name, None, label)


# --- predict ----------------------------------------------------------------------------------------


def _split_verb(segment: str) -> tuple[str, str]:
    head, colon, verb = segment.rpartition(":")
    if not colon or verb not in VERBS:
        raise NotFoundError(
            f"no TF Serving method in {segment!r}",
            hint="POST to /v1/models/NAME:predict (or :classify, :regress); modeldeck's own is /v1/models/NAME/predict",
        )
    return head, verb


async def _infer(request: Request, name: str, version: str | None, label: str | None) -> Response:
    if label is not None:
        label, verb = _split_verb(label)
    elif version is not None:
        version, verb = _split_verb(version)
    else:
        name, verb = _split_verb(name)
    deployment = _served(request, name, version, label)
    body = await _read_body(request)
    if verb == "predict":
        return await _predict(request, deployment, body)
    return await _classify_or_regress(request, deployment, body, CLASSIFY if verb == "classify" else REGRESS)


async def _read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        # Python's parser takes NaN and Infinity, which TF Serving's JSON allows too.
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputDecodeError(f"the body is not valid JSON ({exc})", hint=_BODY_HINT) from None
    if not isinstance(body, dict):
        raise InputDecodeError(f"the body must be a JSON object, got {type(body).__name__}", hint=_BODY_HINT)
    return body


def _request_options(body: Mapping[str, Any], deployment: Deployment, keys: Sequence[str]) -> tuple[dict, float]:
    unknown = sorted(set(body) - {*keys, "signature_name", "options", "timeout_ms"})
    if unknown:
        raise InputDecodeError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in the request body",
            hint=f"TF Serving's keys here: {', '.join(keys)}, signature_name; modeldeck's: options, timeout_ms",
        )
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise OptionError(f"options must be an object, got {type(options).__name__}", hint='e.g. "options": {}')
    deployment.model.check_options(options)
    timeout_ms = body.get("timeout_ms")
    if timeout_ms is None:
        return options, float(deployment.settings.request_timeout_s)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) or not timeout_ms > 0:
        raise OptionError(f"timeout_ms must be a number > 0, got {timeout_ms!r}", hint='e.g. "timeout_ms": 500')
    return options, float(timeout_ms) / 1000.0


async def _run(deployment: Deployment, items: list[Any], options: dict[str, Any], timeout: float) -> list[Any]:
    """The items through the shared submit path, their results decoded; TF Serving fails a request as a whole."""
    if not items:
        raise InputError("the request holds no instances", hint="send at least one")
    results = []
    for index, answer in enumerate(await deployment.answer(items, options, timeout)):
        if isinstance(answer, ModelDeckError):
            if len(items) > 1 and isinstance(answer, InputError):
                # A copy that names the instance (the answer may be shared by items with the same options).
                raise type(answer)(f"instance {index}: {answer.message}", hint=answer.hint, fix=answer.fix)
            raise answer
        results.append(json.loads(answer))
    return results


async def _predict(request: Request, deployment: Deployment, body: dict[str, Any]) -> Response:
    signature = _check_signature(deployment, body, PREDICT)
    options, timeout = _request_options(body, deployment, ("instances", "inputs"))
    row = "instances" in body
    if row == ("inputs" in body):
        problem = (
            "send either 'instances' or 'inputs', not both" if row else "the body has neither 'instances' nor 'inputs'"
        )
        raise InputDecodeError(problem, hint=_BODY_HINT)
    names = list(signature.get("inputs") or {})
    if deployment.model.task == "tensor":
        items: list[Any] = _rows(body["instances"], names) if row else _columns(body["inputs"], names)
    else:
        items = _task_items(body["instances"] if row else body["inputs"], "instances" if row else "inputs")
    results = await _run(deployment, items, options, timeout)
    if deployment.model.task == "tensor":
        examples = [_tensor_outputs(result) for result in results]
    else:
        examples = [_task_output(deployment.model.task, result) for result in results]
    return TFServingResponse({"predictions": _as_rows(examples)} if row else {"outputs": _as_columns(examples)})


def _rows(instances: Any, names: list[str]) -> list[dict[str, Any]]:
    if not isinstance(instances, list):
        raise InputDecodeError(f"instances must be a list, got {type(instances).__name__}", hint=_BODY_HINT)
    rows = []
    for index, instance in enumerate(instances):
        if _is_named(instance):
            rows.append({key: _tensor_value(value, key) for key, value in instance.items()})
        elif len(names) == 1:
            rows.append({names[0]: _tensor_value(instance, names[0])})
        else:
            raise TensorNameError(
                f"instance {index} is not an object, and the model takes {len(names)} inputs",
                hint=f"send each instance as an object of input name -> value for: {', '.join(names)}",
            )
    return rows


def _columns(inputs: Any, names: list[str]) -> list[dict[str, Any]]:
    if not _is_named(inputs):
        if len(names) != 1:
            raise TensorNameError(
                f"inputs is not an object, and the model takes {len(names)} inputs",
                hint=f"send inputs as an object of input name -> batch of values for: {', '.join(names)}",
            )
        inputs = {names[0]: inputs}
    sizes = {}
    for key, value in inputs.items():
        if not isinstance(value, list):
            raise InputError(
                f"input {key!r} is not a list: modeldeck splits columnar inputs along their first dimension",
                hint="give every input the batch dimension first, one entry per example",
            )
        sizes[key] = len(value)
    if len(set(sizes.values())) > 1:
        raise InputError(
            f"the inputs have different first dimensions ({sizes}): modeldeck runs a batch of whole examples",
            hint="give every input the same batch size, the number of examples",
        )
    count = next(iter(sizes.values()), 0)
    return [{key: _tensor_value(value[i], key) for key, value in inputs.items()} for i in range(count)]


def _task_items(values: Any, key: str) -> list[Any]:
    if not isinstance(values, list):
        raise InputDecodeError(f"{key} must be a list of texts or {{'b64': ...}} images", hint=_BODY_HINT)
    return [decoded(value) for value in values]


def _is_named(value: Any) -> bool:
    return isinstance(value, dict) and not is_b64(value)


def _tensor_value(value: Any, name: str) -> Any:
    """A tensor input's JSON value; one holding bytes becomes an object array (NumPy's bytes type would
    drop trailing zero bytes)."""
    value = decoded(value)
    if not _holds_bytes(value):
        return value
    try:
        return np.array(value, dtype=object)
    except ValueError:
        raise RaggedTensorError(
            f"input {name!r} is a ragged nested list (rows of different lengths)",
            hint="every row at the same depth must have the same length",
        ) from None


def _holds_bytes(value: Any) -> bool:
    if isinstance(value, bytes):
        return True
    return isinstance(value, list) and any(_holds_bytes(v) for v in value)


def _tensor_outputs(result: Mapping[str, Any]) -> dict[str, Any]:
    """A ``TensorResult.to_dict()`` as TF Serving writes tensors: nested lists, ``_bytes`` outputs as b64."""
    outputs = {}
    for entry in result["outputs"]:
        name = str(entry["name"])
        if entry["dtype"] == BYTES:  # already base64 on the wire from the worker
            flat: Any = [{"b64": v} for v in entry.get("strings") or ()]
        else:
            flat = entry.get("strings") if entry["dtype"] == STRING else entry.get("data")
        outputs[name] = np.array(flat or [], dtype=object).reshape(entry["shape"]).tolist()
    return outputs


def _task_output(task: str, result: dict[str, Any]) -> dict[str, Any]:
    # embed answers the vector itself, as a SavedModel encoder on TF Serving does.
    return {"outputs": result["vector"] if task == "embed" and "vector" in result else result}


def _as_rows(examples: list[dict[str, Any]]) -> list[Any]:
    """TF Serving's ``predictions``: each example's one output bare, or an object of several."""
    return [next(iter(e.values())) if len(e) == 1 else e for e in examples]


def _as_columns(examples: list[dict[str, Any]]) -> Any:
    """TF Serving's ``outputs``: one output's batch bare, or an object of output name -> batch."""
    names = list(examples[0]) if examples else []
    columns = {name: [e[name] for e in examples] for name in names}
    return columns[names[0]] if len(names) == 1 else columns


# --- classify and regress ---------------------------------------------------------------------------


async def _classify_or_regress(request: Request, deployment: Deployment, body: dict[str, Any], method: str) -> Response:
    signature = _check_signature(deployment, body, method)
    options, timeout = _request_options(body, deployment, ("examples", "context"))
    context = body.get("context") or {}
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise InputDecodeError("'examples' must be a non-empty list of objects", hint='send {"examples": [{...}]}')
    if not isinstance(context, dict):
        raise InputDecodeError(f"'context' must be an object, got {type(context).__name__}")
    names = list(signature.get("inputs") or {})
    if len(names) != 1:
        raise InputError(f"the {method} signature takes {len(names)} inputs, not one of serialized examples")
    input_name = names[0]
    encode: ExampleEncoder | None = getattr(request.app.state, "tf_example_encoder", None)
    if encode is None:  # built once per app: declaring the message types costs about a millisecond
        encode = request.app.state.tf_example_encoder = ExampleEncoder()
    items = []
    for index, example in enumerate(examples):
        if not isinstance(example, dict):
            raise InputDecodeError(f"example {index} must be an object, got {type(example).__name__}")
        shared = sorted(set(example) & set(context))
        if shared:
            raise InputError(
                f"example {index} repeats the context's feature(s) {', '.join(map(repr, shared))}",
                hint="a feature of the context must not appear in the examples",
            )
        serialized = encode({**context, **example}, f"example {index}")
        items.append({input_name: np.array(serialized, dtype=object)})
    results = [_tensor_outputs(result) for result in await _run(deployment, items, options, timeout)]
    if method == REGRESS:
        return TFServingResponse({"results": [_regression(result) for result in results]})
    return TFServingResponse({"results": [_classes(result) for result in results]})


def _regression(outputs: Mapping[str, Any]) -> float:
    value = outputs.get("outputs", next(iter(outputs.values()), None))
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, float)):
        raise InferenceError(f"the regress signature answered {value!r}, not one number per example")
    return float(value)


def _classes(outputs: Mapping[str, Any]) -> list[list[Any]]:
    scores, labels = outputs.get("scores"), outputs.get("classes")
    if scores is None and labels is None:
        raise InferenceError("the classify signature answered neither 'classes' nor 'scores'")
    count = len(scores if scores is not None else labels)
    return [["" if labels is None else labels[i], 0.0 if scores is None else float(scores[i])] for i in range(count)]
