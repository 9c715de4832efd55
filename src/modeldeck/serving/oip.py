"""The Open Inference Protocol v2 (KServe / Triton) REST surface, with the binary tensor data and model
repository extensions, so ``tritonclient.http`` and other V2 clients call modeldeck's models unchanged.

A request whose inputs have batch dimension N is N items for the model's batcher, through the same
submit path as the task API (``Deployment.answer``), answered in order. Tensors per task (see
``docs/protocols.md``): a ``tensor`` model takes and gives its own signature; a text task takes a
BYTES ``text`` input of shape ``[N]`` or ``[N, 1]`` (or ``json``: one JSON document per item, for
structured inputs such as qa's question and context or chat messages); an image task a BYTES
``image`` input of encoded images; face-verify a BYTES ``images`` input of shape ``[N, 2]``. ``embed``
answers an FP32 ``embedding`` of shape ``[N, dim]``, every other task a BYTES ``result`` of one
JSON document per item. Request ``parameters`` other than the protocol's own are task options.
Errors are ``{"error": "[MDnnn] message (hint)"}`` with the protocol's statuses (400 for bad input).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json, to_json
from starlette.concurrency import run_in_threadpool

from .._version import __version__
from ..errors import (
    InferenceError,
    InputDecodeError,
    InputError,
    InputTooLargeError,
    InputTypeError,
    ModelDeckError,
    OptionError,
    ServiceError,
    TensorNameError,
    TensorShapeError,
    UnknownModelError,
)
from ..tasks.tensor_results import TensorResult
from ._tensors import BYTES, HEADER_LENGTH, datatype_of, decode_tensor, encode_tensor, split_body
from .deck import Deck, Deployment
from .errors import error_headers, error_responses, status_for
from .metrics import surface_router
from .wire import Answer, embedding_matrix

__all__ = ["oip_error", "router"]

_EXTENSIONS = ["binary_tensor_data", "model_repository"]
#: Request parameters that belong to the protocol (or to tritonclient), never task options.
_RESERVED = frozenset({"binary_data_output", "timeout", "priority", "headers", "sequence_start", "sequence_end"})
_PLATFORMS = {
    "onnxruntime": "onnxruntime_onnx",
    "torchscript": "pytorch_torchscript",
    "torch-export": "pytorch_torchexport",
    "tensorflow": "tensorflow_savedmodel",
    "keras": "keras_keras",
}


def oip_error(exc: BaseException) -> Response:
    """The protocol's error answer: ``{"error": message}``; bad input is 400 (modeldeck's 422)."""
    if isinstance(exc, ModelDeckError):
        status, message = status_for(exc), str(exc)
    else:
        status, message = 500, f"[{ModelDeckError.code}] internal error: {type(exc).__name__}"
    return Response(
        to_json({"error": message}),
        status_code=400 if status == 422 else status,
        media_type="application/json",
        headers=error_headers(exc),
    )


router = surface_router("oip", error_response=oip_error, tags=["open inference protocol"])

# --- the protocol's objects --------------------------------------------------------------------

Parameters = dict[str, str | int | float | bool]


class OipErrorBody(BaseModel):
    error: str = Field(description="what was wrong and how to fix it, with modeldeck's code: '[MD122] ...'")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Liveness(BaseModel):
    live: bool


class Readiness(BaseModel):
    ready: bool


class ModelReadiness(BaseModel):
    name: str
    ready: bool


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks a dimension of any size; the first is the batch")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] = Field(default_factory=dict)


class RequestInput(BaseModel):
    model_config = ConfigDict(strict=True)

    name: str
    shape: list[int] = Field(description="the batch dimension first: N items")
    datatype: str
    parameters: Parameters | None = None
    data: Any = Field(default=None, description="flat or nested values in row-major order (or binary data)")


class RequestOutput(BaseModel):
    model_config = ConfigDict(strict=True)

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class RepositoryIndexRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    ready: bool = Field(default=False, description="list only the models that are ready")


class RepositoryModel(BaseModel):
    name: str
    version: str | None = None
    state: str = Field(description="READY, LOADING, UNAVAILABLE (failed or unloaded) or UNLOADED (installed)")
    reason: str = ""


class RepositoryAction(BaseModel):
    name: str
    load: bool | None = None
    unload: bool | None = None


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    # 401 comes from the server's AuthMiddleware, before this surface, in the server's own error shape.
    auth = error_responses(401) if 401 in statuses else {}
    text = {
        400: "bad input: what was wrong and how to fix it",
        404: "no such model or version",
        413: "the body or the number of items is over its limit",
        429: "overloaded (see Retry-After)",
        500: "the model failed",
        503: "loading, failed to load, or shutting down",
        504: "the deadline passed",
    }
    return {**auth, **{s: {"model": OipErrorBody, "description": text[s]} for s in statuses if s != 401}}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` written in place: an OpenAPI operation cannot refer to them."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


# --- health and metadata -----------------------------------------------------------------------


@router.get("/v2", response_model=ServerMetadata, responses=_errors(401))
async def server_metadata() -> dict[str, Any]:
    return {"name": "modeldeck", "version": __version__, "extensions": _EXTENSIONS}


@router.get("/v2/health/live", response_model=Liveness, responses=_errors(401))
async def server_live() -> dict[str, Any]:
    return {"live": True}


@router.get(
    "/v2/health/ready",
    response_model=Readiness,
    responses={
        200: {"description": "every served model is ready"},
        503: {"model": Readiness, "description": "not"},
        **_errors(401),
    },
)
async def server_ready(request: Request) -> Response:
    ready = request.app.state.deck.ready
    return Response(to_json({"ready": ready}), status_code=200 if ready else 503, media_type="application/json")


def _deployment(request: Request, name: str, version: str | None) -> Deployment:
    deployment: Deployment = request.app.state.deck.get(name)
    have = deployment.model.info.version
    if version is not None and version != have:
        raise UnknownModelError(f"model {name!r} has no version {version!r}", hint=f"its version is {have!r}")
    request.state.metrics_model = deployment.name  # RequestMetricsMiddleware labels the response with it
    return deployment


async def _model_ready(request: Request, name: str, version: str | None) -> Response:
    deck: Deck = request.app.state.deck
    if name in deck.deployments:
        _deployment(request, name, version)
        return Response(to_json({"name": name, "ready": True}), media_type="application/json")
    deck.get(name)  # unknown (404) or unloaded (404) raise; loading or failed answer not ready
    return Response(to_json({"name": name, "ready": False}), status_code=503, media_type="application/json")


_READY_DOCS: dict[str, Any] = {
    "response_model": ModelReadiness,
    "responses": {503: {"model": ModelReadiness, "description": "loading or failed"}, **_errors(401, 404)},
}


@router.get("/v2/models/{name}/ready", **_READY_DOCS)
async def model_ready(name: str, request: Request) -> Response:
    return await _model_ready(request, name, None)


@router.get("/v2/models/{name}/versions/{version}/ready", **_READY_DOCS)
async def model_version_ready(name: str, version: str, request: Request) -> Response:
    return await _model_ready(request, name, version)


def _spec_tensor(spec: Mapping[str, Any]) -> dict[str, Any]:
    shape = spec.get("shape")
    # TorchScript does not say; the tensor task then reads floats as float32, torch's default.
    dtype = spec.get("dtype") or "float32"
    return {
        "name": spec["name"],
        "datatype": datatype_of(dtype),
        "shape": [-1] if shape is None else [-1 if d is None else int(d) for d in shape],
    }


def signature(deployment: Deployment) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The inputs and outputs a V2 client sends and gets for this model (see the module's docstring)."""
    kind = deployment.input_kind
    if kind == "tensor":
        sig = deployment.model.describe()["signature"]
        return [_spec_tensor(s) for s in sig["inputs"]], [_spec_tensor(s) for s in sig["outputs"]]
    if kind == "image":
        inputs = [{"name": "image", "datatype": BYTES, "shape": [-1]}]
    elif kind == "image-pair":
        inputs = [{"name": "images", "datatype": BYTES, "shape": [-1, 2]}]
    else:
        inputs = [{"name": "text", "datatype": BYTES, "shape": [-1]}]
    if deployment.model.task == "embed":
        return inputs, [{"name": "embedding", "datatype": "FP32", "shape": [-1, -1]}]
    return inputs, [{"name": "result", "datatype": BYTES, "shape": [-1]}]


