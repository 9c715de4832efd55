"""Store fixtures: a tmp home, settings, catalog entries, and the misbehaving file server of tests/support."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modeldeck.config import Settings

from ..support import FileServer, serve_files


@pytest.fixture
def server() -> Iterator[FileServer]:
    with serve_files() as state:
        yield state


@pytest.fixture
def payload() -> bytes:
    return os.urandom(2 * 1024 * 1024)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home)


def write_catalog(home: Path, entries: list[dict[str, Any]]) -> None:
    (home / "catalog.json").write_text(json.dumps(entries), encoding="utf-8")


def url_entry(name: str, url: str, sha256: str, **source: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tasks": ["embed"],
        "runtime": "onnxruntime",
        "license": "MIT",
        "card": {"dimensions": 8},
        "source": {"kind": "url", "url": url, "sha256": sha256, **source},
    }
