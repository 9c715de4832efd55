"""The one place where modeldeck errors become HTTP status codes and JSON error bodies."""

from __future__ import annotations

import logging
from typing import Any

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

__all__ = ["error_body", "error_headers", "status_for"]

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
