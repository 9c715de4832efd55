"""A small ONNX image classifier built with onnx.helper: the mean colour of an image, then a linear layer.

Its answer is easy to compute with NumPy, and a mostly red, green or blue image is classified as such.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = ["red", "green", "blue", "grey"]
WEIGHTS = np.array([[4.0, -2, -2], [-2, 4, -2], [-2, -2, 4], [1, 1, 1]], dtype=np.float32)
BIAS = np.array([0.0, 0.0, 0.0, -1.0], dtype=np.float32)


def colour_graph(path: Path, batch: int | None) -> Path:
    """Mean colour per channel (GlobalAveragePool), then a linear layer to four logits."""
    dim: Any = "batch" if batch is None else batch
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "colour_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [dim, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [dim, 4])],
        initializer=[numpy_helper.from_array(WEIGHTS, "W"), numpy_helper.from_array(BIAS, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


#: The modeldeck.json the colour classifier is served with: its labels and ImageNet normalisation.
SIDECAR = {"labels": CLASSES, "preprocessing": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}


def colour_model(folder: Path, batch: int | None = None) -> Path:
    """The colour classifier with its ``colour.modeldeck.json`` sidecar, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    file = colour_graph(folder / "colour.onnx", batch)
    (folder / "colour.modeldeck.json").write_text(json.dumps(SIDECAR))
    return file
