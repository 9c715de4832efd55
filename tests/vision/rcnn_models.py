"""Tiny random-weight torchvision R-CNNs of the real architectures, and torchvision's own reference for them.

The ResNet-50 FPN architectures are real (about 42-46 M parameters); what keeps tests quick is the
input: images resized to at most 128-160 pixels and few RPN proposals (``TINY``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modeldeck.runtimes.torchvision import build_model, save_model_folder

#: Constructor settings of every test model: small inputs and few proposals keep a forward under a second.
TINY: Mapping[str, int] = {"min_size": 64, "max_size": 96, "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 30}
WEIGHTS_ENUMS = {
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights",
    "maskrcnn_resnet50_fpn": "MaskRCNN_ResNet50_FPN_Weights",
    "maskrcnn_resnet50_fpn_v2": "MaskRCNN_ResNet50_FPN_V2_Weights",
}


def random_state(architecture: str, *, seed: int = 0, num_classes: int = 91) -> dict[str, torch.Tensor]:
    """A random-weight state dict of ``architecture`` (torchvision's own initialisation, seeded)."""
    torch.manual_seed(seed)
    return build_model(architecture, num_classes, TINY).state_dict()


def write_folder(
    folder: Path, architecture: str, *, seed: int = 0, num_classes: int = 91, categories: list[str] | None = None
) -> Path:
    """A ``modeldeck.json`` + ``model.pth`` folder, as ``modeldeck models import`` takes it."""
    return save_model_folder(
        random_state(architecture, seed=seed, num_classes=num_classes),
        folder,
        architecture=architecture,
        categories=categories,
        config=dict(TINY),
    )


@contextmanager
def _weights_served(state: Mapping[str, torch.Tensor]) -> Iterator[None]:
    import torchvision.models._api as api

    original = api.load_state_dict_from_url
    api.load_state_dict_from_url = lambda *args, **kwargs: dict(state)  # type: ignore[assignment]
    try:
        yield
    finally:
        api.load_state_dict_from_url = original  # type: ignore[assignment]


def torchvision_reference(architecture: str, state: Mapping[str, torch.Tensor], **overrides: Any) -> torch.nn.Module:
    """The model torchvision's own builder makes with its COCO_V1 weights, fed ``state`` instead of the download.

    This is how torchvision loads its official checkpoint (FrozenBatchNorm, eps overwrite, strict
    loading), so a modeldeck model that equals it on the same inputs is built the same way.
    ``overrides`` go to the builder (box_score_thresh, box_nms_thresh, box_detections_per_img, ...).
    """
    from torchvision.models import detection

    weights = getattr(detection, WEIGHTS_ENUMS[architecture]).COCO_V1
    with _weights_served(state):
        model = getattr(detection, architecture)(weights=weights, **{**TINY, **overrides})
    return model.eval()


def reference_outputs(model: torch.nn.Module, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    tensors = [torch.from_numpy(np.array(img).transpose(2, 0, 1).copy()).float() / 255.0 for img in images]
    with torch.inference_mode():
        outputs = model(tensors)
    return [{key: value.numpy() for key, value in out.items()} for out in outputs]


def drawn_images(count: int, *, seed: int = 0) -> list[np.ndarray]:
    """Synthetic photos of different sizes: a gradient background with filled rectangles and discs."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        h, w = int(rng.integers(90, 150)), int(rng.integers(100, 170))
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 40 * (i % 6))], axis=-1).astype(np.uint8)
        for _ in range(3):
            x1, y1 = int(rng.integers(0, w - 30)), int(rng.integers(0, h - 30))
            x2, y2 = x1 + int(rng.integers(15, 30)), y1 + int(rng.integers(15, 30))
            img[y1:y2, x1:x2] = rng.integers(0, 255, size=3)
        cy, cx, r = int(rng.integers(20, h - 20)), int(rng.integers(20, w - 20)), int(rng.integers(8, 18))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, size=3)
        images.append(img)
    return images