def _metadata(request: Request, name: str, version: str | None) -> dict[str, Any]:
    deployment = _deployment(request, name, version)
    info = deployment.model.info
    inputs, outputs = signature(deployment)
    platform = _PLATFORMS.get(info.runtime, f"modeldeck_{info.runtime}")
    return {
        "name": deployment.name,
        "versions": [info.version],
        "platform": platform if deployment.input_kind == "tensor" else f"modeldeck_{info.runtime}",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {"task": deployment.model.task, "model": info.name},
    }


_META_DOCS: dict[str, Any] = {"response_model": ModelMetadata, "responses": _errors(401, 404, 503)}


@router.get("/v2/models/{name}", **_META_DOCS)
async def model_metadata(name: str, request: Request) -> dict[str, Any]:
    return _metadata(request, name, None)


@router.get("/v2/models/{name}/versions/{version}", **_META_DOCS)
async def model_version_metadata(name: str, version: str, request: Request) -> dict[str, Any]:
    return _metadata(request, name, version)


# --- inference ---------------------------------------------------------------------------------

_INFER_DOCS: dict[str, Any] = {
    "response_model": InferenceResponse,
    "description": "JSON, or with the binary tensor data extension a JSON header of "
    f"`{HEADER_LENGTH}` bytes followed by the binary data of the inputs that give `binary_data_size`.",
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _inline(InferenceRequest.model_json_schema())},
            },
        }
    },
    "responses": {
        200: {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": f"JSON, or (binary outputs) a JSON header of {HEADER_LENGTH} bytes and the data",
        },
        **_errors(400, 401, 404, 413, 429, 500, 503, 504),
    },
}


