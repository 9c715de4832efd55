"""API keys (401 / 403, constant time, exempt routes, gallery-write keys), and serve when a model fails to load."""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx
import openai
import pytest

from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.errors import AuthError, ConfigError, ForbiddenError
from modeldeck.serving import auth, create_app
from modeldeck.serving.auth import ApiKeys, warn_if_exposed

from ..support import LiveServer, echo_settings, free_port

pytestmark = pytest.mark.timeout(90)

KEY = "k-general-0123456789"
GALLERY_KEY = "k-gallery-0123456789"


@pytest.fixture
def keyed(live, echo_task, tmp_path):
    settings = echo_settings(tmp_path, api_keys=KEY, gallery_keys=GALLERY_KEY, gallery=str(tmp_path / "team.db"))
    server = LiveServer(create_app(settings, loader=lambda spec: echo_task)).start()
    live.append(server)
    assert httpx.get(f"{server.url}/readyz").status_code in (200, 503)  # exempt: answers without a key
    server.wait_ready()
    return server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_routes_need_a_key_and_say_how_to_send_it(keyed):
    url = f"{keyed.url}/v1/models/echo/predict"
    missing = httpx.post(url, json={"inputs": "a"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "MD800"
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json={"inputs": "a"}, headers=bearer("k-wrong-0123456789"))
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]
    assert httpx.post(url, json={"inputs": "a"}, headers={"Authorization": KEY}).status_code == 401  # no scheme
    assert httpx.post(url, json={"inputs": "a"}, headers=bearer(KEY)).json()["outputs"] == [{"text": "a"}]
    assert httpx.get(f"{keyed.url}/v1/models").status_code == 401
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert httpx.get(f"{keyed.url}{path}").status_code == 200, path


def test_gallery_writes_need_a_gallery_key(keyed):
    url = f"{keyed.url}/v1/gallery/people/ada/images"
    forbidden = httpx.post(url, json={"images": []}, headers=bearer(KEY))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "MD801"
    assert "MODELDECK_GALLERY_KEYS" in forbidden.json()["error"]["message"]
    assert httpx.delete(f"{keyed.url}/v1/gallery/people/ada", headers=bearer(KEY)).status_code == 403
    # The gallery key gets past the check (the empty enrolment is then the route's own 4xx).
    allowed = httpx.post(url, json={"images": []}, headers=bearer(GALLERY_KEY))
    assert allowed.status_code not in (401, 403) and 400 <= allowed.status_code < 500
    # Reads need only a key; the gallery key works everywhere.
    assert httpx.get(f"{keyed.url}/v1/gallery/people", headers=bearer(KEY)).status_code not in (401, 403)
    predicted = httpx.post(f"{keyed.url}/v1/models/echo/predict", json={"inputs": "b"}, headers=bearer(GALLERY_KEY))
    assert predicted.status_code == 200


def test_the_openai_client_passes_its_api_key(keyed):
    client = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == ["echo"]
    stranger = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="k-wrong-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()


