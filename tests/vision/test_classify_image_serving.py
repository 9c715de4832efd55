"""classify-image served (a real worker process loading the model) and run as a job over an image folder."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.serving import create_app

from ..support import LiveServer
from .classifier_graphs import CLASSES, colour_model

pytestmark = pytest.mark.timeout(180)

COLOURS = {"red": (230, 20, 30), "green": (10, 220, 40), "blue": (20, 30, 240)}


def png(rgb: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, rgb).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_model(tmp_path_factory.mktemp("colour"))


@pytest.mark.slow
def test_served_in_a_worker_process(model: Path, tmp_path: Path, live: list[LiveServer]) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", models=(f"colours=classify-image:{model}",))
    server = LiveServer(create_app(settings)).start()  # no loader: the worker process loads the file itself
    live.append(server)
    server.wait_ready(timeout=150)
    url = f"{server.url}/v1/models/colours/predict"
    local: Any = modeldeck.load("classify-image", model=str(model))

    inputs = [base64.b64encode(png(rgb)).decode() for rgb in COLOURS.values()]
    response = httpx.post(url, json={"inputs": [*inputs, "bm90IGFuIGltYWdl"], "options": {"top_k": 2}}, timeout=60)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert [o["labels"][0]["label"] for o in outputs[:3]] == list(COLOURS)
    for rgb, out in zip(COLOURS.values(), outputs, strict=False):
        assert out == local(png(rgb), top_k=2).to_dict()  # the served answer is the local one
    assert outputs[3]["error"]["code"] == "MD104"  # a bad image fails alone

    upload = httpx.post(url, files=[("image", ("g.png", png(COLOURS["green"]), "image/png"))], timeout=60)
    assert upload.status_code == 200 and upload.json()["outputs"][0]["labels"][0]["label"] == "green"
    rendered = httpx.post(
        url + "?render=png", files=[("image", ("b.png", png(COLOURS["blue"], (200, 120)), "image/png"))], timeout=60
    )
    assert rendered.status_code == 200 and rendered.headers["content-type"] == "image/png"
    drawn = np.asarray(PILImage.open(io.BytesIO(rendered.content)).convert("RGB"))
    assert drawn.shape == (120, 200, 3) and (drawn[:20, :40] != COLOURS["blue"]).any()  # the tag in the corner
    bad = httpx.post(url, json={"inputs": inputs[0], "options": {"top_k": 0}}, timeout=60)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "MD110"
    info = httpx.get(f"{server.url}/v1/models/colours", timeout=30).json()
    assert info["task"] == "classify-image"


def test_run_over_an_image_folder(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    (photos / "r.png").write_bytes(png(COLOURS["red"]))
    (photos / "more" / "b.png").write_bytes(png(COLOURS["blue"], (30, 90)))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    code = main(["run", "classify-image", "--model", str(model), "--input", str(photos), "--output", str(out),
                 "--quiet", "-o", "top_k=4"])  # fmt: skip
    assert code == 0
    rows = {r["path"]: r for r in pq.read_table(out).to_pylist()}
    assert sorted(rows) == ["broken.jpg", "more/b.png", "r.png"]
    assert rows["broken.jpg"]["result"] is None and rows["broken.jpg"]["error"]["code"] == "MD104"
    for path, colour in (("r.png", "red"), ("more/b.png", "blue")):
        labels = rows[path]["result"]["labels"]
        assert rows[path]["error"] is None and labels[0]["label"] == colour
        assert sorted(lab["label"] for lab in labels) == sorted(CLASSES)
        assert sum(lab["score"] for lab in labels) == pytest.approx(1.0)
