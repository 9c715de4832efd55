"""fastai's AWD-LSTM (ULMFiT's own architecture): training for ``modeldeck.finetune()`` and ``classify`` inference.

A model folder holds ``model.safetensors`` (the classifier's weights), ``awd_lstm.json`` (the
architecture config, the vocabulary in id order, the labels and the problem type) and a
``modeldeck.json`` naming this runtime: no pickle. Text is tokenized by fastai's own rules
(spaCy words, ``xxbos``, ``xxmaj``, ``xxup``, ``xxrep``) and numericalized with the vocabulary.
fastai's classifier expects padding first and rows sorted longest first; both paths here do that.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, UnknownModelError
from .base import import_framework
from .training import GroupedTrainer, _write_json
from .transformers import model_memory_bytes, resolve_device

__all__ = ["CONFIG_FILE", "AwdLstmRuntime", "AwdLstmTrainer", "is_awd_lstm_base"]

CONFIG_FILE = "awd_lstm.json"
#: The architecture sizes a base folder's ``awd_lstm.json`` may set (fastai's defaults otherwise).
_ARCH_KEYS = ("emb_sz", "n_hid", "n_layers")
_PAD, _BOS, _UNK = 1, 2, 0  # fastai's special token ids: xxunk, xxpad, xxbos come first in every vocab
_MAX_LEN = 72 * 20  # fastai's classifier default: the last 1440 tokens reach the pooling


def _fastai(module: str) -> Any:
    return import_framework(module, package="fastai", extra="fastai", purpose="AWD-LSTM models")


def is_awd_lstm_base(base: str) -> bool:
    """``"awd-lstm"`` (fastai's default sizes, random weights) or a folder holding an ``awd_lstm.json``."""
    return base == "awd-lstm" or (Path(base).expanduser() / CONFIG_FILE).is_file()


def _arch_config(base: str) -> dict[str, Any]:
    if base == "awd-lstm":
        return {}
    data = json.loads((Path(base).expanduser() / CONFIG_FILE).read_text(encoding="utf-8"))
    return {k: int(data[k]) for k in _ARCH_KEYS if k in data}


class _Text:
    """fastai's word tokenizer and rules, then ids from a vocabulary."""

    def __init__(self, vocab: Sequence[str]) -> None:
        core = _fastai("fastai.text.core")
        self._tokenize1 = core.tokenize1
        self._words = core.WordTokenizer()
        self.vocab = list(vocab)
        self._ids = {token: i for i, token in enumerate(self.vocab)}

    @staticmethod
    def build_vocab(texts: Sequence[str], *, max_vocab: int = 60000) -> list[str]:
        core, data = _fastai("fastai.text.core"), _fastai("fastai.text.data")
        words = core.WordTokenizer()
        counts = Counter(token for text in texts for token in core.tokenize1(text, words))
        return list(data.make_vocab(counts, min_freq=1, max_vocab=max_vocab))

    def ids(self, text: str) -> list[int]:
        """``xxbos`` and the text's token ids (unknown words: ``xxunk``)."""
        return [self._ids.get(token, _UNK) for token in self._tokenize1(text, self._words)]


def _classifier(vocab_size: int, n_class: int, arch: Mapping[str, Any]) -> Any:
    core, awd = _fastai("fastai.text.models.core"), _fastai("fastai.text.models.awdlstm")
    config = {**awd.awd_lstm_clas_config, **arch}
    return core.get_text_classifier(awd.AWD_LSTM, vocab_size, n_class, config=config, max_len=_MAX_LEN)


def _left_padded(rows: Sequence[Sequence[int]], device: Any) -> tuple[Any, list[int]]:
    """Rows sorted longest first and padded at the start, as fastai's classifier reads them; and the order."""
    torch = _fastai("torch")
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), _PAD, dtype=torch.long)
    for j, i in enumerate(order):
        ids[j, width - len(rows[i]) :] = torch.as_tensor(list(rows[i]), dtype=torch.long)
    return ids.to(device), order


def _classifier_logits(model: Any, rows: Sequence[Sequence[int]], batch_size: int, n_class: int) -> np.ndarray:
    torch = _fastai("torch")
    out = np.zeros((len(rows), n_class), dtype=np.float32)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            chunk = list(range(start, min(start + batch_size, len(rows))))
            ids, order = _left_padded([rows[i] for i in chunk], device)
            model.reset()
            logits = model(ids)[0].float().cpu().numpy()
            for j, k in enumerate(order):
                out[chunk[k]] = logits[j]
    return out


class AwdLstmRuntime:
    """A fine-tuned AWD-LSTM classifier loaded for the ``classify`` task."""

    name = "awd-lstm"

    def __init__(self, model: Any, text: _Text, labels: Sequence[str], problem_type: str, device: str) -> None:
        self.model = model
        self.text = text
        self.labels = list(labels)
        self._problem_type = problem_type
        self.device = device

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> AwdLstmRuntime:
        folder = Path(path)
        if not (folder / CONFIG_FILE).is_file():
            raise UnknownModelError(
                f"no {CONFIG_FILE} in {str(folder)!r}", hint="is this a fine-tuned AWD-LSTM folder?"
            )
        from safetensors.torch import load_model

        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        model = _classifier(len(meta["vocab"]), len(meta["labels"]), meta["config"])
        torch_device = resolve_device(device)
        load_model(model, str(folder / "model.safetensors"), device=str(torch_device))
        model.to(torch_device).eval()
        return cls(model, _Text(meta["vocab"]), meta["labels"], meta["problem_type"], str(torch_device))

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def problem_type(self) -> str | None:
        return self._problem_type

    @property
    def max_content_tokens(self) -> int:
        return _MAX_LEN - 1

    def encode_plain(self, text: str) -> list[int]:
        return self.text.ids(text)[1:]  # without xxbos, which ``wrap`` puts back

    def wrap(self, ids: Sequence[int]) -> list[int]:
        return [_BOS, *ids]

    def sequence_logits(self, rows: Sequence[Sequence[int]], *, batch_size: int) -> np.ndarray:
        return _classifier_logits(self.model, rows, batch_size, len(self.labels))

    def memory_bytes(self) -> int:
        return model_memory_bytes(self.model)


