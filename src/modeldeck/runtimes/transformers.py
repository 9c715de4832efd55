"""Hugging Face transformers adapter: a tokenizer and a model head loaded from a local folder.

Heads: token classification and extractive QA (both need a fast tokenizer for char offsets),
sequence classification, and sequence-to-sequence generation (Marian, M2M100, NLLB, ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DependencyError, InferenceError, UnknownModelError, UnknownNameError
from .base import import_framework

if TYPE_CHECKING:
    import torch

__all__ = [
    "QAWindows",
    "TokenizedText",
    "TransformersRuntime",
    "model_memory_bytes",
    "resolve_device",
    "tokenize_with_offsets",
]

_HEADS = {
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "sequence-classification": "AutoModelForSequenceClassification",
    "seq2seq": "AutoModelForSeq2SeqLM",
}
# Heads whose results carry char offsets into the caller's text: they need a fast tokenizer.
_NEEDS_OFFSETS = frozenset({"token-classification", "question-answering"})

# Position embeddings of these families reserve the first ``pad_token_id + 1`` positions.
_PADDED_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "luke", "mpnet"})


@dataclass(frozen=True, slots=True)
class TokenizedText:
    """A text tokenized without special tokens: ids, ``(start, end)`` char offsets, word index or -1."""

    ids: np.ndarray
    offsets: np.ndarray
    word_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class QAWindows:
    """A question and its context cut into overlapping model windows (special tokens included).

    Per window: token ids, token type ids (or None when the model takes none), ``(start, end)``
    char offsets into the context, which tokens belong to the context, the index of each token's
    word in its text (-1 for special tokens; the same numbering in every window), and the
    ``[CLS]`` index.
    """

    ids: tuple[np.ndarray, ...]
    type_ids: tuple[np.ndarray, ...] | None
    offsets: tuple[np.ndarray, ...]
    context_mask: tuple[np.ndarray, ...]
    word_ids: tuple[np.ndarray, ...]
    cls_index: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


def tokenize_with_offsets(tokenizer: Any, text: str) -> TokenizedText:
    """Tokenize the whole text, never truncating, with offsets into ``text`` itself."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; char offsets need one",
            hint="save the model with a tokenizer.json (a 'fast' tokenizer)",
        )
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids()], dtype=np.int64)
    return TokenizedText(ids=ids, offsets=offsets, word_ids=word_ids)


def resolve_device(device: str) -> torch.device:
    """``torch.device(device)``, refused here (not deep in a ``.to()``) when this machine lacks it."""
    torch = import_framework("torch", package="torch", extra="torch")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"invalid torch device {device!r}", hint="use 'cpu', 'cuda', 'cuda:1' or 'mps'") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", built without CUDA")
            raise ConfigError(
                f"device {device!r} was asked for, but this machine has no usable CUDA device ({build})",
                hint="load the model with device='cpu', or install a CUDA build of torch on a machine with a GPU",
            )
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(
                f"device {device!r} was asked for, but this machine has {count} CUDA device(s)",
                hint=f"use one of cuda:0..cuda:{count - 1}",
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device {device!r} was asked for, but MPS (Apple GPU) is not available here",
            hint="load the model with device='cpu'",
        )
    return resolved


