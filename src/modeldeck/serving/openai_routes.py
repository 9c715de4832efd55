"""OpenAI-compatible routes: chat completions, completions (both also as server-sent events) and embeddings.

``model`` in a request names a served deployment (its alias): a ``chat`` deployment answers
``/v1/chat/completions``, a ``generate`` one ``/v1/completions`` and an ``embed`` one
``/v1/embeddings``. Non-streamed requests go through the deployment's batcher like any predict
request; streamed ones too, with a sink that carries each piece as it is decoded (see
``Deployment.stream``). Errors use OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import to_json
from starlette.types import Send

from ..errors import (
    InputDecodeError,
    InputError,
    InputTooLargeError,
    InputTypeError,
    ModelDeckError,
    NotFoundError,
    OptionError,
)
from .deck import Deck, Deployment, StreamEnd
from .errors import error_headers, error_responses, status_for
from .metrics import surface_router
from .wire import embedding_matrix

__all__ = ["openai_error", "router"]

_FINISH = {"stop": "stop", "length": "length", "cancelled": "stop"}


class _Request(BaseModel):
    # OpenAI clients send fields modeldeck has no use for (user, metadata, ...): ignore those.
    model_config = ConfigDict(extra="ignore")

    model: str


def _check_tokens(name: str, value: int | None) -> None:
    # Checked under OpenAI's own name: the task would reject it as its internal max_new_tokens.
    if value is not None and value < 1:
        raise OptionError(
            f"{name} must be at least 1, got {value}", hint=f"ask for one token or more, or leave {name} out"
        )


class _Sampling(_Request):
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = 1
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: Any = None
    # Not OpenAI's, accepted as extras (the openai client sends them with extra_body=...).
    top_k: int | None = None
    repetition_penalty: float | None = None

    def options(self) -> dict[str, Any]:
        if self.n != 1:
            raise OptionError(f"n={self.n} is not supported", hint="ask for one choice per request (n=1)")
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise OptionError(f"{name} is not supported", hint="use repetition_penalty (extra_body) instead")
        if self.logprobs:
            raise OptionError("logprobs are not supported", hint="leave logprobs out")
        _check_tokens("max_tokens", self.max_tokens)
        values = {
            "max_new_tokens": self.max_tokens,
            # OpenAI's default temperature is 1 (sampling); modeldeck's own default is greedy.
            "temperature": 1.0 if self.temperature is None else self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "seed": self.seed,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
        }
        return {key: value for key, value in values.items() if value is not None}

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatCompletionRequest(_Sampling):
    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = None
    tools: Any = None

    def options(self) -> dict[str, Any]:
        if self.tools:
            raise OptionError("tools are not supported", hint="leave tools out")
        options = super().options()
        _check_tokens("max_completion_tokens", self.max_completion_tokens)
        if self.max_completion_tokens is not None:
            options["max_new_tokens"] = self.max_completion_tokens
        return options

    def conversation(self) -> list[dict[str, Any]]:
        """The messages with OpenAI's content parts (``[{"type": "text", "text": ...}]``) joined into text."""
        out = []
        for i, message in enumerate(self.messages):
            content = message.get("content")
            if isinstance(content, list):
                texts = []
                for part in content:
                    if not (
                        isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
                    ):
                        raise InputTypeError(
                            f"messages[{i}]['content'] has a part that is not text",
                            hint="send text only: a string or [{'type': 'text', 'text': ...}]",
                        )
                    texts.append(part["text"])
                content = "".join(texts)
            out.append({**{k: v for k, v in message.items() if k in ("role", "content")}, "content": content})
        return out


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = 16  # OpenAI's default for completions
    echo: bool = False
    suffix: str | None = None

    def options(self) -> dict[str, Any]:
        if self.echo or self.suffix:
            raise OptionError("echo and suffix are not supported", hint="leave echo and suffix out")
        return super().options()


