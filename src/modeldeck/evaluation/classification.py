"""Image classification on a folder with one subfolder per class: top-1 / top-5 accuracy and a confusion matrix.

A subfolder's name is its class: it must name one of the model's labels, compared without case and
with ``_`` and ``-`` read as spaces (``golden_retriever/`` is "golden retriever"). An image that
cannot be read or decoded is recorded and left out, not fatal. The confusion matrix has one row
per folder class and one column per folder class plus ``(other)``, for top-1 predictions of labels
no folder names. ``save_confusion_plot`` draws it with matplotlib (imported only when asked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress_bar
from ..errors import InputDecodeError, InputError, ModelDeckError, OptionError
from ..images import _IMAGE_SUFFIXES  # the suffixes image inputs are recognised by
from ..runtimes.base import import_framework
from .coco import SkippedImage

__all__ = [
    "OTHER",
    "ClassificationReport",
    "evaluate_folder",
    "read_class_folders",
    "save_confusion_plot",
]

OTHER = "(other)"
_TOP = (1, 5)


def _normalise(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").casefold().split())


@dataclass(frozen=True)
class ClassificationReport:
    """Accuracy over the images that were classified; ``confusion[i][j]`` counts class ``i`` predicted as ``j``."""

    task: str
    model: str
    classes: tuple[str, ...]
    images: int
    top1: float
    top5: float
    per_class: Mapping[str, Mapping[str, float | int]]
    confusion: tuple[tuple[int, ...], ...]
    skipped: tuple[SkippedImage, ...] = ()
    plot: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.classes, OTHER)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "images": self.images,
            "top1": self.top1,
            "top5": self.top5,
            "classes": list(self.classes),
            "per_class": {name: dict(values) for name, values in self.per_class.items()},
            "confusion": {"rows": list(self.classes), "columns": list(self.columns), "matrix": self.matrix_list()},
            "skipped": [s.to_dict() for s in self.skipped],
            "plot": self.plot,
            "options": dict(self.options),
        }

    def matrix_list(self) -> list[list[int]]:
        return [list(row) for row in self.confusion]

    def render(self) -> str:
        width = max([len(c) for c in self.classes] + [5])
        lines = [
            f"image classification of {self.model} on {self.images} images in {len(self.classes)} classes",
            "",
            f"top-1 accuracy  {self.top1:.4f}",
            f"top-5 accuracy  {self.top5:.4f}",
            "",
            f"{'class':<{width}}  images   top-1   top-5",
        ]
        for name in self.classes:
            row = self.per_class[name]
            lines.append(f"{name:<{width}}  {int(row['images']):>6}  {row['top1']:.4f}  {row['top5']:.4f}")
        if self.skipped:
            lines.append("")
            lines.append(f"skipped images {len(self.skipped)}")
            for item in self.skipped[:10]:
                lines.append(f"  skipped {item.file_name}: {item.error}")
            if len(self.skipped) > 10:
                lines.append(f"  … and {len(self.skipped) - 10} more")
        if self.plot:
            lines.append(f"confusion matrix drawn to {self.plot}")
        return "\n".join(lines)


def read_class_folders(root: str | Path, labels: Sequence[str]) -> list[tuple[str, Path]]:
    """``(label, image path)`` for every image under ``root/<class>/``, classes and files in name order.

    Each subfolder must name one of ``labels``; the error lists those that do not.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise InputDecodeError(f"no image folder at {str(folder)!r}", hint="--folder DIR with one subfolder per class")
    by_key: dict[str, str] = {}
    for label in labels:
        by_key.setdefault(_normalise(label), label)
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise InputError(
            f"{str(folder)!r} has no class subfolders", hint="put each class's images in a subfolder named after it"
        )
    unknown = [p.name for p in subfolders if _normalise(p.name) not in by_key]
    if unknown:
        sample = ", ".join(repr(label) for label in list(labels)[:8])
        raise InputError(
            f"{len(unknown)} subfolder(s) of {str(folder)!r} name no label of the model: {', '.join(unknown[:10])}",
            hint=f"name each subfolder after one of the model's {len(labels)} labels (e.g. {sample}); "
            "case, '_' and '-' do not matter",
        )
    items = []
    for sub in subfolders:
        label = by_key[_normalise(sub.name)]
        items.extend(
            (label, path) for path in sorted(sub.iterdir()) if path.is_file() and path.suffix.lower() in _IMAGE_SUFFIXES
        )
    if not items:
        raise InputError(
            f"the class subfolders of {str(folder)!r} hold no images", hint="JPEG, PNG, WebP, BMP, GIF or TIFF files"
        )
    return items


