"""(being built)"""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["add_gallery_routes"]


def add_gallery_routes(app: FastAPI) -> None:
    """Add the routes to ``app``."""