def test_keys_come_from_the_environment_and_a_key_file(tmp_path):
    path = tmp_path / "keys"
    path.write_text("# team keys\nk-from-file-0001\n\n  k-from-file-0002  # ci\n", encoding="utf-8")
    settings = Settings.from_env({"MODELDECK_API_KEYS": "k-from-env-00001", "MODELDECK_API_KEY_FILE": str(path)})
    keys = ApiKeys.from_settings(settings)
    for key in ("k-from-env-00001", "k-from-file-0001", "k-from-file-0002"):
        keys.check("GET", "/v1/models", f"Bearer {key}")
    with pytest.raises(AuthError):
        keys.check("GET", "/v1/models", "Bearer k-from-file-0003")
    assert "k-from-env" not in repr(settings)  # keys never reach logs through the settings' repr
    with pytest.raises(ConfigError, match="cannot be read"):
        ApiKeys.from_settings(Settings.from_env({}, api_key_file=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match="at least 8 characters"):
        ApiKeys(["short"])


def test_only_gallery_writes_are_closed_when_only_gallery_keys_are_set():
    keys = ApiKeys([], [GALLERY_KEY])
    keys.check("POST", "/v1/models/echo/predict", None)
    keys.check("GET", "/v1/gallery/people", None)
    with pytest.raises(AuthError):
        keys.check("DELETE", "/v1/gallery/people/ada", None)
    both = ApiKeys([KEY], [GALLERY_KEY])
    both.check("POST", "/v1/gallery/identify", f"Bearer {KEY}")  # a POST that only reads
    with pytest.raises(ForbiddenError):
        both.check("DELETE", "/v1/gallery/images/3", f"Bearer {KEY}")


def test_every_key_is_compared_in_constant_time(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    keys = ApiKeys(["k-first-000000", "k-second-00000", "k-third-000000"])
    keys.check("GET", "/v1/models", "Bearer k-first-000000")
    assert len(calls) == 3  # no early exit on the first match


def test_binding_beyond_loopback_without_a_key_warns(caplog):
    caplog.set_level(logging.WARNING, logger="modeldeck.serving")
    open_keys = ApiKeys([])
    assert not warn_if_exposed(Settings.from_env({}, host="127.0.0.1"), open_keys)
    assert not warn_if_exposed(Settings.from_env({}, host="::1"), open_keys)
    assert not warn_if_exposed(Settings.from_env({}, host="0.0.0.0"), ApiKeys([KEY]))
    assert warn_if_exposed(Settings.from_env({}, host="0.0.0.0"), open_keys)
    assert "--api-key" in caplog.text and "MODELDECK_API_KEYS" in caplog.text


# -- a model that fails to load ----------------------------------------------------------------


def test_serve_exits_non_zero_when_a_model_fails_to_load(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    code = main(["serve", "--models", "nerr", "--port", str(free_port()), "--log-level", "error"])
    assert code == 5
    err = capsys.readouterr().err
    assert "MD604" in err and "nerr" in err and "--allow-failed-models" in err


def test_with_failures_allowed_the_others_are_served_and_readyz_says_which_failed(live, echo_task, tmp_path):
    def loader(spec: Any) -> Any:
        if spec.alias == "broken":
            raise RuntimeError("weights are corrupt")
        return echo_task

    settings = Settings.from_env({}, home=tmp_path, models=("echo", "broken=nerr"), allow_failed_models=True)
    server = LiveServer(create_app(settings, loader=loader)).start()
    live.append(server)
    server.wait_ready()
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "degraded", "models": {"echo": "ready", "broken": "failed"}}
    assert httpx.post(f"{server.url}/v1/models/echo/predict", json={"inputs": "a"}).status_code == 200
    failed = httpx.post(f"{server.url}/v1/models/broken/predict", json={"inputs": "a"})
    assert failed.status_code == 503 and "weights are corrupt" in failed.text


def test_without_failures_allowed_readyz_says_failed_not_loading(live, tmp_path):
    stopped = threading.Event()

    def broken(spec: Any) -> Any:
        raise RuntimeError("weights are corrupt")

    app = create_app(echo_settings(tmp_path), loader=broken)
    app.state.stop_server = stopped.set  # what serve() installs to stop uvicorn
    server = LiveServer(app).start()
    live.append(server)
    assert stopped.wait(20)
    body = httpx.get(f"{server.url}/readyz")
    assert body.status_code == 503 and body.json() == {"status": "failed", "models": {"echo": "failed"}}


def test_modeldeck_bench_sends_its_key(keyed, monkeypatch, capsys):
    import asyncio

    from modeldeck.cli._bench import run_bench

    refused = asyncio.run(run_bench(keyed.url, "echo", concurrency=1, requests=2, duration=None))
    assert refused.errors == {"401": 2}
    report = asyncio.run(run_bench(keyed.url, "echo", concurrency=2, requests=6, duration=None, api_key=KEY))
    assert report.ok == 6 and report.errors == {}
    monkeypatch.setenv("MODELDECK_API_KEY", KEY)
    assert main(["bench", "--url", keyed.url, "--model", "echo", "--requests", "4", "--json"]) == 0


def test_the_openapi_document_declares_the_bearer_scheme_when_keys_are_on(keyed, live, echo_task, tmp_path):
    spec = httpx.get(f"{keyed.url}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a key from MODELDECK_API_KEYS, as Authorization: Bearer <key>",
    }
    assert spec["paths"]["/v1/models/{name}/predict"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    open_server = LiveServer(create_app(echo_settings(tmp_path / "open"), loader=lambda spec: echo_task)).start()
    live.append(open_server)
    assert "securitySchemes" not in httpx.get(f"{open_server.url}/openapi.json").json().get("components", {})
