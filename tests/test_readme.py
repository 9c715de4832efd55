"""The README's examples run and print what the README says they print."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import httpx
import pytest

from modeldeck.config import Settings
from modeldeck.serving import create_app

from .support import LiveServer

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()

pytestmark = pytest.mark.timeout(180)


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_python_tour_runs_and_its_shown_outputs_are_true(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    tour = next(block for block in _blocks("python") if block.startswith("import modeldeck"))
    namespace: dict[str, object] = {}
    lines = tour.splitlines()
    checked = 0
    for number, line in enumerate(lines):
        code = "" if line.startswith("#") else line.split("  #")[0].rstrip()
        if code:
            exec(compile(code, f"README line {number}", "single" if "=" not in code else "exec"), namespace)
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if code and following.startswith("# ") and not code.split("=")[0].strip().isidentifier():
            try:
                expected = ast.literal_eval(following[2:])
            except (ValueError, SyntaxError):
                continue
            assert eval(code, namespace) == expected, f"README line {number}: {code}"
            checked += 1
    assert checked >= 1
    assert namespace["vectors"][0].shape == (384,)  # type: ignore[index]
    hits = namespace["hits"].hits[0]  # type: ignore[attr-defined]
    assert len(hits) == 2 and "a truck" not in {h.text for h in hits}  # top_k=2, the animals win
    assert hits[0].score >= hits[1].score


def test_http_example_answers_what_the_readme_shows(tmp_path):
    curl = next(block for block in _blocks("bash") if "curl" in block)
    body = json.loads(re.search(r"-d '(.*)'", curl).group(1))  # type: ignore[union-attr]
    shown = json.loads(_blocks("json")[0])
    settings = Settings.from_env({}, home=tmp_path, models=("ner",), isolation="thread")
    server = LiveServer(create_app(settings)).start()
    try:
        server.wait_ready()
        answer = httpx.post(f"{server.url}/v1/models/ner/predict", json=body, timeout=60).json()
    finally:
        server.stop()
    assert answer == shown
