"""torchvision Faster R-CNN and Mask R-CNN through the store and modeldeck.load, checked against torchvision."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import ConfigError, OptionError, UnknownModelError, UnsafeModelFileError
from modeldeck.runtimes.torchvision import SIDECAR, TorchvisionRuntime, coco_categories, read_spec
from modeldeck.store import ModelStore
from modeldeck.store._catalog_vision import ENTRIES, TORCHVISION_COCO_CATEGORIES
from modeldeck.store._infer import infer_layout
from modeldeck.tasks.vision_results import Mask

from ..support import serve_files
from .rcnn_models import (
    TINY,
    WEIGHTS_ENUMS,
    drawn_images,
    random_state,
    reference_outputs,
    torchvision_reference,
    write_folder,
)

FASTER = "fasterrcnn_resnet50_fpn"
MASK = "maskrcnn_resnet50_fpn_v2"


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return drawn_images(2, seed=3)


@pytest.fixture(scope="module")
def faster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Faster R-CNN v1 imported into a store as a folder (``modeldeck models import``), loaded by name."""
    root = tmp_path_factory.mktemp("faster")
    state = random_state(FASTER, seed=1)
    folder = write_folder(root / "src", FASTER, seed=1)
    settings = Settings(home=root / "home")
    ModelStore(settings).import_model(folder, "tiny-faster")
    task = modeldeck.load("detect", model="tiny-faster", settings=settings)
    yield {"task": task, "reference": torchvision_reference(FASTER, state), "folder": folder, "settings": settings}


