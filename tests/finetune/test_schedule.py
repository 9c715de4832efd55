"""The ULMFiT schedule is what it says: rates read from the optimizer step by step, and frozen groups."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modeldeck.config import Settings
from modeldeck.finetuning import finetune
from modeldeck.finetuning._schedule import (
    discriminative_rates,
    linear_decay,
    slanted_triangular,
    trainable_groups,
)


def test_slanted_triangular_rises_for_cut_frac_then_decays_to_one_over_ratio() -> None:
    total = 100
    mults = [slanted_triangular(t, total, cut_frac=0.1, ratio=32) for t in range(total)]
    assert mults[0] == pytest.approx(1 / 32)
    assert int(np.argmax(mults)) == 10 and mults[10] == pytest.approx(1.0)
    assert all(a < b for a, b in pairwise(mults[:11]))
    assert all(a > b for a, b in pairwise(mults[10:]))
    assert mults[-1] == pytest.approx((1 + (1 - 89 / 90) * 31) / 32)


def test_discriminative_rates_divide_by_the_factor_per_lower_group() -> None:
    rates = discriminative_rates(1e-3, 4, 2.6)
    assert rates[-1] == pytest.approx(1e-3)
    assert [rates[i + 1] / rates[i] for i in range(3)] == pytest.approx([2.6] * 3)


def test_gradual_unfreezing_adds_groups_per_epoch_up_to_all() -> None:
    assert [trainable_groups(e, 4) for e in range(6)] == [1, 2, 3, 4, 4, 4]
    assert [trainable_groups(e, 8, per_epoch=3) for e in range(4)] == [1, 4, 7, 8]
    assert linear_decay(0, 10) == 1.0 and linear_decay(5, 10) == 0.5


@pytest.mark.slow
@pytest.mark.timeout(1500)  # minutes on a busy 2-core machine
def test_optimizer_rates_and_frozen_groups_step_by_step(
    tiny_bert: Path, splits: dict[str, Path], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modeldeck.runtimes.training import EncoderTrainer

    seen: list[dict[str, Any]] = []
    original = EncoderTrainer.train_step

    def spy(self: EncoderTrainer, rows: Any, labels: Any = None) -> float:
        if labels is not None:  # stage 2 (the classifier); stage 1 has no labels
            embeddings = self.groups[0][1][0]
            seen.append(
                {
                    "rates": [g["lr"] for g in self.optimizer.param_groups],
                    "trainable": [all(p.requires_grad for p in params) for _, params in self.groups],
                    "embeddings": float(embeddings.detach().abs().sum()),
                }
            )
        return original(self, rows, labels)

    monkeypatch.setattr(EncoderTrainer, "train_step", spy)
    report = finetune(
        "classify",
        data=splits["train"],
        valid=splits["valid"],
        base=str(tiny_bert),
        name="sched",
        settings=settings,
        epochs=4,
        batch_size=16,
        max_length=16,
        lr=1e-3,
        patience=10,
    )
    names = ["embeddings", "block 0", "block 1", "head"]
    steps = 96 // 16  # 3 labels x 32 training rows, batches of 16
    assert len(seen) == 4 * steps
    total = 4 * steps
    for step, record in enumerate(seen):
        rates = record["rates"]
        # Discriminative: each lower group's rate is the one above divided by 2.6.
        assert [rates[i + 1] / rates[i] for i in range(3)] == pytest.approx([2.6] * 3)
        # Slanted triangular: the top rate is the peak times the STLR multiplier at this step.
        assert rates[-1] == pytest.approx(1e-3 * slanted_triangular(step, total))
        # Gradual unfreezing: the head in epoch 1, one more group each epoch after.
        epoch = step // steps
        assert record["trainable"] == [i >= 3 - epoch for i in range(4)], (names, epoch)
    tops = [r["rates"][-1] for r in seen]
    peak = int(np.argmax(tops))
    assert peak == max(1, int(total * 0.1))
    assert tops[:peak] == sorted(tops[:peak]) and tops[peak:] == sorted(tops[peak:], reverse=True)
    # Frozen means unchanged: the embeddings move only in the last epoch, once unfrozen.
    frozen = [r["embeddings"] for r in seen[: 3 * steps + 1]]
    assert len(set(frozen)) == 1
    assert seen[-1]["embeddings"] != frozen[0]
    assert [h["trainable_groups"] for h in report.history] == [1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.timeout(1500)  # minutes on a busy 2-core machine
def test_plain_recipe_trains_every_group_at_one_rate_with_linear_decay(
    tiny_bert: Path, splits: dict[str, Path], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modeldeck.runtimes.training import EncoderTrainer

    seen: list[tuple[list[float], list[bool]]] = []
    original = EncoderTrainer.train_step

    def spy(self: EncoderTrainer, rows: Any, labels: Any = None) -> float:
        seen.append(([g["lr"] for g in self.optimizer.param_groups], self.trainable()))
        return original(self, rows, labels)

    monkeypatch.setattr(EncoderTrainer, "train_step", spy)
    finetune(
        "classify",
        data=splits["train"],
        valid=splits["valid"],
        base=str(tiny_bert),
        name="plain",
        settings=settings,
        recipe="plain",
        epochs=2,
        batch_size=32,
        max_length=16,
        lr=1e-4,
    )
    total = 2 * 96 // 32
    assert len(seen) == total  # one stage: plain has no language-model stage (lm_epochs is refused with it)
    for step, (rates, trainable) in enumerate(seen):
        assert rates == pytest.approx([1e-4 * (total - step) / total] * 4)
        assert trainable == [True] * 4
