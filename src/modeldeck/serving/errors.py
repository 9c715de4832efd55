"""The one place where modeldeck errors become HTTP status codes and JSON error bodies."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from ..errors import (
    AuthError,
    DeadlineExceededError,
    ForbiddenError,
    InputError,
    InputTooLargeError,
    ModelDeckError,
    NotFoundError,
    OptionError,
    OverloadedError,
    ServiceError,
    ShuttingDownError,
)

__all__ = ["ErrorBody", "error_body", "error_headers", "error_responses", "status_for"]

log = logging.getLogger("modeldeck.serving")

# Checked in order: the first matching class wins, so subclasses come before their bases.
_STATUS: tuple[tuple[type[ModelDeckError], int], ...] = (
    (ForbiddenError, 403),
    (AuthError, 401),
    (InputTooLargeError, 413),
    (OptionError, 422),
    (InputError, 422),
    (NotFoundError, 404),
    (OverloadedError, 429),
    (DeadlineExceededError, 504),
    (ShuttingDownError, 503),
    (ServiceError, 503),
)


def status_for(exc: BaseException) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ModelDeckError):
        return {"error": exc.to_dict()}
    log.exception("unexpected error while serving a request", exc_info=exc)
    return {"error": {"code": ModelDeckError.code, "message": f"internal error: {type(exc).__name__}"}}


def error_headers(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, OverloadedError):
        return {"Retry-After": str(max(1, round(exc.retry_after)))}
    if isinstance(exc, ShuttingDownError):
        return {"Retry-After": "5", "Connection": "close"}
    return {}


class ErrorDetail(BaseModel):
    code: str = Field(description="stable error code, e.g. MD103", examples=["MD103"])
    message: str = Field(description="what was wrong and how to fix it")


class ErrorBody(BaseModel):
    """The body of every error answer (OpenAI routes answer in OpenAI's own shape)."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "malformed or non-UTF-8 body",
    401: "an API key is needed, or the one sent is not valid",
    403: "the API key may not use this route",
    404: "no such model, route or gallery entry",
    413: "the body, an input or the number of inputs is over its limit",
    422: "an input or option is invalid",
    429: "overloaded: the expected wait is over the limit (see Retry-After)",
    500: "the model failed",
    503: "loading, failed to load, or shutting down",
    504: "the deadline passed",
}


def error_responses(*statuses: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer, each with the error body's schema."""
    return {status: {"model": model, "description": _DESCRIPTIONS[status]} for status in statuses}