class AwdLstmTrainer(GroupedTrainer):
    """AWD-LSTM under training: ``head="lm"`` (next-token language model) or ``"classify"``.

    Layer groups are fastai's own split (``awd_lstm_lm_split`` / ``awd_lstm_clas_split``): the
    embeddings, each LSTM layer, then the decoder or the pooling classifier.
    """

    name = "awd-lstm"

    def __init__(
        self,
        model: Any,
        groups: list[tuple[str, list[Any]]],
        text: _Text,
        arch: Mapping[str, Any],
        *,
        head: str,
        labels: Sequence[str],
        multi_label: bool,
        device: str,
        max_length: int,
    ) -> None:
        super().__init__(model, groups, device=device, max_length=max_length)
        self.text = text
        self.arch = dict(arch)
        self.head = head
        self.labels = list(labels)
        self.multi_label = multi_label

    @classmethod
    def load(
        cls,
        base: str,
        *,
        head: str,
        vocab: Sequence[str],
        labels: Sequence[str] = (),
        multi_label: bool = False,
        device: str = "cpu",
        max_length: int = 128,
        seed: int = 0,
    ) -> AwdLstmTrainer:
        torch = _fastai("torch")
        core, awd = _fastai("fastai.text.models.core"), _fastai("fastai.text.models.awdlstm")
        arch = _arch_config(base)
        torch.manual_seed(seed)
        if head == "lm":
            model = core.get_language_model(awd.AWD_LSTM, len(vocab), config={**awd.awd_lstm_lm_config, **arch})
            split = awd.awd_lstm_lm_split(model)
        elif head == "classify":
            model = _classifier(len(vocab), len(labels), arch)
            split = awd.awd_lstm_clas_split(model)
        else:
            raise ValueError(f"head must be 'lm' or 'classify', got {head!r}")
        names = ["embeddings", *(f"lstm {i}" for i in range(len(split) - 2)), "head"]
        groups = [(name, list(params)) for name, params in zip(names, split, strict=True)]
        model.to(resolve_device(device))
        return cls(
            model,
            groups,
            _Text(vocab),
            arch,
            head=head,
            labels=labels,
            multi_label=multi_label,
            device=str(resolve_device(device)),
            max_length=max_length,
        )

    build_vocab = staticmethod(_Text.build_vocab)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.text.ids(text)[: self.max_length] for text in texts]

    def train_step(self, rows: Sequence[Sequence[int]], labels: Sequence[Any] | None = None) -> float:
        torch = _fastai("torch")
        functional = torch.nn.functional
        self.model.train()
        self.model.reset()
        if self.head == "lm":
            # Next-token prediction on each row, padded at the end; padding is not a target.
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), _PAD, dtype=torch.long)
            for j, row in enumerate(rows):
                ids[j, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
            ids = ids.to(self.device)
            out = self.model(ids[:, :-1])[0]
            loss = functional.cross_entropy(out.reshape(-1, out.shape[-1]), ids[:, 1:].reshape(-1), ignore_index=_PAD)
        else:
            ids, order = _left_padded(rows, self.device)
            out = self.model(ids)[0]
            if self.multi_label:
                target = torch.tensor([list(labels or ())[i] for i in order], dtype=torch.float32, device=self.device)
                loss = functional.binary_cross_entropy_with_logits(out, target)
            else:
                target = torch.tensor([list(labels or ())[i] for i in order], dtype=torch.long, device=self.device)
                loss = functional.cross_entropy(out, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.optimizer.step()
        return float(loss.detach().cpu())

    def logits(self, rows: Sequence[Sequence[int]], *, batch_size: int = 64) -> np.ndarray:
        return _classifier_logits(self.model, rows, batch_size, len(self.labels))

    def _encoder(self) -> Any:
        # The LM is SequentialRNN(AWD_LSTM, decoder); the classifier SequentialRNN(SentenceEncoder(AWD_LSTM), head).
        return self.model[0] if self.head == "lm" else self.model[0].module

    def save_encoder(self, path: Path) -> None:
        from safetensors.torch import save_model

        save_model(self._encoder(), str(path))

    def load_encoder(self, path: Path) -> None:
        from safetensors.torch import load_model

        missing, unexpected = load_model(self._encoder(), str(path), strict=False, device=self.device)
        if missing or unexpected:
            raise ConfigError(f"the stage-1 encoder in {str(path)!r} does not fit the classifier")

    def export(self, folder: Path) -> None:
        from safetensors.torch import save_model

        folder.mkdir(parents=True, exist_ok=True)
        save_model(self.model, str(folder / "model.safetensors"))
        problem = "multi_label_classification" if self.multi_label else "single_label_classification"
        meta = {"config": self.arch, "vocab": self.text.vocab, "labels": self.labels, "problem_type": problem}
        _write_json(meta, folder / CONFIG_FILE)
        _write_json({"runtime": "awd-lstm", "tasks": ["classify"]}, folder / "modeldeck.json")
