"""ULMFiT's schedules as plain functions: slanted triangular rates, discriminative rates, gradual unfreezing.

Howard & Ruder, "Universal Language Model Fine-tuning for Text Classification" (2018), eq. 2-3
and section 3.2-3.3. Kept free of any framework so the recipe (``_recipe.py``) and the tests
can reason about rates without a model.
"""

from __future__ import annotations

import math

__all__ = ["discriminative_rates", "linear_decay", "slanted_triangular", "trainable_groups"]


def slanted_triangular(step: int, total: int, *, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """The multiplier of the peak rate at ``step`` (0-based) of ``total``: a short linear rise, a long decay.

    ``cut_frac`` of the steps rise from ``1/ratio`` to 1, the rest fall back to ``1/ratio``.
    """
    if total < 1:
        raise ValueError(f"total steps must be >= 1, got {total}")
    cut = max(1, math.floor(total * cut_frac))
    t = min(max(step, 0), total - 1)
    p = t / cut if t < cut else 1 - (t - cut) / max(1, cut * (1 / cut_frac - 1))
    p = min(max(p, 0.0), 1.0)
    return (1 + p * (ratio - 1)) / ratio


def linear_decay(step: int, total: int) -> float:
    """The multiplier of the ``plain`` recipe: from 1 down to 0 over ``total`` steps (Hugging Face's default)."""
    if total < 1:
        raise ValueError(f"total steps must be >= 1, got {total}")
    return max(0.0, (total - min(max(step, 0), total)) / total)


def discriminative_rates(lr: float, groups: int, factor: float) -> list[float]:
    """One rate per layer group, bottom (embeddings) first: the top group gets ``lr``, each lower one ``/ factor``."""
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    return [lr / factor ** (groups - 1 - i) for i in range(groups)]


def trainable_groups(epoch: int, groups: int, *, per_epoch: int = 1) -> int:
    """How many top groups train in ``epoch`` (0-based): the head first, then ``per_epoch`` more each epoch."""
    return min(groups, 1 + epoch * per_epoch)
