"""Builders for the face tests: real photos from scikit-image, and tiny random-weight face embedders.

The astronaut photo (scikit-image's ``astronaut``, 512x512, Eileen Collins) holds one face. Its
reference box, ``ASTRONAUT_FACE``, was measured once and agrees with three independent detectors:
dlib HOG (179, 83, 267, 171) at upsample 0, dlib's CNN (168, 69, 264, 165) and OpenCV's Haar cascade
(177, 66, 272, 161); the 5 landmarks dlib places inside it (eye corners at y~103, nose at
(224, 135)) confirm it is the face. Each detector overlaps it with IoU >= 0.77.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

ASTRONAUT_FACE = (172.0, 70.0, 266.0, 168.0)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def coffee() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.coffee())


def lfw_faces(size: int = 150) -> list[np.ndarray]:
    """scikit-image's ``lfw_subset`` faces (its first 100 images; the other 100 are not faces), 25x25
    grey crops upscaled to ``size`` with bicubic resampling and stacked to RGB."""
    from PIL import Image
    from skimage import data

    out = []
    for face in data.lfw_subset()[:100]:
        grey = Image.fromarray((face * 255).round().astype(np.uint8)).resize((size, size), Image.BICUBIC)
        out.append(np.repeat(np.asarray(grey)[:, :, None], 3, axis=2))
    return out


def jpeg(pixels: np.ndarray, quality: int = 40) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def two_faces(pixels: np.ndarray) -> np.ndarray:
    """The astronaut's face twice side by side on grey, the second at 70% size (so one is clearly largest)."""
    from PIL import Image

    x1, y1, x2, y2 = (int(v) for v in ASTRONAUT_FACE)
    crop = pixels[max(y1 - 50, 0) : y2 + 50, max(x1 - 50, 0) : x2 + 50]
    small = np.asarray(Image.fromarray(crop).resize((int(crop.shape[1] * 0.7), int(crop.shape[0] * 0.7))))
    canvas = np.full((crop.shape[0] + 40, crop.shape[1] + small.shape[1] + 60, 3), 128, dtype=np.uint8)
    canvas[20 : 20 + crop.shape[0], 20 : 20 + crop.shape[1]] = crop
    canvas[20 : 20 + small.shape[0], 40 + crop.shape[1] : 40 + crop.shape[1] + small.shape[1]] = small
    return canvas


def save_random_facenet(path: Path, *, seed: int = 0, with_logits: bool = True) -> Path:
    """A random InceptionResnetV1 state dict saved like facenet-pytorch's checkpoints (classifier head included)."""
    import torch

    from modeldeck.runtimes.facenet import build_inception_resnet_v1

    torch.manual_seed(seed)
    model = build_inception_resnet_v1()
    # Random running statistics, so the BatchNorm layers do something in eval mode.
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = model.state_dict()
    if with_logits:
        state["logits.weight"] = torch.randn(10, 512)
        state["logits.bias"] = torch.zeros(10)
    torch.save(state, path)
    return path


def save_random_onnx_embedder(folder: Path, *, size: int = 32, dim: int = 16, card: dict | None = None) -> Path:
    """A folder holding ``embedder.onnx`` (NCHW float input -> Flatten -> Gemm -> ``dim`` outputs) and the
    ``modeldeck.json`` that declares its preprocessing; returns the folder. The weights are in ``weights.npy``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    weight = (rng.normal(size=(3 * size * size, dim)) / np.sqrt(3 * size * size)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["embedding"]),
        ],
        "tiny_face_embedder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
        initializer=[numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "embedder.onnx"))
    np.save(folder / "weights.npy", weight)
    sidecar = {
        "runtime": "onnxruntime",
        "tasks": ["face-embed", "face-verify"],
        "card": card
        if card is not None
        else {"mean": [127.5, 127.5, 127.5], "std": 128.0, "color": "BGR", "metric": "cosine", "threshold": 0.4},
    }
    (folder / "modeldeck.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return folder


def save_planted_yunet(path: Path, *, side: int = 64) -> Path:
    """A graph with YuNet's twelve outputs (``cls/obj/bbox/kps`` x strides 8, 16, 32) that plants one face
    whatever the image: stride-8 cell (row 3, col 4), score sqrt(0.9 * 0.9), box (24, 12, 48, 44), and
    landmarks ((0.1 * (2n + 1) + 4) * 8, (0.1 * (2n + 2) + 3) * 8) for n = 0..4. The input is fixed at ``side``."""
    import math

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceSum", ["input"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["z"]),  # ties every output to the input
    ]
    inits = [numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]
    outputs = []
    for stride in (8, 16, 32):
        n = (side // stride) ** 2
        arrays = {
            "cls": np.zeros((1, n, 1), np.float32),
            "obj": np.zeros((1, n, 1), np.float32),
            "bbox": np.zeros((1, n, 4), np.float32),
            "kps": np.zeros((1, n, 10), np.float32),
        }
        if stride == 8:
            cell = 3 * (side // 8) + 4
            arrays["cls"][0, cell, 0] = arrays["obj"][0, cell, 0] = 0.9
            arrays["bbox"][0, cell] = [0.5, 0.5, math.log(3), math.log(4)]
            arrays["kps"][0, cell] = np.arange(1, 11) / 10
        for kind, array in arrays.items():
            name = f"{kind}_{stride}"
            inits.append(numpy_helper.from_array(array, f"{name}_planted"))
            nodes.append(helper.make_node("Add", [f"{name}_planted", "z"], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    graph = helper.make_graph(
        nodes,
        "planted_yunet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
