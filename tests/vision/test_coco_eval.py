"""COCO mAP through pycocotools: a model scored against its own predictions gets AP 1, shifted boxes less."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.errors import InputDecodeError, InputError, OptionError
from modeldeck.evaluation.coco import METRICS, CocoReport, evaluate_coco
from modeldeck.tasks.vision_results import Mask

from .rcnn_models import drawn_images, write_folder

OPTIONS = {"confidence": 0.1, "max_detections": 20}


def _coco_names() -> list[str]:
    from modeldeck.runtimes.torchvision import coco_categories

    return [n for n in dict.fromkeys(coco_categories()) if n not in ("__background__", "N/A")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Four drawn images in a folder, and category ids that are not torchvision's (mapped by name)."""
    root = tmp_path_factory.mktemp("coco")
    folder = root / "images"
    folder.mkdir()
    images = []
    for i, pixels in enumerate(drawn_images(4, seed=11)):
        name = f"img_{i}.png"
        PILImage.fromarray(pixels).save(folder / name)
        images.append({"id": 10 + i, "file_name": name, "width": pixels.shape[1], "height": pixels.shape[0]})
    categories = [{"id": 500 - i, "name": name} for i, name in enumerate(_coco_names())]
    return {"root": root, "folder": folder, "images": images, "categories": categories}


def _ground_truth(dataset: dict[str, Any], results: list[Any], *, shift: float = 0.0, masks: bool = False) -> dict:
    ids = {c["name"]: c["id"] for c in dataset["categories"]}
    annotations = []
    for img, result in zip(dataset["images"], results, strict=True):
        for item in result:
            if item.label not in ids:
                continue
            x1, y1, x2, y2 = item.box
            w, h = x2 - x1, y2 - y1
            ann = {
                "id": len(annotations) + 1,
                "image_id": img["id"],
                "category_id": ids[item.label],
                "bbox": [x1 + shift * w, y1, w, h],
                "area": w * h,
                "iscrowd": 0,
            }
            if masks:
                ann["segmentation"] = item.mask.to_dict()
                ann["area"] = item.mask.area
            annotations.append(ann)
    return {"images": dataset["images"], "categories": dataset["categories"], "annotations": annotations}


def _write(dataset: dict[str, Any], name: str, data: dict) -> Path:
    path = dataset["root"] / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory, dataset: dict[str, Any]) -> dict[str, Any]:
    folder = write_folder(tmp_path_factory.mktemp("faster") / "model", "fasterrcnn_resnet50_fpn", seed=21)
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    task = modeldeck.load("detect", model=str(folder), settings=settings, **OPTIONS)
    paths = [dataset["folder"] / img["file_name"] for img in dataset["images"]]
    return {"folder": folder, "task": task, "results": task(paths)}


