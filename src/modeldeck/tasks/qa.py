"""Extractive question answering: answer spans with char offsets into the caller's context.

Long contexts are cut into overlapping token windows (``max_seq_len`` tokens, ``doc_stride``
shared); every window of every question in a batch goes through the model together, and the
best spans of all windows are merged. Scores follow the classic transformers pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from pydantic import Field, StrictBool

from ..errors import InputTooLargeError, InputTypeError, OptionError
from ..types import ModelInfo, OnnxSessionOptions
from ._backend import BackendBase
from ._qa_spans import best_spans
from .base import Options, Task, TransformersHead, check_text
from .results import _pyarrow

if TYPE_CHECKING:
    import pyarrow as pa

    from ..runtimes.onnx_text import OnnxHeadRuntime
    from ..runtimes.transformers import QAWindows, TransformersRuntime

__all__ = ["Answer", "QAOptions", "QAResult", "QATask", "QuestionAnsweringHead"]

_DEFAULT_SEQ_LEN = 384
_DEFAULT_STRIDE = 128
_KEYS = ("question", "context")


class QAOptions(Options):
    top_k: int = Field(default=1, ge=1, le=100, description="how many answers to return, best first")
    max_answer_len: int = Field(default=15, ge=1, le=512, description="longest answer, in tokens")
    max_seq_len: int | None = Field(
        default=None, ge=16, description="tokens per window, question included (default: 384 or the model's limit)"
    )
    doc_stride: int | None = Field(
        default=None, ge=0, description="tokens shared by consecutive windows (default: 128, at most half a window)"
    )
    handle_impossible_answer: StrictBool = Field(
        default=False, description="SQuAD 2.0 models: rank 'no answer' (empty text) by the [CLS] score"
    )
    align_to_words: StrictBool = Field(
        default=True, description="widen answers to whole words (a span never starts or ends inside a word)"
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: ``text == context[start:end]`` (char offsets, end exclusive); empty for 'no answer'."""

    text: str
    start: int
    end: int
    score: float

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([("text", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64())])

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Answer:
        return cls(text=str(data["text"]), start=int(data["start"]), end=int(data["end"]), score=float(data["score"]))


@dataclass(frozen=True, slots=True)
class QAResult:
    """Answers best first; ``no_answer_score`` is set when ``handle_impossible_answer`` was on."""

    answers: tuple[Answer, ...] = ()
    no_answer_score: float | None = None
    windows: int = 1

    def __len__(self) -> int:
        return len(self.answers)

    def __iter__(self) -> Iterator[Answer]:
        return iter(self.answers)

    def __getitem__(self, index: int) -> Answer:
        return self.answers[index]

    @property
    def best(self) -> Answer | None:
        return self.answers[0] if self.answers else None

    @property
    def text(self) -> str:
        """The best answer's text; empty when there is none or 'no answer' won."""
        return self.answers[0].text if self.answers else ""

    @property
    def has_answer(self) -> bool:
        return bool(self.answers) and self.answers[0].end > self.answers[0].start

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("answers", pa.list_(Answer.arrow_type())), ("no_answer_score", pa.float64()), ("windows", pa.int64())]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": [a.to_dict() for a in self.answers],
            "no_answer_score": self.no_answer_score,
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QAResult:
        null = data.get("no_answer_score")
        return cls(
            answers=tuple(Answer.from_dict(a) for a in data["answers"]),
            no_answer_score=None if null is None else float(null),
            windows=int(data.get("windows", 1)),
        )


@dataclass(frozen=True, slots=True)
class _Encoded:
    question: str
    context: str
    windows: QAWindows
    #: Per window, the char where an answer starting at each token starts, and where one ending there ends.
    char_starts: tuple[np.ndarray, ...]
    char_ends: tuple[np.ndarray, ...]


