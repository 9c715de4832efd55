"""Vision artifacts (YOLO ONNX, torchvision COCO and ImageNet weights), pulled and verified on first use."""

from __future__ import annotations

from ._entry import CatalogEntry
from .sources import URLSource

__all__ = ["ENTRIES"]

# torchvision's COCO weights: the 91-id label space of torchvision's weights meta ("categories"),
# "__background__" at 0 and "N/A" for the ids COCO left unused. tests/vision/test_rcnn.py checks
# this tuple against torchvision's own meta.
TORCHVISION_COCO_CATEGORIES: tuple[str, ...] = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
    "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

_TORCHVISION_LICENSE = "BSD-3-Clause"
_TORCHVISION_TERMS = (
    "torchvision code and weights: BSD-3-Clause; trained on COCO 2017 (annotations CC BY 4.0, images under "
    "their Flickr owners' terms)"
)


def _torchvision(
    name: str, architecture: str, url: str, sha256: str, metrics: dict[str, float], about: str
) -> CatalogEntry:
    # The file name carries the first 8 hex digits of the sha256 (what torchvision checks); the full
    # digest pinned here was cross-checked against that prefix.
    return CatalogEntry(
        name=name,
        tasks=("segment", "detect") if architecture.startswith("maskrcnn") else ("detect",),
        runtime="torchvision",
        source=URLSource(url=url, sha256=sha256),
        license=_TORCHVISION_LICENSE,
        card={
            "description": about,
            "architecture": architecture,
            "num_classes": 91,
            "categories": list(TORCHVISION_COCO_CATEGORIES),
            "metrics": {"COCO-val2017": metrics},
            "terms": _TORCHVISION_TERMS,
            "upstream": "https://pytorch.org/vision/stable/models.html#object-detection-instance-segmentation",
        },
    )


_TORCHVISION_ENTRIES: tuple[CatalogEntry, ...] = (
    _torchvision(
        "fasterrcnn-resnet50-fpn",
        "fasterrcnn_resnet50_fpn",
        "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
        "258fb6c638b15964ddcdd1ae0748c5eef1be9e732750120cc857feed3faac384",
        {"box_map": 37.0},
        "torchvision Faster R-CNN, ResNet-50 FPN backbone, COCO weights (COCO_V1)",
    ),
    _torchvision(
        "fasterrcnn-resnet50-fpn-v2",
        "fasterrcnn_resnet50_fpn_v2",
        "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
        "dd69338a24b8d7381807e247652bdc356325bcbaf1cd3e092e00e0a1a58706bf",
        {"box_map": 46.7},
        "torchvision Faster R-CNN v2 (improved recipe), ResNet-50 FPN backbone, COCO weights (COCO_V1)",
    ),
    _torchvision(
        "maskrcnn-resnet50-fpn",
        "maskrcnn_resnet50_fpn",
        "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
        "bf2d0c1efbc936eeee2bc95a48e80ebc86b891f61b0106485937fc29f9315fc0",
        {"box_map": 37.9, "mask_map": 34.6},
        "torchvision Mask R-CNN, ResNet-50 FPN backbone, COCO weights (COCO_V1)",
    ),
    _torchvision(
        "maskrcnn-resnet50-fpn-v2",
        "maskrcnn_resnet50_fpn_v2",
        "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
        "73cbd0190fcbe3ba339921fbce2c3a0b6bb9126c9a133c85e43a2a8e060a109e",
        {"box_map": 47.4, "mask_map": 41.8},
        "torchvision Mask R-CNN v2 (improved recipe), ResNet-50 FPN backbone, COCO weights (COCO_V1)",
    ),
)

# Ultralytics' own ONNX exports, as published in the github.com/ultralytics/assets releases. Each
# sha256 (and size, where given) was found pinned, identically, by several unrelated public
# projects that download exactly that URL and verify it; none was computed here (no network).
# Class names and the input size travel in each file's ONNX metadata.
_ULTRALYTICS_RELEASES = "https://github.com/ultralytics/assets/releases/download"
_ULTRALYTICS_TERMS = (
    "Ultralytics YOLO weights: AGPL-3.0 (an Enterprise licence is sold for closed-source use); trained on COCO 2017"
)


