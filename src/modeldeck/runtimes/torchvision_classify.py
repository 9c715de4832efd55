"""torchvision classification models (ResNet, VGG, EfficientNet, ViT, ...) built by name, weights loaded safely.

A model is a state dict plus a ``modeldeck.json`` naming its ``architecture`` (any name of
``torchvision.models.list_models(module=torchvision.models)``) and optionally ``torchvision_weights``
(which of the architecture's published weights it is, e.g. ``IMAGENET1K_V2``; default the
architecture's ``DEFAULT``), ``categories`` and ``preprocessing``. Those weights' own transforms
give the preprocessing and their metadata the class names, as torchvision's docs prescribe.
Weights are read with ``torch.load(weights_only=True)`` (``runtimes/torchvision.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .torchvision import (
    SIDECAR,
    _read_sidecar,
    _state_dict,
    _torch,
    _torchvision,
    _weights_in,
    write_sidecar,
    write_state_dict,
)

__all__ = ["TorchvisionClassifierRuntime", "classification_architectures", "save_classifier_folder"]


def classification_architectures() -> list[str]:
    """Every classification builder torchvision has (detection, segmentation and video ones excluded)."""
    tv = _torchvision()
    return list(tv.models.list_models(module=tv.models))


def _check_architecture(architecture: object) -> str:
    names = classification_architectures()
    if architecture not in names:
        raise ConfigError(
            f"torchvision classification architecture {architecture!r} is unknown",
            hint=f"set 'architecture' in {SIDECAR} to one of: {', '.join(names)}",
        )
    return str(architecture)


def _weights_entry(architecture: str, name: object) -> Any:
    tv = _torchvision()
    enum = tv.models.get_model_weights(architecture)
    if name is None:
        return enum.DEFAULT
    members = [member.name for member in enum]
    if name not in members:
        raise ConfigError(
            f"'torchvision_weights' {name!r} is not one of {architecture}'s weights",
            hint=f"one of: {', '.join(members)}",
        )
    return enum[name]


def weights_preprocessing(weights: Any) -> dict[str, Any]:
    """The weights' own ``transforms()`` (torchvision's ``ImageClassification``) as a preprocessing mapping."""
    transforms = weights.transforms()
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    return {
        "size": (crop, crop),
        "resize": "shorter-side",
        "resize_size": resize,
        "interpolation": transforms.interpolation.value,
        "divisor": 255.0,
        "mean": tuple(float(v) for v in transforms.mean),
        "std": tuple(float(v) for v in transforms.std),
        "layout": "NCHW",
    }


def _num_classes(architecture: str, state: Mapping[str, Any]) -> int:
    """Classes of a checkpoint: the rows of its last weight that has 1000 rows in the stock model.

    The stock model is built on the ``meta`` device, so this allocates nothing.
    """
    torch, tv = _torch(), _torchvision()
    with torch.device("meta"):
        stock = tv.models.get_model(architecture, weights=None)
    heads = [k for k, v in stock.state_dict().items() if v.ndim >= 2 and v.shape[0] == 1000]
    if not heads or heads[-1] not in state:
        raise ConfigError(
            f"cannot find {architecture}'s classifier layer in the checkpoint",
            hint=f"check 'architecture' in {SIDECAR}, or set 'num_classes'",
        )
    return int(state[heads[-1]].shape[0])


class TorchvisionClassifierRuntime:
    """A torchvision classifier in eval mode, with its class names and its weights' preprocessing."""

    name = "torchvision"

    def __init__(
        self,
        model: Any,
        *,
        architecture: str,
        categories: tuple[str, ...],
        preprocessing: Mapping[str, Any],
        device: str = "cpu",
    ) -> None:
        self.model = model
        self.architecture = architecture
        self.categories = categories
        self.preprocessing = dict(preprocessing)
        self.device = device
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls, path: str | Path, *, card: Mapping[str, Any] | None = None, device: str = "cpu"
    ) -> TorchvisionClassifierRuntime:
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        sidecar = _read_sidecar(folder)
        spec = {**sidecar, **(card or {})}
        weights_file = _weights_in(path, sidecar.get("weights")) if path.is_dir() else path
        architecture = _check_architecture(spec.get("architecture"))
        published = _weights_entry(architecture, spec.get("torchvision_weights"))
        state = _state_dict(weights_file)
        num_classes = _num_classes(architecture, state)
        if spec.get("num_classes") not in (None, num_classes):
            raise ConfigError(
                f"the spec says num_classes={spec['num_classes']}, but {weights_file.name!r} has {num_classes} classes",
                hint="fix 'num_classes' or drop it",
            )
        categories = spec.get("categories")
        if categories is None:
            stock = published.meta.get("categories") or ()
            categories = stock if len(stock) == num_classes else [f"class_{i}" for i in range(num_classes)]
        if isinstance(categories, str) or not isinstance(categories, Sequence) or len(categories) != num_classes:
            raise ConfigError(
                f"'categories' must list {num_classes} class names for {weights_file.name!r}, got {categories!r}"[:400],
                hint="list every class name in output order",
            )
        from .transformers import resolve_device

        torch_device = resolve_device(device)
        model = _torchvision().models.get_model(architecture, weights=None, num_classes=num_classes)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())
            raise ConfigError(
                f"{weights_file.name!r} does not fit architecture {architecture!r}: {detail[:400]}",
                hint=f"check 'architecture' in {SIDECAR} or the catalog card",
            ) from None
        model.eval().to(torch_device)
        preprocessing = spec.get("preprocessing") or weights_preprocessing(published)
        return cls(
            model,
            architecture=architecture,
            categories=tuple(str(c) for c in categories),
            preprocessing=preprocessing,
            device=str(torch_device),
        )

    def classify(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, num_classes) float32 logits."""
        torch = _torch()
        with self._lock, torch.inference_mode():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device))
        return logits.float().cpu().numpy()  # type: ignore[no-any-return]

    def memory_bytes(self) -> int | None:
        from .transformers import model_memory_bytes

        return model_memory_bytes(self.model)


def save_classifier_folder(
    model: Any,
    folder: str | Path,
    *,
    architecture: str,
    categories: Sequence[str] | None = None,
    torchvision_weights: str | None = None,
    weights_name: str = "model.pth",
) -> Path:
    """Write ``model``'s state dict and a ``modeldeck.json``: a folder that ``modeldeck.load`` and
    ``modeldeck models import`` take as a ``classify-image`` model. ``model`` may be a state dict."""
    architecture = _check_architecture(architecture)
    if torchvision_weights is not None:
        _weights_entry(architecture, torchvision_weights)
    folder, _ = write_state_dict(model, folder, weights_name)
    sidecar: dict[str, Any] = {
        "runtime": "torchvision",
        "tasks": ["classify-image"],
        "architecture": architecture,
        "weights": weights_name,
    }
    if torchvision_weights is not None:
        sidecar["torchvision_weights"] = torchvision_weights
    if categories is not None:
        sidecar["categories"] = list(categories)
    return write_sidecar(folder, sidecar)
