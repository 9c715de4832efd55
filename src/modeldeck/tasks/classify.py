"""Text classification: every label of the model with its score, best first.

Single-label models give a softmax (scores sum to 1); multi-label models (``problem_type`` is
``multi_label_classification``, or ``multi_label=True``) an independent sigmoid per label. Text
longer than the model's window is cut to its first tokens, and the result says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np
from pydantic import Field, StrictBool

from ..errors import OptionError
from ..runtimes.base import Runtime
from ..types import ModelInfo, OnnxSessionOptions
from ._backend import Backend, BackendBase
from .base import Options, Task, TransformersHead, check_text
from .results import _pyarrow

if TYPE_CHECKING:
    import pyarrow as pa

    from ..runtimes.onnx_text import OnnxHeadRuntime

__all__ = [
    "ClassifyBackend",
    "ClassifyOptions",
    "ClassifyResult",
    "ClassifyTask",
    "Label",
    "SequenceClassificationHead",
    "SequenceClassifier",
]


class ClassifyOptions(Options):
    top_k: int | None = Field(default=None, ge=1, description="keep the best k labels (default: all)")
    multi_label: StrictBool | None = Field(
        default=None, description="sigmoid per label instead of softmax (default: from the model config)"
    )


@dataclass(frozen=True, slots=True)
class Label:
    label: str
    score: float

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct([("label", pa.string()), ("score", pa.float64())])

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Label:
        return cls(label=str(data["label"]), score=float(data["score"]))


@dataclass(frozen=True, slots=True)
class ClassifyResult:
    """Labels sorted by score, best first; ``truncated`` when the text was cut to the model's window."""

    labels: tuple[Label, ...] = ()
    multi_label: bool = False
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[Label]:
        return iter(self.labels)

    def __getitem__(self, index: int) -> Label:
        return self.labels[index]

    @property
    def top(self) -> Label | None:
        return self.labels[0] if self.labels else None

    @property
    def scores(self) -> dict[str, float]:
        return {lab.label: lab.score for lab in self.labels}

    @classmethod
    def arrow_type(cls) -> pa.DataType:
        pa = _pyarrow()
        return pa.struct(
            [("labels", pa.list_(Label.arrow_type())), ("multi_label", pa.bool_()), ("truncated", pa.bool_())]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": [lab.to_dict() for lab in self.labels],
            "multi_label": self.multi_label,
            "truncated": self.truncated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassifyResult:
        return cls(
            labels=tuple(Label.from_dict(lab) for lab in data["labels"]),
            multi_label=bool(data.get("multi_label", False)),
            truncated=bool(data.get("truncated", False)),
        )


@dataclass(frozen=True, slots=True)
class _Encoded:
    ids: list[int]
    truncated: bool


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()  # type: ignore[no-any-return]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))  # type: ignore[no-any-return]


class SequenceClassifier(Runtime, Protocol):
    """What ``ClassifyTask`` drives: a tokenizer and a model that gives one row of logits per text."""

    @property
    def id2label(self) -> Mapping[int, str]: ...

    @property
    def problem_type(self) -> str | None: ...

    @property
    def max_content_tokens(self) -> int: ...

    def encode_plain(self, text: str) -> list[int]:
        """Token ids without special tokens."""
        ...

    def wrap(self, ids: list[int]) -> list[int]:
        """Ids with the model's special tokens around them."""
        ...

    def sequence_logits(self, batch: Sequence[list[int]], *, batch_size: int) -> np.ndarray:
        """``(len(batch), n_labels)`` logits."""
        ...


class ClassifyBackend(Backend, Protocol):
    runtime: SequenceClassifier


class SequenceClassificationHead(TransformersHead):
    head = "sequence-classification"


class OnnxSequenceClassifier(BackendBase):
    """A sequence-classification head exported by ``modeldeck.optimize`` (``NAME@onnx``, ``NAME@int8``)."""

    runtime: OnnxHeadRuntime

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, session: OnnxSessionOptions | None = None) -> Self:
        from ..runtimes.onnx_text import OnnxHeadRuntime

        return cls(OnnxHeadRuntime.load_head(info.path, "sequence-classification", device=device, session=session))

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}


class AwdLstmClassifier(BackendBase):
    """fastai's AWD-LSTM classifier as ``modeldeck.finetune`` saves it (safetensors + JSON, no pickle)."""

    runtime: SequenceClassifier

    @classmethod
    def load(cls, info: ModelInfo, *, device: str) -> Self:
        from ..runtimes.awd_lstm import AwdLstmRuntime

        return cls(AwdLstmRuntime.load(info.path, device=device))


class ClassifyTask(Task[_Encoded, np.ndarray, ClassifyResult, ClassifyOptions]):
    name = "classify"
    result_type: ClassVar[type] = ClassifyResult
    options_type = ClassifyOptions
    backend: ClassifyBackend
    runtime: SequenceClassifier

    def __init__(self, info: ModelInfo, backend: ClassifyBackend, **kwargs: Any) -> None:
        # Labels in id order; the model config's id2label names them ("LABEL_0" when it has none).
        id2label = backend.runtime.id2label
        self._labels = tuple(id2label[i] for i in sorted(id2label))
        if self._labels and len(set(self._labels)) != len(self._labels):
            raise OptionError(f"model {info.name!r} has duplicate label names: {list(self._labels)}")
        super().__init__(info, backend, **kwargs)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def multi_label_default(self) -> bool:
        return self.runtime.problem_type == "multi_label_classification"

    def preprocess(self, raw: Any, options: ClassifyOptions) -> _Encoded:
        text = check_text(raw, max_chars=self.max_text_chars)
        room = self.runtime.max_content_tokens
        # Only the first ``room`` tokens are used: tokenizing a generous prefix first spares
        # megabyte texts a full pass; tokens near the cut may differ, so keep a margin past ``room``.
        prefix = text[: (room + 16) * 32]
        ids = self.runtime.encode_plain(prefix)
        if len(prefix) < len(text) and len(ids) <= room + 8:
            ids = self.runtime.encode_plain(text)
        return _Encoded(self.runtime.wrap(ids[:room]), len(ids) > room)

    def forward(self, batch: Sequence[_Encoded]) -> list[np.ndarray]:
        logits = self.runtime.sequence_logits([item.ids for item in batch], batch_size=self.batch_size)
        return list(logits)

    def postprocess(self, raw: np.ndarray, encoded: _Encoded, options: ClassifyOptions) -> ClassifyResult:
        multi = self.multi_label_default if options.multi_label is None else options.multi_label
        logits = raw.astype(np.float64)
        scores = _sigmoid(logits) if multi else _softmax(logits)
        order = np.argsort(-scores, kind="stable")
        if options.top_k is not None:
            order = order[: options.top_k]
        labels = tuple(Label(self._labels[i], float(scores[i])) for i in order)
        return ClassifyResult(labels, multi_label=multi, truncated=encoded.truncated)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "labels": list(self._labels), "multi_label": self.multi_label_default}