@router.post("/v2/models/{name}/infer", **_INFER_DOCS)
async def infer(name: str, request: Request) -> Response:
    return await _infer(request, name, None)


@router.post("/v2/models/{name}/versions/{version}/infer", **_INFER_DOCS)
async def infer_version(name: str, version: str, request: Request) -> Response:
    return await _infer(request, name, version)


def _read_request(body: bytes, header_length: str | None) -> tuple[InferenceRequest, dict[str, memoryview]]:
    """The request's JSON object, and the binary data of each input that has some, by name."""
    header, rest = split_body(body, header_length)
    try:
        parsed = InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise InputDecodeError(
            f"the inference request is not valid: {problems}",
            hint='send {"inputs": [{"name", "shape", "datatype", "data"}, ...]} as JSON',
        ) from None
    binary: dict[str, memoryview] = {}
    offset = 0
    for tensor in parsed.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InputDecodeError(f"input {tensor.name!r}: binary_data_size must be a whole number, got {size!r}")
        if offset + size > len(rest):
            raise InputDecodeError(
                f"input {tensor.name!r}: binary_data_size {size} goes past the end of the body "
                f"({len(rest) - offset} bytes of binary data left)",
                hint=f"give each input's own size, and {HEADER_LENGTH} as the JSON header's length",
            )
        binary[tensor.name] = rest[offset : offset + size]
        offset += size
    if offset != len(rest):
        raise InputDecodeError(
            f"the body has {len(rest) - offset} bytes of binary data that no input claims "
            f"(binary_data_size sums to {offset})",
            hint=f"give each binary input its binary_data_size, and {HEADER_LENGTH} as the JSON header's length",
        )
    return parsed, binary


def _decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The request body as sent before ``Content-Encoding`` (gzip or deflate, as tritonclient's
    ``request_compression_algorithm`` sends it), refused past ``limit`` bytes unpacked."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise InputDecodeError(
            f"Content-Encoding {encoding!r} is not supported", hint="send the body as is, or gzip or deflate it"
        )
    unpacker = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding == "gzip" else 0))
    try:
        out = unpacker.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InputDecodeError(f"the body is not valid {encoding} data ({exc})") from None
    if len(out) > limit or unpacker.unconsumed_tail:
        raise InputTooLargeError(
            f"the {encoding} body unpacks to more than {limit:,} bytes",
            hint="send less, or raise MODELDECK_MAX_BODY_BYTES",
        )
    return out


def _options(parameters: Mapping[str, Any]) -> tuple[dict[str, Any], bool, float | None]:
    """Task options, the request-wide ``binary_data_output``, and the ``timeout`` (microseconds) in seconds."""
    if parameters.get("sequence_id"):
        raise OptionError("sequence_id: stateful sequences are not supported", hint="leave sequence_id out")
    binary = parameters.get("binary_data_output", False)
    if not isinstance(binary, bool):
        raise OptionError(f"binary_data_output must be true or false, got {binary!r}")
    timeout = parameters.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise OptionError(f"timeout must be a positive number of microseconds, got {timeout!r}")
    options = {k: v for k, v in parameters.items() if k not in _RESERVED and k != "sequence_id"}
    options = {k: v for k, v in options.items() if not k.startswith("triton_")}
    return options, binary, None if timeout is None else float(timeout) / 1e6


def _batch(array: np.ndarray, name: str) -> int:
    if array.ndim == 0:
        raise TensorShapeError(f"input {name!r} has shape []; the first dimension is the batch", hint="send [N, ...]")
    return int(array.shape[0])


