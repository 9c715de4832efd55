"""YOLO ONNX detect / segment: decoding parity with an independent reference, letterbox round trips, options.

The graphs are built here (``yolo_graphs``): planted head outputs in both layouts, a graph that
finds a drawn rectangle, and small random-weight conv nets shaped like ultralytics exports.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import modeldeck
from modeldeck.errors import (
    ConfigError,
    InputDecodeError,
    InputError,
    InputTooLargeError,
    OptionError,
    UnknownModelError,
)
from modeldeck.runtimes.onnx import OnnxRuntime
from modeldeck.tasks import _yolo
from modeldeck.tasks._yolo import YoloDetector, letterbox, nms, parse_names
from modeldeck.tasks.detect import DetectTask, SegmentTask
from modeldeck.tasks.vision_results import DetectResult, SegmentResult
from modeldeck.types import ModelInfo

from . import yolo_graphs as graphs

NAMES = {0: "cat", 1: "dog", 2: "person"}
SIZES = [(640, 480), (480, 640), (300, 900), (1000, 333), (17, 1500), (1500, 17), (640, 640), (100, 60)]


# --- an independent reference: plain Python, one box at a time -------------------------------------


def ref_geometry(width: int, height: int, size: tuple[int, int] = (640, 640)) -> tuple[float, int, int]:
    """(scale, left, top) of the image inside the letterboxed input: the padding splits evenly, odd pixel after."""
    r = min(size[0] / height, size[1] / width)
    inner_w, inner_h = round(width * r), round(height * r)
    return r, (size[1] - inner_w) // 2, (size[0] - inner_h) // 2


def ref_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_decode(raw, *, conf=0.25, iou=0.7, max_det=300, classes=None, agnostic=False, geometry=None, size=None):
    """ultralytics' non_max_suppression on one image's ``(4 + nc, N)`` output, written out longhand."""
    nc = raw.shape[0] - 4
    candidates = []
    for a in range(raw.shape[1]):
        scores = [float(s) for s in raw[4:, a]]
        c = max(range(nc), key=lambda k: scores[k])
        if scores[c] < conf or (classes is not None and c not in classes):
            continue
        cx, cy, w, h = (float(v) for v in raw[:4, a])
        candidates.append((scores[c], c, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    candidates.sort(key=lambda d: -d[0])
    kept: list[tuple[float, int, tuple[float, ...]]] = []
    for score, c, box in candidates:
        if all((not agnostic and kc != c) or ref_iou(box, kb) <= iou for _, kc, kb in kept):
            kept.append((score, c, box))
    kept = kept[:max_det]
    if geometry is not None:
        r, left, top = geometry
        w, h = size
        kept = [
            (s, c, (min(max((b[0] - left) / r, 0), w), min(max((b[1] - top) / r, 0), h),
                    min(max((b[2] - left) / r, 0), w), min(max((b[3] - top) / r, 0), h)))
            for s, c, b in kept
        ]  # fmt: skip
    return kept


def assert_matches(result: DetectResult, expected, *, atol: float = 1e-4) -> None:
    assert len(result) == len(expected), (len(result), len(expected))
    for det, (score, c, box) in zip(result, expected, strict=True):
        assert det.class_id == c
        assert det.score == pytest.approx(score, abs=1e-6)
        np.testing.assert_allclose(det.box, box, atol=atol, rtol=1e-6)


def clustered_head(rng: np.random.Generator, *, nc: int = 3, clusters: int = 12, per: int = 8, extra: int = 0):
    """A plain-head output (4 + nc + extra, N): clusters of overlapping boxes, distinct scores."""
    n = clusters * per
    centres = rng.uniform(80, 560, (clusters, 2))
    sizes = rng.uniform(30, 200, (clusters, 2))
    raw = np.zeros((4 + nc + extra, n), np.float32)
    raw[0:2] = (np.repeat(centres, per, axis=0) + rng.normal(0, 12, (n, 2))).T
    raw[2:4] = (np.repeat(sizes, per, axis=0) * rng.uniform(0.7, 1.3, (n, 2))).T
    scores = rng.permutation(np.linspace(0.02, 0.98, n * nc)).reshape(nc, n)
    raw[4 : 4 + nc] = scores * (rng.random((nc, n)) < 0.6)  # many anchors with one dominant class
    if extra:
        raw[4 + nc :] = rng.normal(0, 1, (extra, n))
    return raw


def info_for(path: Path, *tasks: str, card: dict | None = None) -> ModelInfo:
    return ModelInfo(name=path.stem, version="1", tasks=tasks or ("detect",), runtime="onnxruntime", path=path,
                     card=card or {})  # fmt: skip


def image_with_rect(width: int, height: int, rect: tuple[int, int, int, int]) -> np.ndarray:
    pixels = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = rect
    pixels[y1:y2, x1:x2] = 255
    return pixels


def rect_in(width: int, height: int) -> tuple[int, int, int, int]:
    """A rectangle well inside the image, at least a few pixels across even after downscaling."""
    return (width * 2 // 10, height * 3 // 10, max(width * 7 // 10, width * 2 // 10 + 3),
            max(height * 8 // 10, height * 3 // 10 + 3))  # fmt: skip


def encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


class CountingRuntime:
    """Wraps ``runtime.run`` to record the batch size of every model call."""

    def __init__(self, task: DetectTask) -> None:
        self.calls: list[int] = []
        runtime = task.detector.runtime
        original = runtime.run

        def run(feeds, outputs=None):
            self.calls.append(next(iter(feeds.values())).shape[0])
            return original(feeds, outputs)

        runtime.run = run  # type: ignore[method-assign]


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("yolo")


@pytest.fixture(scope="module")
def head() -> np.ndarray:
    return clustered_head(np.random.default_rng(7))


@pytest.fixture(scope="module")
def planted(graph_dir, head) -> DetectTask:
    path = graphs.planted_graph(graph_dir / "planted.onnx", head, metadata=graphs.ultralytics_metadata(NAMES))
    return DetectTask.from_model(info_for(path))


@pytest.fixture(scope="module")
def finder(graph_dir) -> DetectTask:
    path = graphs.rectangle_finder(graph_dir / "finder.onnx", metadata=graphs.ultralytics_metadata(NAMES))
    return DetectTask.from_model(info_for(path), batch_size=16)


@pytest.fixture(scope="module")
def seg_head() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    raw = clustered_head(rng, nc=2, clusters=5, per=4, extra=32)
    # Smooth prototypes, as a trained model's are: sums of a few broad blobs per channel.
    yy, xx = np.mgrid[0:160, 0:160].astype(np.float32)
    protos = np.zeros((32, 160, 160), np.float32)
    for k in range(32):
        for _ in range(3):
            cx, cy, s = rng.uniform(0, 160), rng.uniform(0, 160), rng.uniform(10, 40)
            protos[k] += rng.normal(0, 2) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    return raw, protos


@pytest.fixture(scope="module")
def seg_path(graph_dir, seg_head) -> Path:
    raw, protos = seg_head
    meta = graphs.ultralytics_metadata({0: "cat", 1: "dog"}, task="segment")
    return graphs.planted_graph(graph_dir / "seg.onnx", raw, protos=protos, metadata=meta)


@pytest.fixture(scope="module")
def conv_path(graph_dir) -> Path:
    return graphs.conv_graph(graph_dir / "conv.onnx", imgsz=320, width=4, nc=80)[0]


# --- the runtime ------------------------------------------------------------------------------------


def test_runtime_reports_inputs_outputs_metadata(graph_dir, seg_path) -> None:
    runtime = OnnxRuntime.load(seg_path)
    assert runtime.name == "onnxruntime" and runtime.device == "cpu"
    assert runtime.input.name == "images"
    assert runtime.input.shape == (None, 3, 640, 640) and runtime.input.dtype == np.float32
    assert runtime.output_names == ("output0", "output1")
    assert runtime.outputs[1].shape == (None, 32, 160, 160)
    assert runtime.metadata["task"] == "segment"
    assert parse_names(runtime.metadata["names"]) == {0: "cat", 1: "dog"}
    assert runtime.memory_bytes() == seg_path.stat().st_size
    pred, protos = runtime.run({"images": np.zeros((2, 3, 640, 640), np.float32)})
    assert pred.shape[0] == protos.shape[0] == 2
    # A folder holding one .onnx file loads that file.
    folder = graph_dir / "folder"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(seg_path.read_bytes())
    assert OnnxRuntime.load(folder).path.name == "model.onnx"


def test_runtime_refuses_bad_files_and_devices(tmp_path, seg_path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(UnknownModelError, match="not an ONNX model"):
        OnnxRuntime.load(bad)
    with pytest.raises(UnknownModelError, match="no ONNX model"):
        OnnxRuntime.load(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="tpu"):
        OnnxRuntime.load(seg_path, device="tpu")


def test_a_graph_that_is_not_yolo_is_refused(tmp_path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", graphs.OPSET)])
    model.ir_version = graphs.IR_VERSION
    path = tmp_path / "linear.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UnknownModelError, match="not a YOLO image model"):
        DetectTask.from_model(info_for(path))


# --- decoding parity ------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [_yolo._MATRIX_NMS_LIMIT, 0])  # the IoU-matrix path, and the round-by-round one
def test_nms_matches_the_reference_on_random_boxes(monkeypatch, limit) -> None:
    monkeypatch.setattr(_yolo, "_MATRIX_NMS_LIMIT", limit)
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (300, 2))], axis=1)
    scores = rng.permutation(300) / 300.0
    classes = rng.integers(0, 3, 300)
    for threshold in (0.3, 0.5, 0.7):
        for cls in (None, classes):
            kept = [int(i) for i in nms(boxes, scores, threshold, cls)]
            expected: list[int] = []
            for i in sorted(range(300), key=lambda k: -scores[k]):
                if all(
                    (cls is not None and cls[i] != cls[j]) or ref_iou(boxes[i], boxes[j]) <= threshold for j in expected
                ):
                    expected.append(i)
            assert kept == expected
    # Suppression needs an IoU above the threshold: exactly at it, both boxes stay (as torchvision).
    touching = np.array([[0, 0, 3, 1], [1, 0, 4, 1]], np.float32)  # IoU = 2 / 4
    assert list(nms(touching, np.array([0.9, 0.8]), 0.5)) == [0, 1]
    assert list(nms(touching, np.array([0.8, 0.9]), 0.49)) == [1]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"iou": 0.45},
        {"confidence": 0.6},
        {"confidence": 0.05, "iou": 0.3},
        {"agnostic_nms": True},
        {"classes": [1]},
        {"classes": ["cat", "person"]},
        {"max_detections": 5},
    ],
)
def test_plain_head_decoding_matches_the_reference(planted, head, options) -> None:
    result = planted(np.zeros((640, 640, 3), np.uint8), **options)  # scale 1, no padding: input pixels
    classes = options.get("classes")
    ids = None if classes is None else {c if isinstance(c, int) else list(NAMES.values()).index(c) for c in classes}
    expected = ref_decode(
        head,
        conf=options.get("confidence", 0.25),
        iou=options.get("iou", 0.7),
        max_det=options.get("max_detections", 300),
        classes=ids,
        agnostic=options.get("agnostic_nms", False),
        geometry=(1.0, 0, 0),
        size=(640, 640),
    )
    assert len(expected) > 3  # the case is not vacuous
    assert_matches(result, expected)
    assert [d.label for d in result] == [NAMES[c] for _, c, _ in expected]


def test_decoding_parity_holds_after_scaling_back(planted, head) -> None:
    for width, height in [(1280, 720), (333, 1000)]:
        result = planted(np.zeros((height, width, 3), np.uint8))
        expected = ref_decode(head, geometry=ref_geometry(width, height), size=(width, height))
        assert_matches(result, expected, atol=1e-3)
        boxes = result.boxes.xyxy
        assert (boxes[:, [0, 2]] <= width).all() and (boxes[:, [1, 3]] <= height).all() and (boxes >= 0).all()


def test_options_change_the_answer_as_documented(planted) -> None:
    image = np.zeros((640, 640, 3), np.uint8)
    base = planted(image)
    assert all(d.score >= 0.25 for d in base)
    assert [d.score for d in base] == sorted((d.score for d in base), reverse=True)
    assert len(planted(image, confidence=0.9)) < len(base)
    assert len(planted(image, iou=0.2)) < len(base)
    assert len(planted(image, agnostic_nms=True)) < len(base)
    top3 = planted(image, max_detections=3)
    assert top3.detections == base.detections[:3]
    only_dogs = planted(image, classes=["dog"])
    assert len(only_dogs) and {d.label for d in only_dogs} == {"dog"}
    assert planted(image, classes=[1]) == only_dogs
    with pytest.raises(OptionError, match="unknown class 'zebra'"):
        planted(image, classes=["zebra"])
    with pytest.raises(OptionError, match="out of range"):
        planted(image, classes=[7])


def test_agnostic_nms_suppresses_across_classes(graph_dir) -> None:
    raw = np.zeros((4 + 3, 2), np.float32)
    raw[:4, 0] = [100, 100, 50, 50]
    raw[:4, 1] = [102, 101, 50, 50]  # nearly the same box, another class
    raw[4 + 0, 0], raw[4 + 2, 1] = 0.9, 0.8
    path = graphs.planted_graph(graph_dir / "two.onnx", raw, metadata=graphs.ultralytics_metadata(NAMES))
    task = DetectTask.from_model(info_for(path))
    image = np.zeros((640, 640, 3), np.uint8)
    assert [d.label for d in task(image)] == ["cat", "person"]
    assert [d.label for d in task(image, agnostic_nms=True)] == ["cat"]


def test_end_to_end_head_filters_without_nms(graph_dir) -> None:
    rng = np.random.default_rng(5)
    rows = np.zeros((300, 6), np.float32)
    xy = rng.uniform(0, 500, (300, 2))
    rows[:, :2], rows[:, 2:4] = xy, xy + rng.uniform(10, 100, (300, 2))
    rows[:, 4] = rng.permutation(np.linspace(0.0, 0.99, 300))
    rows[:, 5] = rng.integers(0, 3, 300)
    rows[0, 4] = max(rows[0, 4], 0.5)
    rows[1, :4], rows[1, 4:] = rows[0, :4] + 1, [rows[0, 4] - 0.001, rows[0, 5]]  # overlaps row 0, same class
    path = graphs.planted_graph(graph_dir / "e2e.onnx", rows, metadata=graphs.ultralytics_metadata(NAMES))
    task = DetectTask.from_model(info_for(path))
    assert task.detector.layout == "end2end"
    width, height = 1000, 700
    r, left, top = ref_geometry(width, height)
    for options in ({}, {"confidence": 0.5, "classes": [0, 2]}, {"max_detections": 10}):
        result = task(np.zeros((height, width, 3), np.uint8), **options)
        conf, classes = options.get("confidence", 0.25), options.get("classes")
        keep = [i for i in range(300) if rows[i, 4] >= conf and (classes is None or int(rows[i, 5]) in classes)]
        keep = sorted(keep, key=lambda i: -rows[i, 4])[: options.get("max_detections", 300)]
        expected = []
        for i in keep:
            x1, y1, x2, y2 = rows[i, :4]
            box = (min(max((x1 - left) / r, 0), width), min(max((y1 - top) / r, 0), height),
                   min(max((x2 - left) / r, 0), width), min(max((y2 - top) / r, 0), height))  # fmt: skip
            expected.append((float(rows[i, 4]), int(rows[i, 5]), box))
        assert_matches(result, expected, atol=1e-3)
    assert 1 in [int(np.argmin(np.abs(rows[:, 4] - d.score))) for d in task(np.zeros((height, width, 3), np.uint8))]


# --- letterbox and the round trip back to original pixels -------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_letterbox_places_the_image_as_the_exporter_does(width, height) -> None:
    pixels = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    boxed = letterbox(pixels, (640, 640))
    r, left, top = ref_geometry(width, height)
    inner_w, inner_h = round(width * r), round(height * r)
    assert boxed.scale == pytest.approx(r) and boxed.pad == (left, top) and boxed.resized == (inner_w, inner_h)
    canvas = boxed.canvas
    assert canvas.shape == (640, 640, 3) and canvas.dtype == np.uint8
    inner = np.zeros_like(canvas, dtype=bool)
    inner[top : top + inner_h, left : left + inner_w] = True
    assert (canvas[~inner] == 114).all()
    # Bars: the odd pixel goes after the image (bottom / right), as round(d - 0.1) / round(d + 0.1) do.
    assert 0 <= (640 - inner_w - left) - left <= 1 and 0 <= (640 - inner_h - top) - top <= 1
    if (inner_w, inner_h) == (width, height):
        np.testing.assert_array_equal(canvas[inner].reshape(inner_h, inner_w, 3), pixels)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_box_planted_in_letterbox_space_comes_back_exactly(graph_dir, width, height) -> None:
    r, left, top = ref_geometry(width, height)
    box = np.array([0.1 * width, 0.25 * height, 0.8 * width, 0.9 * height])
    x1, y1, x2, y2 = box * r + np.array([left, top, left, top])
    raw = np.zeros((4 + 3, 4), np.float32)
    raw[:4, 0] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    raw[4 + 2, 0] = 0.8
    path = graphs.planted_graph(graph_dir / f"box_{width}x{height}.onnx", raw)
    result = DetectTask.from_model(info_for(path))(encode(np.zeros((height, width, 3), np.uint8)))
    assert (result.width, result.height) == (width, height)
    assert len(result) == 1 and result[0].class_id == 2
    # float32 head values: a few ulps of 640, scaled by 1 / r
    np.testing.assert_allclose(result[0].box, box, atol=2e-4 / r + 1e-4)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_drawn_rectangle_is_found_at_its_pixels(finder, width, height) -> None:
    rect = rect_in(width, height)
    result = finder(encode(image_with_rect(width, height, rect)))
    assert len(result) == 1 and result[0].label == "dog"
    r, _, _ = ref_geometry(width, height)
    # The model sees the rectangle at whole input pixels: one input pixel is 1 / r original pixels.
    np.testing.assert_allclose(result[0].box, rect, atol=max(1.0, 1.0 / r) + 0.5)


def test_images_of_different_sizes_share_one_batch(finder) -> None:
    images = [image_with_rect(w, h, rect_in(w, h)) for w, h in SIZES]
    counter = CountingRuntime(finder)
    results = finder(images)
    assert counter.calls == [len(SIZES)]  # one model call for the whole batch
    for (w, h), result in zip(SIZES, results, strict=True):
        r, _, _ = ref_geometry(w, h)
        assert (result.width, result.height) == (w, h)
        np.testing.assert_allclose(result[0].box, rect_in(w, h), atol=max(1.0, 1.0 / r) + 0.5)


@pytest.mark.parametrize(("batch", "calls"), [(1, [1, 1, 1, 1, 1]), (4, [4, 4])])
def test_fixed_batch_exports_are_looped_and_padded(graph_dir, batch, calls) -> None:
    path = graphs.rectangle_finder(graph_dir / f"finder_b{batch}.onnx", batch=batch)
    task = DetectTask.from_model(info_for(path))
    assert task.detector.batch_limit == batch
    sizes = SIZES[:5]
    counter = CountingRuntime(task)
    results = task([image_with_rect(w, h, rect_in(w, h)) for w, h in sizes])
    assert counter.calls == calls
    for (w, h), result in zip(sizes, results, strict=True):
        np.testing.assert_allclose(result[0].box, rect_in(w, h), atol=max(1.0, 1.0 / ref_geometry(w, h)[0]) + 0.5)


def test_input_size_from_the_shape_the_metadata_or_640(graph_dir) -> None:
    raw = np.zeros((4 + 3, 4), np.float32)
    fixed = graphs.planted_graph(graph_dir / "fixed320.onnx", raw, imgsz=(320, 480))
    assert DetectTask.from_model(info_for(fixed)).detector.imgsz == (320, 480)
    meta = graphs.ultralytics_metadata(NAMES, (416, 416))
    dynamic = graphs.planted_graph(graph_dir / "dyn_meta.onnx", raw, imgsz=("height", "width"), metadata=meta)
    task = DetectTask.from_model(info_for(dynamic))
    assert task.detector.imgsz == (416, 416)
    assert len(task(np.zeros((100, 200, 3), np.uint8), confidence=0.0)) >= 0  # runs at that size
    bare = graphs.planted_graph(graph_dir / "dyn_bare.onnx", raw, imgsz=("height", "width"))
    assert DetectTask.from_model(info_for(bare)).detector.imgsz == (640, 640)


# --- class names ------------------------------------------------------------------------------------


def test_class_names_from_metadata_card_or_ids(graph_dir) -> None:
    raw = np.zeros((4 + 3, 4), np.float32)
    with_meta = graphs.planted_graph(graph_dir / "names_meta.onnx", raw, metadata=graphs.ultralytics_metadata(NAMES))
    assert DetectTask.from_model(info_for(with_meta)).labels == ("cat", "dog", "person")
    bare = graphs.planted_graph(graph_dir / "names_none.onnx", raw)
    assert DetectTask.from_model(info_for(bare)).labels == ("0", "1", "2")
    card = DetectTask.from_model(info_for(bare, card={"labels": ["ant", "bee", "cow"]}))
    assert card.labels == ("ant", "bee", "cow")
    hostile = graphs.planted_graph(
        graph_dir / "names_evil.onnx", raw, metadata={"names": "__import__('os').system('echo pwned')"}
    )
    assert DetectTask.from_model(info_for(hostile)).labels == ("0", "1", "2")  # never evaluated


def test_parse_names_accepts_ultralytics_forms() -> None:
    assert parse_names("{0: 'person', 1: 'bicycle'}") == {0: "person", 1: "bicycle"}
    assert parse_names("['a', 'b']") == {0: "a", 1: "b"}
    assert parse_names("{'0': 'x'}") == {0: "x"}
    for bad in ("", "{0: ", "os.system('x')", "42", "{'a': 'b'}", None):
        assert parse_names(bad) is None


# --- segmentation -----------------------------------------------------------------------------------


def ref_masks(protos, coeffs, boxes, width, height, threshold):
    """ultralytics' process_mask + scale_masks, with torch's bilinear interpolation as the reference."""
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    p = torch.from_numpy(protos)
    m = torch.sigmoid(torch.from_numpy(coeffs) @ p.reshape(32, -1)).reshape(-1, 160, 160)
    b = torch.from_numpy(boxes) / 4.0
    cols = torch.arange(160, dtype=torch.float32)[None, None, :]
    rows = torch.arange(160, dtype=torch.float32)[None, :, None]
    x1, y1, x2, y2 = (b[:, k, None, None] for k in range(4))
    m = m * ((cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2))
    m = fn.interpolate(m[None], (640, 640), mode="bilinear", align_corners=False)[0]
    r, left, top = ref_geometry(width, height)
    m = m[:, top : top + round(height * r), left : left + round(width * r)]
    m = fn.interpolate(m[None], (height, width), mode="bilinear", align_corners=False)[0]
    return (m > threshold).numpy()


@pytest.mark.slow  # imports torch for the reference interpolation
@pytest.mark.parametrize(("width", "height", "threshold"), [(640, 640, 0.5), (900, 500, 0.5), (300, 700, 0.3)])
def test_segment_masks_match_the_reference(seg_path, seg_head, width, height, threshold) -> None:
    raw, protos = seg_head
    task = SegmentTask.from_model(info_for(seg_path, "segment", "detect"))
    assert task.detector.has_masks and task.labels == ("cat", "dog")
    result = task(np.zeros((height, width, 3), np.uint8), mask_threshold=threshold)
    assert isinstance(result, SegmentResult) and len(result) > 2
    # Which anchors survived: match each instance's score to its anchor in the planted head.
    best = raw[4:6].max(axis=0)
    anchors = [int(np.argmin(np.abs(best - inst.score))) for inst in result]
    cx, cy, w, h = raw[:4, anchors]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    expected = ref_masks(protos, raw[6:, anchors].T.copy(), boxes, width, height, threshold)
    assert any(m.any() for m in expected)
    for inst, want in zip(result, expected, strict=True):
        got = inst.mask.decode()
        assert got.shape == (height, width)
        differ = np.count_nonzero(got != want)
        assert differ <= max(3, 0.001 * want.sum()), (differ, want.sum())


def test_detect_on_a_segmenter_skips_masks_and_detect_models_cannot_segment(seg_path, planted, graph_dir) -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    detect = DetectTask.from_model(info_for(seg_path, "detect", "segment"))
    seg = SegmentTask.from_model(info_for(seg_path, "segment", "detect"))
    boxes = detect(image)
    assert isinstance(boxes, DetectResult)
    assert boxes.detections == seg(image).detections
    with pytest.raises(UnknownModelError, match="boxes only"):
        SegmentTask.from_model(planted.info)


# --- the real path: photos, bytes, the public API, bad input ------------------------------------------


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    data = pytest.importorskip("skimage.data")
    return {
        "astronaut": encode(data.astronaut(), "JPEG"),
        "coffee": encode(data.coffee(), "PNG"),
        "chelsea": encode(data.chelsea(), "JPEG"),
        "rocket": encode(data.rocket(), "PNG"),
    }


def test_real_photos_through_a_conv_net(conv_path, photos) -> None:
    task = DetectTask.from_model(info_for(conv_path), batch_size=4)
    assert task.detector.imgsz == (320, 320) and len(task.labels) == 80 and task.labels[0] == "person"
    results = task(list(photos.values()), confidence=0.2)
    assert sum(len(r) for r in results) > 0
    for raw, result in zip(photos.values(), results, strict=True):
        width, height = PILImage.open(io.BytesIO(raw)).size
        assert (result.width, result.height) == (width, height)
        boxes = result.boxes.xyxy
        assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= width).all() and (boxes[:, [1, 3]] <= height).all()
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
        assert DetectResult.from_dict(result.to_dict()) == result


def test_real_photos_through_a_conv_segmenter(graph_dir, photos) -> None:
    path = graphs.conv_graph(graph_dir / "conv_seg.onnx", imgsz=320, width=4, nc=80, seg=True)[0]
    task = SegmentTask.from_model(info_for(path, "segment"))
    for raw in (photos["astronaut"], photos["rocket"]):
        result = task(raw, confidence=0.2, max_detections=20)
        width, height = PILImage.open(io.BytesIO(raw)).size
        assert 0 < len(result) <= 20
        for inst in result:
            assert inst.mask.size == (height, width)
        assert SegmentResult.from_dict(result.to_dict()) == result


def test_load_by_path_and_by_imported_name(conv_path, photos, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    by_path = modeldeck.load("detect", model=str(conv_path))
    assert isinstance(by_path, DetectTask) and isinstance(by_path.detector, YoloDetector)
    store = modeldeck.ModelStore(modeldeck.Settings.from_env())
    store.import_model(conv_path, "yolo-test", tasks=["detect"])
    by_name = modeldeck.load("detect", model="yolo-test")
    assert by_name(photos["chelsea"]) == by_path(photos["chelsea"])
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(photos["chelsea"])
    assert by_name(str(photo)) == by_path(photos["chelsea"])  # a path, read at the edge
    described = by_name.describe()
    assert described["runtime"]["name"] == "onnxruntime" and described["labels"][:2] == ["person", "bicycle"]


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height``; no pixel data exists."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_bad_input_gives_clear_errors_and_fails_alone(finder, photos, tmp_path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image at all\n")
    corrupt = photos["astronaut"][:200] + b"\x00garbage" * 10
    tiny = encode(np.zeros((1, 1, 3), np.uint8))
    cases = [
        (corrupt, InputDecodeError),
        (str(text_file), InputDecodeError),
        (tiny, InputDecodeError),
        (png_header(20000, 20000), InputTooLargeError),
    ]
    for raw, error in cases:
        with pytest.raises(error) as info:
            finder(raw)
        assert info.value.hint
    good = image_with_rect(200, 100, rect_in(200, 100))
    answers = finder.predict_each([good, corrupt, encode(good), png_header(20000, 20000), str(text_file), good])
    assert [type(a).__name__ for a in answers] == [
        "DetectResult", "InputDecodeError", "DetectResult", "InputTooLargeError", "InputDecodeError", "DetectResult",
    ]  # fmt: skip
    assert all(isinstance(a, InputError) for a in answers[1::2] if not isinstance(a, DetectResult))
    assert answers[0] == answers[2] == answers[5]


def test_catalog_entries_pull_over_http_and_detect(conv_path, photos, tmp_path) -> None:
    import json

    from modeldeck.config import Settings
    from modeldeck.store.catalog import BUILTIN_CATALOG

    from ..support import serve_files

    yolo = {e.name: e for e in BUILTIN_CATALOG if e.runtime == "onnxruntime"}
    assert {"yolo11n", "yolov8n", "yolo11n-seg"} <= set(yolo)
    for entry in yolo.values():
        assert entry.license == "AGPL-3.0" and entry.source.url.startswith("https://github.com/ultralytics/assets/")
        assert entry.source.url.endswith(f"/{entry.name}.onnx") and len(entry.source.sha256) == 64
    assert yolo["yolo11n-seg"].tasks == ("segment", "detect")
    # The same entry, pointed at a local server holding a generated export: pull, verify, load, detect.
    home = tmp_path / "home"
    home.mkdir()
    with serve_files() as server:
        url, sha256 = server.add("/yolo11n.onnx", conv_path.read_bytes())
        entry = yolo["yolo11n"]
        source = {**entry.source.to_dict(), "url": url, "sha256": sha256, "size": conv_path.stat().st_size}
        user = {"name": entry.name, "tasks": list(entry.tasks), "runtime": entry.runtime, "license": entry.license,
                "card": dict(entry.card), "source": source}  # fmt: skip
        (home / "catalog.json").write_text(json.dumps([user]), encoding="utf-8")
        task = modeldeck.load("detect", model="yolo11n", settings=Settings(home=home))
    assert isinstance(task.detector, YoloDetector) and task.info.license == "AGPL-3.0"
    assert [path for path, _ in server.requests] == ["/yolo11n.onnx"]
    result = task(photos["coffee"], confidence=0.2)
    assert (result.width, result.height) == (600, 400) and len(result) > 0
