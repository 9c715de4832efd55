"""Hugging Face transformers adapter: a fast tokenizer and a model head loaded from a local folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, InferenceError, UnknownModelError, UnknownNameError
from .base import import_framework

if TYPE_CHECKING:
    import torch

__all__ = ["TokenizedText", "TransformersRuntime", "model_memory_bytes", "resolve_device", "tokenize_with_offsets"]

_HEADS = {"token-classification": "AutoModelForTokenClassification"}

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
    torch = import_framework("torch", package="torch", extra="torch")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"invalid torch device {device!r}", hint="use 'cpu', 'cuda', 'cuda:1' or 'mps'") from None


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
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = getattr(transformers, _HEADS[head]).from_pretrained(path, local_files_only=True)
        model.to(torch_device).eval()
        runtime = cls(tokenizer, model, device=str(torch_device))
        tokenize_with_offsets(tokenizer, "check")  # fail at load time, not on the first request
        return runtime

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.model.config.id2label.items()}

    @property
    def max_tokens(self) -> int:
        """Longest input the model takes, special tokens included."""
        config = self.model.config
        limits = [int(self.tokenizer.model_max_length)]
        positions = getattr(config, "max_position_embeddings", None)
        if positions:
            if getattr(config, "model_type", "") in _PADDED_POSITIONS:
                positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
            limits.append(int(positions))
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

    def memory_bytes(self) -> int | None:
        return model_memory_bytes(self.model)