def test_eval_cli_scores_a_model_on_its_own_predictions_as_perfect(
    detector, dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _ground_truth(dataset, detector["results"])
    dropped = sum(1 for r in detector["results"] for d in r if d.label == "N/A")
    assert len(truth["annotations"]) > 5
    ann = _write(dataset, "perfect.json", truth)
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    argv = [
        "eval",
        "detect",
        "--coco",
        str(ann),
        "--images",
        str(dataset["folder"]),
        "--model",
        str(detector["folder"]),
    ]
    argv += ["--json", "--quiet", "-o", "confidence=0.1", "-o", "max_detections=20"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["metrics"]) == {"bbox"}
    assert report["metrics"]["bbox"]["AP"] == pytest.approx(1.0)
    assert report["metrics"]["bbox"]["AP50"] == pytest.approx(1.0)
    assert report["metrics"]["bbox"]["AR100"] == pytest.approx(1.0)
    assert report["images"] == 4 and report["skipped"] == []
    assert report["annotations"] == len(truth["annotations"])
    assert report["detections"] == len(truth["annotations"])  # every mapped detection, nothing else
    assert sum(report["unmapped"].values()) == dropped and set(report["unmapped"]) <= {"N/A"}
    assert report["options"]["confidence"] == 0.1 and report["options"]["iou"] == 0.5  # the R-CNN default


def test_shifted_boxes_score_lower_and_render(detector, dataset) -> None:
    ann = _write(dataset, "shifted.json", _ground_truth(dataset, detector["results"], shift=0.4))
    report = evaluate_coco(detector["task"], ann, dataset["folder"], batch_size=4, progress=True)  # rich on stderr
    bbox = report.metrics["bbox"]
    assert 0.0 <= bbox["AP"] < 0.5 and bbox["AP75"] < bbox["AP50"] + 1e-9
    text = report.render()
    assert "COCO evaluation" in text and all(name in text for name in METRICS)
    assert f"{bbox['AP']:6.3f}" in text


@pytest.mark.slow
def test_bad_images_are_skipped_not_fatal(detector, dataset) -> None:
    (dataset["folder"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    truth = _ground_truth(dataset, detector["results"])
    truth["images"] = [
        *dataset["images"],
        {"id": 98, "file_name": "broken.png", "width": 10, "height": 10},
        {"id": 99, "file_name": "missing.png", "width": 10, "height": 10},
    ]
    truth["annotations"].append(
        {"id": 999, "image_id": 99, "category_id": truth["categories"][0]["id"], "bbox": [1, 1, 5, 5], "area": 25}
    )
    report = evaluate_coco(detector["task"], _write(dataset, "bad.json", truth), dataset["folder"], progress=False)
    assert [s.image_id for s in report.skipped] == [98, 99]
    assert "MD104" in report.skipped[1].error and "missing.png" in report.skipped[1].error
    assert report.images == 4
    assert report.metrics["bbox"]["AP"] == pytest.approx(1.0)  # skipped images are left out, not counted as misses
    assert report.to_dict()["skipped"][0]["file_name"] == "broken.png"
    assert "skipped broken.png" in report.render()

    limited = evaluate_coco(
        detector["task"], _write(dataset, "bad.json", truth), dataset["folder"], limit=2, progress=False
    )
    assert limited.images == 2 and not limited.skipped


def test_no_detections_and_unknown_names(detector, dataset) -> None:
    truth = _ground_truth(dataset, detector["results"])
    truth["categories"] = [{"id": 1, "name": "unicorn"}]
    truth["annotations"] = [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [2.0, 2.0, 20.0, 20.0], "area": 400.0, "iscrowd": 0}
    ]
    report = evaluate_coco(detector["task"], _write(dataset, "unicorn.json", truth), dataset["folder"], progress=False)
    assert report.detections == 0
    assert report.metrics["bbox"]["AP"] == 0.0
    assert sum(report.unmapped.values()) == sum(len(r) for r in detector["results"])
    assert report.metrics["bbox"]["APl"] is None  # no large object in the ground truth: COCO says -1
    assert CocoReport(**{**report.__dict__}).to_dict() == report.to_dict()


def test_argument_and_file_errors(detector, dataset, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="batch_size"):
        evaluate_coco(detector["task"], tmp_path / "x.json", dataset["folder"], batch_size=0)
    with pytest.raises(InputDecodeError, match="no COCO annotations file"):
        evaluate_coco(detector["task"], tmp_path / "x.json", dataset["folder"], progress=False)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(InputError, match="not COCO annotations"):
        evaluate_coco(detector["task"], tmp_path / "list.json", dataset["folder"], progress=False)
    embed_like = type("T", (), {"name": "embed"})()
    with pytest.raises(OptionError, match="detect and segment"):
        evaluate_coco(embed_like, tmp_path / "list.json", dataset["folder"])


@pytest.mark.slow
def test_segment_eval_scores_masks(tmp_path_factory: pytest.TempPathFactory, dataset) -> None:
    folder = write_folder(tmp_path_factory.mktemp("mask") / "model", "maskrcnn_resnet50_fpn_v2", seed=22)
    task = modeldeck.load("segment", model=str(folder), settings=Settings(home=tmp_path_factory.mktemp("h")), **OPTIONS)
    results = task([dataset["folder"] / img["file_name"] for img in dataset["images"]])
    assert all(i.mask.area > 0 for r in results for i in r)  # an empty mask could never be matched
    report = evaluate_coco(task, _write(dataset, "segm.json", _ground_truth(dataset, results, masks=True)),
                           dataset["folder"], progress=False)  # fmt: skip
    assert set(report.metrics) == {"bbox", "segm"}
    assert report.metrics["segm"]["AP"] == pytest.approx(1.0)
    assert report.metrics["bbox"]["AP"] == pytest.approx(1.0)
    # Masks moved off their objects: the boxes still match, the masks no longer do.
    truth = _ground_truth(dataset, results, masks=True)
    for ann in truth["annotations"]:
        decoded = Mask.from_dict(ann["segmentation"]).decode()
        moved = np.roll(decoded, shift=decoded.shape[1] // 2, axis=1)
        ann["segmentation"] = Mask.encode(moved).to_dict()
    worse = evaluate_coco(task, _write(dataset, "segm-moved.json", truth), dataset["folder"], progress=False)
    assert worse.metrics["bbox"]["AP"] == pytest.approx(1.0)
    assert worse.metrics["segm"]["AP"] < 0.5
