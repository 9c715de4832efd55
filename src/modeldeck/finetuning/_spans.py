"""Entity-annotated text for NER fine-tuning: JSON Lines with character spans, and BIO tags aligned to tokens.

Each line is ``{"text": "...", "entities": [[start, end, label], ...]}`` (end exclusive, char
offsets into ``text``). A line that is not JSON, has empty text, or whose entities are malformed,
out of range or overlapping is a bad row: counted by reason and left out, never fatal. A missing
or unreadable file, or a file without any entity, stops here with an error that says what to fix.

The JSON is parsed line by line with ``json`` rather than through the job readers' pyarrow JSON
reader: an entity triple mixes integers and a string, which an Arrow list column cannot hold.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["SpanData", "align_tags", "bio_tags", "read_spans"]

#: One entity: ``(start, end, label)``, char offsets, end exclusive.
Span = tuple[int, int, str]
#: The label id of a token no loss is taken on (special tokens): Hugging Face's and torch's ignore index.
IGNORE = -100
_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class SpanData:
    texts: tuple[str, ...]
    entities: tuple[tuple[Span, ...], ...]
    #: Rows left out, by reason: ``not json``, ``empty text``, ``malformed entities``, ``out of range``, ...
    bad: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def bad_rows(self) -> int:
        return sum(self.bad.values())

    def counts(self) -> Counter[str]:
        """Entities per label."""
        return Counter(label for spans in self.entities for _, _, label in spans)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SpanData:
        return SpanData(tuple(self.texts[i] for i in indices), tuple(self.entities[i] for i in indices))


def _check_row(row: Any, text_key: str, entities_key: str) -> tuple[str, tuple[Span, ...]] | str:
    """The row's text and sorted spans, or the reason it is bad."""
    if not isinstance(row, dict):
        return "not an object"
    text = row.get(text_key)
    if not isinstance(text, str) or not text.strip():
        return "empty text"
    raw = row.get(entities_key, [])
    if not isinstance(raw, list):
        return "malformed entities"
    spans: list[Span] = []
    for item in raw:
        if isinstance(item, dict):  # {"start": .., "end": .., "label": ..} is accepted too
            item = [item.get("start"), item.get("end"), item.get("label")]
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            return "malformed entities"
        start, end, label = item
        if (
            not isinstance(start, int)
            or not isinstance(end, int)
            or isinstance(start, bool)
            or isinstance(end, bool)
            or not isinstance(label, str)
            or not label.strip()
        ):
            return "malformed entities"
        if not 0 <= start < end <= len(text):
            return "out of range"
        spans.append((start, end, label.strip()))
    spans.sort()
    if any(b[0] < a[1] for a, b in pairwise(spans)):
        return "overlapping"
    return text, tuple(spans)


def read_spans(path: str | Path, text_key: str | None = None, entities_key: str | None = None) -> SpanData:
    """Every usable row of a JSON Lines file of entity spans, in file order; bad rows counted by reason."""
    path = Path(path)
    text_key, entities_key = text_key or "text", entities_key or "entities"
    if not path.exists():
        raise InputError(f"data file {str(path)!r} does not exist", hint="check the path given as --data / --valid")
    if not path.is_file():
        raise InputError(f"{str(path)!r} is not a file", hint="give one .jsonl file")
    if path.suffix.lower() not in _SUFFIXES:
        raise InputError(
            f"NER data must be JSON Lines; {str(path)!r} has the extension {path.suffix!r}",
            hint='one object a line: {"text": "...", "entities": [[start, end, "LABEL"], ...]} in a .jsonl file',
        )
    texts: list[str] = []
    entities: list[tuple[Span, ...]] = []
    bad: Counter[str] = Counter()
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    bad["not json"] += 1
                    continue
                checked = _check_row(row, text_key, entities_key)
                if isinstance(checked, str):
                    bad[checked] += 1
                    continue
                texts.append(checked[0])
                entities.append(checked[1])
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {str(path)!r} ({exc})", hint="give a UTF-8 JSON Lines file") from None
    if not texts:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(bad.items())) or "the file is empty"
        raise InputError(
            f"{str(path)!r} has no usable rows ({reasons})",
            hint=f'one object a line with {text_key!r} and {entities_key!r}: {{"{text_key}": "...", '
            f'"{entities_key}": [[0, 5, "PER"]]}}',
        )
    return SpanData(tuple(texts), tuple(entities), bad)


def check_taggable(data: SpanData, path: str | Path) -> None:
    """Stop before training on data without any entity (an empty label set)."""
    if not data.counts():
        raise InputError(
            f"{str(path)!r} has no entities in its {len(data)} usable rows: the label set is empty",
            hint='annotate entities as "entities": [[start, end, "LABEL"], ...] (char offsets, end exclusive)',
        )


def bio_tags(labels: Sequence[str]) -> tuple[str, ...]:
    """The token classifier's classes: ``O`` then ``B-X``, ``I-X`` for each entity label (IOB2)."""
    return ("O", *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I")))


@dataclass(frozen=True)
class Alignment:
    """Token tag ids for one text, and how its spans fared."""

    tags: list[int]
    #: Spans whose first / last char is not a token boundary (tagged on the tokens they overlap).
    unaligned: int = 0
    #: Spans past the last token kept by ``max_length`` (lost to truncation).
    truncated: int = 0


def align_tags(offsets: np.ndarray, spans: Sequence[Span], tag_ids: dict[str, int]) -> Alignment:
    """BIO tag ids for tokens with char ``offsets`` (``(0, 0)`` for special tokens, which get ``IGNORE``).

    A span tags every token it overlaps, ``B-`` on the first and ``I-`` after; it is counted as
    unaligned when no token starts at its start or none ends at its end (a span cutting a word),
    and as truncated when no token it overlaps was kept.
    """
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = ends > starts
    tags = np.where(real, tag_ids["O"], IGNORE).astype(np.int64)
    unaligned = truncated = 0
    last_end = int(ends[real].max()) if real.any() else 0
    for start, end, label in spans:
        inside = np.flatnonzero(real & (starts < end) & (ends > start))
        if len(inside) == 0:
            if start >= last_end:
                truncated += 1
            else:
                unaligned += 1  # e.g. a span of whitespace: no token to carry it
            continue
        tags[inside[0]] = tag_ids[f"B-{label}"]
        tags[inside[1:]] = tag_ids[f"I-{label}"]
        if int(starts[inside[0]]) != start or int(ends[inside[-1]]) != end:
            if int(ends[inside[-1]]) < end and end > last_end:
                truncated += 1
            else:
                unaligned += 1
    return Alignment(tags.tolist(), unaligned, truncated)
