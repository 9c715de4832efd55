"""Text out of documents: plain text and Markdown as they are, visible HTML text, PDF text per page."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from ..errors import DependencyError, InputDecodeError, InputTypeError

__all__ = ["SUFFIXES", "ExtractedText", "extract_bytes", "extract_text"]

SUFFIXES: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """The text of one document; ``pages[i]`` is the ``(start, end)`` span of page ``i + 1`` (PDF only).

    Every chunk position in the index is a char offset into ``text``.
    """

    text: str
    kind: str
    pages: tuple[tuple[int, int], ...] = ()

    def spans(self) -> list[tuple[int, int, int | None]]:
        """``(start, end, page)`` spans that chunks must not cross: pages, or the whole text."""
        if self.pages:
            return [(s, e, i + 1) for i, (s, e) in enumerate(self.pages)]
        return [(0, len(self.text), None)]

    def page_of(self, offset: int) -> int | None:
        for number, (start, end) in enumerate(self.pages, 1):
            if start <= offset < end:
                return number
        return None


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputDecodeError(f"not valid UTF-8 (byte {exc.start})", hint="save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody td th thead tr ul title".split()
)
_HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript", "head"})
_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML collapses ASCII whitespace only: &nbsp; stays


class _VisibleText(HTMLParser):
    """Visible text of an HTML page: blocks become paragraphs, runs of whitespace one space."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.hidden: list[str] = []  # open hidden tags; <title> inside <head> is still shown
        self.in_title = False

    def _flush(self) -> None:
        text = _SPACE.sub(" ", "".join(self.current)).strip(" ")
        if text:
            self.blocks.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self.hidden:  # "</head>" may be left out
            self.hidden = [t for t in self.hidden if t != "head"]
        if tag in _HIDDEN_TAGS:
            self.hidden.append(tag)
        if tag == "title":
            self.in_title = True
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and tag in self.hidden:
            while self.hidden and self.hidden.pop() != tag:
                pass
        if tag == "title":
            self.in_title = False
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.hidden or (self.in_title and self.hidden == ["head"]):
            self.current.append(data)

    def text(self) -> str:
        self._flush()
        return "\n\n".join(self.blocks)


def _html_text(data: bytes) -> str:
    parser = _VisibleText()
    parser.feed(_decode(data))
    parser.close()
    return parser.text()


def _pdf_text(data: bytes) -> ExtractedText:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise DependencyError("pypdf", extra="docs", purpose="reading PDF files") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise InputDecodeError("the PDF is encrypted", hint="save a copy without a password")
        page_texts = [page.extract_text() or "" for page in reader.pages]
    except InputDecodeError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise InputDecodeError(f"unreadable PDF ({type(exc).__name__}: {exc})", hint="re-export the PDF") from None
    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    at = 0
    for i, page_text in enumerate(page_texts):
        if i:
            parts.append("\n\n")
            at += 2
        parts.append(page_text)
        pages.append((at, at + len(page_text)))
        at += len(page_text)
    return ExtractedText("".join(parts), "pdf", tuple(pages))


def extract_bytes(data: bytes, suffix: str) -> ExtractedText:
    """Extract the text of a document's bytes; ``suffix`` (".pdf", ".md", ...) picks the reader."""
    kind = SUFFIXES.get(suffix.lower())
    if kind is None:
        raise InputTypeError(f"unsupported file type {suffix!r}", hint=f"supported: {', '.join(sorted(SUFFIXES))}")
    if kind == "pdf":
        return _pdf_text(data)
    if kind == "html":
        return ExtractedText(_html_text(data), kind)
    return ExtractedText(_decode(data), kind)


def extract_text(path: str | Path) -> ExtractedText:
    """The text the index sees for ``path``: chunk positions are offsets into ``.text``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputDecodeError(
            f"cannot read {str(path)!r} ({reason})", hint="check the path and its permissions"
        ) from None
    return extract_bytes(data, path.suffix)
