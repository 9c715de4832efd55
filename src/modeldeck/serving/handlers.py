"""Error answers in one shape: modeldeck errors, Starlette's own (404, 405, bad body) and validation errors."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InputDecodeError, InputError, InvalidTextError, ModelDeckError, NotFoundError
from .errors import error_body, error_headers, status_for

__all__ = ["FastJSONResponse", "add_error_handlers"]


class FastJSONResponse(JSONResponse):
    """JSON through pydantic-core's serializer: several times faster than json.dumps on vectors."""

    def render(self, content: Any) -> bytes:
        return to_json(content)


def add_error_handlers(app: FastAPI) -> None:
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


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path: each is tried, as an included router keeps its
    routes to itself and only says whether a request matches."""
    from starlette.routing import Match

    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
