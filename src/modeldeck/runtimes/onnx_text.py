"""ONNX text models that ``modeldeck.optimize`` exported: a ``tokenizers`` tokenizer plus an ONNX Runtime session.

No torch and no transformers: the tokenizer is the original's own fast tokenizer, saved as
``tokenizer.json`` and read back with the ``tokenizers`` package, padded and truncated the way
the original calls it, so the ids the graph sees are the ids the original model saw.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InferenceError, UnknownModelError
from ..types import OnnxSessionOptions
from .base import import_framework
from .onnx import OnnxRuntime
from .onnx_export import OnnxExportConfig, read_export_config
from .transformers import QAWindows, TokenizedText

__all__ = ["OnnxHeadRuntime", "OnnxSentenceEncoder", "OnnxTextRuntime"]


class OnnxTextRuntime:
    """The tokenizer side every exported text graph shares, and the padded runs of its graph."""

    name = "onnxruntime"

    def __init__(self, session: OnnxRuntime, tokenizer: Any, config: OnnxExportConfig) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.config = config
        self.device = session.device
        with_special = tokenizer.encode("a", add_special_tokens=True).ids
        plain = tokenizer.encode("a", add_special_tokens=False).ids
        self._prefix: list[int] = []
        self._suffix: list[int] = []
        for i in range(len(with_special) - len(plain) + 1):
            if with_special[i : i + len(plain)] == plain:
                self._prefix, self._suffix = with_special[:i], with_special[i + len(plain) :]
                break

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", session: OnnxSessionOptions | None = None) -> Any:
        folder = Path(path)
        if not (folder / "model.onnx").is_file() or not (folder / "tokenizer.json").is_file():
            raise UnknownModelError(
                f"{str(folder)!r} must hold model.onnx and tokenizer.json", hint="export it with `modeldeck optimize`"
            )
        config = read_export_config(folder)
        tokenizers = import_framework("tokenizers", package="tokenizers", extra="onnx", purpose="ONNX text models")
        tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The stored JSON carries the padding and truncation of the call that saved it; each call here sets its own.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return cls(OnnxRuntime.load(folder / "model.onnx", device=device, session=session), tokenizer, config)

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens

    @property
    def max_content_tokens(self) -> int:
        return self.config.max_tokens - len(self._prefix) - len(self._suffix)

    def tokenize(self, text: str) -> TokenizedText:
        """The whole text without special tokens, never truncated, with char offsets into ``text``."""
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        return TokenizedText(
            ids=np.asarray(enc.ids, dtype=np.int64),
            offsets=np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2),
            word_ids=np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64),
        )

    def wrap(self, ids: Sequence[int]) -> list[int]:
        return [*self._prefix, *ids, *self._suffix]

    def batches(
        self, rows: Sequence[Sequence[int]], type_rows: Sequence[Sequence[int]] | None, batch_size: int
    ) -> Iterator[tuple[list[int], list[np.ndarray]]]:
        """Length-sorted mini-batches of id rows, padded: ``(row indices, graph outputs)``."""
        limit = self.max_tokens
        if any(len(r) > limit for r in rows):
            raise InferenceError(f"an input is longer than the model's {limit} tokens")
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for start in range(0, len(order), batch_size):
            group = order[start : start + batch_size]
            width = max(len(rows[i]) for i in group)
            ids = np.full((len(group), width), self.config.pad_id, dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            types = np.zeros((len(group), width), dtype=np.int64)
            for j, i in enumerate(group):
                n = len(rows[i])
                ids[j, :n] = rows[i]
                mask[j, :n] = 1
                if type_rows is not None:
                    types[j, :n] = type_rows[i]
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            yield group, self.session.run({name: feeds[name] for name in self.config.inputs})

    def session_options(self) -> dict[str, Any]:
        return self.session.session_options()

    def memory_bytes(self) -> int | None:
        return self.session.memory_bytes()

    def close(self) -> None:
        self.session.close()


class OnnxSentenceEncoder(OnnxTextRuntime):
    """A sentence-transformers model exported whole: the graph ends in the model's own pooling and normalisation."""

    @classmethod
    def load(
        cls, path: str | Path, *, device: str = "cpu", session: OnnxSessionOptions | None = None
    ) -> OnnxSentenceEncoder:
        runtime = super().load(path, device=device, session=session)
        if runtime.config.family != "sentence-transformers":
            raise UnknownModelError(
                f"{str(path)!r} is an ONNX {runtime.config.family} model, not a sentence embedder",
                hint="load it with the task it was exported for",
            )
        return runtime  # type: ignore[no-any-return]

    @property
    def dim(self) -> int:
        return int(self.config.dim or self.session.outputs[0].shape[-1] or 0)

    def encode(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
        """float32 ``(len(texts), dim)``; texts are truncated to the model's window as ``encode`` does."""
        room = self.max_content_tokens
        rows = [self.wrap(enc.ids[:room]) for enc in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        for group, (vectors,) in self.batches(rows, None, batch_size):
            out[group] = vectors
        return out


class OnnxHeadRuntime(OnnxTextRuntime):
    """A transformers head (sequence / token classification, extractive QA) exported to one graph of logits.

    It answers what ``TransformersRuntime`` answers for the same tasks, with the same tokenization,
    windows and padding, so ``ClassifyTask``, ``NERTask`` and ``QATask`` drive either unchanged.
    """

    def __init__(self, session: OnnxRuntime, tokenizer: Any, config: OnnxExportConfig) -> None:
        super().__init__(session, tokenizer, config)
        # QA windows set truncation on the shared tokenizer for one call: calls from several threads take turns.
        self._lock = threading.Lock()

    @classmethod
    def load_head(
        cls, path: str | Path, family: str, *, device: str = "cpu", session: OnnxSessionOptions | None = None
    ) -> OnnxHeadRuntime:
        """Load ``path`` and check that it is an export of the ``family`` head the caller's task drives."""
        runtime: OnnxHeadRuntime = cls.load(path, device=device, session=session)
        if runtime.config.family != family:
            raise UnknownModelError(
                f"{str(path)!r} is an ONNX {runtime.config.family} model, not {family}",
                hint="load it with the task it was exported for",
            )
        return runtime

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): v for k, v in self.config.labels.items()}

    @property
    def problem_type(self) -> str | None:
        return self.config.problem_type

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def encode_plain(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def pair_special_tokens(self) -> int:
        return int(self.tokenizer.num_special_tokens_to_add(is_pair=True))

    def sequence_logits(self, rows: Sequence[Sequence[int]], *, batch_size: int) -> np.ndarray:
        out = np.zeros((len(rows), len(self.config.labels)), dtype=np.float32)
        for group, (logits,) in self.batches(rows, None, batch_size):
            out[group] = logits
        return out

    def token_probabilities(self, windows: Sequence[np.ndarray], *, batch_size: int) -> list[np.ndarray]:
        """Softmax over labels for each window's text tokens (special tokens added here, as the original does)."""
        limit = self.max_content_tokens
        if any(len(w) > limit for w in windows):
            raise InferenceError(f"a window is longer than the model's {limit} text tokens")
        out: list[np.ndarray] = [np.empty((0, 0), np.float32)] * len(windows)
        head = len(self._prefix)
        rows = [self.wrap(w.tolist()) for w in windows]
        for group, (logits,) in self.batches(rows, None, batch_size):
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs = (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)
            for j, i in enumerate(group):
                out[i] = probs[j, head : head + len(windows[i])]
        return out

    def span_logits(
        self, rows: Sequence[Sequence[int]], type_rows: Sequence[Sequence[int]] | None, *, batch_size: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        out: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0, np.float32), np.empty(0, np.float32))] * len(rows)
        for group, (starts, ends) in self.batches(rows, type_rows, batch_size):
            for j, i in enumerate(group):
                n = len(rows[i])
                out[i] = (starts[j, :n].copy(), ends[j, :n].copy())
        return out

    def encode_qa(self, question: str, context: str, *, max_len: int, stride: int) -> QAWindows:
        """The windows ``TransformersRuntime.encode_qa`` makes: the first encoding and its overflow, in order."""
        first, second = (question, context) if self.config.question_first else (context, question)
        with self._lock:
            self.tokenizer.enable_truncation(
                max_len, stride=stride, strategy="only_second" if self.config.question_first else "only_first"
            )
            try:
                enc = self.tokenizer.encode(first, second)
            finally:
                self.tokenizer.no_truncation()
        context_seq = 1 if self.config.question_first else 0
        ids, types, offsets, masks, words, cls_index = [], [], [], [], [], []
        for window in [enc, *enc.overflowing]:
            row = np.asarray(window.ids, dtype=np.int64)
            ids.append(row)
            types.append(np.asarray(window.type_ids, dtype=np.int64))
            offsets.append(np.asarray(window.offsets, dtype=np.int64).reshape(-1, 2))
            masks.append(np.asarray([s == context_seq for s in window.sequence_ids], dtype=bool))
            words.append(np.asarray([-1 if w is None else w for w in window.word_ids], dtype=np.int64))
            hits = np.flatnonzero(row == self.config.cls_id) if self.config.cls_id is not None else np.empty(0)
            cls_index.append(int(hits[0]) if len(hits) else 0)
        return QAWindows(
            ids=tuple(ids),
            type_ids=tuple(types) if "token_type_ids" in self.config.inputs else None,
            offsets=tuple(offsets),
            context_mask=tuple(masks),
            word_ids=tuple(words),
            cls_index=tuple(cls_index),
        )
