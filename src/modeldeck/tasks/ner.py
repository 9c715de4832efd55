"""Named-entity recognition: char-offset entities from spaCy pipelines or HF token classifiers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np
from pydantic import Field, field_validator

from ..errors import OptionError
from ..types import ModelInfo, OnnxSessionOptions
from ._backend import Backend, BackendBase
from ._chunking import merge_windows, plan_windows
from ._spacy import SpacyText, pipe_pieces, split_for_spacy
from .base import Options, Task, check_text
from .results import Entity, NERResult

if TYPE_CHECKING:
    from ..runtimes.onnx_text import OnnxHeadRuntime
    from ..runtimes.spacy import SpacyRuntime
    from ..runtimes.transformers import TokenizedText, TransformersRuntime

__all__ = ["NERBackend", "NEROptions", "NERTask", "SpacyNER", "TokenClassificationNER", "aggregate_entities"]

Span = tuple[str, int, int, float | None]  # label, start, end, score


class NEROptions(Options):
    labels: tuple[str, ...] | None = Field(default=None, min_length=1, description="keep only these labels")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, description="drop scored entities below this")

    @field_validator("labels", mode="before")
    @classmethod
    def _one_label(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


def _split_label(label: str) -> tuple[str, str | None]:
    """``"B-PER"`` -> ``("B", "PER")``; a plain ``"PER"`` continues like ``I``; ``"O"`` is outside."""
    if label == "O" or not label:
        return "O", None
    if len(label) > 2 and label[0] in "BIES" and label[1] in "-_":
        return label[0], label[2:]
    return "I", label


def aggregate_entities(
    offsets: np.ndarray, probs: np.ndarray, id2label: Mapping[int, str], word_ids: np.ndarray
) -> list[Span]:
    """Group sub-word predictions into entity spans.

    A word takes the label and score of its first sub-token (argmax and max probability); words
    tagged ``B-X`` / ``I-X`` (IOB2, lenient: ``I-X`` after another type starts a new entity; also
    ``E-``/``S-`` and plain labels) join into one entity whose score is the mean over its words and
    whose char span runs from its first token's start to its last token's end. Tokens with word id
    -1 (special tokens) are ignored.
    """
    words: list[tuple[int, int, str, float]] = []  # start, end, label, score
    prev_word = -1
    for i in range(len(word_ids)):
        word = int(word_ids[i])
        if word < 0:
            prev_word = -1
            continue
        start, end = int(offsets[i][0]), int(offsets[i][1])
        if word == prev_word:
            w_start, w_end, label, score = words[-1]
            words[-1] = (min(w_start, start), max(w_end, end), label, score)
        else:
            best = int(np.argmax(probs[i]))
            words.append((start, end, id2label[best], float(probs[i][best])))
        prev_word = word

    spans: list[Span] = []
    current: list[tuple[int, int, str, float]] = []
    current_type: str | None = None

    def close() -> None:
        nonlocal current, current_type
        if current and current_type is not None:
            score = sum(w[3] for w in current) / len(current)
            spans.append((current_type, current[0][0], current[-1][1], score))
        current, current_type = [], None

    for word in words:
        tag, kind = _split_label(word[2])
        if kind is None:
            close()
            continue
        if tag in "BS" or kind != current_type:
            close()
        current.append(word)
        current_type = kind
        if tag in "ES":
            close()
    close()
    return spans


class NERBackend(Backend, Protocol):
    """What ``NERTask`` needs of a framework: encode a text, run a batch, decode spans."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def encode(self, text: str) -> Any: ...

    def forward(self, batch: Sequence[Any], batch_size: int) -> list[Any]: ...

    def decode(self, raw: Any, encoded: Any) -> list[Span]: ...


class SpacyNER(BackendBase):
    """spaCy entities carry no score."""

    factories: ClassVar[frozenset[str]] = frozenset({"ner", "beam_ner", "entity_ruler", "span_ruler"})
    runtime: SpacyRuntime

    def __init__(self, runtime: SpacyRuntime) -> None:
        super().__init__(runtime)
        self.labels = tuple(
            sorted({*runtime.labels("ner"), *runtime.labels("beam_ner"), *runtime.labels("entity_ruler")})
        )

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.spacy import SpacyRuntime

        return cls(SpacyRuntime.load(info.path, factories=cls.factories, device=device))

    def encode(self, text: str) -> SpacyText:
        return split_for_spacy(text, self.runtime)

    def forward(self, batch: Sequence[SpacyText], batch_size: int) -> list[list[Span]]:
        return [
            [
                (ent.label_, offset + ent.start_char, offset + ent.end_char, None)
                for offset, doc in docs
                for ent in doc.ents
            ]
            for docs in pipe_pieces(self.runtime, batch, batch_size)
        ]

    def decode(self, raw: list[Span], encoded: SpacyText) -> list[Span]:
        return raw


