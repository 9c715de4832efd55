"""torchvision adapter: Faster R-CNN and Mask R-CNN (ResNet-50 FPN, v1 and v2) built from a spec, weights loaded safely.

A model is a state dict (``.pth``/``.pt``) plus a spec: ``architecture``, optional ``num_classes``,
``categories`` and ``config``. The spec comes from the catalog card, or from a ``modeldeck.json``
sidecar next to the weights (see ``save_model_folder``). Weights are read with
``torch.load(weights_only=True)``: a checkpoint that needs code to unpickle is refused, never run.

Per-image selection (confidence, classes, NMS IoU, class-agnostic NMS, how many to keep) happens
inside the model, between the box head and the mask head, so the mask head only runs on the boxes
that are returned.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, UnknownModelError
from ._checkpoint import load_torch_weights
from .base import import_framework

if TYPE_CHECKING:
    import torch

__all__ = [
    "ARCHITECTURES",
    "SIDECAR",
    "RCNNOutput",
    "RCNNSpec",
    "Selection",
    "TorchvisionRuntime",
    "build_model",
    "coco_categories",
    "read_spec",
    "save_model_folder",
    "write_sidecar",
    "write_state_dict",
]

SIDECAR = "modeldeck.json"
#: architecture -> the tasks it serves (the first is its default).
ARCHITECTURES: Mapping[str, tuple[str, ...]] = {
    "fasterrcnn_resnet50_fpn": ("detect",),
    "fasterrcnn_resnet50_fpn_v2": ("detect",),
    "maskrcnn_resnet50_fpn": ("segment", "detect"),
    "maskrcnn_resnet50_fpn_v2": ("segment", "detect"),
}
# Constructor settings a spec may carry; none of them is stored in a state dict.
_CONFIG: Mapping[str, type] = {
    "min_size": int,
    "max_size": int,
    "rpn_pre_nms_top_n_test": int,
    "rpn_post_nms_top_n_test": int,
    "frozen_bn_eps": float,
}
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin")
# Large enough that torchvision's own cut never applies when modeldeck selects per image.
_NO_LIMIT = 1_000_000_000


def _torch() -> Any:
    return import_framework("torch", package="torch", extra="vision", purpose="torchvision detectors")


def _torchvision() -> Any:
    return import_framework("torchvision", package="torchvision", extra="torch", purpose="torchvision detectors")


def coco_categories() -> tuple[str, ...]:
    """torchvision's 91 COCO names (``__background__`` at 0, ``N/A`` for ids COCO left unused)."""
    _torchvision()
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    return tuple(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


@dataclass(frozen=True)
class RCNNSpec:
    """What to build and how to name its classes; ``weights`` is the state-dict file."""

    architecture: str
    weights: Path
    num_classes: int | None = None
    categories: tuple[str, ...] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_masks(self) -> bool:
        return self.architecture.startswith("maskrcnn")


def _read_sidecar(folder: Path) -> dict[str, Any]:
    path = folder / SIDECAR
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc}", hint=f"{SIDECAR} must be a JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{str(path)!r} must hold a JSON object, got {type(data).__name__}")
    return data


def _weights_in(folder: Path, named: object) -> Path:
    if named is not None:
        if not isinstance(named, str) or "/" in named or "\\" in named or named in {".", ".."}:
            raise ConfigError(f"{SIDECAR}: 'weights' must be a file name in the folder, got {named!r}")
        path = folder / named
        if not path.is_file():
            raise UnknownModelError(f"{SIDECAR} names weights {named!r}, which is not in {str(folder)!r}")
        return path
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if len(found) != 1:
        raise UnknownModelError(
            f"{str(folder)!r} holds {len(found)} weight files ({', '.join(p.name for p in found) or 'none'})",
            hint=f'name the state dict in {SIDECAR} as "weights"',
        )
    return found[0]


def _check_config(config: object) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"torchvision 'config' must be an object, got {config!r}")
    out: dict[str, Any] = {}
    for key, value in config.items():
        kind = _CONFIG.get(key)
        if kind is None:
            raise ConfigError(f"torchvision 'config': unknown key {key!r}", hint=f"valid keys: {', '.join(_CONFIG)}")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (kind is int and not isinstance(value, int))
        ):
            raise ConfigError(f"torchvision 'config': {key!r} must be a {kind.__name__}, got {value!r}")
        if value < 0 or (kind is int and value < 1):
            raise ConfigError(f"torchvision 'config': {key!r} must be positive, got {value!r}")
        out[key] = kind(value)
    return out


