"""The playground's files over HTTP: CSP, ETags, gzip, no inline code, vendored licences, and GET /v1/metrics.

What the page does in a browser is tested in tests/browser/test_playground_browser.py.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import httpx
import pytest

from modeldeck.serving import create_app
from modeldeck.serving.playground import CSP

from ..support import LiveServer, echo_settings

pytestmark = pytest.mark.timeout(60)

STATIC = Path(str(resources.files("modeldeck.serving") / "static"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from ..support import EchoTask, echo_info

    task = EchoTask(echo_info())
    app = create_app(echo_settings(tmp_path_factory.mktemp("pg")), loader=lambda spec: task)
    live = LiveServer(app).start()
    live.wait_ready()
    yield live
    live.stop()


def test_root_is_the_page_with_a_strict_csp(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert csp == CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in csp and directives["default-src"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'href="/docs"' in page.text  # the OpenAPI docs stay reachable, and are linked
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_assets_revalidate_with_etags_and_are_gzipped(server: LiveServer) -> None:
    url = f"{server.url}/playground/app.js"
    plain = httpx.get(url, headers={"accept-encoding": "identity"})
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/javascript")
    assert "content-encoding" not in plain.headers and plain.headers["cache-control"] == "no-cache"
    assert plain.content == (STATIC / "app.js").read_bytes()
    etag = plain.headers["etag"]
    again = httpx.get(url, headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    changed = httpx.get(url, headers={"if-none-match": '"another"'})
    assert changed.status_code == 200
    # httpx decodes gzip itself; the raw stream shows what crossed the wire.
    with httpx.stream("GET", url, headers={"accept-encoding": "gzip"}) as packed:
        wire = b"".join(packed.iter_raw())
        assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(wire) == plain.content and len(wire) < len(plain.content)


def test_files_in_subfolders_and_unknown_files(server: LiveServer) -> None:
    sample = httpx.get(f"{server.url}/playground/samples/astronaut.jpg")
    assert sample.status_code == 200 and sample.headers["content-type"] == "image/jpeg"
    assert "content-encoding" not in sample.headers  # JPEG is compressed already
    missing = httpx.get(f"{server.url}/playground/nope.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "MD200"
    escape = httpx.get(f"{server.url}/playground/../app.py")
    assert escape.status_code == 404


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style" or "style" in names:
            self.problems.append(f"inline style on <{tag}>")
        self.problems += [f"{name}= handler on <{tag}>" for name in names if name.startswith("on")]


# What the CSP would refuse, or what would turn model output into markup.
UNSAFE = r"\beval\(|new Function\(|\.(inner|outer)HTML\s*=|insertAdjacentHTML|setAttribute\(\"style\""


def test_no_inline_code_nor_eval_in_the_shipped_files() -> None:
    parser = _Inline()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.problems == []
    ours = [p for p in STATIC.rglob("*.js") if "vendor" not in p.parts]
    assert len(ours) >= 8
    for path in ours:
        source = path.read_text()
        assert not re.search(UNSAFE, source), path


def test_every_vendored_library_has_its_licence_and_origin() -> None:
    vendor = STATIC / "vendor"
    readme = (vendor / "README.md").read_text()
    for folder in (p for p in vendor.iterdir() if p.is_dir()):
        assert (folder / "LICENSE").is_file(), folder
        assert f"`{folder.name}/" in readme, f"{folder.name} is not listed in vendor/README.md"


def test_metrics_json_counts_what_predict_did(server: LiveServer) -> None:
    before = httpx.get(f"{server.url}/v1/metrics").json()["models"]["echo"]
    for text in ("a", "b", ""):
        httpx.post(f"{server.url}/v1/models/echo/predict", json={"inputs": text})
    # Another surface naming the same model (echo is no embed model: 400): the view sums the surfaces.
    assert httpx.post(f"{server.url}/v1/embeddings", json={"model": "echo", "input": "a"}).status_code == 400
    after = httpx.get(f"{server.url}/v1/metrics").json()
    echo = after["models"]["echo"]
    assert after["time"] > 0 and echo["ready"] is True and echo["queue_depth"] == 0
    assert echo["requests"].get("200", 0) - before["requests"].get("200", 0) == 2
    assert echo["requests"].get("422", 0) - before["requests"].get("422", 0) == 1
    assert echo["requests"].get("400", 0) - before["requests"].get("400", 0) == 1
    latency = echo["latency_seconds"]
    assert latency["count"] - before["latency_seconds"]["count"] == 4
    assert latency["le"] == sorted(latency["le"]) and latency["cumulative"] == sorted(latency["cumulative"])
    assert latency["cumulative"][-1] <= latency["count"] and latency["sum"] > 0
    assert echo["batch_size"]["count"] >= 1 and sum(echo["flushes"].values()) == echo["batch_size"]["count"]
    assert "/v1/metrics" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