def _rows(array: np.ndarray, name: str, what: str) -> list[Any]:
    """The elements of a BYTES ``[N]`` or ``[N, 1]`` input, one per item."""
    if array.dtype != object or not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise TensorShapeError(
            f"input {name!r} is {datatype_of(array.dtype)} of shape {list(array.shape)}; it takes BYTES [N] or [N, 1]",
            hint=f"send one {what} per item",
        )
    return list(array.reshape(-1))


def _text(value: str | bytes, name: str, index: int) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputDecodeError(f"item {index} of input {name!r} is not UTF-8 text ({exc})") from None


def _texts(array: np.ndarray, name: str, as_json: bool) -> list[Any]:
    """One text (or JSON document) per row of a BYTES ``[N]`` or ``[N, 1]`` input."""
    items = [_text(v, name, i) for i, v in enumerate(_rows(array, name, "JSON document" if as_json else "text"))]
    if not as_json:
        return items
    try:
        return [from_json(text) for text in items]
    except ValueError as exc:
        raise InputDecodeError(f"input {name!r} holds an item that is not a JSON document ({exc})") from None


def _items(deployment: Deployment, inputs: Sequence[Mapping[str, Any]], tensors: Mapping[str, np.ndarray]) -> list[Any]:
    """The batcher's items: one per row of the batch dimension, in order."""
    names = [t["name"] for t in inputs]
    kind = deployment.input_kind
    allowed = [*names, "json"] if kind not in ("tensor", "image", "image-pair") else names
    unknown = [n for n in tensors if n not in allowed]
    missing = [n for n in names if n not in tensors] if kind == "tensor" else []
    if unknown or missing or len(tensors) != (len(names) if kind == "tensor" else 1):
        problems = [f"unknown {', '.join(map(repr, unknown))}"] if unknown else []
        problems += [f"missing {', '.join(map(repr, missing))}"] if missing else []
        expected = ", ".join(f"{t['name']} ({t['datatype']} {t['shape']})" for t in inputs)
        raise TensorNameError(
            f"model {deployment.name!r} inputs: {'; '.join(problems) or f'got {sorted(tensors)}'}",
            hint=f"it takes: {expected}" + (" (or json: one JSON document per item)" if "json" in allowed else ""),
        )
    if kind == "tensor":
        sizes = {name: _batch(array, name) for name, array in tensors.items()}
        if len(set(sizes.values())) > 1:
            raise TensorShapeError(f"the inputs disagree on the batch size: {sizes}", hint="send N rows in each")
        count = next(iter(sizes.values()))
        arrays = {name: _text_array(a, name) if a.dtype == object else a for name, a in tensors.items()}
        return [{name: array[i] for name, array in arrays.items()} for i in range(count)]
    ((name, array),) = tensors.items()
    if kind == "image-pair":
        if array.dtype != object or array.ndim != 2 or array.shape[1] != 2:
            raise TensorShapeError(
                f"input {name!r} has shape {list(array.shape)}; a pair task takes BYTES [N, 2]",
                hint="send each pair as one row: [image_a, image_b]",
            )
        # Binary elements are the encoded images; JSON strings are base64 or data URLs, as in the task API.
        return [list(row) for row in array]
    if kind == "image":
        return _rows(array, name, "encoded image")
    return _texts(array, name, as_json=name == "json")


def _text_array(array: np.ndarray, name: str) -> np.ndarray:
    """A BYTES input of a tensor model: its elements as ``str``, the model's text."""
    flat = np.empty(array.size, dtype=object)
    flat[:] = [_text(v, name, i) for i, v in enumerate(array.reshape(-1))]
    return flat.reshape(array.shape)


def _outputs(deployment: Deployment, answers: Sequence[Answer]) -> dict[str, np.ndarray]:
    kind, task = deployment.input_kind, deployment.model.task
    if task == "embed":
        return {"embedding": embedding_matrix(answers)}
    if kind != "tensor":
        result = np.empty(len(answers), dtype=object)
        result[:] = list(answers)
        return {"result": result}
    results = [TensorResult.from_dict(from_json(answer)) for answer in answers]
    if not results:
        return {}
    stacked: dict[str, np.ndarray] = {}
    for name in results[0].names:
        rows = [r[name] for r in results]
        if len({row.shape for row in rows}) > 1:
            raise InferenceError(
                f"output {name!r} has a different shape per item ({sorted({row.shape for row in rows})}), "
                "so it cannot be one tensor",
                hint="send one item per request, or use the task API, which answers each item on its own",
            )
        stacked[name] = np.stack(rows)  # text outputs stay str: encode_tensor writes them as UTF-8
    return stacked


def _item_error(exc: ModelDeckError, index: int) -> ModelDeckError:
    exc.message = f"item {index}: {exc.message}"
    return exc