class EmbeddingRequest(_Request):
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class _OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape, which its clients parse."""

    error: _OpenAIErrorDetail


def _route_docs(body: type[BaseModel]) -> dict[str, Any]:
    """The request body these routes read themselves, and the errors they answer, for the OpenAPI document."""
    return {
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": body.model_json_schema()}}}
        },
        "responses": {
            200: {"description": "OpenAI's response object (with stream: true, server-sent events)",
                  "content": {"application/json": {"schema": {"type": "object"}},
                              "text/event-stream": {"schema": {"type": "string"}}}},
            **error_responses(400, 404, 429, 500, 503, 504, model=OpenAIErrorBody),
            **error_responses(401, 413),
        },
    }  # fmt: skip


def _error_type(status: int) -> str:
    if status == 404:
        return "invalid_request_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def openai_error(exc: ModelDeckError) -> JSONResponse:
    """A modeldeck error in OpenAI's shape; bad requests are 400 as OpenAI answers them."""
    status = status_for(exc)
    if isinstance(exc, NotFoundError):
        code = "model_not_found"
    elif isinstance(exc, InputTooLargeError):
        status, code = 400, "context_length_exceeded"
    else:
        code = exc.code
        if status in (413, 422):
            status = 400
    message = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
    body = {"error": {"message": message, "type": _error_type(status), "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=error_headers(exc))


async def _parse(request: Request, model: type[BaseModel]) -> Any:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InputDecodeError("the body is not valid JSON", hint="send a JSON object") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise InputError("; ".join(problems), hint="see the OpenAI API reference for this route") from None


def _deployment(request: Request, name: str, task: str, route: str) -> Deployment:
    deck: Deck = request.app.state.deck
    deployment = deck.get(name)
    request.state.metrics_model = deployment.name  # RequestMetricsMiddleware labels the response with it
    if deployment.model.task != task:
        raise InputError(
            f"model {name!r} serves the {deployment.model.task!r} task, and {route} needs a {task!r} model",
            hint=f"name a served {task!r} model: {', '.join(_served(deck, task)) or '(none served)'}",
        )
    return deployment


def _served(deck: Deck, task: str) -> list[str]:
    return [name for name, d in deck.deployments.items() if d.model.task == task]


def _deadline(request: Request) -> float:
    return time.monotonic() + request.app.state.settings.request_timeout_s


async def _answers(deployment: Deployment, inputs: list[Any], options: dict[str, Any], request: Request) -> list[Any]:
    """Every input through the shared submit path; the decoded results in order (the first error is raised)."""
    answers = await deployment.answer(inputs, options, request.app.state.settings.request_timeout_s)
    results = []
    for answer in answers:
        if isinstance(answer, ModelDeckError):
            raise answer
        results.append(json.loads(answer))
    return results


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _EventStream(StreamingResponse):
    """Server-sent events whose generator is closed as soon as the client is gone.

    Starlette stops at the first failed send but leaves the generator to the garbage collector;
    closing it here stops the generation at once and frees its batch slot.
    """

    def __init__(self, content: AsyncIterator[str]) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._events = content

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self._events.aclose()  # type: ignore[attr-defined]


async def _first(events: AsyncIterator[str | StreamEnd]) -> str | StreamEnd:
    """The first event: an error before any text becomes the response's status, not an event."""
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    if isinstance(first, StreamEnd) and isinstance(first.output, ModelDeckError):
        await events.aclose()  # type: ignore[attr-defined]
        raise first.output
    return first


def _sse(data: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _stream(
    deployment: Deployment,
    raw: Any,
    options: dict[str, Any],
    request: Request,
    chunk: Any,
    include_usage: bool,
) -> Response:
    """Stream one generation as OpenAI chunks; ``chunk(text, finish_reason)`` builds one chunk."""
    deadline = _deadline(request)
    deployment.limits.check(raw)
    deployment.admit(1, deadline)
    deployment.metrics.items.labels(deployment.name).inc()
    events = deployment.stream(raw, options, deadline)
    first = await _first(events)

    async def body() -> AsyncIterator[str]:
        try:
            event: str | StreamEnd = first
            head = chunk(None, None)
            if head is not None:
                yield _sse(head)
            while True:
                if isinstance(event, StreamEnd):
                    break
                yield _sse(chunk(event, None))
                event = await anext(events)
            if isinstance(event.output, ModelDeckError):
                error = event.output
                yield _sse({"error": {"message": error.message, "type": "server_error", "code": error.code}})
            else:
                result = json.loads(event.output)
                yield _sse(chunk("", _FINISH.get(result["finish_reason"], "stop")))
                if include_usage:
                    usage = _usage(result["prompt_tokens"], result["completion_tokens"])
                    yield _sse({**chunk("", None), "choices": [], "usage": usage})
            yield "data: [DONE]\n\n"
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    return _EventStream(body())


router = surface_router("openai", tags=["openai"])


@router.post("/v1/chat/completions", **_route_docs(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    try:
        body: ChatCompletionRequest = await _parse(request, ChatCompletionRequest)
        deployment = _deployment(request, body.model, "chat", "/v1/chat/completions")
        options = body.options()
        deployment.model.check_options(options)
        messages = body.conversation()
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:

            def chunk(text: str | None, finish: str | None) -> dict[str, Any]:
                delta = {"role": "assistant", "content": ""} if text is None else ({"content": text} if text else {})
                return {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body.model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                }

            return await _stream(deployment, messages, options, request, chunk, body.include_usage)
        (result,) = await _answers(deployment, [messages], options, request)
    except ModelDeckError as exc:
        return openai_error(exc)
    return JSONResponse(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": result["message"],
                    "logprobs": None,
                    "finish_reason": _FINISH.get(result["finish_reason"], "stop"),
                }
            ],
            "usage": _usage(result["prompt_tokens"], result["completion_tokens"]),
        }
    )


@router.post("/v1/completions", **_route_docs(CompletionRequest))
async def completions(request: Request) -> Response:
    try:
        body: CompletionRequest = await _parse(request, CompletionRequest)
        deployment = _deployment(request, body.model, "generate", "/v1/completions")
        options = body.options()
        deployment.model.check_options(options)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise InputError("prompt is an empty list", hint="send a prompt string")
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            if len(prompts) != 1:
                raise OptionError("streaming takes one prompt", hint="send one prompt per streamed request")

            def chunk(text: str | None, finish: str | None) -> dict[str, Any] | None:
                if text is None:
                    return None  # completions have no role chunk
                return {
                    "id": ident,
                    "object": "text_completion",
                    "created": created,
                    "model": body.model,
                    "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
                }

            return await _stream(deployment, prompts[0], options, request, chunk, body.include_usage)
        results = await _answers(deployment, prompts, options, request)
    except ModelDeckError as exc:
        return openai_error(exc)
    return JSONResponse(
        {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": i,
                    "text": r["text"],
                    "logprobs": None,
                    "finish_reason": _FINISH.get(r["finish_reason"], "stop"),
                }
                for i, r in enumerate(results)
            ],
            "usage": _usage(sum(r["prompt_tokens"] for r in results), sum(r["completion_tokens"] for r in results)),
        }
    )


