"""Optional API keys: ``Authorization: Bearer KEY`` on every route but the exempt ones, compared in constant time.

Keys come from ``MODELDECK_API_KEYS`` / ``--api-key`` and from a key file (one per line, ``#``
comments); with none configured every route is open. ``MODELDECK_GALLERY_KEYS`` limits gallery
writes (enrol, remove) to their own keys, which are also accepted everywhere else. Health,
readiness, metrics, the API docs and the playground's static page are exempt by default
(``MODELDECK_AUTH_EXEMPT``; an entry ending in ``/`` exempts everything under it, except ``/``
itself, which is the page alone).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..errors import AuthError, ConfigError, ForbiddenError
from .errors import error_body, status_for

__all__ = ["ApiKeys", "AuthMiddleware", "document_keys", "warn_if_exposed"]

log = logging.getLogger("modeldeck.serving")

# Gallery routes that change it (identify is a POST that only reads).
_GALLERY_WRITES = ("/v1/gallery/people/", "/v1/gallery/images/")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _read_key_file(path: str) -> list[str]:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"MODELDECK_API_KEY_FILE {path!r} cannot be read ({exc})", hint="name a UTF-8 file with one key per line"
        ) from None
    keys = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [key for key in keys if key]


def _matches(given: bytes, keys: Sequence[bytes]) -> bool:
    # Every key is compared, each in constant time, so the time taken says nothing about any of them.
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


class ApiKeys:
    """Which keys a request needs; ``check`` raises ``AuthError`` (401) or ``ForbiddenError`` (403)."""

    def __init__(self, keys: Sequence[str], gallery_keys: Sequence[str] = (), exempt: Sequence[str] = ()) -> None:
        for key in (*keys, *gallery_keys):
            if len(key) < 8 or any(c.isspace() for c in key):
                raise ConfigError(
                    f"an API key must be at least 8 characters without spaces, got one of {len(key)} characters",
                    hint="generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                )
        self._gallery = [k.encode() for k in gallery_keys]
        self._all = [k.encode() for k in (*keys, *gallery_keys)]
        self._general = bool(keys)
        # "/" alone is the playground's page, not a prefix of every path.
        self._exact = frozenset(p for p in exempt if p == "/" or not p.endswith("/"))
        self._prefixes = tuple(p for p in exempt if p != "/" and p.endswith("/"))

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        keys = list(settings.api_keys)
        if settings.api_key_file:
            keys += _read_key_file(settings.api_key_file)
        return cls(keys, settings.gallery_keys, settings.auth_exempt)

    @property
    def enabled(self) -> bool:
        return bool(self._all)

    def exempt(self, path: str) -> bool:
        return path in self._exact or path.startswith(self._prefixes)

    def check(self, method: str, path: str, authorization: str | None) -> None:
        if not self._all or self.exempt(path):
            return
        gallery_write = bool(self._gallery) and path.startswith(_GALLERY_WRITES) and method in _WRITES
        if not (self._general or gallery_write):
            return  # only gallery writes need a key on this server
        given = _bearer(authorization)
        if given is None:
            raise AuthError(
                "this server needs an API key", hint="send the header 'Authorization: Bearer <key>' (openai: api_key=)"
            )
        if not _matches(given, self._all):
            raise AuthError("the API key is not valid for this server", hint="check the key, or ask for a new one")
        if gallery_write and not _matches(given, self._gallery):
            raise ForbiddenError(
                "this key may not change the face gallery",
                hint="use a key from MODELDECK_GALLERY_KEYS for gallery writes",
            )


def _bearer(header: str | None) -> bytes | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token.encode("utf-8", "surrogateescape")


class AuthMiddleware:
    """Answers 401 / 403 before any route runs when a request lacks a key it needs."""

    def __init__(self, app: ASGIApp, *, keys: ApiKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.enabled:
            await self.app(scope, receive, send)
            return
        header = None
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        try:
            self.keys.check(scope["method"], scope["path"], header)
        except AuthError as exc:
            body = to_json(error_body(exc))
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if not isinstance(exc, ForbiddenError):
                headers.append((b"www-authenticate", b'Bearer realm="modeldeck"'))
            await send({"type": "http.response.start", "status": status_for(exc), "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(settings: Settings, keys: ApiKeys) -> bool:
    """Warn when the server binds beyond this machine with no key; True when it warned."""
    if keys.enabled or _loopback(settings.host):
        return False
    log.warning(
        "modeldeck is listening on %s without an API key: anyone who reaches the port can use every model and "
        "change the face gallery. Set one with --api-key KEY, MODELDECK_API_KEYS=key1,key2 or "
        "MODELDECK_API_KEY_FILE=path",
        settings.host,
    )
    return True


def document_keys(app: FastAPI, keys: ApiKeys) -> None:
    """Declare the bearer scheme in the OpenAPI document (Swagger UI's Authorize button) when keys are on."""
    if not keys.enabled:
        return
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "a key from MODELDECK_API_KEYS, as Authorization: Bearer <key>",
        }
        for path, operations in schema.get("paths", {}).items():
            if not keys.exempt(path):
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
