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
        default=0.99, ge=0, le=1, description="classify labels, ner entities, qa spans, image top-1 that agree"
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


COMPARE: Mapping[str, Callable[[Sequence[Any], Sequence[Any]], dict[str, float]]] = {
    "embed": _embed,
    "classify": _classify,
    "ner": _ner,
    "qa": _qa,
    "classify-image": _classify_image,
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
        )
        if name in figures and figures[name] < limit
    ]
    return "; ".join(short) or None