@router.post("/v1/embeddings", **_route_docs(EmbeddingRequest))
async def embeddings(request: Request) -> Response:
    try:
        body: EmbeddingRequest = await _parse(request, EmbeddingRequest)
        deployment = _deployment(request, body.model, "embed", "/v1/embeddings")
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts:
            raise InputError("input is an empty list", hint="send a string or a list of strings")
        _check_dimensions(deployment, body)
        answers = await deployment.answer(texts, {}, request.app.state.settings.request_timeout_s, binary=True)
        vectors = embedding_matrix(answers)
    except ModelDeckError as exc:
        return openai_error(exc)
    if body.encoding_format == "base64":
        # Straight from the worker's float32 bytes; OpenAI's base64 is little-endian float32 too.
        data = [
            {"object": "embedding", "index": i, "embedding": base64.b64encode(row.tobytes()).decode("ascii")}
            for i, row in enumerate(vectors)
        ]
    else:
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(vectors.tolist())]
    # The embed task reports no token counts; usage is present (clients expect it) and zero.
    body_out = {"object": "list", "data": data, "model": body.model, "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    return Response(to_json(body_out), media_type="application/json")


def _check_dimensions(deployment: Deployment, body: EmbeddingRequest) -> None:
    """OpenAI's ``dimensions`` asks for shortened vectors, which modeldeck does not make: the model's
    own size is accepted, any other refused before the model runs."""
    if body.dimensions is None:
        return
    dim = deployment.model.describe().get("dim")
    if body.dimensions != dim:
        raise OptionError(
            f"dimensions={body.dimensions} is not supported: model {body.model!r} gives {dim}",
            hint="leave dimensions out",
        )
