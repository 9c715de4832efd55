"""``modeldeck predict`` on images: file inputs, the detections table, ``--json`` and ``--save``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeldeck._draw import colour_for
from modeldeck.cli.main import main

from ..support import EchoTask, echo_info
from ..vision.yolo_graphs import rectangle_finder, ultralytics_metadata

pytestmark = pytest.mark.timeout(120)

NAMES = {0: "cat", 1: "dog", 2: "car"}
RECT = (20, 10, 60, 40)  # the bright rectangle the graph finds, in image pixels


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict-images")
    model = rectangle_finder(root / "rect.onnx", imgsz=(64, 64), metadata=ultralytics_metadata(NAMES, (64, 64)))
    paths = {"model": model}
    for name, size, rect in (("street", (96, 64), RECT), ("park", (80, 80), (8, 30, 40, 70))):
        image = Image.new("RGB", size, (10, 10, 10))
        image.paste((255, 255, 255), rect)
        image.save(root / f"{name}.png")
        paths[name] = root / f"{name}.png"
    other = root / "elsewhere"
    other.mkdir()
    Image.open(paths["park"]).save(other / "street.png")  # same file name as street.png
    paths["street2"] = other / "street.png"
    return paths


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")


def predict(*args: str | Path) -> list[str]:
    return ["predict", "detect", *(str(a) for a in args)]


def test_one_image_prints_a_table_and_saves_the_drawing(files, tmp_path, capsys):
    out = tmp_path / "drawn" / "out.png"
    code = main(predict(files["street"], "--model", files["model"], "--save", out))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "dog" in captured.out and "0.900" in captured.out and "96x64" in captured.out
    assert f"saved {out}" in captured.err
    drawn = np.asarray(Image.open(out).convert("RGB"))
    original = np.asarray(Image.open(files["street"]).convert("RGB"))
    assert drawn.shape == original.shape
    assert tuple(drawn[25, RECT[0]]) == colour_for(1)  # the left edge of the box, in the "dog" colour
    assert np.array_equal(drawn[60, 90], original[60, 90])  # far from the box: untouched


def test_json_matches_the_python_api(files, capsys):
    import modeldeck

    assert main(predict(files["street"], files["park"], "--model", files["model"], "--json")) == 0
    outputs = json.loads(capsys.readouterr().out)
    task = modeldeck.load("detect", model=str(files["model"]))
    assert outputs == [r.to_dict() for r in task([files["street"], files["park"]])]
    assert outputs[0]["detections"][0]["label"] == "dog"
    assert np.allclose(outputs[0]["detections"][0]["box"], RECT, atol=1.0)


def test_several_inputs_save_one_file_each_and_a_missing_one_fails_alone(files, tmp_path, capsys):
    folder = tmp_path / "drawings"
    inputs = [files["street"], tmp_path / "missing.jpg", files["park"], files["street2"]]
    code = main(predict(*inputs, "--model", files["model"], "--save", folder))
    captured = capsys.readouterr()
    assert code == 1  # one input failed; the others were answered and saved
    assert "MD104" in captured.out and "no image file" in captured.out
    assert sorted(p.name for p in folder.iterdir()) == ["park.png", "street-1.png", "street.png"]
    assert Image.open(folder / "street-1.png").size == (80, 80)  # the second street.png, from elsewhere/


def test_one_input_into_an_existing_folder(files, tmp_path, capsys):
    assert main(predict(files["park"], "--model", files["model"], "--save", tmp_path)) == 0
    assert (tmp_path / "park.png").is_file()


def test_file_of_paths_and_stdin(files, tmp_path, monkeypatch, capsys):
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"{files['street']}\n\n{files['park']}\n")
    assert main(predict("--file", listing, "--model", files["model"], "--json")) == 0
    assert [o["width"] for o in json.loads(capsys.readouterr().out)] == [96, 80]
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(f"{files['park']}\n"))
    assert main(predict("-", "--model", files["model"], "--json")) == 0
    assert [o["width"] for o in json.loads(capsys.readouterr().out)] == [80]


def test_bad_save_targets_fail_before_the_model_runs(files, tmp_path, capsys):
    assert main(predict(files["street"], "--model", files["model"], "--save", tmp_path / "out.txt")) == 2
    assert "MD110" in capsys.readouterr().err
    a_file = tmp_path / "taken.png"
    a_file.write_bytes(b"x")
    assert main(predict(files["street"], files["park"], "--model", files["model"], "--save", a_file)) == 2
    assert "folder" in capsys.readouterr().err


def test_save_is_refused_for_text_tasks(monkeypatch, tmp_path, capsys):
    import modeldeck

    monkeypatch.setattr(modeldeck, "load", lambda *a, **k: EchoTask(echo_info()))
    assert main(["predict", "echo", "hello", "--save", str(tmp_path / "x.png")]) == 2
    assert "takes text" in capsys.readouterr().err


def test_as_a_user_runs_it(files, tmp_path):
    env = {"MODELDECK_HOME": str(tmp_path / "home"), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    out = tmp_path / "out.jpg"
    result = subprocess.run(
        [sys.executable, "-m", "modeldeck", *predict(files["street"], "--model", files["model"], "--save", out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "dog" in result.stdout and Image.open(out).format == "JPEG"