def _yolo(name: str, release: str, sha256: str, size: int | None, tasks: tuple[str, ...], about: str) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        tasks=tasks,
        runtime="onnxruntime",
        source=URLSource(url=f"{_ULTRALYTICS_RELEASES}/{release}/{name}.onnx", sha256=sha256, size=size),
        license="AGPL-3.0",
        card={
            "description": about,
            "input_size": [640, 640],
            "num_classes": 80,
            "terms": _ULTRALYTICS_TERMS,
            "upstream": "https://docs.ultralytics.com/models/",
        },
    )


_YOLO_ENTRIES: tuple[CatalogEntry, ...] = (
    _yolo(
        "yolo11n",
        "v8.3.0",
        "634279b40c07c6391472c51ad45b81ebc48706a9a1fe72dd3396322acd0c053b",
        10_930_182,
        ("detect",),
        "Ultralytics YOLO11n detector, COCO 80 classes; plain head [B, 84, 8400]; dynamic batch and size "
        "(run at 640x640); ONNX opset 22, needs onnxruntime >= 1.21",
    ),
    _yolo(
        "yolov8n",
        "v8.4.0",
        "b2bc52f40e8e1c532427d5bde3575a5d5b571b739fab2c6df443733ed1589cbd",
        12_851_049,
        ("detect",),
        "Ultralytics YOLOv8n detector, COCO 80 classes; plain head [1, 84, 8400] at 640x640",
    ),
    _yolo(
        "yolo11n-seg",
        "v8.3.0",
        "0bc32bc92e985b881141ef9bd2216e2a746f70519d0d24da9fc85decc4428cf4",
        None,
        ("segment", "detect"),
        "Ultralytics YOLO11n-seg instance segmenter, COCO 80 classes; head [1, 116, 8400] and mask "
        "prototypes [1, 32, 160, 160] at 640x640",
    ),
)

# torchvision's ImageNet-1k classifiers for classify-image: a state dict plus the architecture and
# published weights named in the card, which give the preprocessing (the weights' transforms) and
# the class names (runtimes/torchvision_classify.py). Each sha256 begins with the 8 hex digits in
# its file name (what torch.hub checks) and was found, identically and with the same byte size, in
# several unrelated public projects that download this exact URL and verify it; none was computed
# here (no network). Accuracies are torchvision's own, from each weights' meta["_metrics"].
_IMAGENET_TERMS = (
    "torchvision code and weights: BSD-3-Clause; trained on ImageNet-1k (ILSVRC 2012), whose images are "
    "for non-commercial research and educational use under the ImageNet terms of access"
)


def _imagenet(
    name: str, architecture: str, url: str, sha256: str, size: int, metrics: dict[str, float], about: str
) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        tasks=("classify-image",),
        runtime="torchvision",
        source=URLSource(url=url, sha256=sha256, size=size),
        license=_TORCHVISION_LICENSE,
        card={
            "description": about,
            "architecture": architecture,
            "torchvision_weights": "IMAGENET1K_V1",
            "num_classes": 1000,
            "metrics": {"ImageNet-1K": metrics},
            "terms": _IMAGENET_TERMS,
            "upstream": "https://pytorch.org/vision/stable/models.html#classification",
        },
    )


_IMAGENET_ENTRIES: tuple[CatalogEntry, ...] = (
    _imagenet(
        "vgg16",
        "vgg16",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        553_433_881,
        {"acc@1": 71.592, "acc@5": 90.382},
        "VGG16 (Simonyan & Zisserman, 2014), torchvision ImageNet-1k weights (IMAGENET1K_V1)",
    ),
    _imagenet(
        "resnet50",
        "resnet50",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
        102_530_333,
        {"acc@1": 76.13, "acc@5": 92.862},
        "ResNet-50 (He et al., 2015), torchvision ImageNet-1k weights (IMAGENET1K_V1)",
    ),
)

ENTRIES: tuple[CatalogEntry, ...] = _YOLO_ENTRIES + _TORCHVISION_ENTRIES + _IMAGENET_ENTRIES
