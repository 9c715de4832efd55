"""What differs between fine-tuning tasks, behind one small interface the recipe drives.

The recipe (``_recipe.py``) owns everything the tasks share: stages, rates, schedules, unfreezing,
early stopping, checkpoints and resume, export and the store import. A kit owns the rest: how its
rows are read and checked, which head the encoder gets, how training rows and targets are made
from the trainer's tokenizer, how the model as it stands is scored (the score that picks the
best epoch), and what goes into the history, the report and the card.

``ClassifyKit``: text classification (single- or multi-label), rows from CSV / JSON Lines / Parquet.
``NerKit``: token classification with BIO tags aligned from char spans, rows from JSON Lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from ..errors import InputError
from ._cache import CHUNK, RowsWriter, TokenRows, chunks
from ._data import LabelledData, check_trainable, read_labelled, stratified_split
from ._spans import IGNORE, SpanData, align_tags, bio_tags, check_taggable, read_spans

__all__ = ["ClassifyKit", "Kit", "NerKit"]

_Data = TypeVar("_Data", LabelledData, SpanData)


class Kit(Protocol):
    task: str
    #: The encoder's head: ``"classify"`` (sequence) or ``"token"``.
    head: str
    #: The head's classes, in output order (class names, or BIO tags).
    classes: tuple[str, ...]
    #: What the report and card call labels (class names, or entity types).
    labels: tuple[str, ...]
    multi_label: bool
    train_texts: Sequence[str]
    #: Rows left out per file (``data``, ``valid``).
    bad_rows: Mapping[str, int]

    def sizes(self) -> dict[str, int]: ...

    def data_notes(self) -> dict[str, Any]: ...

    def train_rows(self, trainer: Any, folder: Path) -> tuple[Sequence[Sequence[int]], Sequence[Any]]: ...

    def scores(self, trainer: Any, split: str, batch_size: int) -> dict[str, Any]: ...

    def history_fields(self, scores: Mapping[str, Any]) -> dict[str, Any]: ...

    def has_split(self, split: str) -> bool: ...


def _softmax_loss(logits: np.ndarray, targets: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(targets)), targets].mean())


def _bce_loss(logits: np.ndarray, targets: np.ndarray) -> float:
    # log(1 + exp(-|x|)) + max(x, 0) - x * y: the numerically stable binary cross-entropy with logits.
    x = logits.astype(np.float64)
    return float((np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0) - x * targets).mean())


def _label_sets(data: LabelledData) -> list[tuple[str, ...]]:
    return [(label,) if isinstance(label, str) else label for label in data.labels]


def _targets(data: LabelledData, labels: Sequence[str], multi: bool) -> list[Any]:
    """Class indices, or for a multi-label classifier one multi-hot row per example."""
    index = {label: i for i, label in enumerate(labels)}
    if not multi:
        return [index[label] for label in data.labels]  # type: ignore[index]
    rows = []
    for names in _label_sets(data):
        row = [0.0] * len(labels)
        for name in names:
            row[index[name]] = 1.0
        rows.append(row)
    return rows


def _read_splits(
    read: Callable[[str | Path], _Data],
    check: Callable[[_Data, str | Path], None],
    split: Callable[[_Data, float, int], tuple[_Data, _Data]],
    data: str | Path,
    valid: str | Path | None,
    valid_split: float,
    seed: int,
) -> tuple[_Data, _Data, _Data]:
    """``(all training rows, train, valid)``: the valid file's rows, or a seeded ``valid_split`` held out."""
    train_all = read(data)
    check(train_all, data)
    if valid is not None:
        return train_all, train_all, read(valid)
    return (train_all, *split(train_all, valid_split, seed))


