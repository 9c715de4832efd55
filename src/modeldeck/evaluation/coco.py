"""COCO mAP of a detect or segment task on a COCO-annotated image folder, scored by pycocotools.

Detectors and datasets number their classes differently, so a result's label is mapped to the
annotation file's category id by name; labels the file does not name are dropped and counted. An
image that cannot be read or decoded is recorded and left out of the evaluation, not fatal.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._progress import progress_bar
from ..errors import InputDecodeError, InputError, ModelDeckError, OptionError
from ..runtimes.base import import_framework

if TYPE_CHECKING:
    pass

__all__ = ["METRICS", "CocoReport", "SkippedImage", "evaluate_coco"]

#: The twelve numbers of ``COCOeval.summarize``, in its order.
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_IOU_TYPES = {"detect": ("bbox",), "segment": ("bbox", "segm")}


@dataclass(frozen=True, slots=True)
class SkippedImage:
    image_id: int
    file_name: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "file_name": self.file_name, "error": self.error}


@dataclass(frozen=True)
class CocoReport:
    """Metrics per IoU type (``"bbox"``, and ``"segm"`` for segment); a metric COCO cannot compute
    (no ground truth in that area range) is ``None``."""

    task: str
    model: str
    metrics: Mapping[str, Mapping[str, float | None]]
    images: int
    annotations: int
    detections: int
    skipped: tuple[SkippedImage, ...] = ()
    unmapped: Mapping[str, int] = field(default_factory=dict)
    size_mismatches: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "metrics": {kind: dict(values) for kind, values in self.metrics.items()},
            "images": self.images,
            "annotations": self.annotations,
            "detections": self.detections,
            "skipped": [s.to_dict() for s in self.skipped],
            "unmapped": dict(self.unmapped),
            "size_mismatches": self.size_mismatches,
            "options": dict(self.options),
        }

    def render(self) -> str:
        kinds = list(self.metrics)
        width = max(len(m) for m in METRICS)
        lines = [f"COCO evaluation of {self.model} ({self.task})", ""]
        lines.append(f"{'metric':<{width}}  " + "  ".join(f"{k:>6}" for k in kinds))
        for name in METRICS:
            cells = []
            for kind in kinds:
                value = self.metrics[kind].get(name)
                cells.append(f"{'n/a':>6}" if value is None else f"{value:6.3f}")
            lines.append(f"{name:<{width}}  " + "  ".join(cells))
        lines.append("")
        lines.append(
            f"images {self.images}, ground-truth objects {self.annotations}, detections {self.detections}, "
            f"skipped images {len(self.skipped)}"
        )
        for item in self.skipped[:10]:
            lines.append(f"  skipped {item.file_name} (id {item.image_id}): {item.error}")
        if len(self.skipped) > 10:
            lines.append(f"  … and {len(self.skipped) - 10} more")
        if self.unmapped:
            dropped = ", ".join(f"{name!r} x{count}" for name, count in sorted(self.unmapped.items()))
            lines.append(f"dropped detections whose label the annotations do not name: {dropped}")
        if self.size_mismatches:
            lines.append(
                f"warning: {self.size_mismatches} image(s) decoded at another size than the annotations say "
                "(EXIF rotation?); their boxes may not line up"
            )
        if self.options:
            lines.append("options: " + ", ".join(f"{k}={v}" for k, v in self.options.items()))
        return "\n".join(lines)


def _pycocotools() -> tuple[Any, Any]:
    coco = import_framework("pycocotools.coco", package="pycocotools", extra="vision", purpose="COCO evaluation")
    cocoeval = import_framework("pycocotools.cocoeval", package="pycocotools", extra="vision")
    return coco.COCO, cocoeval.COCOeval


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # pycocotools prints progress to stdout, which would corrupt `modeldeck eval --json`.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _read_annotations(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputDecodeError(f"no COCO annotations file at {str(path)!r}", hint="check --coco") from None
    except (OSError, ValueError) as exc:
        raise InputDecodeError(f"cannot read COCO annotations {str(path)!r}: {exc}", hint="pass a JSON file") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError(f"{str(path)!r} is not COCO annotations (no 'images' list)", hint="pass instances_*.json")
    if not isinstance(data.get("categories"), list) or not data["categories"]:
        raise InputError(f"{str(path)!r} lists no 'categories'", hint="COCO annotations name their categories")
    data.setdefault("annotations", [])
    for ann in data["annotations"]:  # pycocotools needs these; hand-made files often leave them out
        ann.setdefault("iscrowd", 0)
        if "area" not in ann and "bbox" in ann:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
    return data


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    return {name: (None if v < 0 or math.isnan(v) else float(v)) for name, v in zip(METRICS, values, strict=True)}


def evaluate_coco(
    task: Any,
    coco_json: str | Path,
    images_dir: str | Path,
    *,
    batch_size: int = 8,
    limit: int | None = None,
    progress: bool = True,
) -> CocoReport:
    """Run ``task`` (detect or segment) over the annotated images and score it with ``COCOeval``.

    Images are taken in image-id order (the first ``limit`` of them), ``batch_size`` per model call,
    with the task's default options (load it with ``confidence=0.05`` or lower for a full mAP).
    """
    if task.name not in _IOU_TYPES:
        raise OptionError(f"COCO evaluation scores detect and segment tasks, not {task.name!r}")
    if batch_size < 1:
        raise OptionError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise OptionError(f"limit must be >= 1, got {limit}")
    coco_cls, cocoeval_cls = _pycocotools()
    data = _read_annotations(Path(coco_json))
    folder = Path(images_dir)
    if not folder.is_dir():
        raise InputDecodeError(f"no image folder at {str(folder)!r}", hint="check --images")
    gt = coco_cls()
    gt.dataset = data
    with _quiet():
        gt.createIndex()
    by_name: dict[str, int] = {}
    for cat in data["categories"]:
        by_name.setdefault(str(cat["name"]), int(cat["id"]))
    images = sorted(data["images"], key=lambda img: img["id"])
    if limit is not None:
        images = images[:limit]

    masks = task.name == "segment"
    boxes: list[dict[str, Any]] = []
    segms: list[dict[str, Any]] = []
    unmapped: Counter[str] = Counter()
    skipped: list[SkippedImage] = []
    evaluated: list[int] = []
    mismatches = 0
    with progress_bar(progress) as bar:
        job = bar.add_task(f"eval {task.name}", total=len(images)) if bar is not None else None
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            outputs = task.predict_each([folder / str(img["file_name"]) for img in chunk])
            for img, out in zip(chunk, outputs, strict=True):
                image_id = int(img["id"])
                if isinstance(out, ModelDeckError):
                    skipped.append(SkippedImage(image_id, str(img["file_name"]), str(out)))
                    continue
                evaluated.append(image_id)
                if (out.width, out.height) != (img.get("width", out.width), img.get("height", out.height)):
                    mismatches += 1
                items = out.instances if masks else out.detections
                for item in items:
                    category = by_name.get(item.label)
                    if category is None:
                        unmapped[item.label] += 1
                        continue
                    x1, y1, x2, y2 = item.box
                    boxes.append(
                        {
                            "image_id": image_id,
                            "category_id": category,
                            "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "score": item.score,
                        }
                    )
                    if masks:
                        segms.append(
                            {
                                "image_id": image_id,
                                "category_id": category,
                                "segmentation": item.mask.to_coco(),
                                "score": item.score,
                            }
                        )
            if bar is not None and job is not None:
                bar.advance(job, len(chunk))

    metrics: dict[str, dict[str, float | None]] = {}
    for kind in _IOU_TYPES[task.name]:
        results = segms if kind == "segm" else boxes
        metrics[kind] = _evaluate(coco_cls, cocoeval_cls, gt, results, kind, evaluated)
    done = set(evaluated)
    annotations = sum(1 for ann in data["annotations"] if int(ann["image_id"]) in done)
    return CocoReport(
        task=task.name,
        model=task.info.name,
        metrics=metrics,
        images=len(evaluated),
        annotations=annotations,
        detections=len(boxes),
        skipped=tuple(skipped),
        unmapped=dict(unmapped),
        size_mismatches=mismatches,
        options=task.default_options.model_dump(mode="json"),
    )


def _evaluate(
    coco_cls: Any, cocoeval_cls: Any, gt: Any, results: list[dict[str, Any]], kind: str, image_ids: list[int]
) -> dict[str, float | None]:
    if not image_ids:
        return dict.fromkeys(METRICS)
    with _quiet():
        if results:
            dt = gt.loadRes(results)
        else:  # loadRes cannot take an empty list: no detections at all
            dt = coco_cls()
            dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"])}
            dt.dataset["annotations"] = []
            dt.createIndex()
        evaluator = cocoeval_cls(gt, dt, iouType=kind)
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return _stats(list(evaluator.stats))