async def _infer(request: Request, name: str, version: str | None) -> Response:
    deployment = _deployment(request, name, version)
    settings = request.app.state.settings
    raw = _decompress(await request.body(), request.headers.get("content-encoding"), settings.max_body_bytes)
    body, binary = _read_request(raw, request.headers.get(HEADER_LENGTH))
    options, binary_default, timeout = _options(body.parameters or {})
    tensors: dict[str, np.ndarray] = {}
    for tensor in body.inputs:
        if tensor.name in tensors:
            raise TensorNameError(f"input {tensor.name!r} is given twice", hint="send each input once")
        tensors[tensor.name] = decode_tensor(
            tensor.name, tensor.datatype, tensor.shape, tensor.data, binary.get(tensor.name)
        )
    inputs, declared = signature(deployment)
    known = [t["name"] for t in declared]
    wanted: dict[str, bool] = {}
    for out in body.outputs or []:
        params = out.parameters or {}
        if params.get("classification"):
            raise OptionError(f"output {out.name!r}: the classification extension is not supported")
        if deployment.input_kind != "tensor" and out.name not in known:
            raise TensorNameError(f"model {name!r} has no output {out.name!r}", hint=f"its outputs: {', '.join(known)}")
        flag = params.get("binary_data", binary_default)
        wanted[out.name] = bool(flag)
    if wanted and deployment.input_kind == "tensor":
        options["outputs"] = list(wanted)
    deployment.model.check_options(options)
    items = _items(deployment, inputs, tensors)
    if not items:
        raise InputError("the inputs hold no items (batch dimension 0)", hint="send at least one row")
    answers = await deployment.answer(
        items, options, timeout or settings.request_timeout_s, binary=deployment.model.task == "embed"
    )
    good: list[Answer] = []
    for index, answer in enumerate(answers):
        if isinstance(answer, ServiceError):
            raise answer
        if isinstance(answer, ModelDeckError):
            deployment.metrics.item_errors.labels(deployment.name, answer.code).inc()
            raise _item_error(answer, index)
        good.append(answer)
    outputs = _outputs(deployment, good)
    head: dict[str, Any] = {"model_name": deployment.name, "model_version": deployment.model.info.version}
    if body.id is not None:
        head["id"] = body.id
    head["outputs"] = []
    chunks: list[bytes] = []
    for out_name, array in outputs.items():
        if wanted and out_name not in wanted:
            continue
        entry, raw = encode_tensor(out_name, array, wanted.get(out_name, binary_default))
        head["outputs"].append(entry)
        if raw is not None:
            chunks.append(raw)
    header = to_json(head)
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(chunks),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )


# --- model repository extension ----------------------------------------------------------------


@router.post("/v2/repository/index", response_model=list[RepositoryModel], responses=_errors(400, 401))
async def repository_index(request: Request) -> list[dict[str, Any]]:
    raw = await request.body()
    try:
        wanted = RepositoryIndexRequest.model_validate_json(raw) if raw.strip() else RepositoryIndexRequest()
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise InputTypeError(f"the index request is not valid ({problem})", hint='send {"ready": true}') from None
    deck: Deck = request.app.state.deck
    rows: list[dict[str, Any]] = []
    for spec in deck.specs:
        state = deck.state(spec.alias)
        if state == "ready":
            version = deck.deployments[spec.alias].model.info.version
            rows.append({"name": spec.alias, "version": version, "state": "READY"})
        elif state == "loading":
            rows.append({"name": spec.alias, "state": "LOADING"})
        else:
            rows.append({"name": spec.alias, "state": "UNAVAILABLE", "reason": deck.failed.get(spec.alias, state)})
    if not wanted.ready:
        served = {spec.alias for spec in deck.specs}
        for installed in await run_in_threadpool(deck.installed):
            if installed not in served:
                rows.append({"name": installed, "state": "UNLOADED", "reason": "installed in the model store"})
    return [row for row in rows if row["state"] == "READY" or not wanted.ready]


@router.post(
    "/v2/repository/models/{name}/load", response_model=RepositoryAction, responses=_errors(400, 401, 404, 503)
)
async def repository_load(name: str, request: Request) -> dict[str, Any]:
    await request.app.state.deck.load(name)
    return {"name": name, "load": True}


@router.post(
    "/v2/repository/models/{name}/unload", response_model=RepositoryAction, responses=_errors(400, 401, 404, 503)
)
async def repository_unload(name: str, request: Request) -> dict[str, Any]:
    await request.app.state.deck.unload(name)
    return {"name": name, "unload": True}