@contextmanager
def quiet_loading(transformers: ModuleType) -> Iterator[None]:
    """No "Loading weights" progress bars while a local model loads: they are noise in a CLI's output
    (even with --json) and in server logs. The library's own switch is flipped back afterwards."""
    logging = transformers.utils.logging
    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def model_memory_bytes(module: Any) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sequence (``[CLS]`` / ``[SEP]`` for BERT)."""
    with_special = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i : i + len(plain)] == plain:
            return with_special[:i], with_special[i + len(plain) :]
    return [], []


def _load_tokenizer(transformers: Any, path: Path) -> Any:
    try:
        return transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (ImportError, ValueError) as exc:
        # Marian and M2M100 checkpoints ship SentencePiece models that only the slow tokenizers read.
        if "sentencepiece" in str(exc).lower():
            raise DependencyError("sentencepiece", purpose=f"the tokenizer of {path.name!r}") from exc
        raise


_UNSET_TOKENIZER_LIMIT = 1_000_000
_FALLBACK_TOKENS = 512


class TransformersRuntime:
    """A fast tokenizer plus a model head, in eval mode, run under ``torch.inference_mode``."""

    name = "transformers"

    def __init__(self, tokenizer: Any, model: Any, *, device: str = "cpu") -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self._prefix, self._suffix = _special_tokens(tokenizer)
        pad = tokenizer.pad_token_id
        self._pad_id = 0 if pad is None else int(pad)

    @classmethod
    def load(cls, path: str | Path, *, head: str = "token-classification", device: str = "cpu") -> TransformersRuntime:
        if head not in _HEADS:
            raise UnknownNameError("transformers head", head, _HEADS)
        path = Path(path)
        if not path.is_dir():
            raise UnknownModelError(f"no model folder at {str(path)!r}", hint="pull the model or fix its path")
        transformers = import_framework("transformers", package="transformers", extra="torch")
        torch_device = resolve_device(device)
        with quiet_loading(transformers):
            tokenizer = _load_tokenizer(transformers, path)
            model = getattr(transformers, _HEADS[head]).from_pretrained(path, local_files_only=True)
        model.to(torch_device).eval()
        runtime = cls(tokenizer, model, device=str(torch_device))
        if head in _NEEDS_OFFSETS:
            tokenize_with_offsets(tokenizer, "check")  # fail at load time, not on the first request
        return runtime

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.model.config.id2label.items()}

    @property
    def max_tokens(self) -> int:
        """Longest input the model takes, special tokens included."""
        return self.token_limit[0]

    @property
    def token_limit(self) -> tuple[int, str]:
        """``max_tokens`` and where it comes from (shown in the model's description)."""
        config = self.model.config
        limits: list[tuple[int, str]] = []
        declared = getattr(self.tokenizer, "model_max_length", None)
        # transformers writes int(1e30) when a tokenizer declares no limit: that is "unset", not a limit.
        if isinstance(declared, int) and 0 < declared < _UNSET_TOKENIZER_LIMIT:
            limits.append((declared, "the tokenizer's model_max_length"))
        positions = getattr(config, "max_position_embeddings", None)
        if positions:
            if getattr(config, "model_type", "") in _PADDED_POSITIONS:
                positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
            limits.append((int(positions), "the config's max_position_embeddings"))
        if not limits:
            # Relative-position models (T5 and its kin) have no table of positions to overflow; 512 is
            # the length they were trained at, so longer inputs are split rather than degraded.
            return _FALLBACK_TOKENS, (
                f"a fallback of {_FALLBACK_TOKENS}: neither the tokenizer (model_max_length) nor the config "
                "(max_position_embeddings) sets a limit"
            )
        return min(limits)

    @property
    def max_content_tokens(self) -> int:
        """Longest run of text tokens one window holds, after the special tokens."""
        return self.max_tokens - len(self._prefix) - len(self._suffix)

    def tokenize(self, text: str) -> TokenizedText:
        return tokenize_with_offsets(self.tokenizer, text)

    def token_probabilities(self, windows: Sequence[np.ndarray], *, batch_size: int) -> list[np.ndarray]:
        """Softmax over labels for each window's text tokens: one ``(len(window), labels)`` array each."""
        torch = import_framework("torch", package="torch", extra="torch")
        limit = self.max_content_tokens
        if any(len(w) > limit for w in windows):
            raise InferenceError(f"a window is longer than the model's {limit} text tokens")
        out: list[np.ndarray] = [np.empty((0, 0), np.float32)] * len(windows)
        # Sorting by length keeps padding small within each mini-batch.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        head = len(self._prefix)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                group = order[start : start + batch_size]
                rows = [[*self._prefix, *windows[i].tolist(), *self._suffix] for i in group]
                width = max(len(r) for r in rows)
                ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for j, row in enumerate(rows):
                    ids[j, : len(row)] = torch.tensor(row, dtype=torch.long)
                    mask[j, : len(row)] = 1
                logits = self.model(
                    input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device)
                ).logits
                probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
                for j, i in enumerate(group):
                    out[i] = probs[j, head : head + len(windows[i])]
        return out

    @property
    def problem_type(self) -> str | None:
        return getattr(self.model.config, "problem_type", None)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone, without special tokens."""
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode_plain(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens; ``wrap`` adds the model's own around a slice."""
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def wrap(self, ids: Sequence[int]) -> list[int]:
        return [*self._prefix, *ids, *self._suffix]

    def pair_special_tokens(self) -> int:
        return int(self.tokenizer.num_special_tokens_to_add(pair=True))

    def _takes_type_ids(self) -> bool:
        return "token_type_ids" in getattr(self.tokenizer, "model_input_names", ())

    def encode_qa(self, question: str, context: str, *, max_len: int, stride: int) -> QAWindows:
        """Question and context as overlapping windows of at most ``max_len`` tokens, ``stride`` shared.

        The question goes first unless the tokenizer pads on the left (XLNet style), as the
        models were trained; only the context is ever cut.
        """
        tok = self.tokenizer
        question_first = getattr(tok, "padding_side", "right") == "right"
        first, second = (question, context) if question_first else (context, question)
        enc = tok(
            first,
            second,
            truncation="only_second" if question_first else "only_first",
            max_length=max_len,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_token_type_ids=self._takes_type_ids(),
            padding=False,
            verbose=False,
        )
        context_seq = 1 if question_first else 0
        cls_id = tok.cls_token_id
        ids, types, offsets, masks, words, cls_index = [], [], [], [], [], []
        for w in range(len(enc["input_ids"])):
            row = np.asarray(enc["input_ids"][w], dtype=np.int64)
            ids.append(row)
            if "token_type_ids" in enc:
                types.append(np.asarray(enc["token_type_ids"][w], dtype=np.int64))
            offsets.append(np.asarray(enc["offset_mapping"][w], dtype=np.int64).reshape(-1, 2))
            masks.append(np.asarray([s == context_seq for s in enc.sequence_ids(w)], dtype=bool))
            words.append(np.asarray([-1 if i is None else i for i in enc.word_ids(w)], dtype=np.int64))
            hits = np.flatnonzero(row == cls_id) if cls_id is not None else np.empty(0, np.int64)
            cls_index.append(int(hits[0]) if len(hits) else 0)
        return QAWindows(
            ids=tuple(ids),
            type_ids=tuple(types) if types else None,
            offsets=tuple(offsets),
            context_mask=tuple(masks),
            word_ids=tuple(words),
            cls_index=tuple(cls_index),
        )

    def _padded(
        self, rows: Sequence[Sequence[int]], type_rows: Sequence[Sequence[int]] | None, batch_size: int
    ) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """Mini-batches of rows, sorted by length so padding stays small: ``(row indices, model kwargs)``."""
        torch = import_framework("torch", package="torch", extra="torch")
        limit = self.max_tokens
        if any(len(r) > limit for r in rows):
            raise InferenceError(f"an input is longer than the model's {limit} tokens")
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        device = self.model.device
        for start in range(0, len(order), batch_size):
            group = order[start : start + batch_size]
            width = max(len(rows[i]) for i in group)
            ids = torch.full((len(group), width), self._pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            types = torch.zeros((len(group), width), dtype=torch.long) if type_rows is not None else None
            for j, i in enumerate(group):
                n = len(rows[i])
                ids[j, :n] = torch.as_tensor(np.asarray(rows[i], dtype=np.int64))
                mask[j, :n] = 1
                if types is not None and type_rows is not None:
                    types[j, :n] = torch.as_tensor(np.asarray(type_rows[i], dtype=np.int64))
            kwargs: dict[str, Any] = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
            if types is not None:
                kwargs["token_type_ids"] = types.to(device)
            yield group, kwargs

    def span_logits(
        self, rows: Sequence[Sequence[int]], type_rows: Sequence[Sequence[int]] | None, *, batch_size: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Start and end logits (float32, one per token) of a QA head for each row."""
        torch = import_framework("torch", package="torch", extra="torch")
        out: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0, np.float32), np.empty(0, np.float32))] * len(rows)
        with torch.inference_mode():
            for group, kwargs in self._padded(rows, type_rows, batch_size):
                result = self.model(**kwargs)
                starts = result.start_logits.float().cpu().numpy()
                ends = result.end_logits.float().cpu().numpy()
                for j, i in enumerate(group):
                    n = len(rows[i])
                    out[i] = (starts[j, :n].copy(), ends[j, :n].copy())
        return out

    def sequence_logits(self, rows: Sequence[Sequence[int]], *, batch_size: int) -> np.ndarray:
        """Logits of a sequence-classification head: ``(len(rows), labels)`` float32."""
        torch = import_framework("torch", package="torch", extra="torch")
        out = np.zeros((len(rows), len(self.id2label)), dtype=np.float32)
        with torch.inference_mode():
            for group, kwargs in self._padded(rows, None, batch_size):
                logits = self.model(**kwargs).logits.float().cpu().numpy()
                out[group] = logits
        return out

    def generate(
        self,
        texts: Sequence[str],
        *,
        batch_size: int,
        num_beams: int | None = None,
        max_new_tokens: int | None = None,
        forced_bos_token_id: int | None = None,
        src_lang: str | None = None,
    ) -> list[str]:
        """Greedy or beam-search generation for each text, decoded without special tokens, in order.

        Texts are run in length-sorted mini-batches; ``max_new_tokens=None`` allows twice the
        longest input of a batch plus 16 tokens; either way at most the model's window.
        """
        torch = import_framework("torch", package="torch", extra="torch")
        tok = self.tokenizer
        if src_lang is not None:
            tok.src_lang = src_lang  # multilingual tokenizers put the source language token in the input
        lengths = [len(tok(t, verbose=False)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        out = [""] * len(texts)
        kwargs: dict[str, Any] = {"do_sample": False}
        if num_beams is not None:
            kwargs["num_beams"] = num_beams
        if forced_bos_token_id is not None:
            kwargs["forced_bos_token_id"] = forced_bos_token_id
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                group = order[start : start + batch_size]
                enc = tok(
                    [texts[i] for i in group],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                    verbose=False,
                ).to(self.model.device)
                # Decoder positions are bounded like the encoder's (Marian's sinusoidal table has max_tokens rows).
                wanted = 2 * int(enc["input_ids"].shape[1]) + 16 if max_new_tokens is None else max_new_tokens
                new = min(wanted, self.max_tokens - 1)
                # The decoder starts from one start token, so this is ``max_new_tokens=new``; said as
                # ``max_length`` it does not warn about the max_length in most models' generation config.
                generated = self.model.generate(**enc, max_length=new + 1, **kwargs)
                decoded = tok.batch_decode(generated, skip_special_tokens=True)
                for i, text in zip(group, decoded, strict=True):
                    out[i] = text.strip()
        return out

    def generation_default(self, name: str) -> Any:
        """A value of the model's generation config (``num_beams``, ``max_length``), or None."""
        config = getattr(self.model, "generation_config", None)
        return None if config is None else getattr(config, name, None)

    def memory_bytes(self) -> int | None:
        return model_memory_bytes(self.model)
