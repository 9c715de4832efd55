"""A torchvision resnet18 (random weights) through ``modeldeck optimize classify-image``: identical top-5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import OptionError
from modeldeck.optimizing import optimize
from modeldeck.optimizing._optimize import _images
from modeldeck.runtimes.torchvision_classify import save_classifier_folder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_resnet18_onnx_variant_gives_the_same_top5(tmp_path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    folder = save_classifier_folder(
        torchvision.models.resnet18(weights=None).eval(), tmp_path / "resnet18", architecture="resnet18"
    )
    settings = Settings(home=tmp_path / "home")
    modeldeck.ModelStore(settings).import_model(folder, "resnet18", version="1", tasks=("classify-image",))
    report = optimize("classify-image", model="resnet18@1", timing_seconds=0.02, settings=settings)
    onnx = report.variant("onnx")
    assert onnx.accepted and onnx.stored == "resnet18@onnx", onnx.reason
    assert onnx.accuracy["agreement"] == 1.0 and onnx.accuracy["top5_identical"] == 1.0
    original = modeldeck.load("classify-image", model="resnet18@1", settings=settings)
    variant = modeldeck.load("classify-image", model="resnet18@onnx", settings=settings)
    assert variant.info.runtime == "onnxruntime"
    images = _images(None)[:12]
    for a, b in zip(original(images, top_k=5), variant(images, top_k=5), strict=True):
        assert [x.label for x in a.labels] == [x.label for x in b.labels]
        np.testing.assert_allclose([x.score for x in a.labels], [x.score for x in b.labels], atol=1e-4)


def test_int8_is_refused_for_images_before_any_work() -> None:
    with pytest.raises(OptionError, match="without --int8"):
        optimize("classify-image", int8=True)
