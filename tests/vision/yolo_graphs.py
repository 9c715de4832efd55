"""Small ONNX graphs shaped like ultralytics YOLO exports, built with onnx.helper for the tests and the benchmark.

* ``planted_graph``: outputs a constant (the "planted" head output, and prototypes for a
  segmenter) tied to the batch size of the input, in either head layout.
* ``rectangle_finder``: finds the bright rectangle drawn on a dark image (in letterboxed input
  pixels) and reports it as anchor 0 of a plain head, so each image gets its own answer.
* ``conv_graph``: a random-weight conv net with YOLO's input and output shapes (strides 8/16/32,
  ``[B, 4 + nc, 8400]`` at 640), for the real forward path and the benchmark.

Metadata is written the way ultralytics writes it: every value ``str()``-ed, ``names`` a dict literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
COCO = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip


def ultralytics_metadata(
    names: Mapping[int, str] | None, imgsz: tuple[int, int] = (640, 640), *, task: str = "detect", **extra: object
) -> dict[str, str]:
    """The custom metadata map an ultralytics export carries (values ``str()``-ed as the exporter does)."""
    meta: dict[str, object] = {
        "description": "Ultralytics YOLO11n model (test double)",
        "author": "Ultralytics",
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "stride": 32,
        "task": task,
        "batch": 1,
        "imgsz": list(imgsz),
    }
    if names is not None:
        meta["names"] = dict(names)
    meta.update(extra)
    return {k: str(v) for k, v in meta.items()}


def _save(nodes, inputs, outputs, inits, path: Path, metadata: Mapping[str, str] | None) -> Path:
    graph = helper.make_graph(nodes, "yolo_test_double", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="pytorch")
    model.ir_version = IR_VERSION
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _images(batch: int | None, imgsz: tuple[int, int]):
    return helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch or "batch", 3, *imgsz])


def _const(name: str, array: np.ndarray):
    return numpy_helper.from_array(np.ascontiguousarray(array), name=name)


def planted_graph(
    path: Path,
    planted: np.ndarray,
    *,
    protos: np.ndarray | None = None,
    imgsz: tuple[int, int] = (640, 640),
    batch: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """A graph whose detection output is ``planted`` for every image (``(C, N)`` plain or ``(K, 6+nm)`` e2e).

    With ``protos`` (``(nm, h, w)``) it also outputs them as ``output1``, as a segmenter does.
    """
    planted = np.asarray(planted, dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero_scalar"], ["zero_b"]),
        helper.make_node("Unsqueeze", ["zero_b", "axes_12"], ["zero_3"]),
        helper.make_node("Add", ["planted", "zero_3"], ["output0"]),
    ]
    inits = [
        _const("zero_scalar", np.zeros((), np.float32)),
        _const("axes_12", np.array([1, 2], np.int64)),
        _const("planted", planted[None]),
    ]
    outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch or "batch", *planted.shape])]
    if protos is not None:
        protos = np.asarray(protos, dtype=np.float32)
        nodes += [
            helper.make_node("Unsqueeze", ["zero_b", "axes_123"], ["zero_4"]),
            helper.make_node("Add", ["protos", "zero_4"], ["output1"]),
        ]
        inits += [_const("axes_123", np.array([1, 2, 3], np.int64)), _const("protos", protos[None])]
        outputs.append(helper.make_tensor_value_info("output1", TensorProto.FLOAT, [batch or "batch", *protos.shape]))
    return _save(nodes, [_images(batch, imgsz)], outputs, inits, path, metadata)


def rectangle_finder(
    path: Path,
    *,
    nc: int = 3,
    class_id: int = 1,
    score: float = 0.9,
    anchors: int = 64,
    imgsz: tuple[int, int] = (640, 640),
    batch: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Plain head whose anchor 0 is the box around the pixels brighter than 0.5 in the red channel.

    Edges are exclusive (``x2`` is one past the last bright column), in letterboxed input pixels;
    the other anchors score zero. The image must hold a bright rectangle on a dark background.
    """
    h, w = imgsz
    nodes = [
        helper.make_node("Slice", ["images", "c0", "c1", "c1"], ["red"]),  # [B, 1, H, W]
        helper.make_node("Greater", ["red", "half"], ["bright_b"]),
        helper.make_node("Cast", ["bright_b"], ["bright"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["bright"], ["cols"], axes=[1, 2], keepdims=0),  # [B, W]
        helper.make_node("ReduceMax", ["bright"], ["rows"], axes=[1, 3], keepdims=0),  # [B, H]
    ]
    for axis, profile in (("x", "cols"), ("y", "rows")):
        nodes += [
            helper.make_node("ArgMax", [profile], [f"{axis}1_i"], axis=1, keepdims=1),
            helper.make_node("Slice", [profile, "minus1", "very_negative", "one", "minus1"], [f"{profile}_rev"]),
            helper.make_node("ArgMax", [f"{profile}_rev"], [f"{axis}2_back"], axis=1, keepdims=1),
            helper.make_node("Cast", [f"{axis}1_i"], [f"{axis}1"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [f"{axis}2_back"], [f"{axis}2_backf"], to=TensorProto.FLOAT),
            helper.make_node("Sub", [f"size_{axis}", f"{axis}2_backf"], [f"{axis}2"]),
            helper.make_node("Add", [f"{axis}1", f"{axis}2"], [f"{axis}_sum"]),
            helper.make_node("Mul", [f"{axis}_sum", "halff"], [f"c{axis}"]),
            helper.make_node("Sub", [f"{axis}2", f"{axis}1"], [f"d{axis}"]),
        ]
    scores = np.zeros((nc, 1), np.float32)
    scores[class_id, 0] = score
    nodes += [
        helper.make_node("Concat", ["cx", "cy", "dx", "dy"], ["box"], axis=1),  # [B, 4]
        helper.make_node("Unsqueeze", ["box", "two"], ["box3"]),  # [B, 4, 1]
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero_scalar"], ["zero_b"]),
        helper.make_node("Unsqueeze", ["zero_b", "axes_12"], ["zero_3"]),
        helper.make_node("Add", ["scores", "zero_3"], ["scores_b"]),  # [B, nc, 1]
        helper.make_node("Add", ["rest", "zero_3"], ["rest_b"]),  # [B, 4 + nc, anchors - 1]
        helper.make_node("Concat", ["box3", "scores_b"], ["anchor0"], axis=1),
        helper.make_node("Concat", ["anchor0", "rest_b"], ["output0"], axis=2),
    ]
    rest = np.zeros((1, 4 + nc, anchors - 1), np.float32)
    rest[0, :4] = 10.0  # harmless boxes that score zero
    inits = [
        _const("c0", np.array([0], np.int64)),
        _const("c1", np.array([1], np.int64)),
        _const("one", np.array([1], np.int64)),
        _const("two", np.array([2], np.int64)),
        _const("minus1", np.array([-1], np.int64)),
        _const("very_negative", np.array([np.iinfo(np.int64).min], np.int64)),
        _const("half", np.array(0.5, np.float32)),
        _const("halff", np.array(0.5, np.float32)),
        _const("size_x", np.array(float(w), np.float32)),
        _const("size_y", np.array(float(h), np.float32)),
        _const("zero_scalar", np.zeros((), np.float32)),
        _const("axes_12", np.array([1, 2], np.int64)),
        _const("scores", scores[None]),
        _const("rest", rest),
    ]
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch or "batch", 4 + nc, anchors])
    return _save(nodes, [_images(batch, imgsz)], [out], inits, path, metadata)


