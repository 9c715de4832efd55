"""Tiny tensor models built in the tests: TorchScript, torch.export and ONNX files with random weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

BUILD_KERAS = Path(__file__).with_name("build_keras.py")


def build_keras(folder: Path) -> Path:
    """Run ``build_keras.py`` in a fresh interpreter on the TensorFlow backend (see its docstring)."""
    env = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(BUILD_KERAS), str(folder)], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def _torch_module():
    import torch

    class TwoInputs(torch.nn.Module):
        """``features`` (4,) and ``mask`` (2,) in; ``logits`` (2,) and ``total`` () out, as a dict."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, features: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.linear(features) * mask, "total": features.sum(-1)}

    torch.manual_seed(0)
    return TwoInputs().eval()


def small_cnn():
    import torch

    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 5),
    ).eval()


def build_torch(folder: Path) -> dict[str, Path]:
    """``two.ts`` (scripted, dict outputs), ``cnn.ts`` (traced), ``two.pt2`` (dynamic batch), ``one.pt2``
    (exported with a fixed batch of 1), and ``pickled.pt`` (a whole module through ``torch.save``)."""
    import torch

    two = _torch_module()
    cnn = small_cnn()
    torch.jit.script(two).save(str(folder / "two.ts"))
    torch.jit.trace(cnn, torch.rand(2, 3, 16, 16)).save(str(folder / "cnn.ts"))
    batch = torch.export.Dim("batch")
    example = (torch.rand(3, 4), torch.ones(3, 2))
    program = torch.export.export(two, example, dynamic_shapes={"features": {0: batch}, "mask": {0: batch}})
    torch.export.save(program, str(folder / "two.pt2"))
    torch.export.save(torch.export.export(cnn, (torch.rand(1, 3, 16, 16),)), str(folder / "one.pt2"))
    torch.save(torch.nn.Linear(4, 2), str(folder / "pickled.pt"))
    return {p.stem + p.suffix: p for p in folder.iterdir()}


def onnx_affine(path: Path, *, batch: int | None = None, metadata: dict[str, str] | None = None) -> Path:
    """``y = x @ W + b`` with ``x`` (batch, 3) float32 and a second output ``argmax`` (batch,) int64."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    weight = rng.normal(size=(3, 2)).astype(np.float32)
    bias = rng.normal(size=(2,)).astype(np.float32)
    dim = batch if batch is not None else "N"
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
            helper.make_node("ArgMax", ["y"], ["argmax"], axis=1, keepdims=0),
        ],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim, 3])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [dim, 2]),
            helper.make_tensor_value_info("argmax", TensorProto.INT64, [dim]),
        ],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return path


def affine_reference(x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(3, 2)).astype(np.float32)
    bias = rng.normal(size=(2,)).astype(np.float32)
    return x.astype(np.float32) @ weight + bias


def onnx_ids(path: Path) -> Path:
    """``ids`` (batch, 3) int64 -> ``total`` (batch,) int64: a model that takes integers."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["ids", "axes"], ["total"], keepdims=0)],
        "ids",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 3])],
        [helper.make_tensor_value_info("total", TensorProto.INT64, ["N"])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
