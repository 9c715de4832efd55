"""Cutting long inputs into pieces a model accepts, and mapping the pieces back onto the original."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["merge_windows", "plan_windows", "split_text", "token_chunks"]

# Preferred cut points, best first; a cut falls just after the match.
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*\s+")
_SPACE = re.compile(r"\s+")


def _last_end(pattern: re.Pattern[str], text: str, start: int, stop: int, min_end: int) -> int | None:
    end = None
    for match in pattern.finditer(text, start, stop):
        if match.end() > min_end:
            end = match.end()
    return end


def split_text(text: str, max_chars: int) -> list[tuple[int, str]]:
    """Cut ``text`` into ``(offset, piece)`` pairs of at most ``max_chars`` that concatenate to ``text``.

    Cuts fall after a paragraph break or a sentence end in the second half of a piece when there is
    one, else after the last whitespace, else (one long "word") at ``max_chars``.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    pieces: list[tuple[int, str]] = []
    pos = 0
    while len(text) - pos > max_chars:
        stop = pos + max_chars
        half = pos + max_chars // 2
        cut = (
            _last_end(_PARAGRAPH, text, pos, stop, half)
            or _last_end(_SENTENCE, text, pos, stop, half)
            or _last_end(_SPACE, text, pos, stop, pos)
            or stop
        )
        pieces.append((pos, text[pos:cut]))
        pos = cut
    pieces.append((pos, text[pos:]))
    return pieces


def plan_windows(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` token windows of at most ``size`` covering ``0..n``, neighbours sharing ``overlap``."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    if n <= size:
        return [(0, n)]
    step = size - overlap
    windows = [(start, start + size) for start in range(0, n - size, step)]
    windows.append((n - size, n))
    return windows


def merge_windows(n: int, windows: Sequence[tuple[int, int]], values: Sequence[np.ndarray]) -> np.ndarray:
    """Per-token rows for ``0..n``, each taken from the window where that token is farthest from an edge.

    Ties go to the earlier window. Tokens near a window's edge see the least context, so this keeps
    each token's most informed prediction.
    """
    width = values[0].shape[1] if values else 0
    out = np.zeros((n, width), dtype=np.float32)
    best = np.full(n, -1, dtype=np.int64)
    for (start, end), rows in zip(windows, values, strict=True):
        index = np.arange(start, end)
        distance = np.minimum(index - start, end - 1 - index)
        better = distance > best[start:end]
        out[start:end][better] = rows[better]
        best[start:end][better] = distance[better]
    return out


def token_chunks(word_ids: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` token ranges of at most ``size``, cut between words where possible."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    n = len(word_ids)
    chunks: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end = min(start + size, n)
        if end < n and word_ids[end] >= 0 and word_ids[end] == word_ids[end - 1]:
            word_start = end
            while word_start > start and word_ids[word_start - 1] == word_ids[end]:
                word_start -= 1
            if word_start > start:  # else the word alone is longer than a chunk: cut inside it
                end = word_start
        chunks.append((start, end))
        start = end
    return chunks
