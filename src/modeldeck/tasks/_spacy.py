"""Running spaCy on texts longer than ``nlp.max_length``: cut into pieces, run, keep each piece's offset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._chunking import split_text

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from ..runtimes.spacy import SpacyRuntime

__all__ = ["SpacyText", "pipe_pieces", "split_for_spacy"]


@dataclass(frozen=True, slots=True)
class SpacyText:
    """The caller's text and its ``(offset, piece)`` cuts, each within the pipeline's ``max_length``."""

    text: str
    pieces: tuple[tuple[int, str], ...]


def split_for_spacy(text: str, runtime: SpacyRuntime) -> SpacyText:
    return SpacyText(text=text, pieces=tuple(split_text(text, runtime.max_length)))


def pipe_pieces(runtime: SpacyRuntime, batch: Sequence[SpacyText], batch_size: int) -> list[list[tuple[int, Doc]]]:
    """One ``nlp.pipe`` over every piece of the batch; per input, its ``(offset, doc)`` pairs in order."""
    docs = runtime.pipe([piece for item in batch for _, piece in item.pieces], batch_size=batch_size)
    out: list[list[tuple[int, Doc]]] = []
    at = 0
    for item in batch:
        n = len(item.pieces)
        out.append([(offset, doc) for (offset, _), doc in zip(item.pieces, docs[at : at + n], strict=True)])
        at += n
    return out