def _char_bounds(windows: QAWindows, align_to_words: bool) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Token offsets, or with ``align_to_words`` the offsets of the whole word each token is part of.

    Word spans are gathered over all windows, so a word cut by a window edge still gets its full span.
    """
    if not align_to_words:
        return tuple(o[:, 0] for o in windows.offsets), tuple(o[:, 1] for o in windows.offsets)
    in_words = [m & (w >= 0) for m, w in zip(windows.context_mask, windows.word_ids, strict=True)]
    words = np.concatenate([w[k] for w, k in zip(windows.word_ids, in_words, strict=True)])
    offsets = np.concatenate([o[k] for o, k in zip(windows.offsets, in_words, strict=True)])
    if len(words) == 0:
        return tuple(o[:, 0] for o in windows.offsets), tuple(o[:, 1] for o in windows.offsets)
    word_start = np.full(int(words.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    word_end = np.full(int(words.max()) + 1, -1, dtype=np.int64)
    np.minimum.at(word_start, words, offsets[:, 0])
    np.maximum.at(word_end, words, offsets[:, 1])
    starts, ends = [], []
    for o, w, k in zip(windows.offsets, windows.word_ids, in_words, strict=True):
        safe = np.clip(w, 0, len(word_start) - 1)  # question tokens may number more words than the context
        starts.append(np.where(k, word_start[safe], o[:, 0]))
        ends.append(np.where(k, word_end[safe], o[:, 1]))
    return tuple(starts), tuple(ends)


def _raw_pair(raw: Any) -> tuple[Any, Any]:
    if not isinstance(raw, Mapping):
        raise InputTypeError(
            f"a qa input must be an object with 'question' and 'context', got {type(raw).__name__}",
            hint='send {"question": "...", "context": "..."}',
        )
    missing = [k for k in _KEYS if k not in raw]
    if missing:
        raise InputTypeError(
            f"the qa input has no {' or '.join(repr(k) for k in missing)} key",
            hint='send {"question": "...", "context": "..."}',
        )
    unknown = sorted(str(k) for k in raw if k not in _KEYS)
    if unknown:
        raise InputTypeError(
            f"the qa input has unknown key(s) {', '.join(map(repr, unknown))}",
            hint="a qa input holds only 'question' and 'context'",
        )
    return raw["question"], raw["context"]


class QuestionAnsweringHead(TransformersHead):
    head = "question-answering"


class OnnxQuestionAnswering(BackendBase):
    """An extractive QA head exported by ``modeldeck.optimize``: the same windows and span decoding."""

    runtime: OnnxHeadRuntime

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, session: OnnxSessionOptions | None = None) -> Self:
        from ..runtimes.onnx_text import OnnxHeadRuntime

        return cls(OnnxHeadRuntime.load_head(info.path, "question-answering", device=device, session=session))

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}


class QATask(Task[_Encoded, list[tuple[np.ndarray, np.ndarray]], QAResult, QAOptions]):
    name = "qa"
    result_type: ClassVar[type] = QAResult
    options_type = QAOptions
    runtime: TransformersRuntime

    def check_options(self, options: QAOptions) -> QAOptions:
        limit = self.runtime.max_tokens
        if options.max_seq_len is not None and options.max_seq_len > limit:
            raise OptionError(
                f"qa: max_seq_len {options.max_seq_len} is more than model {self.info.name!r} takes",
                hint=f"use max_seq_len <= {limit}",
            )
        return options

    def window_plan(self, options: QAOptions) -> tuple[int, int]:
        """``(max_seq_len, doc_stride)`` in effect for these options."""
        max_len = options.max_seq_len or min(_DEFAULT_SEQ_LEN, self.runtime.max_tokens)
        stride = options.doc_stride if options.doc_stride is not None else min(_DEFAULT_STRIDE, max_len // 2)
        return max_len, stride

    def preprocess(self, raw: Any, options: QAOptions) -> _Encoded:
        raw_question, raw_context = _raw_pair(raw)
        question = check_text(raw_question, max_chars=self.max_text_chars, field="question")
        context = check_text(raw_context, max_chars=self.max_text_chars, field="context")
        max_len, stride = self.window_plan(options)
        room = max_len - self.runtime.count_tokens(question) - self.runtime.pair_special_tokens()
        if room < 8:
            raise InputTooLargeError(
                f"the question leaves {max(room, 0)} of the {max_len} window tokens for the context",
                hint="shorten the question, or raise max_seq_len",
            )
        # The window must advance: a stride of at most half the context room keeps windows few.
        stride = min(stride, room // 2)
        windows = self.runtime.encode_qa(question, context, max_len=max_len, stride=stride)
        return _Encoded(question, context, windows, *_char_bounds(windows, options.align_to_words))

    def forward(self, batch: Sequence[_Encoded]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        # Every window of every question in one pass (the runtime mini-batches them by length).
        rows = [ids for item in batch for ids in item.windows.ids]
        typed = all(item.windows.type_ids is not None for item in batch)
        types = [t for item in batch for t in (item.windows.type_ids or ())] if typed else None
        logits = self.runtime.span_logits(rows, types, batch_size=self.batch_size)
        out: list[list[tuple[np.ndarray, np.ndarray]]] = []
        at = 0
        for item in batch:
            n = len(item.windows)
            out.append(logits[at : at + n])
            at += n
        return out

    def postprocess(self, raw: list[tuple[np.ndarray, np.ndarray]], encoded: _Encoded, options: QAOptions) -> QAResult:
        w = encoded.windows
        windows = [
            (start, end, encoded.char_starts[i], encoded.char_ends[i], w.context_mask[i], w.cls_index[i])
            for i, (start, end) in enumerate(raw)
        ]
        spans, null_score = best_spans(
            encoded.context, windows, top_k=options.top_k, max_answer_len=options.max_answer_len
        )
        answers = [Answer(encoded.context[s.start : s.end], s.start, s.end, s.score) for s in spans]
        if not options.handle_impossible_answer:
            return QAResult(tuple(answers), None, len(w))
        answers.append(Answer("", 0, 0, null_score))
        answers.sort(key=lambda a: -a.score)
        return QAResult(tuple(answers[: options.top_k]), null_score, len(w))

    def call_inputs(self, args: tuple[Any, ...], options: dict[str, Any]) -> tuple[list[Any], bool, dict[str, Any]]:
        """``qa(question=..., context=...)``, ``qa({"question": ..., "context": ...})`` or a list of those.

        ``question`` may be a list: each is asked of the same ``context`` (or of the matching
        item of a ``context`` list of the same length), and a list of results comes back.
        """
        options = dict(options)
        question, context = options.pop("question", None), options.pop("context", None)
        if question is None and context is None:
            if not args:
                raise InputTypeError("qa needs a question and a context", hint="call qa(question=..., context=...)")
            return super().call_inputs(args, options)
        if args:
            raise InputTypeError(
                "pass either an input object or question=/context=, not both",
                hint="call qa(question=..., context=...) or qa({'question': ..., 'context': ...})",
            )
        if isinstance(question, (list, tuple)):
            contexts = list(context) if isinstance(context, (list, tuple)) else [context] * len(question)
            if len(contexts) != len(question):
                raise InputTypeError(
                    f"got {len(question)} questions and {len(contexts)} contexts",
                    hint="give one context, or one context per question",
                )
            return [{"question": q, "context": c} for q, c in zip(question, contexts, strict=True)], False, options
        return [{k: v for k, v in (("question", question), ("context", context)) if v is not None}], True, options
