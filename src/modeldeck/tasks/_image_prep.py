"""Classifier input preprocessing as data: resize, crop, channel order, scaling and normalisation.

One ``ImagePreprocessing`` describes what a family of classifiers expects, and ``preprocess_image``
applies it with Pillow and NumPy, so the same pixels reach the model whichever framework runs it.
The presets reproduce the families' own code (tested against it on real photos):

- torchvision's ``ImageClassification`` transforms on a PIL image: shorter side resized to
  ``resize_size`` (the longer side ``int(resize_size * long / short)``), centre crop to ``size``
  (top-left offset ``int(round((side - crop) / 2))``), ``/ 255``, ``(x - mean) / std``;
- ``keras.applications.imagenet_utils.preprocess_input``: ``caffe`` (RGB to BGR, minus the ImageNet
  BGR means, 0..255 range), ``tf`` (``x / 127.5 - 1``), ``torch`` (``/ 255`` then ImageNet mean and
  std), and ``none`` for families that normalise inside the model (EfficientNet, ConvNeXt, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from ..images import Image

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "KERAS_FAMILIES",
    "KERAS_MODES",
    "ImagePreprocessing",
    "keras_preprocessing",
    "parse_preprocessing",
    "preprocess_image",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

KerasMode = Literal["caffe", "tf", "torch", "none"]


class ImagePreprocessing(BaseModel):
    """What a classifier expects of its input image; unknown keys are refused.

    ``size`` is (height, width) fed to the model. ``resize="stretch"`` resizes the whole image to
    ``size``; ``resize="shorter-side"`` scales its shorter side to ``resize_size`` and centre-crops
    ``size`` (torchvision's recipe). Pixel values become ``(pixel / divisor - mean) / std`` per
    channel, in ``channel_order``; ``layout`` is the array one example is given as.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: tuple[int, int] = Field(description="(height, width) of the model's input")
    resize: Literal["stretch", "shorter-side"] = "stretch"
    resize_size: int | None = Field(default=None, ge=1, description="the shorter side before the crop")
    interpolation: Literal["nearest", "bilinear", "bicubic"] = "bilinear"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    divisor: float = Field(default=255.0, gt=0, description="pixel values (0..255) are divided by this first")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if min(self.size) < 1:
            raise ValueError(f"size must be positive, got {list(self.size)}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {list(self.std)}")
        if self.resize == "shorter-side":
            if self.resize_size is None:
                raise ValueError("resize 'shorter-side' needs resize_size")
            if self.resize_size < max(self.size):
                raise ValueError(f"resize_size {self.resize_size} is smaller than the crop {list(self.size)}")
        return self


#: keras.applications.imagenet_utils.preprocess_input modes, in the array's channel order.
KERAS_MODES: Mapping[str, Mapping[str, Any]] = {
    "caffe": {"channel_order": "BGR", "divisor": 1.0, "mean": (103.939, 116.779, 123.68)},
    "tf": {"divisor": 127.5, "mean": (1.0, 1.0, 1.0)},
    "torch": {"divisor": 255.0, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "none": {"divisor": 1.0},
}

#: Keras application family (its model's ``name`` up to the first ``_``) -> (preprocess mode, input size).
KERAS_FAMILIES: Mapping[str, tuple[KerasMode, int]] = {
    "vgg16": ("caffe", 224),
    "vgg19": ("caffe", 224),
    "resnet50": ("caffe", 224),
    "resnet101": ("caffe", 224),
    "resnet152": ("caffe", 224),
    "resnet50v2": ("tf", 224),
    "resnet101v2": ("tf", 224),
    "resnet152v2": ("tf", 224),
    "mobilenet": ("tf", 224),
    "mobilenetv2": ("tf", 224),
    "inception_v3": ("tf", 299),
    "inception_resnet_v2": ("tf", 299),
    "xception": ("tf", 299),
    "densenet121": ("torch", 224),
    "densenet169": ("torch", 224),
    "densenet201": ("torch", 224),
    # These normalise inside the model (a Rescaling/Normalization stem): raw 0..255 pixels go in.
    "efficientnetb0": ("none", 224),
    "efficientnetb1": ("none", 240),
    "efficientnetb2": ("none", 260),
    "efficientnetb3": ("none", 300),
    "efficientnetb4": ("none", 380),
    "efficientnetb5": ("none", 456),
    "efficientnetb6": ("none", 528),
    "efficientnetb7": ("none", 600),
}


def keras_preprocessing(mode: str, size: tuple[int, int], *, interpolation: str = "bilinear") -> ImagePreprocessing:
    """The preprocessing of ``keras.applications`` ``mode`` for an NHWC input of ``size``."""
    if mode not in KERAS_MODES:
        raise ConfigError(f"unknown Keras preprocessing mode {mode!r}", hint=f"one of: {', '.join(KERAS_MODES)}")
    return parse_preprocessing({"size": size, "layout": "NHWC", "interpolation": interpolation, **KERAS_MODES[mode]})


def parse_preprocessing(data: object, *, where: str = "preprocessing") -> ImagePreprocessing:
    """Validate a ``preprocessing`` mapping (from a ``modeldeck.json`` or a card) into the spec."""
    if isinstance(data, ImagePreprocessing):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be an object, got {data!r}")
    try:
        return ImagePreprocessing.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or where}: {item['msg']}" for item in exc.errors()
        )
        raise ConfigError(
            f"{where} is invalid: {problems}",
            hint=f"valid keys: {', '.join(ImagePreprocessing.model_fields)}",
        ) from None


