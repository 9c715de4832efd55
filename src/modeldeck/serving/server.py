"""Run the app under uvicorn with settings validated before anything loads."""

from __future__ import annotations

import logging

from ..config import Settings
from ..errors import ModelLoadError

__all__ = ["serve"]

log = logging.getLogger("modeldeck.serving")


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Serve until stopped; raises ``ModelLoadError`` when a model failed to load (unless
    ``settings.allow_failed_models``), after the server has stopped."""
    import uvicorn

    from .app import create_app
    from .auth import warn_if_exposed

    app = create_app(settings)
    warn_if_exposed(settings, app.state.auth)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            timeout_graceful_shutdown=max(5, int(settings.request_timeout_s)),
            access_log=False,
        )
    )

    def stop() -> None:
        server.should_exit = True

    app.state.stop_server = stop
    server.run()
    failed = app.state.deck.failed
    if failed and not settings.allow_failed_models:
        name, why = next(iter(failed.items()))
        raise ModelLoadError(
            f"model {name!r} failed to load: {why}",
            hint="fix or leave out that model, or set MODELDECK_ALLOW_FAILED_MODELS=1 (--allow-failed-models) "
            "to serve the others",
        )
