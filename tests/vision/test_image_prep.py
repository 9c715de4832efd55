"""Classifier preprocessing equals the families' own code on real scikit-image photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data
from torchvision.models import get_model_weights

from modeldeck.errors import ConfigError
from modeldeck.images import load_image
from modeldeck.runtimes.keras import import_keras
from modeldeck.runtimes.torchvision_classify import weights_preprocessing
from modeldeck.tasks._image_prep import (
    KERAS_FAMILIES,
    keras_preprocessing,
    parse_preprocessing,
    preprocess_image,
    resize_image,
)

PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea}


@pytest.fixture(scope="module", params=sorted(PHOTOS))
def photo(request: pytest.FixtureRequest) -> np.ndarray:
    return np.asarray(PHOTOS[request.param]())


@pytest.mark.parametrize(
    ("architecture", "weights"),
    [("resnet18", "IMAGENET1K_V1"), ("resnet50", "IMAGENET1K_V2"), ("efficientnet_b0", "IMAGENET1K_V1")],
)
def test_torchvision_weights_transforms(photo: np.ndarray, architecture: str, weights: str) -> None:
    published = get_model_weights(architecture)[weights]
    spec = parse_preprocessing(weights_preprocessing(published))
    image = load_image(photo)
    expected = published.transforms()(image.to_pil()).numpy()  # torchvision on the PIL image
    ours = preprocess_image(image, spec)
    assert ours.shape == expected.shape == (3, *spec.size)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def test_torchvision_crop_of_a_tall_image_is_centred() -> None:
    # A tall, odd-sized image: the shorter side scales to resize_size and the crop offsets round like torchvision.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(301, 117, 3), dtype=np.uint8)
    published = get_model_weights("resnet18").DEFAULT
    image = load_image(pixels)
    ours = preprocess_image(image, parse_preprocessing(weights_preprocessing(published)))
    np.testing.assert_allclose(ours, published.transforms()(image.to_pil()).numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_keras_modes_equal_preprocess_input(photo: np.ndarray, mode: str) -> None:
    import_keras()  # on modeldeck's backend (torch) unless Keras is already imported
    from keras.applications import imagenet_utils

    spec = keras_preprocessing(mode, (224, 224))
    image = load_image(photo)
    resized = resize_image(image, spec)
    expected = imagenet_utils.preprocess_input(resized.astype(np.float32)[None], mode=mode)[0]
    ours = preprocess_image(image, spec)
    assert ours.shape == (224, 224, 3)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)


def test_vgg16_preprocess_input_and_load_img(photo: np.ndarray, tmp_path: Path) -> None:
    import_keras()
    from keras.applications import vgg16
    from keras.utils import img_to_array, load_img

    mode, size = KERAS_FAMILIES["vgg16"]
    spec = keras_preprocessing(mode, (size, size))
    path = tmp_path / "photo.png"
    load_image(photo).to_pil().save(path)
    # keras' own loading path, asked for the same interpolation, gives the same pixels.
    keras_pixels = img_to_array(load_img(path, target_size=(size, size), interpolation="bilinear"))
    expected = vgg16.preprocess_input(keras_pixels[None])[0]
    np.testing.assert_allclose(preprocess_image(load_image(photo), spec), expected, rtol=0, atol=1e-4)


def test_none_mode_keeps_raw_pixels() -> None:
    pixels = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    out = preprocess_image(load_image(pixels), keras_preprocessing("none", (16, 16)))
    np.testing.assert_array_equal(out, pixels.astype(np.float32))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"size": [224, 224], "colour": "RGB"}, "colour"),
        ({"size": [224, 224], "resize": "shorter-side"}, "resize_size"),
        ({"size": [224, 224], "resize": "shorter-side", "resize_size": 100}, "smaller than the crop"),
        ({"size": [224, 224], "std": [1, 0, 1]}, "std must be positive"),
        ({"size": [224, 224], "channel_order": "GBR"}, "channel_order"),
        ([224, 224], "must be an object"),
    ],
)
def test_bad_preprocessing_is_a_config_error(data: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_preprocessing(data)


def test_nchw_and_nhwc_hold_the_same_values() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    base = {"size": (20, 20), "mean": (0.1, 0.2, 0.3), "std": (0.5, 0.6, 0.7)}
    nchw = preprocess_image(load_image(pixels), parse_preprocessing({**base, "layout": "NCHW"}))
    nhwc = preprocess_image(load_image(pixels), parse_preprocessing({**base, "layout": "NHWC"}))
    np.testing.assert_array_equal(torch.from_numpy(nchw).permute(1, 2, 0).numpy(), nhwc)
