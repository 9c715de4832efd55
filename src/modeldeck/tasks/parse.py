"""Tokens with part of speech, lemma and dependency head, and sentences, from a spaCy pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ..types import ModelInfo
from ._backend import BackendBase
from ._spacy import SpacyText, pipe_pieces, split_for_spacy
from .base import Options, Task, check_text
from .results import ParseResult, Sentence, Token

if TYPE_CHECKING:
    from ..runtimes.spacy import SpacyRuntime

__all__ = ["ParseOptions", "ParseTask", "SpacyParser"]

# Everything that annotates tokens or sentences; NER and text classifiers are left unloaded.
_FACTORIES = frozenset(
    {
        "tok2vec",
        "transformer",
        "tagger",
        "morphologizer",
        "parser",
        "senter",
        "sentencizer",
        "attribute_ruler",
        "lemmatizer",
        "trainable_lemmatizer",
    }
)

# text, start, end, pos, tag, lemma, dep, head
_RawToken = tuple[str, int, int, str, str, str, str, int]
# start, end, token_start, token_end
_RawSentence = tuple[int, int, int, int]


class ParseOptions(Options):
    """The parse task takes no options yet; unknown keys are still rejected."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    tokens: tuple[_RawToken, ...]
    sentences: tuple[_RawSentence, ...]


class SpacyParser(BackendBase):
    """A spaCy pipeline with only the components that annotate tokens and sentences."""

    runtime: SpacyRuntime

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.spacy import SpacyRuntime

        return cls(SpacyRuntime.load(info.path, factories=_FACTORIES, device=device))


class ParseTask(Task[SpacyText, _Parsed, ParseResult, ParseOptions]):
    name = "parse"
    result_type: ClassVar[type] = ParseResult
    options_type = ParseOptions
    runtime: SpacyRuntime

    def preprocess(self, raw: Any, options: ParseOptions) -> SpacyText:
        return split_for_spacy(check_text(raw, max_chars=self.max_text_chars), self.runtime)

    def forward(self, batch: Sequence[SpacyText]) -> list[_Parsed]:
        out: list[_Parsed] = []
        for docs in pipe_pieces(self.runtime, batch, self.batch_size):
            tokens: list[_RawToken] = []
            sentences: list[_RawSentence] = []
            for offset, doc in docs:
                first = len(tokens)  # doc-level index of this piece's first token
                tokens.extend(
                    (
                        t.text,
                        offset + t.idx,
                        offset + t.idx + len(t.text),
                        t.pos_,
                        t.tag_,
                        t.lemma_,
                        t.dep_,
                        first + t.head.i,
                    )
                    for t in doc
                )
                if doc.has_annotation("SENT_START") or doc.has_annotation("DEP"):
                    sentences.extend(
                        (offset + s.start_char, offset + s.end_char, first + s.start, first + s.end) for s in doc.sents
                    )
                elif len(doc):
                    sentences.append((offset, offset + len(doc.text), first, first + len(doc)))
            out.append(_Parsed(tuple(tokens), tuple(sentences)))
        return out

    def postprocess(self, raw: _Parsed, encoded: SpacyText, options: ParseOptions) -> ParseResult:
        text = encoded.text
        return ParseResult(
            tokens=tuple(
                Token(text=t, start=s, end=e, pos=pos, tag=tag, lemma=lemma, dep=dep, head=head)
                for t, s, e, pos, tag, lemma, dep, head in raw.tokens
            ),
            sentences=tuple(
                Sentence(text=text[s:e], start=s, end=e, token_start=ts, token_end=te) for s, e, ts, te in raw.sentences
            ),
        )