def read_spec(path: str | Path, card: Mapping[str, Any] | None = None) -> RCNNSpec:
    """The spec for the weights at ``path`` (a file, or a folder with a ``modeldeck.json``).

    Keys in ``card`` (the catalog's) win over the sidecar's.
    """
    path = Path(path)
    if path.is_dir():
        sidecar = _read_sidecar(path)
        weights = _weights_in(path, sidecar.get("weights"))
    elif path.is_file():
        sidecar = _read_sidecar(path.parent)
        weights = path
    else:
        raise UnknownModelError(f"no torchvision model at {str(path)!r}", hint="pull the model or fix its path")
    data = {
        **sidecar,
        **{k: v for k, v in (card or {}).items() if k in ("architecture", "num_classes", "categories", "config")},
    }
    arch = data.get("architecture")
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"torchvision model {str(path)!r} has architecture {arch!r}",
            hint=f"set 'architecture' in {SIDECAR} or the catalog card to one of: {', '.join(ARCHITECTURES)}",
        )
    num_classes = data.get("num_classes")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ConfigError(f"'num_classes' must be an int >= 2 (background included), got {num_classes!r}")
    categories = data.get("categories")
    if categories is not None:
        if (
            isinstance(categories, str)
            or not isinstance(categories, Sequence)
            or not all(isinstance(c, str) for c in categories)
        ):
            raise ConfigError(f"'categories' must be a list of class names, got {categories!r}")
        categories = tuple(categories)
    return RCNNSpec(
        architecture=arch,
        weights=weights,
        num_classes=num_classes,
        categories=categories,
        config=_check_config(data.get("config")),
    )


def build_model(architecture: str, num_classes: int, config: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """An untrained model of ``architecture``, in the layout torchvision uses for its trained weights.

    torchvision's v1 builders switch to ``FrozenBatchNorm2d`` (and, for the COCO weights, eps 0)
    only when they load weights; built with ``weights=None`` they would use ``BatchNorm2d``, which
    computes something else. So v1 is assembled here exactly as the builder does with weights.
    """
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"unknown torchvision architecture {architecture!r}", hint=f"one of: {', '.join(ARCHITECTURES)}"
        )
    _torchvision()
    from torchvision.models import detection
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops import misc as misc_nn_ops

    kwargs = dict(_check_config(config))
    eps = kwargs.pop("frozen_bn_eps", 0.0)
    if architecture.endswith("_v2"):
        builder = getattr(detection, architecture)
        return builder(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)  # type: ignore[no-any-return]
    backbone = resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, norm_layer=misc_nn_ops.FrozenBatchNorm2d, trainable_layers=3
    )
    head = detection.MaskRCNN if architecture.startswith("maskrcnn") else detection.FasterRCNN
    model = head(backbone, num_classes=num_classes, **kwargs)
    for module in model.modules():
        if isinstance(module, misc_nn_ops.FrozenBatchNorm2d):
            module.eps = eps
    return model  # type: ignore[no-any-return]


def _state_dict(path: Path) -> dict[str, Any]:
    torch = _torch()
    loaded = load_torch_weights(torch, path)
    # Training scripts often wrap the weights: {"model": state_dict, "optimizer": ..., "epoch": ...}.
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
            break
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UnknownModelError(
            f"{str(path)!r} does not hold a state dict (a mapping of names to tensors)",
            hint="save the weights with torch.save(model.state_dict(), path)",
        )
    return dict(loaded)


def _classes_in(state: Mapping[str, Any], path: Path) -> int:
    weight = state.get("roi_heads.box_predictor.cls_score.weight")
    if weight is None:
        raise ConfigError(
            f"{str(path)!r} is not a Faster/Mask R-CNN state dict (no roi_heads.box_predictor.cls_score.weight)"
        )
    return int(weight.shape[0])


def _default_categories(num_classes: int) -> tuple[str, ...]:
    if num_classes == 91:
        return coco_categories()
    return ("__background__", *(f"class_{i}" for i in range(1, num_classes)))


