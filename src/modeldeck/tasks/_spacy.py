"""Running spaCy on texts longer than ``nlp.max_length``: cut into pieces, run, keep each piece's offset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._chunking import split_text
from ._deadline import check_deadline

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from ..runtimes.spacy import SpacyRuntime

__all__ = ["SpacyText", "pipe_pieces", "split_for_spacy"]


@dataclass(frozen=True, slots=True)
class SpacyText:
    """The caller's text and its ``(offset, piece)`` cuts, each within the pipeline's ``max_length``."""

    text: str
    pieces: tuple[tuple[int, str], ...]


#: Longest piece handed to spaCy. Its memory grows with the document (a 1,000,000-character doc
#: took a worker from 614 MiB to 8.2 GB), and a deadline can only stop the work between pieces:
#: 10,000 characters of punctuation (one token each, the worst case) take about 4.5 s of CPU.
PIECE_CHARS = 10_000


def split_for_spacy(text: str, runtime: SpacyRuntime) -> SpacyText:
    return SpacyText(text=text, pieces=tuple(split_text(text, min(runtime.max_length, PIECE_CHARS))))


def pipe_pieces(runtime: SpacyRuntime, batch: Sequence[SpacyText], batch_size: int) -> list[list[tuple[int, Doc]]]:
    """``nlp.pipe`` over every piece of the batch, ``batch_size`` at a time, stopping there once the
    batch's deadline has passed; per input, its ``(offset, doc)`` pairs in order."""
    pieces = [piece for item in batch for _, piece in item.pieces]
    docs: list[Doc] = []
    for start in range(0, len(pieces), batch_size):
        check_deadline()
        docs.extend(runtime.pipe(pieces[start : start + batch_size], batch_size=batch_size))
    out: list[list[tuple[int, Doc]]] = []
    at = 0
    for item in batch:
        n = len(item.pieces)
        out.append([(offset, doc) for (offset, _), doc in zip(item.pieces, docs[at : at + n], strict=True)])
        at += n
    return out
