"""``modeldeck eval classify-image --folder``: accuracy and confusion counted independently, the plot drawn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from skimage import data

import modeldeck
from modeldeck.cli.main import main
from modeldeck.errors import InputError, OptionError
from modeldeck.evaluation.classification import OTHER, evaluate_folder, read_class_folders
from modeldeck.runtimes.torchvision_classify import save_classifier_folder

LABELS = ["astronaut", "coffee cup", "tabby_cat", "rocket", "horse", "camera"]
PHOTOS = {"astronaut": data.astronaut(), "Coffee_Cup": data.coffee(), "tabby-cat": data.chelsea()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("eval-classify")
    torch.manual_seed(3)
    model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=len(LABELS)).eval()
    folder = save_classifier_folder(model, root / "model", architecture="mobilenet_v3_small", categories=LABELS)
    images = root / "images"
    for name, pixels in PHOTOS.items():
        sub = images / name  # folder names differ from the labels in case, '_' and '-'
        sub.mkdir(parents=True)
        Image.fromarray(pixels).save(sub / "a.png")
        Image.fromarray(pixels[:, ::-1]).save(sub / "b.jpg")
        Image.fromarray(pixels[20:-20, 40:]).save(sub / "c.png")
    (images / "tabby-cat" / "broken.png").write_bytes(b"not a png")
    (images / "tabby-cat" / "notes.txt").write_text("not an image, not counted")
    task = modeldeck.load(str(folder))
    return {"model": folder, "images": images, "task": task, "report": evaluate_folder(task, images, progress=False)}


@pytest.mark.slow
def test_counts_equal_an_independent_count(setup: dict[str, Any]) -> None:
    task = setup["task"]
    report = evaluate_folder(task, setup["images"], batch_size=4, progress=False)
    assert report == setup["report"]  # the batch size changes nothing
    classes = ["astronaut", "coffee cup", "tabby_cat"]
    assert report.classes == tuple(classes)
    # One by one, outside the evaluator: the model's full ranking of every image.
    top1 = top5 = 0
    matrix = np.zeros((3, 4), dtype=int)
    for name, label in (("astronaut", "astronaut"), ("Coffee_Cup", "coffee cup"), ("tabby-cat", "tabby_cat")):
        for file in ("a.png", "b.jpg", "c.png"):
            ranked = [lab.label for lab in task(setup["images"] / name / file, top_k=6).labels]
            top1 += ranked[0] == label
            top5 += label in ranked[:5]
            column = classes.index(ranked[0]) if ranked[0] in classes else 3
            matrix[classes.index(label), column] += 1
    assert report.images == 9
    assert report.top1 == pytest.approx(top1 / 9)
    assert report.top5 == pytest.approx(top5 / 9)
    assert report.matrix_list() == matrix.tolist()
    assert report.columns[-1] == OTHER
    assert [s.file_name for s in report.skipped] == ["tabby-cat/broken.png"]
    assert sum(int(row["images"]) for row in report.per_class.values()) == 9


@pytest.mark.slow
def test_cli_json_and_confusion_plot(setup: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "confusion.png"
    args = ["eval", "classify-image", "--folder", str(setup["images"]), "--model", str(setup["model"])]
    assert main([*args, "--json", "--quiet", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = setup["report"].to_dict()
    for key in ("images", "top1", "top5", "classes", "confusion", "per_class"):
        assert out[key] == expected[key]
    with Image.open(plot) as drawn:
        assert drawn.format == "PNG"
        assert drawn.width > 300 and drawn.height > 300
        assert (
            len(np.unique(np.asarray(drawn.convert("RGB")).reshape(-1, 3), axis=0)) > 10
        )  # cells, text and a colour bar, not a blank page
    assert main([*args, "--quiet", "--limit", "2"]) == 0
    text = capsys.readouterr().out
    assert "top-1 accuracy" in text and "on 2 images" in text


def test_folder_that_names_no_label(setup: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "astronaut").mkdir()
    (tmp_path / "zebra").mkdir()
    with pytest.raises(InputError, match="zebra") as info:
        read_class_folders(tmp_path, LABELS)
    assert "astronaut" not in info.value.message
    assert "'astronaut'" in (info.value.hint or "")


def test_bad_arguments(setup: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no class subfolders"):
        read_class_folders(tmp_path, LABELS)
    with pytest.raises(OptionError, match="batch_size"):
        evaluate_folder(setup["task"], setup["images"], batch_size=0, progress=False)
    assert main(["eval", "classify-image", "--model", str(setup["model"]), "--quiet"]) == 2
