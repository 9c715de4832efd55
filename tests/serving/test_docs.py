"""``/docs`` works offline: Swagger UI's page and assets come from the server itself, never a CDN."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from modeldeck.serving import create_app

from ..support import LiveServer, echo_settings

pytestmark = pytest.mark.timeout(60)


def test_the_docs_page_and_its_assets_come_from_this_server(live, echo_task, tmp_path):
    server = LiveServer(create_app(echo_settings(tmp_path), loader=lambda spec: echo_task)).start()
    live.append(server)
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    references = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", page.text)
    urls = [a or b for a, b in references]
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls) and any(u.endswith(".css") for u in urls)
    for url in urls:
        assert not urlsplit(url).netloc, f"the docs page loads {url} from another host"
        asset = httpx.get(urljoin(f"{server.url}/docs", url))
        assert asset.status_code == 200 and asset.content, url
    assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io
    assert httpx.get(f"{server.url}/redoc").status_code == 404  # ReDoc would load its bundle from a CDN


def test_the_openapi_document_says_what_the_routes_do(live, echo_task, tmp_path):
    server = LiveServer(create_app(echo_settings(tmp_path), loader=lambda spec: echo_task)).start()
    live.append(server)
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    for route in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/gallery/identify"):
        assert "application/json" in paths[route]["post"]["requestBody"]["content"], route
    predict = paths["/v1/models/{name}/predict"]["post"]["responses"]
    assert {"400", "404", "413", "422", "429", "503", "504"} <= set(predict)
    assert "code" in str(predict["413"]["content"]["application/json"]["schema"]) or predict["413"]["content"]
    options = httpx.request("OPTIONS", f"{server.url}/v1/gallery/people/ada")
    assert options.status_code == 405 and options.headers["allow"] == "DELETE, GET"
