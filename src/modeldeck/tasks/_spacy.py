"""Running spaCy on texts longer than ``nlp.max_length``: cut into pieces, run, keep each piece's offset."""

from __future__ import annotations

import re
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
#: took a worker from 614 MiB to 8.2 GB), and a deadline can only stop the work between pieces.
PIECE_CHARS = 10_000


#: Longest run without whitespace handed to spaCy in one piece. Its tokenizer splits such a run's
#: prefixes and suffixes in time quadratic in its length: 4,000 characters of ".," took 3.3 s of CPU,
#: 10,000 about 20 s; cut at 500 characters, 10,000 of them take about 1 s.
RUN_CHARS = 500
_LONG_RUN = re.compile(rf"\S{{{RUN_CHARS + 1},}}")


def split_for_spacy(text: str, runtime: SpacyRuntime) -> SpacyText:
    pieces: list[tuple[int, str]] = []
    for offset, piece in split_text(text, min(runtime.max_length, PIECE_CHARS)):
        if _LONG_RUN.search(piece) is None:
            pieces.append((offset, piece))
        else:  # rare: junk such as a long run of punctuation; normal words are far shorter
            pieces.extend((offset + at, part) for at, part in split_text(piece, RUN_CHARS))
    return SpacyText(text=text, pieces=tuple(pieces))


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