class _Builder:
    """Random-weight conv layers (He-initialised, SiLU) appended to one node list."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.flops = 0
        self._n = 0

    def conv(self, x: str, cin: int, cout: int, hw: int, *, k: int = 3, stride: int = 1, act: bool = True,
             bias: np.ndarray | None = None) -> str:  # fmt: skip
        self._n += 1
        name = f"conv{self._n}"
        weight = self.rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
        b = np.zeros(cout, np.float32) if bias is None else bias.astype(np.float32)
        self.inits += [_const(f"{name}.w", weight), _const(f"{name}.b", b)]
        pad = k // 2
        self.nodes.append(
            helper.make_node(
                "Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.y"], kernel_shape=[k, k], strides=[stride, stride],
                pads=[pad, pad, pad, pad],
            )
        )  # fmt: skip
        out_hw = hw // stride
        self.flops += 2 * cin * cout * k * k * out_hw * out_hw
        if not act:
            return f"{name}.y"
        self.nodes += [
            helper.make_node("Sigmoid", [f"{name}.y"], [f"{name}.s"]),
            helper.make_node("Mul", [f"{name}.y", f"{name}.s"], [f"{name}.a"]),
        ]
        return f"{name}.a"


def conv_graph(
    path: Path,
    *,
    imgsz: int = 640,
    nc: int = 80,
    width: int = 24,
    batch: int | None = None,
    seg: bool = False,
    nm: int = 32,
    class_bias: float = -4.75,
    seed: int = 0,
    metadata: Mapping[str, str] | None = None,
) -> tuple[Path, int]:
    """A YOLO-shaped random conv net; returns ``(path, flops per image)``.

    Outputs ``[B, 4 + nc (+ nm), A]`` with ``A = (s/8)² + (s/16)² + (s/32)²`` (8400 at 640):
    centres within a stride of their grid cell, sizes up to 8 strides, and class scores
    ``sigmoid(z + class_bias)`` of a standardised ``z``: with the default bias about 1% of the
    anchors beat the usual 0.25, as with a trained model on a busy image. With ``seg`` it also
    outputs prototypes ``[B, nm, s/4, s/4]``.
    """
    b = _Builder(seed)
    c = width
    x = b.conv("images", 3, c, imgsz, stride=2)
    x = b.conv(x, c, 2 * c, imgsz // 2, stride=2)
    x = b.conv(x, 2 * c, 2 * c, imgsz // 4)
    p2 = x
    x = b.conv(x, 2 * c, 4 * c, imgsz // 4, stride=2)
    p3 = b.conv(x, 4 * c, 4 * c, imgsz // 8)
    x = b.conv(p3, 4 * c, 8 * c, imgsz // 8, stride=2)
    p4 = b.conv(x, 8 * c, 8 * c, imgsz // 16)
    x = b.conv(p4, 8 * c, 16 * c, imgsz // 16, stride=2)
    p5 = b.conv(x, 16 * c, 16 * c, imgsz // 32)
    channels = 4 + nc + (nm if seg else 0)
    heads = []
    grid_x, grid_y, strides = [], [], []
    for level, (feat, cin, stride) in enumerate(((p3, 4 * c, 8), (p4, 8 * c, 16), (p5, 16 * c, 32))):
        hw = imgsz // stride
        hidden = b.conv(feat, cin, cin, hw)
        head = b.conv(hidden, cin, channels, hw, k=1, act=False)
        b.nodes.append(helper.make_node("Reshape", [head, "flat_shape"], [f"head{level}"]))
        heads.append(f"head{level}")
        ys, xs = np.mgrid[0:hw, 0:hw]
        grid_x.append((xs.ravel() + 0.5) * stride)
        grid_y.append((ys.ravel() + 0.5) * stride)
        strides.append(np.full(hw * hw, float(stride)))
    # Standardise each channel over the anchors, then shape it like a trained head: centres within
    # one stride of their grid cell, sizes up to 8 strides, class scores sigmoid(z + class_bias).
    gx, gy, st = np.concatenate(grid_x), np.concatenate(grid_y), np.concatenate(strides)
    bias = np.zeros((1, channels, 1), np.float32)
    bias[0, 4 : 4 + nc] = class_bias
    scale = np.ones((1, channels, gx.size), np.float32)
    offset = np.zeros((1, channels, gx.size), np.float32)
    scale[0, 0], offset[0, 0] = 2 * st, gx - st
    scale[0, 1], offset[0, 1] = 2 * st, gy - st
    scale[0, 2], scale[0, 3] = 8 * st, 8 * st
    scale[0, 4 + nc :], offset[0, 4 + nc :] = 4.0, -2.0  # mask coefficients in (-2, 2)
    b.nodes += [
        helper.make_node("Concat", heads, ["raw"], axis=2),
        helper.make_node("MeanVarianceNormalization", ["raw"], ["z"], axes=[2]),
        helper.make_node("Add", ["z", "class_bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["squashed"]),
        helper.make_node("Mul", ["squashed", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["output0"]),
    ]
    b.inits += [
        _const("flat_shape", np.array([0, channels, -1], np.int64)),
        _const("class_bias", bias),
        _const("scale", scale),
        _const("offset", offset),
    ]
    anchors = sum((imgsz // s) ** 2 for s in (8, 16, 32))
    outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch or "batch", channels, anchors])]
    if seg:
        up = "p2_up"
        b.nodes.append(helper.make_node("Resize", [p3, "", "up_scales"], [up], mode="nearest"))
        b.inits.append(_const("up_scales", np.array([1, 1, 2, 2], np.float32)))
        merged = b.conv(up, 4 * c, 2 * c, imgsz // 4)
        b.nodes.append(helper.make_node("Add", [merged, p2], ["p2_sum"]))
        protos = b.conv("p2_sum", 2 * c, nm, imgsz // 4, k=1, act=False)
        b.nodes.append(helper.make_node("Identity", [protos], ["output1"]))
        side = imgsz // 4
        outputs.append(helper.make_tensor_value_info("output1", TensorProto.FLOAT, [batch or "batch", nm, side, side]))
    meta = metadata if metadata is not None else ultralytics_metadata(
        {i: COCO[i] if i < len(COCO) else f"class{i}" for i in range(nc)}, (imgsz, imgsz),
        task="segment" if seg else "detect",
    )  # fmt: skip
    _save(b.nodes, [_images(batch, (imgsz, imgsz))], outputs, b.inits, path, meta)
    return path, b.flops
