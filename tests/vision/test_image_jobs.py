"""Image tasks in batch jobs: a folder of photos through ``modeldeck run detect``, a bad file recorded per row."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
from PIL import Image as PILImage

from modeldeck.cli.main import main

from . import yolo_graphs as graphs

NAMES = {0: "zero", 1: "box", 2: "two"}


def _png(width: int, height: int, rect: tuple[int, int, int, int]) -> bytes:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    x1, y1, x2, y2 = rect
    pixels[y1:y2, x1:x2] = 255
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_run_detect_over_an_image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    model = graphs.rectangle_finder(tmp_path / "finder.onnx", metadata=graphs.ultralytics_metadata(NAMES))
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    rects = {"a.png": (640, 480, (100, 50, 300, 200)), "sub/b.png": (300, 900, (20, 400, 120, 700))}
    for name, (w, h, rect) in rects.items():
        (photos / name).write_bytes(_png(w, h, rect))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "notes.txt").write_text("not an image")  # skipped by extension, never a row

    code = main(["run", "detect", "--model", str(model), "--input", str(photos), "--output", str(tmp_path / "out"),
                 "--quiet"])  # fmt: skip
    assert code == 0
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "out").to_pylist()}
    assert sorted(rows) == ["a.png", "broken.jpg", "sub/b.png"]
    assert rows["broken.jpg"]["result"] is None and rows["broken.jpg"]["error"]["code"] == "MD104"
    for name, (w, h, rect) in rects.items():
        result = rows[name]["result"]
        assert rows[name]["error"] is None and (result["width"], result["height"]) == (w, h)
        [det] = result["detections"]
        assert det["label"] == "box"
        # The finder's edges are exclusive; letterbox rounding moves them by at most one source pixel.
        np.testing.assert_allclose(det["box"], rect, atol=max(1.0, max(w, h) / 640) + 0.5)