class ClassifyKit:
    """Text classification: one label (or a set of labels) per row."""

    task = "classify"
    head = "classify"

    def __init__(
        self,
        data: str | Path,
        valid: str | Path | None,
        test: str | Path | None,
        *,
        text_column: str | None,
        label_column: str | None,
        valid_split: float,
        seed: int,
    ) -> None:
        def read(path: str | Path) -> LabelledData:
            return read_labelled(path, text_column, label_column)

        train_all, self.train, self.valid = _read_splits(
            read, check_trainable, stratified_split, data, valid, valid_split, seed
        )
        self.labels = self.classes = tuple(sorted(self.train.counts()))
        self.multi_label = self.train.multi_label
        unseen = sorted(set(self.valid.counts()) - set(self.labels))
        if unseen:
            raise InputError(
                f"the validation data has labels the training data lacks: {', '.join(map(repr, unseen))}",
                hint="give every label training examples, or drop those validation rows",
            )
        self.test = read_labelled(test, text_column, label_column) if test is not None else None
        self.train_texts = self.train.texts
        self.bad_rows = {"data": train_all.bad_rows, "valid": self.valid.bad_rows if valid is not None else 0}
        self._encoded: dict[str, tuple[LabelledData, Sequence[Sequence[int]]]] = {}

    def sizes(self) -> dict[str, int]:
        return {"train_rows": len(self.train), "valid_rows": len(self.valid)}

    def data_notes(self) -> dict[str, Any]:
        return {}

    def has_split(self, split: str) -> bool:
        return getattr(self, split) is not None

    def train_rows(self, trainer: Any, folder: Path) -> tuple[Sequence[Sequence[int]], Sequence[Any]]:
        """Token ids in a memory-mapped file in ``folder`` (tokenised a chunk at a time), and the targets."""
        rows = TokenRows.encode(folder / "train-ids.int32", self.train.texts, trainer.encode)
        return rows, _targets(self.train, self.labels, trainer.multi_label)

    def scores(self, trainer: Any, split: str, batch_size: int) -> dict[str, Any]:
        """Valid or test figures with the model as it is; ``score`` is what picks the best epoch.

        Test rows with a label the training data lacks are left out (the model cannot name it).
        """
        from ..evaluation.classify import classification_metrics, multilabel_metrics

        labels = self.labels
        if split not in self._encoded:  # tokenised once per run: the tokenizer does not change
            data: LabelledData = getattr(self, split)
            known = set(labels)
            keep = [
                i
                for i, label in enumerate(data.labels)
                if split != "test" or set((label,) if isinstance(label, str) else label) <= known
            ]
            subset = data.subset(keep)
            self._encoded[split] = (subset, trainer.encode(subset.texts))
        subset, rows = self._encoded[split]
        logits = trainer.logits(rows, batch_size=batch_size)
        targets = np.asarray(_targets(subset, labels, trainer.multi_label))
        if trainer.multi_label:
            predicted = [tuple(labels[j] for j in np.flatnonzero(row > 0)) for row in logits]  # sigmoid >= 0.5
            metrics = multilabel_metrics(_label_sets(subset), predicted, labels)
            metrics["loss"] = _bce_loss(logits, targets)
            metrics["score"] = metrics["micro_f1"]
        else:
            truth: list[str] = list(subset.labels)  # type: ignore[arg-type]
            metrics = classification_metrics(truth, [labels[p] for p in logits.argmax(1)], labels)
            metrics["loss"] = _softmax_loss(logits, targets)
            metrics["score"] = metrics["accuracy"]
        return metrics

    def history_fields(self, scores: Mapping[str, Any]) -> dict[str, Any]:
        return {"valid_accuracy": scores["accuracy"], "valid_macro_f1": scores["macro_f1"]}


def _split_spans(data: SpanData, fraction: float, seed: int) -> tuple[SpanData, SpanData]:
    """``(train, valid)``: a seeded random ``fraction`` of the rows (at least one, never all) held out."""
    if len(data) < 2:
        raise InputError("NER fine-tuning needs at least 2 usable rows to hold some out for validation")
    order = np.random.default_rng(seed).permutation(len(data))
    n_valid = min(len(data) - 1, max(1, round(len(data) * fraction)))
    return data.subset(sorted(order[n_valid:].tolist())), data.subset(sorted(order[:n_valid].tolist()))