def _resampling(name: str) -> Any:
    pil = import_pil()
    return {"nearest": pil.Resampling.NEAREST, "bilinear": pil.Resampling.BILINEAR, "bicubic": pil.Resampling.BICUBIC}[
        name
    ]


def import_pil() -> Any:
    from ..runtimes.base import import_framework

    return import_framework("PIL.Image", package="pillow", extra="vision", purpose="image classification")


def _center_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision's centre crop (offsets rounded the same way); pads with zeros when the image is smaller."""
    h, w = pixels.shape[:2]
    if h < height or w < width:
        top, left = max(0, (height - h) // 2), max(0, (width - w) // 2)
        padded = np.zeros((max(h, height), max(w, width), pixels.shape[2]), dtype=pixels.dtype)
        padded[top : top + h, left : left + w] = pixels
        pixels, h, w = padded, padded.shape[0], padded.shape[1]
    top, left = round((h - height) / 2.0), round((w - width) / 2.0)
    return pixels[top : top + height, left : left + width]


def resize_image(image: Image, spec: ImagePreprocessing) -> np.ndarray:
    """The (height, width, 3) uint8 RGB pixels the model's normalisation starts from."""
    height, width = spec.size
    pil = image.to_pil()
    resample = _resampling(spec.interpolation)
    if spec.resize == "stretch":
        if pil.size != (width, height):
            pil = pil.resize((width, height), resample)
        return np.asarray(pil, dtype=np.uint8)
    short_target = int(spec.resize_size or 0)
    w, h = pil.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = short_target, int(short_target * long / short)
    size = (new_short, new_long) if w <= h else (new_long, new_short)
    if size != pil.size:
        pil = pil.resize(size, resample)
    return _center_crop(np.asarray(pil, dtype=np.uint8), height, width)


def normalise(pixels: np.ndarray, spec: ImagePreprocessing) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> float32 in the spec's channel order, value range and layout."""
    x = pixels.astype(np.float32)
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    x = x / np.float32(spec.divisor)
    x = (x - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    if spec.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def preprocess_image(image: Image, spec: ImagePreprocessing) -> np.ndarray:
    """One image as the model's input example (no batch dimension)."""
    return normalise(resize_image(image, spec), spec)
