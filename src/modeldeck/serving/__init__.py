"""The HTTP server: the only place that maps errors to status codes."""

from __future__ import annotations

from .app import create_app
from .server import serve

__all__ = ["create_app", "serve"]
