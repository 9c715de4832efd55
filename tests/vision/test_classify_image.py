"""classify-image: torchvision classifiers through the store and modeldeck.load, checked against torchvision."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from skimage import data
from torchvision.models import ResNet18_Weights

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import ConfigError, InputDecodeError, OptionError, UnsafeModelFileError
from modeldeck.images import load_image
from modeldeck.runtimes.torchvision_classify import save_classifier_folder
from modeldeck.store import ModelStore
from modeldeck.tasks.classify import ClassifyResult, Label
from modeldeck.tasks.classify_image import ClassifyImageTask, imagenet_classes

PHOTOS = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    load_image(pixels).to_pil().save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def resnet18() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


@pytest.fixture(scope="module")
def folder(resnet18: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_classifier_folder(resnet18, tmp_path_factory.mktemp("resnet18"), architecture="resnet18")


@pytest.fixture(scope="module")
def task(folder: Path) -> ClassifyImageTask:
    return modeldeck.load("classify-image", model=str(folder), batch_size=2)  # type: ignore[return-value]


def reference(model: torch.nn.Module, pixels: np.ndarray) -> np.ndarray:
    """torchvision's own path: the weights' transforms on the PIL image, the model, softmax."""
    batch = ResNet18_Weights.IMAGENET1K_V1.transforms()(load_image(pixels).to_pil())[None]
    with torch.inference_mode():
        return torch.softmax(model(batch), dim=1)[0].double().numpy()


def test_imagenet_classes_ship_with_the_package() -> None:
    assert imagenet_classes() == tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    assert len(imagenet_classes()) == 1000


def test_sidecar_names_the_task(folder: Path) -> None:
    sidecar = json.loads((folder / "modeldeck.json").read_text())
    assert sidecar == {
        "runtime": "torchvision",
        "tasks": ["classify-image"],
        "architecture": "resnet18",
        "weights": "model.pth",
    }
    inferred = modeldeck.load(str(folder))  # the task comes from the folder
    assert isinstance(inferred, ClassifyImageTask)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_equals_torchvision_forward_and_softmax(task: ClassifyImageTask, resnet18: torch.nn.Module, name: str) -> None:
    expected = reference(resnet18, PHOTOS[name])
    result = task(PHOTOS[name], top_k=1000)
    assert isinstance(result, ClassifyResult)
    assert len(result.labels) == 1000
    by_name = {label.label: label.score for label in result.labels}
    np.testing.assert_allclose([by_name[c] for c in imagenet_classes()], expected, rtol=0, atol=1e-5)
    scores = [label.score for label in result.labels]
    assert scores == sorted(scores, reverse=True)
    assert result.labels[0].label == imagenet_classes()[int(np.argmax(expected))]


def test_top_k_and_min_score(task: ClassifyImageTask) -> None:
    top5 = task(PHOTOS["coffee"])
    assert len(top5.labels) == 5  # the default
    full = task(PHOTOS["coffee"], top_k=1000)
    assert top5.labels == full.labels[:5]
    cut = full.labels[3].score
    assert task(PHOTOS["coffee"], top_k=10, min_score=cut).labels == full.labels[:4]
    with pytest.raises(OptionError, match="top_k"):
        task(PHOTOS["coffee"], top_k=0)


def test_batched_equals_one_by_one(task: ClassifyImageTask) -> None:
    photos = list(PHOTOS.values())
    batched = task(photos)  # batch_size=2: a batch of two and a batch of one
    single = [task(p) for p in photos]
    for b, s in zip(batched, single, strict=True):
        assert [lab.label for lab in b.labels] == [lab.label for lab in s.labels]
        np.testing.assert_allclose([lab.score for lab in b.labels], [lab.score for lab in s.labels], atol=1e-6)


def test_bad_image_fails_alone(task: ClassifyImageTask) -> None:
    good = base64.b64encode(png(PHOTOS["chelsea"])).decode()
    out = task.run_batch([(good, task.default_options), (b"not an image", task.default_options)])
    assert isinstance(out[0], ClassifyResult)
    assert isinstance(out[1], InputDecodeError)


def test_result_round_trips(task: ClassifyImageTask) -> None:
    result = task(PHOTOS["astronaut"])
    assert ClassifyResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_describe_shows_the_preprocessing(task: ClassifyImageTask) -> None:
    info = task.describe()
    assert info["num_classes"] == 1000
    assert info["preprocessing"]["size"] == [224, 224]
    assert info["preprocessing"]["resize_size"] == 256
    assert info["scores"] == "logits"


def test_custom_categories_and_weights_recipe(tmp_path: Path) -> None:
    model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=3).eval()
    folder = save_classifier_folder(
        model, tmp_path, architecture="mobilenet_v3_small", categories=["cat", "dog", "bird"]
    )
    task: Any = modeldeck.load(str(folder))
    result = task(PHOTOS["chelsea"], top_k=3)
    assert sorted(lab.label for lab in result.labels) == ["bird", "cat", "dog"]
    assert sum(lab.score for lab in result.labels) == pytest.approx(1.0)


def test_wrong_category_count_is_refused(tmp_path: Path, resnet18: torch.nn.Module) -> None:
    folder = save_classifier_folder(resnet18.state_dict(), tmp_path, architecture="resnet18", categories=["a", "b"])
    with pytest.raises(ConfigError, match="1000 class names"):
        modeldeck.load(str(folder))


def test_unknown_architecture_lists_the_known_ones(tmp_path: Path, resnet18: torch.nn.Module) -> None:
    folder = save_classifier_folder(resnet18, tmp_path, architecture="resnet18")
    sidecar = json.loads((folder / "modeldeck.json").read_text())
    (folder / "modeldeck.json").write_text(json.dumps({**sidecar, "architecture": "resnet19"}))
    with pytest.raises(ConfigError, match="resnet19") as info:
        modeldeck.load(str(folder))
    assert "resnet18" in (info.value.hint or "")


def test_architecture_that_does_not_fit_the_weights(tmp_path: Path, resnet18: torch.nn.Module) -> None:
    folder = save_classifier_folder(resnet18, tmp_path, architecture="resnet18")
    sidecar = json.loads((folder / "modeldeck.json").read_text())
    (folder / "modeldeck.json").write_text(json.dumps({**sidecar, "architecture": "resnet34"}))
    with pytest.raises(ConfigError, match="does not fit architecture 'resnet34'"):
        modeldeck.load(str(folder))


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    folder = save_classifier_folder(torchvision.models.resnet18(weights=None), tmp_path, architecture="resnet18")
    torch.save({"fc.weight": torch.zeros(2, 2), "oops": Path("x")}, folder / "model.pth")
    with pytest.raises(UnsafeModelFileError):
        modeldeck.load(str(folder))


def test_imported_into_the_store(folder: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    ModelStore(settings).import_model(folder, "my-resnet")
    task: Any = modeldeck.load("classify-image", model="my-resnet", settings=settings)
    assert task.info.name == "my-resnet"
    assert task(PHOTOS["coffee"]).labels[0].label in imagenet_classes()


def test_draw_tags_the_top_label_in_the_corner() -> None:
    from modeldeck._draw import colour_for, draw

    grey = np.full((120, 200, 3), 128, dtype=np.uint8)
    result = ClassifyResult((Label("tabby", 0.91), Label("tiger cat", 0.05)))
    out = np.asarray(draw(grey, result))
    tag = out[:40, :120]
    assert (tag == colour_for(0)).all(axis=2).sum() > 200  # the tag's fill, in the corner
    assert (out[60:, :] == 128).all()  # nothing else drawn
    assert (np.asarray(draw(grey, result.to_dict())) == out).all()  # the dict form draws the same
    assert (np.asarray(draw(grey, ClassifyResult(()))) == grey).all()  # nothing to tag
    plain = np.asarray(draw(grey, result, scores=False))
    assert (plain != out).any()  # "tabby" alone is a shorter tag than "tabby 0.91"


def test_catalog_pins_torchvision_imagenet_weights() -> None:
    from torchvision.models import ResNet50_Weights, VGG16_Weights

    from modeldeck.store.catalog import BUILTIN_CATALOG

    entries = {e.name: e for e in BUILTIN_CATALOG if "classify-image" in e.tasks}
    assert set(entries) == {"vgg16", "resnet50"}
    for name, weights in (("vgg16", VGG16_Weights.IMAGENET1K_V1), ("resnet50", ResNet50_Weights.IMAGENET1K_V1)):
        entry = entries[name]
        source: Any = entry.source
        assert source.url == weights.url  # the file torchvision itself downloads for these weights
        prefix = source.url.rsplit("-", 1)[1].removesuffix(".pth")
        assert source.sha256.startswith(prefix) and len(source.sha256) == 64
        assert entry.card["architecture"] == name and entry.card["torchvision_weights"] == weights.name
        assert entry.card["metrics"]["ImageNet-1K"] == weights.meta["_metrics"]["ImageNet-1K"]


def test_pulled_by_a_catalog_entry_whose_card_names_the_architecture(tmp_path: Path) -> None:
    from ..support import serve_files

    torch.manual_seed(5)
    model = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    home = tmp_path / "home"
    home.mkdir()
    with serve_files() as server:
        url, sha = server.add("/resnet18-tiny.pth", path.read_bytes())
        entry = {
            "name": "my-resnet18",
            "tasks": ["classify-image"],
            "runtime": "torchvision",
            "card": {"architecture": "resnet18", "torchvision_weights": "IMAGENET1K_V1"},
            "source": {"kind": "url", "url": url, "sha256": sha},
        }
        (home / "catalog.json").write_text(json.dumps([entry]), encoding="utf-8")
        settings = Settings(home=home)
        ModelStore(settings).pull("my-resnet18", progress=False)
    task: Any = modeldeck.load("classify-image", model="my-resnet18", settings=settings)
    expected = reference(model, PHOTOS["chelsea"])
    by_name = {lab.label: lab.score for lab in task(PHOTOS["chelsea"], top_k=1000).labels}
    np.testing.assert_allclose([by_name[c] for c in imagenet_classes()], expected, rtol=0, atol=1e-5)
