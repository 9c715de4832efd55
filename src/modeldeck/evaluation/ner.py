"""Entity-level NER metrics: an entity counts as found only when its span and label both match exactly.

Precision, recall and F1 per label, micro (over all entities) and macro (mean over labels), as
CoNLL's ``conlleval`` and seqeval's default mode count them for IOB2 tags, but computed on char
spans so that any NER model (spaCy, a token classifier) is scored alike. A few lines of counting,
so neither fine-tuning nor ``modeldeck eval ner`` needs seqeval.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NERReport", "entity_metrics", "evaluate_ner"]

Span = tuple[int, int, str]


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def entity_metrics(
    truth: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per-label and micro / macro precision, recall and F1 of exact ``(start, end, label)`` matches.

    ``labels`` (default: every label in ``truth`` or ``predicted``) are the ones reported and averaged.
    A label never predicted has precision 0; one absent from the truth has recall 0 (scikit-learn's
    ``zero_division=0``).
    """
    tp: Counter[str] = Counter()
    n_true: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for true_spans, predicted_spans in zip(truth, predicted, strict=True):
        gold = set(map(tuple, true_spans))
        guess = set(map(tuple, predicted_spans))
        n_true.update(label for _, _, label in gold)
        n_pred.update(label for _, _, label in guess)
        tp.update(label for _, _, label in gold & guess)
    names = sorted(set(n_true) | set(n_pred)) if labels is None else list(labels)
    per_label: dict[str, Any] = {}
    for name in names:
        p = tp[name] / n_pred[name] if n_pred[name] else 0.0
        r = tp[name] / n_true[name] if n_true[name] else 0.0
        per_label[name] = {"precision": p, "recall": r, "f1": _f1(p, r), "support": n_true[name]}
    found = sum(tp[n] for n in names)
    guessed = sum(n_pred[n] for n in names)
    actual = sum(n_true[n] for n in names)
    micro_p = found / guessed if guessed else 0.0
    micro_r = found / actual if actual else 0.0

    def mean(key: str) -> float:
        return float(np.mean([row[key] for row in per_label.values()])) if per_label else 0.0

    return {
        "examples": len(truth),
        "entities": actual,
        "predicted": guessed,
        "correct": found,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": _f1(micro_p, micro_r),
        "macro_precision": mean("precision"),
        "macro_recall": mean("recall"),
        "macro_f1": mean("f1"),
        "per_label": per_label,
        "labels": names,
    }


@dataclass(frozen=True)
class NERReport:
    model: str
    metrics: Mapping[str, Any]
    #: Rows left out, by reason (not JSON, empty text, malformed / out-of-range / overlapping entities).
    bad_rows: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **dict(self.metrics),
            "bad_rows": dict(self.bad_rows),
            "seconds": round(self.seconds, 3),
        }

    def render(self) -> str:
        from io import StringIO

        from rich.console import Console
        from rich.table import Table

        m = self.metrics
        summary = Table(title=f"ner: {self.model}", show_header=False)
        summary.add_row("texts", str(m["examples"]))
        summary.add_row("entities (true / predicted / correct)", f"{m['entities']} / {m['predicted']} / {m['correct']}")
        for key in ("micro_precision", "micro_recall", "micro_f1", "macro_precision", "macro_recall", "macro_f1"):
            summary.add_row(key.replace("_", " "), f"{m[key]:.4f}")
        for reason, count in sorted(self.bad_rows.items()):
            summary.add_row(f"bad rows: {reason} (left out)", str(count))
        per_label = Table(title="per label (exact span and label)")
        for column in ("label", "precision", "recall", "f1", "support"):
            per_label.add_column(column, justify="left" if column == "label" else "right")
        for label, row in m["per_label"].items():
            per_label.add_row(
                label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
            )
        buffer = StringIO()
        console = Console(file=buffer, width=120, force_terminal=False)
        console.print(summary)
        console.print(per_label)
        return buffer.getvalue().rstrip()


def evaluate_ner(
    task: Any, path: str | Path, *, text_column: str | None = None, entities_column: str | None = None
) -> NERReport:
    """Score a loaded ``ner`` task on a JSON Lines file of char spans; bad rows are counted, not scored."""
    from ..finetuning._spans import read_spans

    data = read_spans(path, text_column, entities_column)  # no usable row: InputError naming the file
    started = time.perf_counter()
    predicted: list[list[Span]] = []
    step = max(1, task.batch_size)
    for start in range(0, len(data), step):
        results = task(list(data.texts[start : start + step]))
        predicted += [[(e.start, e.end, e.label) for e in r.entities] for r in results]
    labels = sorted(set(data.counts()) | {label for spans in predicted for _, _, label in spans})
    metrics = entity_metrics(data.entities, predicted, labels)
    return NERReport(
        model=f"{task.info.name}@{task.info.version}",
        metrics=metrics,
        bad_rows=dict(data.bad),
        seconds=time.perf_counter() - started,
    )
