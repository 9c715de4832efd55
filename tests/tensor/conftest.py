"""Model files for the tensor tests, built once per session (Keras through a TensorFlow subprocess)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .builders import build_keras, build_torch, onnx_affine, onnx_ids


@pytest.fixture(scope="session")
def keras_dir(tmp_path_factory) -> Path:
    return build_keras(tmp_path_factory.mktemp("keras"))


@pytest.fixture(scope="session")
def keras_refs(keras_dir) -> dict[str, np.ndarray]:
    with np.load(keras_dir / "refs.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def torch_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("torch")
    build_torch(folder)
    return folder


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    onnx_affine(folder / "affine.onnx")
    onnx_affine(folder / "affine1.onnx", batch=1)
    onnx_affine(folder / "yolo-like.onnx", metadata={"task": "detect", "author": "Ultralytics"})
    onnx_ids(folder / "ids.onnx")
    return folder