def _pin_roi_scales(model: Any, device: Any) -> None:
    """Fix the RoI poolers' feature-map scales before the first image, from an image that needs no padding.

    torchvision's ``MultiScaleRoIAlign`` infers each level's scale on its first call, from the
    feature map's height over the batch's largest *unpadded* image height, and keeps it. A short
    wide first image (resized to 38 x 96, padded to 64 x 96) makes it infer 1/2 for the stride-4
    level, and every later image is then pooled from the wrong places. A 64 x 64 image is padded
    by nothing, so the poolers infer the backbone's true strides (1/4 ... 1/32) from it.
    """
    torch = _torch()
    size = 64
    with torch.inference_mode():
        features = model.backbone(torch.zeros(1, 3, size, size, device=device))
        for pool in (model.roi_heads.box_roi_pool, model.roi_heads.mask_roi_pool):
            if pool is not None:
                pool.scales = pool.map_levels = None
                pool(features, [torch.zeros(1, 4, device=device)], [(size, size)])


@dataclass(frozen=True, slots=True)
class Selection:
    """Which boxes to keep for one image: score at least ``confidence``, ``classes`` (ids) or all,
    NMS at ``iou`` per class (across classes if ``agnostic``), the best ``max_detections``; masks
    (when ``masks`` and the model has a mask head) are thresholded at ``mask_threshold``: a
    probability above it is inside."""

    confidence: float
    iou: float
    max_detections: int
    classes: frozenset[int] | None = None
    agnostic: bool = False
    mask_threshold: float = 0.5
    masks: bool = True


def _no_masks() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class RCNNOutput:
    """One image's detections in its original pixels, best first; ``masks`` (N, H, W) bool or None."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None


class TorchvisionRuntime:
    """A loaded Faster R-CNN or Mask R-CNN in eval mode, with its class names."""

    name = "torchvision"

    def __init__(self, model: Any, spec: RCNNSpec, categories: tuple[str, ...], *, device: str = "cpu") -> None:
        self.model = model
        self.spec = spec
        self.categories = categories
        self.device = device
        self._lock = threading.Lock()
        self._selections: Sequence[Selection] = ()
        self._own_nms = False
        # Select per image between the box head and the mask head (see _postprocess_detections).
        self._torchvision_postprocess = model.roi_heads.postprocess_detections
        model.roi_heads.postprocess_detections = self._postprocess_detections

    @classmethod
    def load(
        cls, path: str | Path, *, card: Mapping[str, Any] | None = None, device: str = "cpu"
    ) -> TorchvisionRuntime:
        spec = read_spec(path, card)
        state = _state_dict(spec.weights)
        num_classes = _classes_in(state, spec.weights)
        if spec.num_classes is not None and spec.num_classes != num_classes:
            raise ConfigError(
                f"the spec says num_classes={spec.num_classes}, but {spec.weights.name!r} has {num_classes} classes",
                hint="fix 'num_classes' (background included) or drop it",
            )
        categories = spec.categories if spec.categories is not None else _default_categories(num_classes)
        if len(categories) != num_classes:
            raise ConfigError(
                f"{len(categories)} category names for a model with {num_classes} classes",
                hint="'categories' lists every class id's name, '__background__' first",
            )
        from .transformers import resolve_device

        torch_device = resolve_device(device)
        model = build_model(spec.architecture, num_classes, spec.config)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())
            raise ConfigError(
                f"{spec.weights.name!r} does not fit architecture {spec.architecture!r}: {detail[:400]}",
                hint="check 'architecture' (v1 and v2 differ) in the card or " + SIDECAR,
            ) from None
        model.eval().to(torch_device)
        _pin_roi_scales(model, torch_device)
        return cls(model, spec, tuple(categories), device=str(torch_device))

    @property
    def has_masks(self) -> bool:
        return self.spec.has_masks

    def to_tensor(self, pixels: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1]; torchvision resizes and normalises itself."""
        torch = _torch()
        array = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).transpose(2, 0, 1))
        if not array.flags.writeable:  # torch.from_numpy warns on read-only memory
            array = array.copy()
        return torch.from_numpy(array).to(torch.float32).div_(255.0)

    def detect(self, images: Sequence[torch.Tensor], selections: Sequence[Selection]) -> list[RCNNOutput]:
        """One model call over ``images`` (any sizes), each selected by its own ``Selection``."""
        if len(images) != len(selections):
            raise ValueError(f"{len(images)} images but {len(selections)} selections")
        if not images:
            return []
        torch = _torch()
        heads = self.model.roi_heads
        ious = {s.iou for s in selections}
        # torchvision's per-class NMS serves when the batch agrees on it; otherwise NMS runs per image below.
        own_nms = len(ious) > 1 or any(s.agnostic for s in selections)
        cut = max(s.max_detections for s in selections)
        if own_nms or any(s.classes is not None for s in selections):
            cut = _NO_LIMIT  # the per-image selection must see every candidate before it cuts
        with self._lock, torch.inference_mode():
            heads.score_thresh = min(s.confidence for s in selections)
            heads.nms_thresh = 1.0 if own_nms else next(iter(ious))
            heads.detections_per_img = cut
            self._selections, self._own_nms = selections, own_nms
            if self.has_masks and not any(s.masks for s in selections):
                heads.has_mask = _no_masks  # the detect task: skip the mask head altogether
            try:
                outputs = self.model([image.to(self.device) for image in images])
            finally:
                self._selections = ()
                heads.__dict__.pop("has_mask", None)
            return [self._output(out, sel) for out, sel in zip(outputs, selections, strict=True)]

    def _output(self, out: Mapping[str, Any], selection: Selection) -> RCNNOutput:
        masks = None
        if "masks" in out and selection.masks:
            masks = (out["masks"][:, 0] > selection.mask_threshold).cpu().numpy()
        return RCNNOutput(
            boxes=out["boxes"].float().cpu().numpy(),
            scores=out["scores"].float().cpu().numpy(),
            labels=out["labels"].cpu().numpy().astype(np.int64),
            masks=masks,
        )

    def _postprocess_detections(self, *args: Any) -> tuple[list[Any], list[Any], list[Any]]:
        boxes, scores, labels = self._torchvision_postprocess(*args)
        if not self._selections:  # called outside detect (e.g. a test driving the model directly)
            return boxes, scores, labels
        _torchvision()
        from torchvision.ops import batched_nms, nms

        torch = _torch()
        for i, sel in enumerate(self._selections):
            b, s, c = boxes[i], scores[i], labels[i]
            keep = s >= sel.confidence
            if sel.classes is not None:
                wanted = torch.tensor(sorted(sel.classes), dtype=c.dtype, device=c.device)
                keep &= torch.isin(c, wanted)
            b, s, c = b[keep], s[keep], c[keep]
            if self._own_nms:
                order = nms(b, s, sel.iou) if sel.agnostic else batched_nms(b, s, c, sel.iou)
                b, s, c = b[order], s[order], c[order]
            boxes[i], scores[i], labels[i] = (
                b[: sel.max_detections],
                s[: sel.max_detections],
                c[: sel.max_detections],
            )
        return boxes, scores, labels

    def memory_bytes(self) -> int | None:
        from .transformers import model_memory_bytes

        return model_memory_bytes(self.model)