@dataclass(frozen=True, slots=True)
class _Windowed:
    tokens: TokenizedText
    windows: tuple[tuple[int, int], ...]


class TokenClassificationNER(BackendBase):
    """HF token classifier; inputs longer than the model are run as overlapping windows."""

    runtime: TransformersRuntime

    def __init__(self, runtime: TransformersRuntime) -> None:
        super().__init__(runtime)
        self.id2label = runtime.id2label
        self.size = runtime.max_content_tokens
        self.overlap = self.size // 4
        kinds = {_split_label(label)[1] for label in self.id2label.values()}
        self.labels = tuple(sorted(k for k in kinds if k is not None))

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.transformers import TransformersRuntime

        return cls(TransformersRuntime.load(info.path, head="token-classification", device=device))

    def encode(self, text: str) -> _Windowed:
        tokens = self.runtime.tokenize(text)
        return _Windowed(tokens, tuple(plan_windows(len(tokens), self.size, self.overlap)))

    def forward(self, batch: Sequence[_Windowed], batch_size: int) -> list[np.ndarray]:
        flat = [item.tokens.ids[s:e] for item in batch for s, e in item.windows]
        probs = self.runtime.token_probabilities(flat, batch_size=batch_size)
        out: list[np.ndarray] = []
        at = 0
        for item in batch:
            n = len(item.windows)
            out.append(merge_windows(len(item.tokens), item.windows, probs[at : at + n]))
            at += n
        return out

    def decode(self, raw: np.ndarray, encoded: _Windowed) -> list[Span]:
        if len(raw) == 0:
            return []
        return aggregate_entities(encoded.tokens.offsets, raw, self.id2label, encoded.tokens.word_ids)


class OnnxTokenClassificationNER(TokenClassificationNER):
    """A token-classification head exported by ``modeldeck.optimize``: the same windows, merging and decoding."""

    runtime: OnnxHeadRuntime  # type: ignore[assignment]  # it answers what TransformersRuntime answers for NER

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, session: OnnxSessionOptions | None = None) -> Self:
        from ..runtimes.onnx_text import OnnxHeadRuntime

        head = OnnxHeadRuntime.load_head(info.path, "token-classification", device=device, session=session)
        return cls(head)  # type: ignore[arg-type]

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}


@dataclass(frozen=True, slots=True)
class _Encoded:
    text: str
    model_input: Any


class NERTask(Task[_Encoded, Any, NERResult, NEROptions]):
    name = "ner"
    result_type: ClassVar[type] = NERResult
    options_type = NEROptions
    backend: NERBackend

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity types this model can produce."""
        return self.backend.labels

    def check_options(self, options: NEROptions) -> NEROptions:
        if options.labels is not None and self.labels:
            unknown = sorted(set(options.labels) - set(self.labels))
            if unknown:
                raise OptionError(
                    f"ner: unknown label(s) {', '.join(map(repr, unknown))} for model {self.info.name!r}",
                    hint=f"valid labels: {', '.join(self.labels)}",
                )
        return options

    def preprocess(self, raw: Any, options: NEROptions) -> _Encoded:
        text = check_text(raw, max_chars=self.max_text_chars)
        return _Encoded(text, self.backend.encode(text))

    def forward(self, batch: Sequence[_Encoded]) -> list[Any]:
        return self.backend.forward([item.model_input for item in batch], self.batch_size)

    def postprocess(self, raw: Any, encoded: _Encoded, options: NEROptions) -> NERResult:
        text = encoded.text
        wanted = None if options.labels is None else frozenset(options.labels)
        entities = tuple(
            Entity(text=text[start:end], label=label, start=start, end=end, score=score)
            for label, start, end, score in self.backend.decode(raw, encoded.model_input)
            if (wanted is None or label in wanted) and (score is None or score >= options.min_score)
        )
        return NERResult(entities)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "labels": list(self.labels)}