def evaluate_folder(
    task: Any,
    root: str | Path,
    *,
    batch_size: int = 8,
    limit: int | None = None,
    plot: str | Path | None = None,
    progress: bool = True,
) -> ClassificationReport:
    """Classify every image under ``root/<class>/`` with ``task`` and score its top-1 and top-5 labels."""
    if task.name != "classify-image":
        raise OptionError(f"folder evaluation scores the classify-image task, not {task.name!r}")
    if batch_size < 1:
        raise OptionError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise OptionError(f"limit must be >= 1, got {limit}")
    items = read_class_folders(root, task.labels)
    if limit is not None:
        items = items[:limit]
    classes = tuple(sorted({label for label, _ in items}))
    column = {name: i for i, name in enumerate(classes)}
    options = task.parse_options({"top_k": max(_TOP), "min_score": 0.0})
    confusion = np.zeros((len(classes), len(classes) + 1), dtype=np.int64)
    hits = {k: np.zeros(len(classes), dtype=np.int64) for k in _TOP}
    counts = np.zeros(len(classes), dtype=np.int64)
    skipped: list[SkippedImage] = []
    base = Path(root)
    with progress_bar(progress) as bar:
        job = bar.add_task("eval classify-image", total=len(items)) if bar is not None else None
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            outputs = task.predict_each([path for _, path in chunk], options)
            for (label, path), out in zip(chunk, outputs, strict=True):
                if isinstance(out, ModelDeckError):
                    skipped.append(SkippedImage(-1, str(path.relative_to(base)), str(out)))
                    continue
                row = column[label]
                counts[row] += 1
                ranked = [lab.label for lab in out.labels]
                for k in _TOP:
                    hits[k][row] += label in ranked[:k]
                confusion[row, column.get(ranked[0], len(classes)) if ranked else len(classes)] += 1
            if bar is not None and job is not None:
                bar.advance(job, len(chunk))
    total = int(counts.sum())

    def rate(n: np.integer[Any] | int, d: np.integer[Any] | int) -> float:
        return float(n) / float(d) if d else 0.0

    per_class = {
        name: {"images": int(counts[i]), "top1": rate(hits[1][i], counts[i]), "top5": rate(hits[5][i], counts[i])}
        for i, name in enumerate(classes)
    }
    report = ClassificationReport(
        task=task.name,
        model=str(task.info.name),
        classes=classes,
        images=total,
        top1=rate(int(hits[1].sum()), total),
        top5=rate(int(hits[5].sum()), total),
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        skipped=tuple(skipped),
        plot=str(plot) if plot is not None else None,
        options=task.default_options.model_dump(mode="json"),
    )
    if plot is not None:
        save_confusion_plot(report, plot)
    return report


def save_confusion_plot(report: ClassificationReport, path: str | Path) -> Path:
    """Draw the confusion matrix (rows: true class, columns: top-1 prediction) as a PNG."""
    import_framework("matplotlib", package="matplotlib", extra="vision", purpose="the confusion-matrix plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # the object API: no pyplot, no global figure state, no display

    matrix = np.asarray(report.confusion, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    n = len(report.classes)
    side = min(4.0 + 0.45 * n, 40.0)
    figure = Figure(figsize=(side + 1.5, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class")
    axes.set_xticks(range(n + 1), labels=list(report.columns), rotation=60, ha="right")
    axes.set_yticks(range(n), labels=list(report.classes))
    axes.set_xlabel("predicted (top-1)")
    axes.set_ylabel("true class")
    axes.set_title(f"{report.model}: top-1 {report.top1:.3f}, top-5 {report.top5:.3f} ({report.images} images)")
    if n <= 30:
        for i in range(n):
            for j in range(n + 1):
                if matrix[i, j]:
                    colour = "white" if shares[i, j] > 0.5 else "black"
                    axes.text(j, i, str(int(matrix[i, j])), ha="center", va="center", color=colour, fontsize=8)
    figure.tight_layout()
    out = Path(path)
    figure.savefig(out, format="png")
    return out