@pytest.fixture(scope="module")
def mask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Mask R-CNN v2 pulled from a 127.0.0.1 URL by a catalog entry whose card names the architecture."""
    root = tmp_path_factory.mktemp("mask")
    state = random_state(MASK, seed=2)
    path = root / "weights.pth"
    torch.save(state, path)
    home = root / "home"
    home.mkdir()
    with serve_files() as server:
        url, sha = server.add("/maskrcnn_tiny.pth", path.read_bytes())
        entry = {
            "name": "tiny-mask",
            "tasks": ["segment", "detect"],
            "runtime": "torchvision",
            "license": "BSD-3-Clause",
            "card": {"architecture": MASK, "num_classes": 91, "categories": list(coco_categories()), "config": TINY},
            "source": {"kind": "url", "url": url, "sha256": sha},
        }
        (home / "catalog.json").write_text(json.dumps([entry]), encoding="utf-8")
        settings = Settings(home=home)
        info = ModelStore(settings).pull("tiny-mask", progress=False)
    assert info.path.name == "maskrcnn_tiny.pth"
    task = modeldeck.load("segment", model="tiny-mask", settings=settings)
    yield {"task": task, "reference": torchvision_reference(MASK, state), "settings": settings}


def _expected(out: dict[str, np.ndarray], *, confidence: float, max_detections: int, classes=None):
    keep = out["scores"] >= confidence
    if classes is not None:
        keep &= np.isin(out["labels"], list(classes))
    index = np.flatnonzero(keep)[:max_detections]
    return out["boxes"][index], out["scores"][index], out["labels"][index], index


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Plain greedy NMS, written independently of torchvision.ops."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = w * h
            if inter / (area[i] + area[j] - inter) <= iou:
                rest.append(j)
        order = rest
    return np.asarray(keep, dtype=np.int64)


def _assert_same(result, boxes, scores, labels) -> None:
    assert len(result) == len(scores)
    if len(scores):
        np.testing.assert_allclose(result.boxes.xyxy, boxes, atol=1e-4)
        np.testing.assert_allclose(result.boxes.score, scores, atol=1e-4)
        np.testing.assert_array_equal(result.boxes.class_id, labels)
    names = coco_categories()
    assert [d.label for d in result] == [names[int(c)] for c in labels]


def _forward(reference: torch.nn.Module, images, *, score=0.05, nms=0.5, cut=100) -> list[dict[str, np.ndarray]]:
    heads = reference.roi_heads
    heads.score_thresh, heads.nms_thresh, heads.detections_per_img = score, nms, cut
    return reference_outputs(reference, images)


# -- catalog -----------------------------------------------------------------------------------


def test_catalog_entries_name_torchvision_weights_and_categories() -> None:
    from torchvision.models import detection

    assert TORCHVISION_COCO_CATEGORIES == coco_categories()
    by_arch = {e.card["architecture"]: e for e in ENTRIES if e.runtime == "torchvision" and "detect" in e.tasks}
    assert set(by_arch) == set(WEIGHTS_ENUMS)
    for arch, entry in by_arch.items():
        weights = getattr(detection, WEIGHTS_ENUMS[arch]).COCO_V1
        assert entry.source.url == weights.url
        # torchvision checks the 8 hex digits in the file name; the pinned full digest must agree with them.
        assert entry.source.sha256.startswith(weights.url.rsplit("-", 1)[1].removesuffix(".pth"))
        assert entry.name == arch.replace("_", "-")
        assert entry.license == "BSD-3-Clause" and "COCO" in entry.card["terms"]
        assert entry.card["num_classes"] == len(weights.meta["categories"]) == 91
        assert tuple(entry.card["categories"]) == tuple(weights.meta["categories"])
        assert entry.tasks == (("segment", "detect") if arch.startswith("mask") else ("detect",))
        metrics = weights.meta["_metrics"]["COCO-val2017"]
        assert entry.card["metrics"]["COCO-val2017"] == metrics


# -- architecture: the same model torchvision builds for its own checkpoint --------------------


# fasterrcnn_resnet50_fpn and maskrcnn_resnet50_fpn_v2 are compared with torchvision's builder by the
# `faster` and `mask` fixtures' tests below; these are the other two.
@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn"])
def test_loaded_model_equals_torchvisions_builder_with_the_same_weights(
    architecture: str, tmp_path: Path, images: list[np.ndarray]
) -> None:
    state = random_state(architecture, seed=5)
    reference = torchvision_reference(architecture, state)
    runtime = TorchvisionRuntime.load(write_folder(tmp_path, architecture, seed=5))
    assert runtime.has_masks == architecture.startswith("mask")
    expected = reference_outputs(reference, images[:1])[0]
    from modeldeck.runtimes.torchvision import Selection

    got = runtime.detect([runtime.to_tensor(images[0])], [Selection(confidence=0.05, iou=0.5, max_detections=100)])[0]
    assert len(expected["scores"]) > 0
    np.testing.assert_allclose(got.boxes, expected["boxes"], atol=1e-4)
    np.testing.assert_allclose(got.scores, expected["scores"], atol=1e-4)
    np.testing.assert_array_equal(got.labels, expected["labels"])
    if runtime.has_masks:
        np.testing.assert_array_equal(got.masks, expected["masks"][:, 0] > 0.5)


# -- decoding parity with torchvision's postprocessing -----------------------------------------


def test_detections_equal_torchvision_postprocessing_after_filters(faster, images) -> None:
    task, reference = faster["task"], faster["reference"]
    outputs = _forward(reference, images)  # torchvision's defaults: score > 0.05, NMS 0.5, 100 per image
    # The R-CNN back-end's defaults are torchvision's box_nms_thresh and box_detections_per_img.
    assert (task.default_options.iou, task.default_options.max_detections) == (0.5, 100)
    results = task(images, confidence=0.3, max_detections=7)
    for result, out, image in zip(results, outputs, images, strict=True):
        boxes, scores, labels, _ = _expected(out, confidence=0.3, max_detections=7)
        assert len(scores) > 0
        _assert_same(result, boxes, scores, labels)
        assert (result.width, result.height) == (image.shape[1], image.shape[0])


@pytest.mark.slow
def test_iou_option_is_torchvisions_nms_threshold(faster, images) -> None:
    task, reference = faster["task"], faster["reference"]
    outputs = _forward(reference, images, nms=0.3)
    results = task(images, confidence=0.1, iou=0.3, max_detections=50)
    loose = task(images, confidence=0.1, iou=0.9, max_detections=50)
    for result, wide, out in zip(results, loose, outputs, strict=True):
        boxes, scores, labels, _ = _expected(out, confidence=0.1, max_detections=50)
        _assert_same(result, boxes, scores, labels)
        assert len(wide) > len(result)  # a higher IoU threshold suppresses less


def test_classes_filter_before_the_cut(faster, images) -> None:
    task, reference = faster["task"], faster["reference"]
    outputs = _forward(reference, images, cut=100_000)
    names = coco_categories()
    unique = [int(c) for c in outputs[0]["labels"] if names.count(names[int(c)]) == 1]
    first, second = unique[2], next(c for c in unique[3:] if c != unique[2])
    wanted = {first, second}
    results = task(images, confidence=0.05, max_detections=4, iou=0.5, classes=[names[first], second])
    for result, out in zip(results, outputs, strict=True):
        boxes, scores, labels, _ = _expected(out, confidence=0.05, max_detections=4, classes=wanted)
        _assert_same(result, boxes, scores, labels)
    assert {d.class_id for d in results[0]} <= wanted and len(results[0]) > 0


def test_agnostic_nms_against_an_independent_nms(faster, images) -> None:
    task, reference = faster["task"], faster["reference"]
    outputs = _forward(reference, images, nms=1.0, cut=100_000)  # every candidate, no suppression
    results = task(images, confidence=0.2, iou=0.4, max_detections=10, agnostic_nms=True)
    for result, out in zip(results, outputs, strict=True):
        keep = out["scores"] >= 0.2
        boxes, scores, labels = out["boxes"][keep], out["scores"][keep], out["labels"][keep]
        order = _greedy_nms(boxes, scores, 0.4)[:10]
        _assert_same(result, boxes[order], scores[order], labels[order])


def test_a_batch_mixing_options_selects_each_image_by_its_own(faster, images) -> None:
    # Different IoUs in one batch: NMS moves out of torchvision into the per-image selection.
    task, reference = faster["task"], faster["reference"]
    default = _forward(reference, images)
    everything = _forward(reference, images, nms=1.0, cut=100_000)
    plain = task.parse_options({"confidence": 0.3, "iou": 0.5, "max_detections": 7})
    agnostic = task.parse_options({"confidence": 0.2, "iou": 0.4, "max_detections": 10, "agnostic_nms": True})
    first, second = task.run_batch([(images[0], plain), (images[1], agnostic)])
    boxes, scores, labels, _ = _expected(default[0], confidence=0.3, max_detections=7)
    _assert_same(first, boxes, scores, labels)
    keep = everything[1]["scores"] >= 0.2
    boxes, scores, labels = (everything[1][k][keep] for k in ("boxes", "scores", "labels"))
    order = _greedy_nms(boxes, scores, 0.4)[:10]
    _assert_same(second, boxes[order], scores[order], labels[order])


def test_masks_equal_thresholded_torchvision_masks_and_pycocotools_rle(mask, images) -> None:
    from pycocotools import mask as coco_mask

    task, reference = mask["task"], mask["reference"]
    outputs = _forward(reference, images)
    results = task(images, confidence=0.1, max_detections=12, mask_threshold=0.4)
    for result, out, image in zip(results, outputs, images, strict=True):
        boxes, scores, labels, index = _expected(out, confidence=0.1, max_detections=12)
        assert len(index) > 0
        _assert_same(result, boxes, scores, labels)
        expected_masks = out["masks"][index, 0] > 0.4
        for instance, want in zip(result, expected_masks, strict=True):
            assert instance.mask.size == image.shape[:2]
            np.testing.assert_array_equal(instance.mask.decode(), want)
            rle = coco_mask.encode(np.asfortranarray(want.astype(np.uint8)))
            assert instance.mask.counts == rle["counts"].decode("ascii")
            assert instance.mask.area == int(want.sum())
        assert any(i.mask.area > 0 for i in result)


def test_mask_model_serves_detect_without_running_the_mask_head(mask, images) -> None:
    detect = modeldeck.load("detect", model="tiny-mask", settings=mask["settings"])
    calls = []
    heads = detect.detector.runtime.model.roi_heads
    hook = heads.mask_head.register_forward_hook(lambda *args: calls.append(1))
    try:
        boxes = detect(images[0], confidence=0.1, max_detections=12)
    finally:
        hook.remove()
    instances = mask["task"](images[0], confidence=0.1, max_detections=12)
    assert calls == [] and "has_mask" not in heads.__dict__
    assert len(boxes) > 0
    assert [d.to_dict() for d in boxes] == [i.detection.to_dict() for i in instances]


# -- loading -----------------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs os.mkdir: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_answers_do_not_depend_on_the_first_image_the_model_saw(faster, images, tmp_path: Path) -> None:
    # torchvision's RoI pooler infers its scales on its first call and keeps them; from a short wide
    # image (resized to 38 x 96, padded to 64 x 96) it would infer 1/2 for the stride-4 level.
    from modeldeck.runtimes.torchvision import Selection

    wide = np.full((174, 436, 3), 90, np.uint8)
    runtime = TorchvisionRuntime.load(faster["folder"])
    select = Selection(confidence=0.05, iou=0.5, max_detections=100)
    runtime.detect([runtime.to_tensor(wide)], [select])
    pool = runtime.model.roi_heads.box_roi_pool
    assert pool.scales == [0.25, 0.125, 0.0625, 0.03125]
    got = runtime.detect([runtime.to_tensor(images[0])], [select])[0]
    expected = _forward(faster["reference"], images[:1])[0]  # torchvision's builder, first shown a padless image
    assert len(got.scores) > 0
    np.testing.assert_allclose(got.boxes, expected["boxes"], atol=1e-4)
    np.testing.assert_array_equal(got.labels, expected["labels"])


def test_a_checkpoint_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    state = {"roi_heads.box_predictor.cls_score.weight": torch.zeros(3, 4), "payload": _Payload(marker)}
    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save(state, folder / "model.pth")
    sidecar = {"runtime": "torchvision", "tasks": ["detect"], "architecture": FASTER}
    (folder / SIDECAR).write_text(json.dumps(sidecar), encoding="utf-8")
    with pytest.raises(UnsafeModelFileError, match="needs code to load") as caught:
        TorchvisionRuntime.load(folder)
    assert "state_dict()" in str(caught.value) and "mkdir" in str(caught.value)  # the fix, and what it tried
    assert "weights_only" not in str(caught.value)  # torch's own advice (load it unrestricted) is not passed on
    assert not marker.exists()
    with pytest.raises(UnsafeModelFileError):
        modeldeck.load("detect", model=str(folder), settings=Settings(home=tmp_path / "home"))
    assert not marker.exists()
    # The payload is real: an unrestricted unpickle does run it.
    torch.load(folder / "model.pth", weights_only=False)
    assert marker.is_dir()


def test_wrapped_checkpoint_custom_classes_and_path_loading(tmp_path: Path, images) -> None:
    state = random_state(FASTER, seed=7, num_classes=3)
    folder = tmp_path / "custom"
    folder.mkdir()
    torch.save({"model": state, "epoch": 3}, folder / "checkpoint.pt")
    spec = {"runtime": "torchvision", "tasks": ["detect"], "architecture": FASTER, "config": TINY}
    (folder / SIDECAR).write_text(json.dumps({**spec, "categories": ["__background__", "nut", "bolt"]}))
    assert infer_layout(folder) == ("torchvision", ("detect",))
    task = modeldeck.load("detect", model=str(folder), settings=Settings(home=tmp_path / "home"))
    assert task.labels == ("__background__", "nut", "bolt")
    result = task(images[0], confidence=0.0, max_detections=5)
    assert len(result) > 0 and {d.label for d in result} <= {"nut", "bolt"}
    bolts = task(images[0], confidence=0.0, classes=["bolt"])
    assert len(bolts) > 0 and set(bolts.boxes.class_id.tolist()) == {2}
    with pytest.raises(OptionError, match="unknown class 'washer'"):
        task(images[0], classes=["washer"])
    with pytest.raises(UnknownModelError, match="does not serve task 'segment'"):
        modeldeck.load("segment", model=str(folder), settings=Settings(home=tmp_path / "home"))

    (folder / SIDECAR).write_text(json.dumps({**spec, "categories": ["__background__", "nut"]}))
    with pytest.raises(ConfigError, match="2 category names for a model with 3 classes"):
        TorchvisionRuntime.load(folder)
    (folder / SIDECAR).write_text(json.dumps({**spec, "architecture": "fasterrcnn_resnet50_fpn_v2"}))
    with pytest.raises(ConfigError, match="does not fit architecture"):
        TorchvisionRuntime.load(folder)
    (folder / SIDECAR).write_text(json.dumps({**spec, "architecture": "yolo"}))
    with pytest.raises(ConfigError, match="one of: fasterrcnn_resnet50_fpn"):
        TorchvisionRuntime.load(folder)
    (folder / SIDECAR).write_text(json.dumps({**spec, "config": {"min_size": 64, "anchor": 3}}))
    with pytest.raises(ConfigError, match="unknown key 'anchor'"):
        TorchvisionRuntime.load(folder)


def test_spec_from_card_wins_over_sidecar_and_default_coco_names(tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    (tmp_path / SIDECAR).write_text(json.dumps({"architecture": FASTER, "num_classes": 5}))
    spec = read_spec(weights, {"architecture": MASK, "description": "ignored"})
    assert (spec.architecture, spec.num_classes, spec.weights, spec.has_masks) == (MASK, 5, weights, True)
    with pytest.raises(UnknownModelError, match="not a readable torch checkpoint"):
        TorchvisionRuntime.load(weights)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_not_a_state_dict_and_plain_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / SIDECAR).write_text(json.dumps({"architecture": FASTER}))
    torch.save([torch.zeros(2)], folder / "model.pth")
    with pytest.raises(UnknownModelError, match="does not hold a state dict"):
        TorchvisionRuntime.load(folder)
    (folder / "model.pth").write_bytes(pickle.dumps({"a": np.zeros(2)}))  # numpy needs code to unpickle
    with pytest.raises(UnsafeModelFileError, match="needs code to load"):
        TorchvisionRuntime.load(folder)


# -- real photos -------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_photos_through_the_detector_path(faster, mask) -> None:
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    for task in (faster["task"], mask["task"]):
        results = task(photos, confidence=0.2, max_detections=15)
        for photo, result in zip(photos, results, strict=True):
            h, w = photo.shape[:2]
            assert (result.width, result.height) == (w, h)
            assert len(result) > 0
            xyxy = result.boxes.xyxy
            assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 1] >= 0).all()
            assert (xyxy[:, 2] <= w).all() and (xyxy[:, 3] <= h).all()
            assert (xyxy[:, 2] >= xyxy[:, 0]).all() and (xyxy[:, 3] >= xyxy[:, 1]).all()
            assert np.all(np.diff(result.boxes.score) <= 0)
            assert all(d.label != "__background__" for d in result)
    rle = mask["task"](photos[0], confidence=0.2, max_detections=3)[0].mask
    assert Mask.from_dict(rle.to_dict()) == rle and rle.decode().shape == photos[0].shape[:2]
