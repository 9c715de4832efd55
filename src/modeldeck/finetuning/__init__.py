"""``modeldeck.finetune()`` and its parts: ULMFiT transfer learning of text classifiers and NER taggers
into new store versions.

``finetune("classify", data=..., base="all-MiniLM-L6-v2", name=...)`` reads labelled rows (CSV,
JSON Lines, Parquet), optionally fine-tunes the encoder as a masked LM on the target texts
(stage 1), then trains a classifier with gradual unfreezing, discriminative rates and slanted
triangular schedules (stage 2), and imports the best epoch into the store. ``finetune("ner", ...)``
does the same for a token classifier from JSON Lines with character spans. See docs/finetune.md.
"""

from __future__ import annotations

from ._recipe import FinetuneConfig, FinetuneReport, finetune

__all__ = ["FinetuneConfig", "FinetuneReport", "finetune"]
