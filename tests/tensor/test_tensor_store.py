"""The store tells a model you bring from its files; its ``modeldeck.json`` is checked; import and show."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.errors import ConfigError, UnknownModelError
from modeldeck.store import ModelStore
from modeldeck.store._infer import infer_layout

from .builders import onnx_affine


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    for var in [v for v in os.environ if v.startswith("MODELDECK_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MODELDECK_HOME", str(path))
    return path


def test_runtimes_are_told_from_the_files(torch_dir, onnx_dir, tmp_path):
    saved = tmp_path / "exported"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    keras_file = tmp_path / "churn.keras"
    keras_file.write_bytes(b"PK")
    assert infer_layout(keras_file) == ("keras", ("tensor",))
    assert infer_layout(saved) == ("tensorflow", ("tensor",))
    assert infer_layout(torch_dir / "two.pt2") == ("torch-export", ("tensor",))
    assert infer_layout(torch_dir / "two.ts") == ("torchscript", ("tensor",))
    assert infer_layout(onnx_dir / "affine.onnx") == ("onnxruntime", ("tensor",))
    # A TorchScript archive saved as .pt is still TorchScript; a face task's .pt stays a state dict.
    renamed = tmp_path / "scripted.pt"
    shutil.copy(torch_dir / "two.ts", renamed)
    assert infer_layout(renamed) == ("torchscript", ("tensor",))
    assert infer_layout(torch_dir / "pickled.pt", "face-embed") == ("torch", ("face-embed", "face-verify"))
    assert infer_layout(onnx_dir / "affine.onnx", "detect") == ("onnxruntime", ("detect",))


def test_an_ultralytics_export_still_infers_detect(onnx_dir):
    assert infer_layout(onnx_dir / "yolo-like.onnx") == ("onnxruntime", ("detect", "tensor"))


def test_sidecar_names_task_and_labels_and_rejects_unknown_keys(onnx_dir, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    model = onnx_affine(folder / "classifier.onnx")
    (folder / "classifier.modeldeck.json").write_text(json.dumps({"labels": ["no", "yes"], "license": "MIT"}))
    store = ModelStore(Settings.from_env({}, home=tmp_path / "home"))
    info = store.resolve(str(model))
    assert info.tasks == ("tensor",) and info.card == {"labels": ["no", "yes"], "license": "MIT"}
    (folder / "classifier.modeldeck.json").write_text(json.dumps({"labels": ["no", "yes"], "lables": []}))
    with pytest.raises(ConfigError, match="unknown key 'lables'") as caught:
        store.resolve(str(model))
    assert "valid keys" in str(caught.value) and "labels" in str(caught.value)
    (folder / "classifier.modeldeck.json").write_text(json.dumps({"preprocessing": {"size": 224, "colour": "RGB"}}))
    with pytest.raises(ConfigError, match=r"preprocessing\.colour"):
        store.resolve(str(model))


def test_a_sidecar_declares_a_torchscript_signature(torch_dir, tmp_path):
    import numpy as np

    folder = tmp_path / "ts"
    folder.mkdir()
    shutil.copy(torch_dir / "two.ts", folder / "two.ts")
    declared = {
        "inputs": [
            {"name": "features", "dtype": "float32", "shape": [None, 4]},
            {"name": "mask", "dtype": "float32", "shape": [None, 2]},
        ]
    }
    (folder / "modeldeck.json").write_text(json.dumps(declared))
    task = modeldeck.load(str(folder / "two.ts"))
    assert task.signature()["inputs"] == declared["inputs"]
    with pytest.raises(modeldeck.ModelDeckError, match=r"shape \[3\]"):
        task({"features": [1, 2, 3], "mask": [1, 1]})
    assert task({"features": np.ones(4), "mask": [1, 0]})["logits"].shape == (2,)
    (folder / "modeldeck.json").write_text(json.dumps({"inputs": [{"name": "x"}, {"name": "mask"}]}))
    with pytest.raises(ConfigError, match=r"declares inputs \['x', 'mask'\], but the model's are"):
        modeldeck.load(str(folder / "two.ts"))


def test_unknown_files_are_still_refused(tmp_path):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0")
    with pytest.raises(UnknownModelError, match=r"\.keras file, a SavedModel directory"):
        infer_layout(other)


def test_models_import_then_show_prints_the_signature(home, onnx_dir, capsys):
    assert main(["models", "import", str(onnx_dir / "affine.onnx"), "--name", "churn"]) == 0
    assert "imported" in capsys.readouterr().out
    assert main(["models", "show", "churn"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["resolved"]["runtime"] == "onnxruntime" and shown["resolved"]["tasks"] == ["tensor"]
    assert shown["signature"]["inputs"] == [{"name": "x", "dtype": "float32", "shape": [None, 3]}]
    assert [o["name"] for o in shown["signature"]["outputs"]] == ["y", "argmax"]
    loaded = modeldeck.load("churn")
    assert loaded.name == "tensor" and loaded({"x": [1, 2, 3]})["y"].shape == (2,)


def test_cli_predict_reads_json_examples(home, onnx_dir, capsys):
    model = str(onnx_dir / "ids.onnx")
    code = main(["predict", "tensor", '{"ids": [1, 2, 3]}', '{"ids": [1.5, 2, 3]}', "--model", model, "--json"])
    outputs = json.loads(capsys.readouterr().out)
    assert code == 1  # one input failed
    assert outputs[0] == {"outputs": [{"name": "total", "dtype": "int64", "shape": [], "data": [6]}]}
    assert outputs[1]["error"]["code"] == "MD123"
    assert main(["predict", "tensor", "{not json", "--model", model]) == 2
    assert "is not JSON" in capsys.readouterr().err
