"""Torch training for ``modeldeck.finetune()``: a BERT-family encoder with a classification or masked-LM head.

The recipe (``finetuning/_recipe.py``) decides rates, which layer groups train and when to stop; this
module only does what needs torch: build the model from a base folder, split it into layer groups
from its architecture (embeddings, each transformer block, head), take optimizer steps, score
texts, and save and restore state as safetensors plus JSON (no pickle anywhere).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from .base import import_framework
from .transformers import model_memory_bytes, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["EncoderTrainer", "layer_groups"]


def _torch() -> Any:
    return import_framework("torch", package="torch", extra="torch", purpose="fine-tuning")


def _transformers() -> Any:
    return import_framework("transformers", package="transformers", extra="torch", purpose="fine-tuning")


def layer_groups(model: Any) -> list[tuple[str, list[torch.nn.Parameter]]]:
    """``(name, parameters)`` bottom first: embeddings, each transformer block, then the head (the rest).

    Works for any Hugging Face encoder whose base model has ``embeddings`` and ``encoder.layer``
    (BERT, RoBERTa, DistilBERT's ``transformer.layer``, ELECTRA, MiniLM, ...).
    """
    base = model.base_model
    blocks = None
    for owner, attr in (("encoder", "layer"), ("transformer", "layer")):
        holder = getattr(base, owner, None)
        if holder is not None and hasattr(holder, attr):
            blocks = list(getattr(holder, attr))
            break
    embeddings = getattr(base, "embeddings", None)
    if blocks is None or embeddings is None:
        raise ConfigError(
            f"cannot split a {type(model).__name__} into layer groups (no embeddings / encoder blocks found)",
            hint="fine-tune a BERT-family encoder (BERT, RoBERTa, DistilBERT, MiniLM, ELECTRA)",
        )
    groups: list[tuple[str, list[Any]]] = [("embeddings", list(embeddings.parameters()))]
    groups += [(f"block {i}", list(block.parameters())) for i, block in enumerate(blocks)]
    seen = {id(p) for _, params in groups for p in params}
    groups.append(("head", [p for p in model.parameters() if id(p) not in seen]))
    return groups


def _save_tensors(tensors: dict[str, Any], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write safetensors atomically: a killed run leaves the previous file whole."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _write_json(data: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


class GroupedTrainer:
    """What every trainer shares: a model split into layer groups, one AdamW param group per layer group.

    Subclasses build the model and its groups, and implement ``encode``, ``train_step``,
    ``logits``, ``save_encoder`` / ``load_encoder`` and ``export`` for their family.
    """

    name = "training"

    def __init__(self, model: Any, groups: list[tuple[str, list[Any]]], *, device: str, max_length: int) -> None:
        self.model = model
        self.device = device
        self.max_length = max_length
        self.groups = groups
        torch = _torch()
        # The fused kernel (one pass over all parameters per step) is what Hugging Face's Trainer uses
        # by default on torch >= 2.8; it runs on CPU and CUDA.
        self.optimizer = torch.optim.AdamW(
            [{"params": params, "lr": 0.0, "name": name} for name, params in self.groups],
            lr=0.0,
            weight_decay=0.01,
            fused=True,
        )

    # -- groups and rates ------------------------------------------------------------------

    @property
    def group_names(self) -> list[str]:
        return [name for name, _ in self.groups]

    def set_trainable(self, top: int) -> None:
        """Train only the ``top`` highest layer groups; the others are frozen (no gradient, no update)."""
        n = len(self.groups)
        for i, (_, params) in enumerate(self.groups):
            for p in params:
                p.requires_grad_(i >= n - top)

    def trainable(self) -> list[bool]:
        return [all(p.requires_grad for p in params) for _, params in self.groups]

    def set_rates(self, rates: Sequence[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = lr

    def rates(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    # -- steps ---

    def seed(self, seed: int) -> None:
        """Reseed torch (dropout, masking): the recipe does it at every epoch so a resumed run matches."""
        _torch().manual_seed(seed)

    # -- state -----------------------------------------------------------------------------

    def save_weights(self, path: Path) -> None:
        from safetensors.torch import save_model

        tmp = path.with_name(path.name + ".tmp")
        save_model(self.model, str(tmp))  # handles the MLM decoder tied to the word embeddings
        os.replace(tmp, path)

    def load_weights(self, path: Path) -> None:
        from safetensors.torch import load_model

        load_model(self.model, str(path), device=self.device)

    def save_optimizer(self, path: Path) -> None:
        """Adam's moments and step counts as safetensors; the group hyper-parameters as JSON beside it."""
        state = self.optimizer.state_dict()
        tensors = {f"{index}.{key}": value for index, slots in state["state"].items() for key, value in slots.items()}
        _save_tensors(tensors, path)
        _write_json(state["param_groups"], path.with_suffix(".json"))

    def load_optimizer(self, path: Path) -> None:
        from safetensors.torch import load_file

        tensors = load_file(str(path), device=self.device)
        slots: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            index, _, slot = key.partition(".")
            slots.setdefault(int(index), {})[slot] = value.cpu() if slot == "step" else value
        groups = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        self.optimizer.load_state_dict({"state": slots, "param_groups": groups})

    def memory_bytes(self) -> int:
        return model_memory_bytes(self.model)


class EncoderTrainer(GroupedTrainer):
    """One model under training: ``head="classify"`` (sequence classification), ``"token"`` (token
    classification, for NER) or ``"mlm"`` (masked LM).

    The classifiers are Hugging Face ``*ForSequenceClassification`` / ``*ForTokenClassification``
    models with ``id2label``, so the folder ``export`` writes is what the ``classify`` / ``ner``
    task's transformers backend loads unchanged.
    """

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, device: str, max_length: int, head: str = "classify") -> None:
        super().__init__(model, layer_groups(model), device=device, max_length=max_length)
        self.tokenizer = tokenizer
        self.head = head
        self._mlm_collator: Any = None

    @classmethod
    def load(
        cls,
        base: str | Path,
        *,
        head: str,
        labels: Sequence[str] = (),
        multi_label: bool = False,
        device: str = "cpu",
        max_length: int = 128,
        seed: int = 0,
        dropout: float | None = None,
    ) -> EncoderTrainer:
        torch, transformers = _torch(), _transformers()
        path = Path(base)
        torch_device = resolve_device(device)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        if dropout is not None and hasattr(config, "hidden_dropout_prob"):
            config.hidden_dropout_prob = dropout
        torch.manual_seed(seed)  # the new head's initial weights
        logging = transformers.utils.logging
        verbosity = logging.get_verbosity()
        logging.set_verbosity_error()  # "newly initialized weights": expected, the head is what we train
        try:
            if head == "classify":
                config.num_labels = len(labels)
                config.id2label = dict(enumerate(labels))
                config.label2id = {label: i for i, label in enumerate(labels)}
                config.problem_type = "multi_label_classification" if multi_label else "single_label_classification"
                model = transformers.AutoModelForSequenceClassification.from_pretrained(
                    path, config=config, local_files_only=True
                )
            elif head == "token":  # labels are the BIO tags, "O" first
                config.num_labels = len(labels)
                config.id2label = dict(enumerate(labels))
                config.label2id = {label: i for i, label in enumerate(labels)}
                model = transformers.AutoModelForTokenClassification.from_pretrained(
                    path, config=config, local_files_only=True
                )
            elif head == "mlm":
                model = transformers.AutoModelForMaskedLM.from_pretrained(path, config=config, local_files_only=True)
            else:
                raise ValueError(f"head must be 'classify', 'token' or 'mlm', got {head!r}")
        finally:
            logging.set_verbosity(verbosity)
        if head == "token" and not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"{type(tokenizer).__name__} of {str(path)!r} is not a fast tokenizer; NER needs its char offsets",
                hint="use a base with a tokenizer.json (every BERT-family model on the Hub has one)",
            )
        model.to(torch_device)
        trainer = cls(model, tokenizer, device=str(torch_device), max_length=max_length, head=head)
        if head == "mlm":
            trainer._mlm_collator = transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
        return trainer

    # -- data ------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with the model's special tokens, cut to ``max_length``; done once per data set."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, verbose=False)
        return [list(ids) for ids in enc["input_ids"]]

    def encode_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
        """``(ids, char offsets, word ids)`` per text, special tokens included (offsets ``(0, 0)``, word -1)."""
        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, return_offsets_mapping=True, verbose=False
        )
        return [
            (
                list(ids),
                np.asarray(enc["offset_mapping"][i], dtype=np.int64).reshape(-1, 2),
                np.asarray([-1 if w is None else w for w in enc.word_ids(i)], dtype=np.int64),
            )
            for i, ids in enumerate(enc["input_ids"])
        ]

    def _batch(self, rows: Sequence[Sequence[int]]) -> dict[str, Any]:
        """Rows padded to the longest in the batch (dynamic padding), as torch tensors on the device.

        The rows may be lists or read-only numpy views of the on-disk token cache; padding happens in
        numpy, then one ``from_numpy`` per tensor (no per-row tensor).
        """
        torch = _torch()
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = np.full((len(rows), width), pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for j, row in enumerate(rows):
            ids[j, : len(row)] = row
            mask[j, : len(row)] = 1
        return {
            "input_ids": torch.from_numpy(ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }

    @property
    def multi_label(self) -> bool:
        return getattr(self.model.config, "problem_type", None) == "multi_label_classification"

    def train_step(self, rows: Sequence[Sequence[int]], labels: Sequence[Any] | None = None) -> float:
        """One optimizer step on a mini-batch; the loss before the step.

        ``labels``: class indices, multi-hot rows for a multi-label classifier (binary cross-entropy),
        or for a token classifier one tag id per token (``-100``: no loss, as for special tokens).
        """
        torch = _torch()
        self.model.train()
        if self._mlm_collator is not None:
            batch = self._mlm_collator([{"input_ids": np.asarray(r).tolist()} for r in rows])
            kwargs = {k: v.to(self.device) for k, v in batch.items()}
        elif self.head == "token":
            kwargs = self._batch(rows)
            tags = np.full(tuple(kwargs["input_ids"].shape), -100, dtype=np.int64)
            for j, row in enumerate(labels or ()):
                tags[j, : len(row)] = row
            kwargs["labels"] = torch.from_numpy(tags).to(self.device)
        else:
            kwargs = self._batch(rows)
            dtype = torch.float32 if self.multi_label else torch.long
            kwargs["labels"] = torch.tensor(list(labels or ()), dtype=dtype, device=self.device)
        loss = self.model(**kwargs).loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.optimizer.step()
        return float(loss.detach().cpu())

    def logits(self, rows: Sequence[Sequence[int]], *, batch_size: int = 64) -> np.ndarray:
        """Classifier logits ``(len(rows), labels)`` float32, in eval mode, length-sorted mini-batches."""
        torch = _torch()
        self.model.eval()
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.zeros((len(rows), int(self.model.config.num_labels)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                group = order[start : start + batch_size]
                logits = self.model(**self._batch([rows[i] for i in group])).logits
                out[group] = logits.float().cpu().numpy()
        return out

    def token_logits(self, rows: Sequence[Sequence[int]], *, batch_size: int = 64) -> list[np.ndarray]:
        """A token classifier's logits: one ``(len(row), tags)`` float32 array per row, in eval mode."""
        torch = _torch()
        self.model.eval()
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out: list[np.ndarray] = [np.empty((0, 0), np.float32)] * len(rows)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                group = order[start : start + batch_size]
                logits = self.model(**self._batch([rows[i] for i in group])).logits.float().cpu().numpy()
                for j, i in enumerate(group):
                    out[i] = logits[j, : len(rows[i])]
        return out

    def save_encoder(self, path: Path) -> None:
        """The encoder alone (no head): what stage 1 hands to stage 2."""
        _save_tensors(dict(self.model.base_model.state_dict()), path)

    def load_encoder(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path), device=self.device)
        _missing, unexpected = self.model.base_model.load_state_dict(state, strict=False)
        if unexpected:
            raise ConfigError(f"the stage-1 encoder in {str(path)!r} does not fit the classifier: {unexpected[:3]}")

    def export(self, folder: Path) -> None:
        """A Hugging Face folder (safetensors weights, JSON config and tokenizer) the classify task loads."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
