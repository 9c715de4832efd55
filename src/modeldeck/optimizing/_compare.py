"""How close a variant's results are to the original's, per task, and the budget that accepts or refuses it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["COMPARE", "Budget", "judge"]


class Budget(BaseModel):
    """The least agreement with the original a variant needs to be accepted (defaults from issue 16)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cosine_mean: float = Field(default=0.99, ge=-1, le=1, description="embed: mean cosine to the original vectors")
    cosine_min: float = Field(default=0.97, ge=-1, le=1, description="embed: lowest cosine to the original vectors")
    agreement: float = Field(
        default=0.99,
        ge=0,
        le=1,
        description="classify labels, ner entities, qa spans, image top-1, detect images whose box sets agree",
    )
    iou_min: float = Field(
        default=0.99, ge=0, le=1, description="detect: lowest IoU of a variant's box with the original box it matches"
    )


def _embed(original: Sequence[Any], variant: Sequence[Any]) -> dict[str, float]:
    a = np.stack([r.vector for r in original]).astype(np.float64)
    b = np.stack([r.vector for r in variant]).astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}


def _classify(original: Sequence[Any], variant: Sequence[Any]) -> dict[str, float]:
    same = [r.labels[0].label == v.labels[0].label for r, v in zip(original, variant, strict=True)]
    error = max(
        abs(a.score - dict((x.label, x.score) for x in v.labels)[a.label])
        for r, v in zip(original, variant, strict=True)
        for a in r.labels
    )
    return {"agreement": float(np.mean(same)), "score_error": float(error)}


def _ner(original: Sequence[Any], variant: Sequence[Any]) -> dict[str, float]:
    # Entity-level: an entity agrees when the variant has one with the same span and label.
    shared = total = 0
    for r, v in zip(original, variant, strict=True):
        a = {(e.start, e.end, e.label) for e in r.entities}
        b = {(e.start, e.end, e.label) for e in v.entities}
        shared += 2 * len(a & b)
        total += len(a) + len(b)
    return {"agreement": shared / total if total else 1.0}


def _qa(original: Sequence[Any], variant: Sequence[Any]) -> dict[str, float]:
    def span(result: Any) -> tuple[int, int] | None:
        return (result.answers[0].start, result.answers[0].end) if result.answers else None

    same = [span(r) == span(v) for r, v in zip(original, variant, strict=True)]
    return {"agreement": float(np.mean(same))}


def _classify_image(original: Sequence[Any], variant: Sequence[Any]) -> dict[str, float]:
    top1 = [r.labels[0].label == v.labels[0].label for r, v in zip(original, variant, strict=True)]
    top5 = [
        [x.label for x in r.labels[:5]] == [x.label for x in v.labels[:5]]
        for r, v in zip(original, variant, strict=True)
    ]
    return {"agreement": float(np.mean(top1)), "top5_identical": float(np.mean(top5))}


#: A variant's box is the original's box when they have the same class and overlap at least this much.
MATCH_IOU = 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), xyxy."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def _detect(original: Sequence[Any], variant: Sequence[Any]) -> dict[str, float]:
    """Box-set agreement. Each original box, best score first, takes the unmatched variant box of the
    same class that overlaps it most (IoU >= ``MATCH_IOU``). An image agrees when every box on each
    side is matched; ``agreement`` is the share of images that agree, ``box_agreement`` 2 x matched /
    all boxes of both, ``iou_min`` the lowest IoU of a matched pair and ``score_error`` the largest
    score difference of one."""
    same_images = matched_boxes = all_boxes = 0
    ious: list[float] = []
    errors: list[float] = []
    for r, v in zip(original, variant, strict=True):
        a, b = r.boxes, v.boxes
        overlap = _iou(a.xyxy.astype(np.float64), b.xyxy.astype(np.float64))
        # Only pairs of the same class that overlap enough can match.
        overlap[(a.class_id[:, None] != b.class_id[None, :]) | (overlap < MATCH_IOU)] = -1.0
        taken = 0
        for i in np.argsort(-a.score, kind="stable"):
            j = int(np.argmax(overlap[i])) if len(b) else -1
            if j < 0 or overlap[i, j] < 0:
                continue
            ious.append(float(overlap[i, j]))
            errors.append(abs(float(a.score[i]) - float(b.score[j])))
            overlap[:, j] = -1.0  # each variant box matches one original box at most
            taken += 1
        matched_boxes += 2 * taken
        all_boxes += len(a) + len(b)
        same_images += taken == len(a) == len(b)
    return {
        "agreement": same_images / len(original) if len(original) else 1.0,
        "box_agreement": matched_boxes / all_boxes if all_boxes else 1.0,
        "iou_min": min(ious, default=1.0),
        "score_error": max(errors, default=0.0),
    }


COMPARE: Mapping[str, Callable[[Sequence[Any], Sequence[Any]], dict[str, float]]] = {
    "embed": _embed,
    "classify": _classify,
    "ner": _ner,
    "qa": _qa,
    "classify-image": _classify_image,
    "detect": _detect,
}


def _figure(value: float, limit: float) -> str:
    # Four decimals, or as many as it takes to show a value that rounds to its limit but falls short of it.
    text = f"{value:.4f}"
    return text if float(text) < limit else repr(float(value))


def judge(figures: Mapping[str, float], budget: Budget) -> str | None:
    """``None`` when ``figures`` are inside ``budget``, else why not (each figure that falls short)."""
    short = [
        f"{name} {_figure(figures[name], limit)} < {limit:.4f}"
        for name, limit in (
            ("cosine_mean", budget.cosine_mean),
            ("cosine_min", budget.cosine_min),
            ("agreement", budget.agreement),
            ("iou_min", budget.iou_min),
        )
        if name in figures and figures[name] < limit
    ]
    return "; ".join(short) or None
