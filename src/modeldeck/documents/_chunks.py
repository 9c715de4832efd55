"""Split document text into overlapping chunks that end at natural breaks, keeping exact char spans."""

from __future__ import annotations

import re

__all__ = ["chunk_spans"]

# Preferred places to end a chunk, best first: a paragraph break, a sentence end, a line end, a space.
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"[.!?:;][\"')\]]*\s"), re.compile(r"\n"), re.compile(r"\s"))


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut(text: str, start: int, limit: int, floor: int) -> int:
    """The end of a chunk in ``(floor, limit]``: just after the best break found there, else ``limit``."""
    for pattern in _BREAKS:
        last = None
        for match in pattern.finditer(text, floor, limit):
            last = match
        if last is not None:
            return last.end()
    return limit


def _next_start(text: str, end: int, overlap: int, previous: int) -> int:
    """Where the next chunk starts: ``overlap`` chars back from ``end``, moved forward to a sentence
    start in the overlap if there is one, else to a word start; always after ``previous``."""
    at = max(end - overlap, previous + 1)
    if at >= end:
        return end
    if text[at - 1].isspace():
        return at
    for pattern in _BREAKS:
        match = pattern.search(text, at, end)
        if match is not None:
            return match.end()
    return end


def chunk_spans(text: str, size: int, overlap: int, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` spans of ``text[start:stop]`` of at most ``size`` chars, overlapping by about ``overlap``.

    A chunk ends at the last paragraph, sentence, line or word break in its second half; spans
    exclude surrounding whitespace, so ``text[s:e]`` is exactly the chunk. Spans without any
    non-space character are left out.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, size), got {overlap}")
    stop = len(text) if stop is None else stop
    spans: list[tuple[int, int]] = []
    at, _ = _trim(text, start, stop)
    while at < stop:
        limit = min(at + size, stop)
        end = stop if limit == stop else _cut(text, at, limit, at + size // 2)
        span = _trim(text, at, end)
        if span[1] > span[0]:
            spans.append(span)
        if end >= stop or not text[end:stop].strip():
            break
        at, _ = _trim(text, _next_start(text, span[1], overlap, at), stop)
    return spans
