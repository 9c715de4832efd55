"""Extractive-QA span search on start/end logits: per-window n-best, merged across windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Span", "best_spans", "merge_spans", "window_spans"]

# What the reference pipeline gives masked logits: far below any real logit, still finite.
_MASKED = -10000.0


@dataclass(frozen=True, slots=True)
class Span:
    start: int  # char offsets into the context, end exclusive
    end: int
    score: float


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()  # type: ignore[no-any-return]


def window_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context_mask: np.ndarray,
    cls_index: int,
    char_starts: np.ndarray,
    char_ends: np.ndarray,
    *,
    top_k: int,
    max_answer_len: int,
) -> tuple[list[tuple[int, int, float]], float]:
    """The ``top_k`` best char spans ``(start, end, score)`` of one window, and its no-answer score.

    Like the classic transformers pipeline: start and end logits outside the context (except the
    ``[CLS]`` token) are masked, each is softmaxed over the window, and the tokens ``first..last``
    score ``p_start[first] * p_end[last]`` when both are context tokens and
    ``first <= last < first + max_answer_len``. The span runs from ``char_starts[first]`` to
    ``char_ends[last]``; token spans that give the same chars count once, with their best score.
    The no-answer score is ``p_start[cls] * p_end[cls]``.
    """
    allowed = np.asarray(context_mask, dtype=bool)
    keep = allowed.copy()
    keep[cls_index] = True
    p_start = _softmax(np.where(keep, start_logits.astype(np.float64), _MASKED))
    p_end = _softmax(np.where(keep, end_logits.astype(np.float64), _MASKED))
    null_score = float(p_start[cls_index] * p_end[cls_index])
    idx = np.flatnonzero(allowed)
    n = len(idx)
    if n == 0:
        return [], null_score
    # Only the band of pairs a valid answer can be: n * max_answer_len pairs, not n * n.
    # ``idx`` is increasing, so idx[a + d] - idx[a] >= d and no valid pair lies outside the band.
    firsts = np.concatenate([idx[: n - d] for d in range(min(max_answer_len, n))])
    lasts = np.concatenate([idx[d:] for d in range(min(max_answer_len, n))])
    ok = lasts - firsts < max_answer_len
    firsts, lasts = firsts[ok], lasts[ok]
    starts, ends = char_starts[firsts].astype(np.int64), char_ends[lasts].astype(np.int64)
    scores = p_start[firsts] * p_end[lasts]
    ok = ends > starts
    starts, ends, scores = starts[ok], ends[ok], scores[ok]
    if len(scores) == 0:
        return [], null_score
    order = np.argsort(-scores, kind="stable")
    keys = starts[order] * (int(ends.max()) + 1) + ends[order]
    _, first_seen = np.unique(keys, return_index=True)  # the best-scored token span of each char span
    best = order[np.sort(first_seen)[:top_k]]
    return [(int(starts[b]), int(ends[b]), float(scores[b])) for b in best], null_score


def _trim(context: str, start: int, end: int) -> tuple[int, int]:
    """Drop whitespace at the edges of a span (byte-level BPE offsets may include a leading space)."""
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    return start, end


def merge_spans(context: str, candidates: Sequence[tuple[int, int, float]], top_k: int) -> list[Span]:
    """Char spans ``(start, end, score)`` from every window: identical spans keep their best score."""
    best: dict[tuple[int, int], float] = {}
    for start, end, score in candidates:
        start, end = _trim(context, start, end)
        if end <= start:
            continue
        if score > best.get((start, end), -1.0):
            best[(start, end)] = score
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return [Span(s, e, score) for (s, e), score in ranked[:top_k]]


def best_spans(
    context: str,
    windows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]],
    *,
    top_k: int,
    max_answer_len: int,
) -> tuple[list[Span], float]:
    """Top char spans over all windows ``(start_logits, end_logits, char_starts, char_ends, context_mask, cls)``.

    Returns the spans and the no-answer score (the lowest over windows, as the reference does).
    """
    candidates: list[tuple[int, int, float]] = []
    null_score = 1.0
    for start_logits, end_logits, char_starts, char_ends, mask, cls_index in windows:
        spans, null = window_spans(
            start_logits, end_logits, mask, cls_index, char_starts, char_ends, top_k=top_k,
            max_answer_len=max_answer_len,
        )  # fmt: skip
        null_score = min(null_score, null)
        candidates.extend(spans)
    return merge_spans(context, candidates, top_k), null_score
