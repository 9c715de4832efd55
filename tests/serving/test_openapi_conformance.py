"""The published OpenAPI document is true: schemathesis, with every check, finds nothing against a live server.

Schemathesis generates requests from ``/openapi.json`` (examples, coverage, fuzzing, stateful
links) and checks each answer: no 5xx, only documented statuses and content types, bodies that
match their schemas, ``Allow`` on 405, invalid data rejected and valid data accepted. Some
rejections the schema cannot express are allowed (see ``_CONFIG``): an unknown model name is 404,
a base64 string that is not an image 422, and so on.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from modeldeck.serving import create_app

from ..support import LiveServer, echo_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# Valid by the schema, refused by what the schema cannot know: which models are served (404),
# whether a string decodes to an image or a text fits the model (413, 422), its load (429, 503, 504).
_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "413", "422", "429", "503", "504"]
"""


_KEY = "k-schemathesis-0123456789"


@pytest.mark.parametrize("keyed", [False, True], ids=["open", "with-api-keys"])
def test_schemathesis_finds_no_failure_with_every_check(live, echo_task, tmp_path, keyed):
    # With keys, the document declares the bearer scheme and schemathesis also checks that
    # requests without the key are refused (ignored_auth).
    keys = {"api_keys": _KEY} if keyed else {}
    settings = echo_settings(tmp_path, gallery=str(tmp_path / "team.db"), **keys)
    server = LiveServer(create_app(settings, loader=lambda spec: echo_task)).start()
    live.append(server)
    server.wait_ready()
    spec = httpx.get(f"{server.url}/openapi.json")
    assert spec.status_code == 200
    operations = sum(len(methods) for methods in spec.json()["paths"].values())
    config = tmp_path / "schemathesis.toml"
    config.write_text(_CONFIG, encoding="utf-8")
    command = [
        sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
        "--config-file", str(config),
        "run", f"{server.url}/openapi.json",
        "--checks", "all",
        "--max-examples", "40",
        "--seed", "1",
        "--workers", "1",
        "--suppress-health-check", "all",
        *(["--header", f"Authorization: Bearer {_KEY}"] if keyed else []),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert f"{operations}/{operations}" in run.stdout and " passed" in run.stdout  # every published route ran
