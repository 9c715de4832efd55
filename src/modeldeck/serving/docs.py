"""``GET /docs``: Swagger UI served from the installed ``swagger-ui-bundle`` package, so it works offline.

FastAPI's default page loads Swagger UI's JavaScript and CSS from a CDN, which leaves a blank
page on a machine without a network. The assets (Apache-2.0, with their licence in the package)
are mounted under ``/docs/assets``; the online validator badge is turned off for the same reason.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from ..errors import DependencyError

__all__ = ["add_docs"]

_ASSETS = "/docs/assets"


def _assets_dir() -> str:
    try:
        import swagger_ui_bundle
    except ImportError:
        raise DependencyError("swagger-ui-bundle", extra="serve", purpose="the /docs page") from None
    return str(swagger_ui_bundle.swagger_ui_path)


def add_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` with assets from the package (the app must have ``docs_url=None``)."""
    app.mount(_ASSETS, StaticFiles(directory=_assets_dir()), name="swagger-ui-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
