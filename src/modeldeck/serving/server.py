"""Run the app under uvicorn with settings validated before anything loads."""

from __future__ import annotations

from ..config import Settings

__all__ = ["serve"]


def serve(settings: Settings, *, log_level: str = "info") -> None:
    import uvicorn

    from .app import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=max(5, int(settings.request_timeout_s)),
        access_log=False,
    )
