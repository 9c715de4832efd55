"""`modeldeck serve` flags for ONNX Runtime sessions and the variant preference reach the server's settings."""

from __future__ import annotations

from typing import Any

import pytest

import modeldeck.serving
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.types import OnnxSessionOptions


@pytest.fixture
def served(monkeypatch, tmp_path) -> list[Settings]:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path))
    seen: list[Settings] = []

    def fake_serve(settings: Settings, **kwargs: Any) -> None:
        seen.append(settings)

    monkeypatch.setattr(modeldeck.serving, "serve", fake_serve)
    return seen


def test_onnx_and_variant_flags_become_settings(served: list[Settings]) -> None:
    flags = ["--onnx-threads", "2,embed=1", "--onnx-graph-level", "embed=basic", "--prefer-variant", "onnx"]
    assert main(["serve", "--models", "embed", *flags]) == 0
    (settings,) = served
    assert settings.onnx_session("embed") == OnnxSessionOptions(threads=1, graph_level="basic")
    assert settings.onnx_session("ner") == OnnxSessionOptions(threads=2, graph_level="all")
    assert settings.prefer_variant == "onnx"


def test_a_bad_flag_value_exits_with_the_rule(served: list[Settings], capsys) -> None:
    assert main(["serve", "--models", "embed", "--onnx-graph-level", "max"]) == 2
    err = capsys.readouterr().err
    assert "MODELDECK_ONNX_GRAPH_LEVEL" in err and "disable, basic, extended, all" in err and "'max'" in err
    assert not served
