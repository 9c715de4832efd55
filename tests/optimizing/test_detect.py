"""A tiny random-weight Faster R-CNN through ``modeldeck optimize detect``: the ONNX variant answers as torch does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.errors import InputError, ModelNotInstalledError, UnknownModelError
from modeldeck.optimizing import OptimizeReport, optimize
from modeldeck.optimizing._compare import COMPARE
from modeldeck.optimizing._sample import builtin_scenes
from modeldeck.runtimes import onnx_export
from modeldeck.runtimes.onnx_export import resized_size
from modeldeck.runtimes.torchvision import save_model_folder
from modeldeck.store import ModelStore
from modeldeck.tasks._rcnn_onnx import OnnxRCNNDetector, select
from modeldeck.tasks.detect import DetectOptions
from modeldeck.types import OnnxSessionOptions

from ..vision.rcnn_models import TINY, random_state, write_folder

# One export, a 24-scene verification and the timing: 15 s on two idle cores, about a minute on a busy box.
pytestmark = pytest.mark.timeout(900)
slow = pytest.mark.slow

FASTER = "fasterrcnn_resnet50_fpn"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("detect") / "src", FASTER, seed=1)


def _store(home: Path, source: Path) -> Path:
    ModelStore(Settings(home=home)).import_model(source, "tiny-faster", version="1")
    return home


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    return _store(tmp_path_factory.mktemp("home"), source)


@pytest.fixture(scope="module")
def report(home: Path) -> OptimizeReport:
    return optimize("detect", model="tiny-faster@1", timing_seconds=0.02, settings=Settings(home=home))


def _sizes() -> list[np.ndarray]:
    # Sizes unlike the export's 240 x 320 sample, tall and wide, that the transform resizes to different
    # shapes (38 x 96, 96 x 14, 64 x 64, 64 x 86); at 174 x 436 a float32 size computation would lose a pixel.
    rng = np.random.default_rng(7)
    scenes = builtin_scenes(4, seed=11)
    sizes = [(174, 436), (440, 67), (64, 64), (97, 131)]
    out = []
    for scene, (h, w) in zip(scenes, sizes, strict=True):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ch, cw = min(h, scene.shape[0]), min(w, scene.shape[1])
        image[:ch, :cw] = scene[:ch, :cw]
        out.append(image)
    return out


def _assert_same(torch_result, onnx_result) -> None:
    # Detections are matched one to one (same class, best overlap) rather than compared row by row:
    # two scores that differ by float noise may swap places.
    a, b = torch_result.boxes, onnx_result.boxes
    assert len(a) == len(b)
    assert sorted(a.label) == sorted(b.label)
    np.testing.assert_allclose(np.sort(b.score), np.sort(a.score), atol=1e-4)
    figures = COMPARE["detect"]([torch_result], [onnx_result])
    assert figures["agreement"] == 1.0 and figures["score_error"] <= 1e-4, figures
    assert figures["iou_min"] >= 0.999, figures  # about 0.01 pixel on a 20-pixel box
    assert (onnx_result.width, onnx_result.height) == (torch_result.width, torch_result.height)


@slow
def test_the_variant_is_verified_and_stored_with_its_figures(report: OptimizeReport, home: Path) -> None:
    assert report.sample == "built-in (24 images)"
    onnx = report.variant("onnx")
    assert onnx.accepted and onnx.stored == "tiny-faster@onnx", onnx.reason
    assert onnx.accuracy["agreement"] == 1.0 and onnx.accuracy["box_agreement"] == 1.0
    assert onnx.accuracy["iou_min"] >= 0.999 and onnx.accuracy["score_error"] < 1e-4
    info = ModelStore(Settings(home=home)).resolve("tiny-faster@onnx", task="detect")
    assert info.runtime == "onnxruntime" and info.tasks == ("detect",)
    variant = info.card["variant"]
    assert variant["of"] == "tiny-faster@1" and variant["options"]["exporter"] == "torch.onnx (TorchScript)"
    assert variant["budget"]["iou_min"] == 0.99 and variant["tools"]["onnxruntime"]
    assert info.card["figures"]["accuracy"]["agreement"] == 1.0


@slow
def test_onnx_answers_equal_torch_on_other_sizes_and_every_option(report: OptimizeReport, home: Path) -> None:
    settings = Settings(home=home)
    original = modeldeck.load("detect", model="tiny-faster@1", settings=settings)
    variant = modeldeck.load("detect", model="tiny-faster@onnx", settings=settings)
    assert isinstance(variant.detector, OnnxRCNNDetector) and variant.info.runtime == "onnxruntime"
    one_thread = modeldeck.load(
        "detect", model="tiny-faster@onnx", settings=settings, onnx_session=OnnxSessionOptions(threads=1)
    )
    assert one_thread.describe()["runtime"]["session"]["intra_op_threads"] == 1  # the deck's session options reach it
    assert variant.labels == original.labels and variant.default_options == original.default_options
    images = _sizes()
    names = original.labels
    for options in (
        {"confidence": 0.05, "iou": 0.3, "max_detections": 20},
        {"confidence": 0.05, "iou": 0.4, "agnostic_nms": True, "max_detections": 20},
        {"confidence": 0.02, "classes": [names[1], 3, names[18], names[63]]},
    ):
        # torch one image at a time (torchvision pads a batch to its largest image); ONNX as one batch.
        expected = [original([image], **options)[0] for image in images]
        got = variant(images, **options)
        for a, b in zip(expected, got, strict=True):
            _assert_same(a, b)
        assert sum(len(r) for r in expected) > 0, options  # random weights still find boxes
    with pytest.raises(InputError, match="resizes to 0 x 96 pixels"):  # torch fails inside the model
        variant(np.zeros((8, 800, 3), np.uint8))


@slow
def test_loading_the_variant_needs_no_torch(report: OptimizeReport, home: Path) -> None:
    probe = (
        "import sys, numpy as np, modeldeck\n"
        "task = modeldeck.load('detect', model='tiny-faster@onnx')\n"
        "result = task(np.full((120, 90, 3), 200, np.uint8), confidence=0.01)\n"
        "heavy = sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "print(type(task.detector).__name__, len(result) > 0, heavy)\n"
    )
    env = {**os.environ, "MODELDECK_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["OnnxRCNNDetector", "True", "[]"]


@slow
def test_the_variant_is_served_like_any_model(report: OptimizeReport, home: Path, live) -> None:
    import io

    import httpx
    from PIL import Image

    from modeldeck.serving import create_app

    from ..support import LiveServer

    settings = Settings.from_env({}, home=home, models=("tiny-faster@onnx",), isolation="thread")
    server = LiveServer(create_app(settings)).start()
    live.append(server)
    server.wait_ready()
    listed = json.dumps(httpx.get(f"{server.url}/v1/models", timeout=30).json())
    assert "tiny-faster@onnx" in listed and "onnxruntime" in listed
    image = builtin_scenes(1, seed=9)[0]
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    answer = httpx.post(
        f"{server.url}/v1/models/tiny-faster@onnx/predict",
        files=[("image", ("scene.png", png.getvalue(), "image/png"))],
        data={"options": json.dumps({"confidence": 0.05})},
        timeout=60,
    ).json()
    expected = modeldeck.load("detect", model="tiny-faster@onnx", settings=Settings(home=home))(image, confidence=0.05)
    assert answer["version"] == "onnx" and answer["outputs"] == [expected.to_dict()]


@slow
def test_a_variant_of_another_model_is_refused_with_its_figures(
    source: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from PIL import Image

    # The export is handed a different model (other random weights): what verification must catch.
    impostor = write_folder(tmp_path / "impostor", FASTER, seed=2)
    export = onnx_export.export_torchvision_detector
    monkeypatch.setattr(onnx_export, "export_torchvision_detector", lambda src, card, out: export(impostor, {}, out))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, scene in enumerate(builtin_scenes(4, seed=3)):
        Image.fromarray(scene).save(folder / f"{i}.png")
    home = _store(tmp_path / "home", source)
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    argv = ["optimize", "detect", "--model", "tiny-faster@1", "--calibration", str(folder), "--seconds", "0.01"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sample"] == "photos (4 images)"
    (onnx,) = [v for v in out["variants"] if v["name"] == "onnx"]
    assert onnx["accepted"] is False and onnx["stored"] is None
    assert onnx["reason"].startswith("outside the budget: agreement 0.") and onnx["accuracy"]["agreement"] < 0.5
    with pytest.raises(ModelNotInstalledError):
        ModelStore(Settings(home=home)).resolve("tiny-faster@onnx")


def test_resized_size_is_torchvisions_transform_size() -> None:
    import torch
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    for min_size, max_size in ((64, 96), (800, 1333)):
        transform = GeneralizedRCNNTransform(min_size, max_size, [0.0] * 3, [1.0] * 3).eval()
        # 174 x 436 at (64, 96): 436 * (96 / 436) is 96 in double and 95.99999 in float32.
        for h, w in ((174, 436), (436, 174), (64, 64), (20, 500), (333, 500), (1080, 1920), (97, 131)):
            images, _ = transform([torch.zeros(3, h, w)])
            assert resized_size((h, w), min_size, max_size) == tuple(images.image_sizes[0]), (h, w, min_size)


def test_selection_equals_torchvisions_postprocess_detections() -> None:
    import torch
    from torchvision.models.detection.roi_heads import RoIHeads

    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=generator) * torch.tensor([90.0, 60.0])
    proposals = torch.cat([xy, xy + 2 + torch.rand(200, 2, generator=generator) * 30], 1)
    logits = torch.randn(200, 6, generator=generator) * 2
    regression = torch.randn(200, 24, generator=generator) * 0.3
    for score, iou, cut in ((0.05, 0.5, 100), (0.2, 0.3, 7), (0.0, 0.9, 1000)):
        heads = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, None, score, iou, cut)
        boxes, scores, labels = heads.postprocess_detections(logits, regression, [proposals], [(60, 90)])
        # What the exported graph gives: decoded, clipped candidates and their softmax, background dropped.
        candidates = heads.box_coder.decode(regression, [proposals])
        candidates[..., 0::2] = candidates[..., 0::2].clamp(0, 90)
        candidates[..., 1::2] = candidates[..., 1::2].clamp(0, 60)
        options = DetectOptions(confidence=score, iou=iou, max_detections=cut)
        got = select(
            candidates[:, 1:].numpy(), logits.softmax(-1)[:, 1:].numpy(), np.ones(4, np.float32), options, None
        )
        assert len(got.score) == len(scores[0]) > 0
        np.testing.assert_array_equal(got.class_id, labels[0].numpy())
        np.testing.assert_allclose(got.score, scores[0].numpy(), rtol=1e-6)
        np.testing.assert_allclose(got.xyxy, boxes[0].numpy(), atol=1e-5)


@slow
def test_a_mask_rcnn_v2_exports_for_detect_and_answers_as_torch(tmp_path: Path) -> None:
    # The v2 heads (conv box head, BatchNorm) and a Mask R-CNN: exported without its mask head, for detect.
    # Up to 1000 proposals, so that the RPN keeps a different number for each image (the axis is dynamic).
    architecture = "maskrcnn_resnet50_fpn_v2"
    config = {**TINY, "rpn_pre_nms_top_n_test": 1000, "rpn_post_nms_top_n_test": 1000}
    state = random_state(architecture, seed=4)
    folder = save_model_folder(state, tmp_path / "src", architecture=architecture, config=config)
    onnx_export.export_torchvision_detector(folder, {}, tmp_path / "onnx")
    settings = Settings(home=tmp_path / "home")
    store = ModelStore(settings)
    store.import_model(folder, "tiny-mask", version="1")
    store.import_model(tmp_path / "onnx", "tiny-mask", version="onnx", tasks=("detect",), runtime="onnxruntime")
    original = modeldeck.load("detect", model="tiny-mask@1", settings=settings)
    variant = modeldeck.load("detect", model="tiny-mask@onnx", settings=settings)
    images = _sizes()[:3]
    for a, b in zip([original([x], confidence=0.05)[0] for x in images], variant(images, confidence=0.05), strict=True):
        assert len(a) > 0
        _assert_same(a, b)
    proposals = set()
    for image in images:
        size = resized_size(image.shape[:2], TINY["min_size"], TINY["max_size"])
        pixels = image.transpose(2, 0, 1).astype(np.float32) / 255
        feeds = {"image": pixels, "resized": np.zeros((*size, 0), np.float32)}
        proposals.add(variant.detector.runtime.run(feeds)[0].shape[0])
    assert len(proposals) == len(images) and max(proposals) < 1000, proposals
    with pytest.raises(UnknownModelError, match="does not serve task 'segment'"):
        modeldeck.load("segment", model="tiny-mask@onnx", settings=settings)
