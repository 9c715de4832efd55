"""What a document index answers: ranked passages with their sources, a reader's answer, a build report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AskResult", "BuildReport", "DocumentAnswer", "Passage", "SkippedFile"]


def _page(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Passage:
    """One chunk of a document and how well it matches a question.

    ``text == extract_text(folder / source).text[start:end]`` (char offsets, end exclusive);
    for ``.txt`` and ``.md`` files that is the file's own text. ``page`` is 1-based (PDF only).
    """

    source: str
    start: int
    end: int
    text: str
    score: float
    page: int | None = None
    chunk: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "chunk": self.chunk,
            "score": self.score,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Passage:
        return cls(
            source=str(data["source"]),
            start=int(data["start"]),
            end=int(data["end"]),
            text=str(data["text"]),
            score=float(data["score"]),
            page=_page(data.get("page")),
            chunk=int(data.get("chunk", 0)),
        )


@dataclass(frozen=True, slots=True)
class DocumentAnswer:
    """An extractive answer: ``text == passage.text[start - passage.start : end - passage.start]``.

    ``start``/``end`` are char offsets into the source document's extracted text, like a passage's.
    """

    text: str
    score: float
    source: str
    start: int
    end: int
    page: int | None
    passage: Passage

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "score": self.score,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "passage": self.passage.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DocumentAnswer:
        return cls(
            text=str(data["text"]),
            score=float(data["score"]),
            source=str(data["source"]),
            start=int(data["start"]),
            end=int(data["end"]),
            page=_page(data.get("page")),
            passage=Passage.from_dict(data["passage"]),
        )


@dataclass(frozen=True, slots=True)
class AskResult:
    """The passages ranked for a question, best first, and the reader's answer when a reader ran."""

    question: str
    passages: tuple[Passage, ...]
    answer: DocumentAnswer | None = None

    @property
    def top(self) -> Passage | None:
        return self.passages[0] if self.passages else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": None if self.answer is None else self.answer.to_dict(),
            "passages": [p.to_dict() for p in self.passages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AskResult:
        answer = data.get("answer")
        return cls(
            question=str(data["question"]),
            passages=tuple(Passage.from_dict(p) for p in data["passages"]),
            answer=None if answer is None else DocumentAnswer.from_dict(answer),
        )


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file left out of the index, and why (unreadable, corrupt, not UTF-8, no text)."""

    source: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkippedFile:
        return cls(source=str(data["source"]), reason=str(data["reason"]))


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What one build or update did: files by outcome (relative paths) and chunks embedded."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"skipped {s.source}: {s.reason}" for s in self.skipped)

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged files; {self.chunks_embedded} chunks embedded, "
            f"{self.chunks_total} in the index ({self.seconds:.1f} s)"
        )
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "unchanged": list(self.unchanged),
            "skipped": [s.to_dict() for s in self.skipped],
            "chunks_embedded": self.chunks_embedded,
            "chunks_total": self.chunks_total,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildReport:
        return cls(
            added=tuple(data.get("added", ())),
            changed=tuple(data.get("changed", ())),
            removed=tuple(data.get("removed", ())),
            unchanged=tuple(data.get("unchanged", ())),
            skipped=tuple(SkippedFile.from_dict(s) for s in data.get("skipped", ())),
            chunks_embedded=int(data.get("chunks_embedded", 0)),
            chunks_total=int(data.get("chunks_total", 0)),
            seconds=float(data.get("seconds", 0.0)),
        )
