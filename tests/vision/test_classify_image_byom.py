"""classify-image over models you bring: TorchScript, torch.export, ONNX and Keras, each checked
against the framework's own forward pass (plus softmax) on the same preprocessed pixels."""

from __future__ import annotations

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
from modeldeck.errors import ConfigError, OptionError, UnsafeModelFileError
from modeldeck.images import load_image
from modeldeck.runtimes.keras import import_keras
from modeldeck.tasks._image_classifiers import keras_family
from modeldeck.tasks._image_prep import KERAS_FAMILIES, keras_preprocessing, preprocess_image, resize_image
from modeldeck.tasks.classify_image import ClassifyImageTask, imagenet_classes

from .classifier_graphs import BIAS, CLASSES, SIDECAR, WEIGHTS, colour_graph

PHOTOS = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
TORCHVISION_SIDECAR = {
    "labels": "imagenet",
    "preprocessing": {"size": 224, "resize": 256, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}


def keras() -> Any:
    return import_keras()  # modeldeck's choice of backend, unless Keras is already imported


def full_scores(task: ClassifyImageTask, pixels: np.ndarray) -> np.ndarray:
    """Every class's score from modeldeck, in class-id order."""
    result = task(pixels, top_k=len(task.labels))
    by_name = {lab.label: lab.score for lab in result.labels}
    return np.array([by_name[name] for name in task.labels])


def softmax(x: torch.Tensor) -> np.ndarray:
    return torch.softmax(x.double(), dim=1).numpy()


def write_sidecar(model_file: Path, sidecar: dict[str, Any]) -> None:
    model_file.with_name(f"{model_file.stem}.modeldeck.json").write_text(json.dumps(sidecar))


@pytest.fixture(scope="module")
def resnet18() -> torch.nn.Module:
    torch.manual_seed(1)
    return torchvision.models.resnet18(weights=None).eval()


def torchvision_batch(names: list[str]) -> torch.Tensor:
    transforms = ResNet18_Weights.IMAGENET1K_V1.transforms()
    return torch.stack([transforms(load_image(PHOTOS[n]).to_pil()) for n in names])


@pytest.fixture(scope="module")
def scripted(resnet18: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("ts") / "resnet18.ts"
    torch.jit.script(resnet18).save(str(file))
    write_sidecar(file, TORCHVISION_SIDECAR)
    return file


@pytest.fixture(scope="module")
def exported(resnet18: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("pt2") / "resnet18.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(resnet18, (torch.zeros(2, 3, 224, 224),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(file))
    write_sidecar(file, TORCHVISION_SIDECAR)
    return file


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["scripted", "exported"])
def test_torch_files_equal_torchvision_forward_and_softmax(
    fixture: str, resnet18: torch.nn.Module, request: pytest.FixtureRequest
) -> None:
    file: Path = request.getfixturevalue(fixture)
    task: Any = modeldeck.load("classify-image", model=str(file), batch_size=3)
    assert task.info.runtime == {"scripted": "torchscript", "exported": "torch-export"}[fixture]
    names = sorted(PHOTOS)
    with torch.inference_mode():
        expected = softmax(resnet18(torchvision_batch(names)))
    results = task([PHOTOS[n] for n in names], top_k=1000)  # one batch of three
    for row, result in zip(expected, results, strict=True):
        by_name = {lab.label: lab.score for lab in result.labels}
        np.testing.assert_allclose([by_name[c] for c in imagenet_classes()], row, rtol=0, atol=1e-5)
        assert result.labels[0].label == imagenet_classes()[int(row.argmax())]
    assert task.describe()["preprocessing"]["resize_size"] == 256


@pytest.mark.slow
def test_torchscript_pickle_is_refused(resnet18: torch.nn.Module, tmp_path: Path) -> None:
    file = tmp_path / "resnet18.ts"
    torch.save(resnet18, file)  # a pickle of the module named like TorchScript: loading it would run code
    with pytest.raises(UnsafeModelFileError):
        modeldeck.load("classify-image", model=str(file))


# -- ONNX: a small graph built here, its answer computed with NumPy --------------------------------


def colour_reference(pixels: np.ndarray) -> np.ndarray:
    spec = keras_preprocessing("torch", (32, 32)).model_copy(update={"layout": "NCHW"})
    x = preprocess_image(load_image(pixels), spec)
    logits = WEIGHTS @ x.mean(axis=(1, 2)) + BIAS
    z = np.exp(logits - logits.max())
    return z / z.sum()


ONNX_SIDECAR = SIDECAR


@pytest.mark.parametrize("batch", [None, 1, 2])
def test_onnx_classifier_with_sidecar(tmp_path: Path, batch: int | None) -> None:
    file = colour_graph(tmp_path / "colour.onnx", batch)
    write_sidecar(file, ONNX_SIDECAR)
    task: Any = modeldeck.load("classify-image", model=str(file))
    assert task.preprocessing.size == (32, 32)  # from the graph's input shape
    assert task.preprocessing.layout == "NCHW"
    red = np.zeros((40, 50, 3), np.uint8)
    red[..., 0] = 230
    photos = [red, PHOTOS["coffee"], PHOTOS["chelsea"]]
    results = task(photos)  # a fixed-batch graph runs that many per call, the last chunk padded
    for pixels, result in zip(photos, results, strict=True):
        expected = colour_reference(pixels)
        by_name = {lab.label: lab.score for lab in result.labels}
        np.testing.assert_allclose([by_name[c] for c in CLASSES], expected, rtol=0, atol=1e-5)
    assert results[0].labels[0].label == "red"


def test_declared_probabilities_are_not_softmaxed(tmp_path: Path) -> None:
    file = colour_graph(tmp_path / "colour.onnx", None)
    write_sidecar(file, {**ONNX_SIDECAR, "scores": "probabilities"})
    task: Any = modeldeck.load("classify-image", model=str(file))
    pixels = PHOTOS["coffee"]
    spec = keras_preprocessing("torch", (32, 32)).model_copy(update={"layout": "NCHW"})
    logits = WEIGHTS @ preprocess_image(load_image(pixels), spec).mean(axis=(1, 2)) + BIAS
    scores = {lab.label: lab.score for lab in task(pixels, top_k=4).labels}
    kept = [c for c, v in zip(CLASSES, logits, strict=True) if v >= 0]  # min_score 0 drops negative ones
    assert sorted(scores) == sorted(kept) and kept
    np.testing.assert_allclose([scores[c] for c in kept], logits[logits >= 0], rtol=0, atol=1e-5)
    write_sidecar(file, {**ONNX_SIDECAR, "scores": "percent"})
    with pytest.raises(ConfigError, match="scores"):
        modeldeck.load("classify-image", model=str(file))


def test_onnx_without_labels_is_refused(tmp_path: Path) -> None:
    file = colour_graph(tmp_path / "colour.onnx", None)
    write_sidecar(file, {"preprocessing": ONNX_SIDECAR["preprocessing"]})
    with pytest.raises(ConfigError, match="does not name its classes") as info:
        modeldeck.load("classify-image", model=str(file))
    assert "labels" in (info.value.hint or "")


def test_onnx_label_count_must_match(tmp_path: Path) -> None:
    file = colour_graph(tmp_path / "colour.onnx", None)
    write_sidecar(file, {**ONNX_SIDECAR, "labels": ["a", "b"]})
    with pytest.raises(ConfigError, match="4 scores per image but 2 labels"):
        modeldeck.load("classify-image", model=str(file))


def test_onnx_without_preprocessing_is_refused(tmp_path: Path) -> None:
    file = colour_graph(tmp_path / "colour.onnx", None)
    write_sidecar(file, {"labels": CLASSES})
    with pytest.raises(ConfigError, match="how to preprocess"):
        modeldeck.load("classify-image", model=str(file))


def test_sidecar_typo_is_refused(tmp_path: Path) -> None:
    file = colour_graph(tmp_path / "colour.onnx", None)
    write_sidecar(file, {"labels": CLASSES, "preprocessing": {"size": 32, "colour_order": "BGR"}})
    with pytest.raises(ConfigError, match="colour_order"):
        modeldeck.load("classify-image", model=str(file))


def test_safe_mode_is_for_keras_only(tmp_path: Path) -> None:
    file = colour_graph(tmp_path / "colour.onnx", None)
    write_sidecar(file, ONNX_SIDECAR)
    with pytest.raises(OptionError, match="safe_mode applies to Keras"):
        modeldeck.load("classify-image", model=str(file), safe_mode=False)


# -- Keras applications --------------------------------------------------------------------------


def test_keras_family_from_model_names() -> None:
    assert keras_family("vgg16") == "vgg16"
    assert keras_family("mobilenetv2_1.00_224") == "mobilenetv2"
    assert keras_family("inception_v3") == "inception_v3"
    assert keras_family("efficientnetb3") == "efficientnetb3"
    assert keras_family("my_model") is None
    assert KERAS_FAMILIES["resnet50"] == ("caffe", 224)


@pytest.fixture(scope="module")
def vgg16(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """keras.applications.VGG16 with random weights at 32x32 (its smallest input), saved as .keras."""
    k = keras()
    k.utils.set_random_seed(0)
    model = k.applications.VGG16(weights=None, input_shape=(32, 32, 3))
    file = tmp_path_factory.mktemp("vgg16") / "vgg16.keras"
    model.save(str(file))
    return model, file


@pytest.mark.slow
def test_keras_vgg16_equals_predict_on_preprocess_input(vgg16: tuple[Any, Path]) -> None:
    model, file = vgg16
    task: Any = modeldeck.load("classify-image", model=str(file))  # no sidecar: the family is the model's name
    assert task.info.runtime == "keras"
    assert task.preprocessing == keras_preprocessing("caffe", (32, 32))
    assert task.labels == imagenet_classes()
    from keras.applications import vgg16 as vgg16_module

    names = sorted(PHOTOS)
    pixels = np.stack([resize_image(load_image(PHOTOS[n]), task.preprocessing) for n in names]).astype(np.float32)
    expected = np.asarray(model.predict_on_batch(vgg16_module.preprocess_input(pixels))).astype(np.float64)
    results = task([PHOTOS[n] for n in names], top_k=1000)
    for row, result in zip(expected, results, strict=True):
        by_name = {lab.label: lab.score for lab in result.labels}
        # The model ends in a softmax: its outputs are the scores, not re-softmaxed.
        np.testing.assert_allclose([by_name[c] for c in imagenet_classes()], row, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_keras_mobilenetv2_uses_tf_mode(tmp_path: Path) -> None:
    k = keras()
    model = k.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=3)
    file = tmp_path / "mnv2.keras"
    model.save(str(file))
    write_sidecar(file, {"labels": ["cat", "dog", "bird"]})
    task: Any = modeldeck.load("classify-image", model=str(file))
    assert task.preprocessing == keras_preprocessing("tf", (32, 32))
    from keras.applications import mobilenet_v2

    pixels = resize_image(load_image(PHOTOS["chelsea"]), task.preprocessing).astype(np.float32)[None]
    expected = np.asarray(model.predict_on_batch(mobilenet_v2.preprocess_input(pixels)))[0]
    np.testing.assert_allclose(full_scores(task, PHOTOS["chelsea"]), expected, rtol=0, atol=1e-5)


# -- TensorFlow SavedModel -------------------------------------------------------------------------


@pytest.mark.slow
def test_savedmodel_classifier_equals_its_signature(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = keras_preprocessing("tf", (16, 16))
    names = sorted(PHOTOS)
    np.save(tmp_path / "pixels.npy", np.stack([preprocess_image(load_image(PHOTOS[n]), spec) for n in names]))
    script = Path(__file__).with_name("build_savedmodel_classifier.py")
    env = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(tmp_path / "pixels.npy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "classifier_sm"
    sidecar = {"task": "classify-image", "labels": ["a", "b", "c"], "preprocessing": {"mode": "tf"}}
    (folder / "modeldeck.json").write_text(json.dumps(sidecar))
    task: Any = modeldeck.load(str(folder))  # the sidecar names the task; the files say tensorflow
    assert task.info.runtime == "tensorflow"
    assert task.preprocessing == spec  # size and NHWC from the signature, the tf mode from the sidecar
    expected = np.load(tmp_path / "expected.npy").astype(np.float64)
    z = np.exp(expected - expected.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    results = task([PHOTOS[n] for n in names], top_k=3)
    for row, result in zip(probs, results, strict=True):
        scores = {lab.label: lab.score for lab in result.labels}
        np.testing.assert_allclose([scores[c] for c in "abc"], row, rtol=0, atol=1e-5)
