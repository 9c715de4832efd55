"""A deck sets the ONNX Runtime session options of each model it serves, and ``/v1/models/{name}`` shows them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modeldeck.config import Settings
from modeldeck.serving import create_app

from ..support import LiveServer
from ..tensor.builders import onnx_affine

pytestmark = pytest.mark.timeout(180)


def _serve(live: list[LiveServer], settings: Settings) -> LiveServer:
    server = LiveServer(create_app(settings)).start()
    live.append(server)
    server.wait_ready()
    return server


def _session(server: LiveServer, name: str) -> dict[str, object]:
    detail = httpx.get(f"{server.url}/v1/models/{name}", timeout=30).json()
    assert detail["runtime"]["name"] == "onnxruntime"
    return detail["runtime"]["session"]  # type: ignore[no-any-return]


def test_each_served_name_gets_its_own_entry(live, tmp_path: Path) -> None:
    path = onnx_affine(tmp_path / "affine.onnx")
    settings = Settings.from_env(
        {"MODELDECK_ONNX_THREADS": "2,affine=1", "MODELDECK_ONNX_GRAPH_LEVEL": "affine=basic"},
        home=tmp_path / "home",
        models=(f"affine=tensor:{path}", f"other=tensor:{path}"),
        isolation="thread",
    )
    server = _serve(live, settings)
    assert _session(server, "affine") == {"intra_op_threads": 1, "inter_op_threads": 1, "graph_level": "basic"}
    assert _session(server, "other") == {"intra_op_threads": 2, "inter_op_threads": 1, "graph_level": "all"}
    answer = httpx.post(f"{server.url}/v1/models/affine/predict", json={"inputs": {"x": [1.0, 2.0, 3.0]}}, timeout=30)
    assert answer.status_code == 200, answer.text


def test_a_worker_process_builds_its_session_with_the_deck_options(live, tmp_path: Path) -> None:
    path = onnx_affine(tmp_path / "affine.onnx")
    settings = Settings.from_env(
        {"MODELDECK_ONNX_THREADS": "affine=1", "MODELDECK_ONNX_GRAPH_LEVEL": "disable"},
        home=tmp_path / "home",
        models=(f"affine=tensor:{path}",),
        isolation="process",
    )
    server = _serve(live, settings)
    detail = httpx.get(f"{server.url}/v1/models/affine", timeout=30).json()
    assert detail["isolation"] == "process" and detail["worker_pid"] is not None
    assert detail["runtime"]["session"] == {"intra_op_threads": 1, "inter_op_threads": 1, "graph_level": "disable"}