def save_model_folder(
    model: Any,
    folder: str | Path,
    *,
    architecture: str,
    categories: Sequence[str] | None = None,
    config: Mapping[str, Any] | None = None,
    weights_name: str = "model.pth",
) -> Path:
    """Write ``model``'s state dict and a ``modeldeck.json`` sidecar: a folder ``modeldeck.load`` and
    ``modeldeck models import`` take. ``model`` may also be a state dict."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"unknown torchvision architecture {architecture!r}", hint=f"one of: {', '.join(ARCHITECTURES)}"
        )
    folder, state = write_state_dict(model, folder, weights_name)
    sidecar: dict[str, Any] = {
        "runtime": "torchvision",
        "tasks": list(ARCHITECTURES[architecture]),
        "architecture": architecture,
        "num_classes": _classes_in(state, folder / weights_name),
        "weights": weights_name,
    }
    if categories is not None:
        sidecar["categories"] = list(categories)
    if config:
        sidecar["config"] = _check_config(config)
    return write_sidecar(folder, sidecar)


def write_state_dict(model: Any, folder: str | Path, weights_name: str) -> tuple[Path, Mapping[str, Any]]:
    """Save ``model``'s state dict (or a state dict) as ``folder/weights_name``; returns the folder and the state."""
    torch = _torch()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = model if isinstance(model, Mapping) else model.state_dict()
    torch.save(dict(state), folder / weights_name)
    return folder, state


def write_sidecar(folder: Path, sidecar: Mapping[str, Any]) -> Path:
    """Write the ``modeldeck.json`` that tells the store what the folder holds; returns the folder."""
    (folder / SIDECAR).write_text(json.dumps(dict(sidecar), indent=2) + "\n", encoding="utf-8")
    return folder
