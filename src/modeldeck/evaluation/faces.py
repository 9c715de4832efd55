"""Face verification on labelled pairs: accuracy at the model's threshold, ROC AUC, TAR at a fixed FAR.

``evaluate_pairs`` reads a CSV of ``path_a,path_b,same`` rows, embeds every distinct image once,
and scores the pair distances. A pair counts as "accepted" at threshold ``t`` when its distance is
``<= t`` (the task's own rule); a true accept is an accepted pair of the same person, a false
accept an accepted pair of two people. The ROC curve is drawn with PIL (no matplotlib needed).
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmptyInputError, InputDecodeError, InputError, InputTypeError, ModelDeckError

__all__ = [
    "PairsReport",
    "RocCurve",
    "best_threshold",
    "evaluate_pairs",
    "read_pairs",
    "roc_auc",
    "roc_curve",
    "save_roc_plot",
    "tar_at_far",
]

FAR_TARGET = 1e-3
_TRUE = {"1", "true", "yes", "same", "y", "t"}
_FALSE = {"0", "false", "no", "different", "n", "f"}


# ---------------------------------------------------------------- metrics on distances


@dataclass(frozen=True, slots=True)
class RocCurve:
    """Operating points for "accept when distance <= threshold", from accepting none to accepting all.

    ``thresholds[0]`` is ``-inf`` (nothing accepted); each later one is a distinct distance.
    """

    far: np.ndarray  # false accept rate (false positive rate)
    tar: np.ndarray  # true accept rate (true positive rate)
    thresholds: np.ndarray
    accepted_same: np.ndarray  # true accepts at each threshold
    accepted_different: np.ndarray  # false accepts at each threshold
    positives: int
    negatives: int


def roc_curve(distances: Sequence[float] | np.ndarray, same: Sequence[bool] | np.ndarray) -> RocCurve:
    """The ROC of pair distances (smaller means more alike); tied distances form one point."""
    d = np.asarray(distances, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if d.shape != y.shape or d.ndim != 1:
        raise InputError(f"distances and labels must be two 1-D arrays of one length, got {d.shape} and {y.shape}")
    order = np.argsort(d, kind="stable")
    d, y = d[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    # The last index of each run of equal distances: a threshold accepts all of a tie or none of it.
    last = np.r_[np.flatnonzero(d[1:] != d[:-1]), d.shape[0] - 1] if d.size else np.zeros(0, dtype=np.int64)
    positives, negatives = int(y.sum()), int((~y).sum())
    tp_at = np.r_[0, tp[last]].astype(np.int64)
    fp_at = np.r_[0, fp[last]].astype(np.int64)
    return RocCurve(
        far=fp_at / negatives if negatives else np.zeros_like(fp_at, dtype=np.float64),
        tar=tp_at / positives if positives else np.zeros_like(tp_at, dtype=np.float64),
        thresholds=np.r_[-np.inf, d[last]],
        accepted_same=tp_at,
        accepted_different=fp_at,
        positives=positives,
        negatives=negatives,
    )


def roc_auc(curve: RocCurve) -> float | None:
    """Area under the ROC (trapezoids; equals the chance that a same pair is closer than a different one,
    ties counting one half). None without both kinds of pairs."""
    if not curve.positives or not curve.negatives:
        return None
    return float(np.sum(np.diff(curve.far) * (curve.tar[1:] + curve.tar[:-1]) / 2.0))


def tar_at_far(curve: RocCurve, far: float = FAR_TARGET) -> tuple[float, float] | None:
    """The best true accept rate whose false accept rate is at most ``far``, and the threshold giving it."""
    if not curve.positives or not curve.negatives:
        return None
    allowed = np.flatnonzero(curve.far <= far + 1e-12)
    best = allowed[np.argmax(curve.tar[allowed])]
    return float(curve.tar[best]), float(curve.thresholds[best])


def best_threshold(curve: RocCurve) -> tuple[float, float]:
    """The threshold with the highest accuracy, and that accuracy.

    Any threshold between the chosen distance and the next one gives the same accuracy; the
    midpoint is returned, which generalises better than the edge.
    """
    total = curve.positives + curve.negatives
    if not total:
        raise EmptyInputError("no pairs to choose a threshold from")
    correct = curve.accepted_same + (curve.negatives - curve.accepted_different)
    i = int(np.argmax(correct))
    accuracy = float(correct[i] / total)
    here, following = curve.thresholds[i], curve.thresholds[i + 1] if i + 1 < len(curve.thresholds) else None
    if following is None:
        return float(here), accuracy
    if not math.isfinite(here):
        return float(following) / 2.0 if following > 0 else float(following) - 1e-6, accuracy
    return float((here + following) / 2.0), accuracy


# ---------------------------------------------------------------- the pairs file


@dataclass(frozen=True, slots=True)
class Pair:
    a: Path
    b: Path
    same: bool


def _same(value: str | None, line: int) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputDecodeError(f"line {line}: same must be 1/0/true/false, got {value!r}", hint="write 1 or 0")


def read_pairs(path: str | Path, *, limit: int | None = None) -> list[Pair]:
    """The pairs of a ``path_a,path_b,same`` CSV; relative paths are resolved against its folder."""
    csv_path = Path(path)
    if not csv_path.is_file():
        raise InputDecodeError(f"no pairs file at {str(csv_path)!r}", hint="give a CSV with path_a,path_b,same")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be >= 1, got {limit}")
    base = csv_path.parent
    pairs: list[Pair] = []
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip() for name in reader.fieldnames or ()}
        missing = {"path_a", "path_b", "same"} - columns
        if missing:
            raise InputDecodeError(
                f"{str(csv_path)!r} lacks the column(s) {', '.join(sorted(missing))}",
                hint="the header must be: path_a,path_b,same",
            )
        for row in reader:
            row = {(k or "").strip(): v for k, v in row.items()}
            line = reader.line_num
            a, b = (row.get("path_a") or "").strip(), (row.get("path_b") or "").strip()
            if not a or not b:
                raise InputDecodeError(f"line {line}: path_a and path_b must both be given")
            pairs.append(Pair(base / a, base / b, _same(row.get("same"), line)))
            if limit is not None and len(pairs) >= limit:
                break
    if not pairs:
        raise EmptyInputError(f"{str(csv_path)!r} holds no pairs", hint="add rows: path_a,path_b,same")
    return pairs


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class PairsReport:
    """Verification metrics over the pairs whose two images each gave one face."""

    model: str
    metric: str
    threshold: float
    pairs: int
    evaluated: int
    positives: int
    negatives: int
    images: int
    accuracy: float | None
    roc_auc: float | None
    far: float
    tar_at_far: float | None
    tar_threshold: float | None
    best_threshold: float | None
    best_accuracy: float | None
    skipped: Mapping[str, int] = field(default_factory=dict)  # error code -> pairs skipped for it
    skipped_images: tuple[tuple[str, str, str], ...] = ()  # (path, code, message) of each image that failed
    seconds: float = 0.0
    plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "threshold": self.threshold,
            "pairs": self.pairs,
            "evaluated": self.evaluated,
            "positives": self.positives,
            "negatives": self.negatives,
            "images": self.images,
            "accuracy": self.accuracy,
            "roc_auc": self.roc_auc,
            "far": self.far,
            "tar_at_far": self.tar_at_far,
            "tar_threshold": self.tar_threshold,
            "best_threshold": self.best_threshold,
            "best_accuracy": self.best_accuracy,
            "skipped": dict(self.skipped),
            "skipped_images": [{"path": p, "code": c, "message": m} for p, c, m in self.skipped_images],
            "seconds": self.seconds,
            "plot": self.plot,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairsReport:
        values = dict(data)
        values["skipped"] = dict(values.get("skipped", {}))
        values["skipped_images"] = tuple((s["path"], s["code"], s["message"]) for s in values.get("skipped_images", ()))
        return cls(**values)

    def render(self) -> str:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.2f}%"

        def num(value: float | None, fmt: str = ".4f") -> str:
            return "n/a" if value is None else format(value, fmt)

        lines = [
            f"face verification: {self.model} ({self.metric} distance)",
            f"  pairs          {self.evaluated} evaluated of {self.pairs} "
            f"({self.positives} same, {self.negatives} different; {self.images} distinct images)",
            f"  accuracy       {pct(self.accuracy)} at the model threshold {self.threshold:g}",
            f"  best threshold {num(self.best_threshold)} -> accuracy {pct(self.best_accuracy)}",
            f"  ROC AUC        {num(self.roc_auc)}",
            f"  TAR@FAR={self.far:g}  {pct(self.tar_at_far)} (threshold {num(self.tar_threshold)})",
        ]
        if self.negatives and self.negatives * self.far < 1:
            lines.append(
                f"  note: {self.negatives} different pairs cannot resolve a FAR of {self.far:g}; "
                "TAR is measured with no false accept at all"
            )
        if self.skipped:
            reasons = ", ".join(f"{code} x{count}" for code, count in sorted(self.skipped.items()))
            lines.append(f"  skipped pairs  {sum(self.skipped.values())} ({reasons})")
            for path, code, message in self.skipped_images[:10]:
                lines.append(f"    {path}: [{code}] {message}")
            if len(self.skipped_images) > 10:
                lines.append(f"    ... and {len(self.skipped_images) - 10} more images")
        if self.plot:
            lines.append(f"  ROC curve      {self.plot}")
        lines.append(f"  time           {self.seconds:.1f}s")
        return "\n".join(lines)


# ---------------------------------------------------------------- evaluation


def _embedder(task: Any) -> Any:
    """The face-embed task behind a face-verify task, or the task itself (anything with ``embed_one``)."""
    from ..tasks.faces import FaceVerifyTask

    embed = task.embed if isinstance(task, FaceVerifyTask) else task
    if not callable(getattr(embed, "embed_one", None)):
        raise InputTypeError(
            f"evaluate_pairs needs a face-verify (or face-embed) task, got {type(task).__name__}",
            hint='load it with modeldeck.load("face-verify")',
        )
    return embed


def _progress(enabled: bool, total: int) -> tuple[Callable[[], None], Callable[[], None]]:
    if not enabled:
        return (lambda: None), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]embedding images"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task_id = bar.add_task("embed", total=total)
    bar.start()
    return (lambda: bar.advance(task_id)), bar.stop


def evaluate_pairs(
    task: Any,
    pairs_csv: str | Path,
    *,
    plot: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> PairsReport:
    """Score a face-verify ``task`` on the labelled pairs of ``pairs_csv`` (``path_a,path_b,same``).

    Each distinct image is embedded once, with the task's load-time options; its largest face is
    used, since pair datasets often show bystanders (``verify(..., largest=True)``). A pair
    whose image cannot be read or holds no face is skipped and counted under the error code.
    ``plot`` saves the ROC curve as a PNG.
    """
    started = time.perf_counter()
    pairs = read_pairs(pairs_csv, limit=limit)
    embed = _embedder(task)
    metric, threshold = embed.metric, embed.threshold
    # Options given at load time (``-o upsample=1``) apply to the embedding; ``match_threshold`` to the verdict.
    options: dict[str, Any] = task.default_options.model_dump(exclude_unset=True) if embed is not task else {}
    options.pop("largest", None)
    if options.get("match_threshold") is not None:
        threshold = float(options["match_threshold"])
    options.pop("match_threshold", None)
    model = embed.model_id

    paths = list(dict.fromkeys(p for pair in pairs for p in (pair.a, pair.b)))
    vectors: dict[Path, np.ndarray] = {}
    failures: dict[Path, ModelDeckError] = {}
    advance, stop = _progress(progress, len(paths))
    try:
        for path in paths:
            try:
                face = embed.embed_one(path, largest=True, **options)
                vectors[path] = np.asarray(face.vector, dtype=np.float64)
            except InputError as exc:
                failures[path] = exc
            advance()
    finally:
        stop()

    distances: list[float] = []
    labels: list[bool] = []
    skipped: Counter[str] = Counter()
    for pair in pairs:
        bad = failures.get(pair.a) or failures.get(pair.b)
        if bad is not None:
            skipped[bad.code] += 1
            continue
        distances.append(_distance(vectors[pair.a], vectors[pair.b], metric))
        labels.append(pair.same)

    curve = roc_curve(distances, labels)
    accuracy = best = best_acc = None
    if distances:
        d, y = np.asarray(distances), np.asarray(labels)
        accuracy = float(np.mean((d <= threshold) == y))
        best, best_acc = best_threshold(curve)
    tar = tar_at_far(curve, FAR_TARGET)
    saved = None
    if plot is not None:
        saved = str(save_roc_plot(curve, plot, title=f"{model}  AUC {_fmt(roc_auc(curve))}", threshold=threshold))
    return PairsReport(
        model=model,
        metric=metric,
        threshold=threshold,
        pairs=len(pairs),
        evaluated=len(distances),
        positives=curve.positives,
        negatives=curve.negatives,
        images=len(paths),
        accuracy=accuracy,
        roc_auc=roc_auc(curve),
        far=FAR_TARGET,
        tar_at_far=tar[0] if tar else None,
        tar_threshold=tar[1] if tar else None,
        best_threshold=best,
        best_accuracy=best_acc,
        skipped=dict(skipped),
        skipped_images=tuple((str(p), e.code, e.message) for p, e in failures.items()),
        seconds=time.perf_counter() - started,
        plot=saved,
    )


def _distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    if metric == "cosine":
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float(1.0 - (a @ b) / denom) if denom > 0 else 1.0
    return float(np.linalg.norm(a - b))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------- the plot


def save_roc_plot(curve: RocCurve, path: str | Path, *, title: str = "ROC", threshold: float | None = None) -> Path:
    """Draw the ROC curve (FAR on x, TAR on y) with axes, grid, labels and the chance diagonal as a PNG."""
    from PIL import Image, ImageDraw, ImageFont

    size, left, right, top, bottom = 560, 70, 20, 40, 60
    width = height = size
    plot_w, plot_h = width - left - right, height - top - bottom
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()

    def xy(far: float, tar: float) -> tuple[float, float]:
        return left + far * plot_w, top + (1.0 - tar) * plot_h

    for i in range(6):
        v = i / 5
        gx, gy = xy(v, v)
        draw.line([(gx, top), (gx, top + plot_h)], fill=(225, 225, 225))
        draw.line([(left, gy), (left + plot_w, gy)], fill=(225, 225, 225))
        label = f"{v:.1f}"
        tw = draw.textlength(label, font=font)
        draw.text((gx - tw / 2, top + plot_h + 6), label, fill="black", font=font)
        draw.text((left - tw - 8, gy - 6), label, fill="black", font=font)
    # chance line, dashed
    for i in range(0, 40, 2):
        draw.line([xy(i / 40, i / 40), xy((i + 1) / 40, (i + 1) / 40)], fill=(150, 150, 150), width=1)
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    if curve.positives and curve.negatives:
        points = [xy(float(f), float(t)) for f, t in zip(curve.far, curve.tar, strict=True)]
        points.append(xy(1.0, 1.0))
        draw.line(points, fill=(31, 119, 180), width=3, joint="curve")
        if threshold is not None:
            i = int(np.searchsorted(curve.thresholds, threshold, side="right")) - 1
            px, py = xy(float(curve.far[i]), float(curve.tar[i]))
            draw.ellipse([px - 5, py - 5, px + 5, py + 5], outline=(214, 39, 40), width=2)
            draw.text((px + 8, py + 4), f"threshold {threshold:g}", fill=(214, 39, 40), font=font)
    xlabel = "false accept rate (FAR)"
    draw.text((left + (plot_w - draw.textlength(xlabel, font=font)) / 2, height - 28), xlabel, fill="black", font=font)
    ylabel = "true accept rate (TAR)"
    label_w = int(draw.textlength(ylabel, font=font)) + 4
    label_img = Image.new("RGB", (label_w, 14), "white")
    ImageDraw.Draw(label_img).text((2, 1), ylabel, fill="black", font=font)
    rotated = label_img.rotate(90, expand=True)
    img.paste(rotated, (16, top + (plot_h - rotated.height) // 2))
    draw.text((left, 12), title, fill="black", font=font)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, format="PNG")
    return out
