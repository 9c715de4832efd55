"""``modeldeck.finetune()`` and its parts: ULMFiT transfer learning of text classifiers into new store versions.

``finetune("classify", data=..., base="all-MiniLM-L6-v2", name=...)`` reads labelled rows (CSV,
JSON Lines, Parquet), optionally fine-tunes the encoder as a masked LM on the target texts
(stage 1), then trains a classifier with gradual unfreezing, discriminative rates and slanted
triangular schedules (stage 2), and imports the best epoch into the store. See docs/finetune.md.
"""

from __future__ import annotations

from ._recipe import FinetuneConfig, FinetuneReport, finetune

__all__ = ["FinetuneConfig", "FinetuneReport", "finetune"]