class NerKit:
    """Named-entity recognition: BIO tags on tokens, aligned from char spans with the fast tokenizer's offsets.

    The best epoch is the one with the best entity-level micro F1 on the valid rows (exact span and
    label), decoded from token predictions the way the ``ner`` task decodes them.
    """

    task = "ner"
    head = "token"
    multi_label = False

    def __init__(
        self,
        data: str | Path,
        valid: str | Path | None,
        test: str | Path | None,
        *,
        text_column: str | None,
        label_column: str | None,
        valid_split: float,
        seed: int,
    ) -> None:
        def read(path: str | Path) -> SpanData:
            return read_spans(path, text_column, label_column)

        train_all, self.train, self.valid = _read_splits(
            read, check_taggable, _split_spans, data, valid, valid_split, seed
        )
        self.labels = tuple(sorted(self.train.counts()))
        self.classes = bio_tags(self.labels)
        unseen = sorted(set(self.valid.counts()) - set(self.labels))
        if unseen:
            raise InputError(
                f"the validation data has entity labels the training data lacks: {', '.join(map(repr, unseen))}",
                hint="annotate those labels in the training data too, or drop them from the validation rows",
            )
        self.test = read_spans(test, text_column, label_column) if test is not None else None
        self.train_texts = self.train.texts
        self.bad_rows = {"data": train_all.bad_rows, "valid": self.valid.bad_rows if valid is not None else 0}
        self._bad_reasons = {
            "data": dict(train_all.bad),
            **({"valid": dict(self.valid.bad)} if valid is not None else {}),
            **({"test": dict(self.test.bad)} if self.test is not None else {}),
        }
        self._alignment: dict[str, dict[str, int]] = {}
        self._encoded: dict[str, Any] = {}

    def sizes(self) -> dict[str, int]:
        return {"train_rows": len(self.train), "valid_rows": len(self.valid)}

    def data_notes(self) -> dict[str, Any]:
        """Bad rows by reason, and per split how many spans did not align to tokens or were cut by max_length."""
        return {"bad_row_reasons": self._bad_reasons, "spans": self._alignment}

    def has_split(self, split: str) -> bool:
        return getattr(self, split) is not None

    def _aligned(
        self, trainer: Any, split: str, texts: Sequence[str], entities: Sequence[Sequence[tuple[int, int, str]]]
    ) -> Iterator[tuple[list[Any], list[list[int]]]]:
        """Chunks of (tokens with offsets, aligned tag ids), counting how the spans fared into ``split``."""
        tag_ids = {tag: i for i, tag in enumerate(self.classes)}
        counts = self._alignment[split] = {"spans": 0, "unaligned": 0, "truncated": 0, "unknown_label": 0}
        for start, chunk in zip(range(0, len(texts), CHUNK), chunks(texts), strict=True):
            encoded = trainer.encode_offsets(chunk)
            tags: list[list[int]] = []
            for (_, offsets, _), spans in zip(encoded, entities[start : start + len(chunk)], strict=True):
                known = [s for s in spans if s[2] in self.labels]
                counts["unknown_label"] += len(spans) - len(known)
                aligned = align_tags(offsets, known, tag_ids)
                counts["spans"] += len(spans)
                counts["unaligned"] += aligned.unaligned
                counts["truncated"] += aligned.truncated
                tags.append(aligned.tags)
            yield encoded, tags

    def _encode(self, trainer: Any, split: str) -> tuple[list[Any], list[list[int]]]:
        """Valid or test tokens with offsets and their aligned tags, in memory, once per split."""
        if split not in self._encoded:
            data: SpanData = getattr(self, split)
            encoded: list[Any] = []
            tags: list[list[int]] = []
            for chunk, chunk_tags in self._aligned(trainer, split, data.texts, data.entities):
                encoded += chunk
                tags += chunk_tags
            self._encoded[split] = (encoded, tags)
        return self._encoded[split]  # type: ignore[no-any-return]

    def train_rows(self, trainer: Any, folder: Path) -> tuple[Sequence[Sequence[int]], Sequence[Any]]:
        """Token ids and tag ids in memory-mapped files in ``folder``, tokenised and aligned a chunk at a time."""
        with RowsWriter(folder / "train-ids.int32") as ids, RowsWriter(folder / "train-tags.int16", np.int16) as tags:
            for encoded, chunk_tags in self._aligned(trainer, "train", self.train.texts, self.train.entities):
                ids.append([row for row, _, _ in encoded])
                tags.append(chunk_tags)
        return ids.rows(), tags.rows()

    def scores(self, trainer: Any, split: str, batch_size: int) -> dict[str, Any]:
        from ..evaluation.ner import entity_metrics
        from ..tasks.ner import aggregate_entities

        data: SpanData = getattr(self, split)
        encoded, tags = self._encode(trainer, split)
        logits = trainer.token_logits([ids for ids, _, _ in encoded], batch_size=batch_size)
        id2label = dict(enumerate(self.classes))
        predicted: list[list[tuple[int, int, str]]] = []
        losses: list[float] = []
        for (_, offsets, word_ids), row, gold in zip(encoded, logits, tags, strict=True):
            z = row - row.max(axis=1, keepdims=True)
            probs = np.exp(z)
            probs /= probs.sum(axis=1, keepdims=True)
            spans = aggregate_entities(offsets, probs, id2label, word_ids)
            predicted.append([(start, end, label) for label, start, end, _ in spans])
            target = np.asarray(gold)
            scored = target != IGNORE
            if scored.any():
                losses.append(_softmax_loss(row[scored], target[scored]) * int(scored.sum()))
        metrics = entity_metrics(data.entities, predicted, self.labels)
        n_tokens = sum(int((np.asarray(t) != IGNORE).sum()) for t in tags)
        metrics["loss"] = float(sum(losses) / max(1, n_tokens))
        metrics["score"] = metrics["micro_f1"]
        metrics["spans"] = dict(self._alignment[split])
        return metrics

    def history_fields(self, scores: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "valid_precision": scores["micro_precision"],
            "valid_recall": scores["micro_recall"],
            "valid_f1": scores["micro_f1"],
            "valid_macro_f1": scores["macro_f1"],
        }
