"""A small rule-based sentence splitter that remembers the exact text between sentences.

Lines are split at every line break (a blank line is a paragraph break), then at sentence-final
punctuation followed by space and a non-lowercase character, or right after CJK full stops.
``Layout.join`` puts replacement sentences back between the original separators, so paragraph
breaks, indentation and trailing newlines survive translation unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Layout", "split_sentences"]

# A whitespace run that holds a line break separates lines (and, with a blank line, paragraphs).
_LINE_BREAK = re.compile(r"[^\S\n]*\n\s*")
# Sentence-final punctuation with closing quotes or brackets, then space; or CJK stops, space optional.
_LATIN_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019\u00bb)\]]*(?=\s)")
_CJK_END = re.compile(r"[\u3002\uff01\uff1f]+[\"'\u201d\u2019\u300d\u300f)\]]*")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co", "no", "fig",
     "approx", "dept", "mt", "cf", "al"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Layout:
    """Sentences of a text and the pieces that rebuild it: literal separators and sentence indices."""

    sentences: tuple[str, ...]
    pieces: tuple[str | int, ...]

    def join(self, sentences: Sequence[str]) -> str:
        """The text with sentence ``i`` replaced by ``sentences[i]``; separators kept verbatim."""
        if len(sentences) != len(self.sentences):
            raise ValueError(f"expected {len(self.sentences)} sentences, got {len(sentences)}")
        return "".join(sentences[p] if isinstance(p, int) else p for p in self.pieces)


def _is_boundary(line: str, end: int, punct_start: int) -> bool:
    """Is the punctuation ending at ``end`` (starting at ``punct_start``) the end of a sentence?"""
    rest = line[end:].lstrip()
    if not rest or rest[0].islower():
        return False
    if line[punct_start:end].rstrip("\"'\u201d\u2019\u00bb)]") != ".":
        return True  # '!', '?', '...' end sentences whatever word precedes them
    word = line[:punct_start].rsplit(None, 1)[-1] if line[:punct_start].strip() else ""
    word = word.lstrip("(\"'\u201c\u2018[")
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith"
    return word.lower() not in _ABBREVIATIONS


def _split_line(line: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence in a line that has no leading or trailing whitespace."""
    cuts: list[int] = []
    for match in _LATIN_END.finditer(line):
        if _is_boundary(line, match.end(), match.start()):
            cuts.append(match.end())
    for match in _CJK_END.finditer(line):
        if match.end() < len(line):
            cuts.append(match.end())
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in sorted(set(cuts)):
        if cut <= start:
            continue
        spans.append((start, cut))
        start = cut
        while start < len(line) and line[start].isspace():
            start += 1
    if start < len(line):
        spans.append((start, len(line)))
    return spans


def split_sentences(text: str) -> Layout:
    """Split ``text`` into sentences; ``layout.join(layout.sentences) == text`` always holds."""
    sentences: list[str] = []
    pieces: list[str | int] = []

    def literal(value: str) -> None:
        if not value:
            return
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += value
        else:
            pieces.append(value)

    at = 0
    breaks = [(m.start(), m.end()) for m in _LINE_BREAK.finditer(text)]
    for line_start, line_end in [*zip([0] + [e for _, e in breaks], [s for s, _ in breaks] + [len(text)], strict=True)]:
        literal(text[at:line_start])
        line = text[line_start:line_end]
        body = line.strip()
        if body:
            lead = len(line) - len(line.lstrip())
            literal(line[:lead])
            base = line_start + lead
            prev = base
            for s, e in _split_line(body):
                literal(text[prev : base + s])
                pieces.append(len(sentences))
                sentences.append(body[s:e])
                prev = base + e
            literal(text[prev:line_end])
        else:
            literal(line)
        at = line_end
    literal(text[at:])
    return Layout(tuple(sentences), tuple(pieces))
