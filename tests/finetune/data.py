"""A small labelled data set written by the tests: customer messages whose intent is not their topic.

Each message pairs one of many products with one of three intents (praise, complaint, question).
Praise and complaint use the same words and differ in negation ("is not reliable"), which frozen
sentence embeddings, dominated by the topic, barely separate: a classifier must learn it from
the phrasing, the case fine-tuning is for.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

TOPICS = [
    "the new laptop",
    "my phone",
    "the washing machine",
    "the delivery van",
    "your mobile app",
    "the coffee maker",
    "the hotel room",
    "the train to Leeds",
    "the monthly invoice",
    "the support chat",
    "the printer on floor 3",
    "the garden hose",
    "the electric bike",
    "the streaming service",
    "the kitchen knife set",
    "the winter jacket",
    "the dentist appointment",
    "the gym membership",
    "the router",
    "the online course",
    "the pizza order",
    "the car rental",
    "the headphones",
    "the smart watch",
]
GOOD = ["great", "reliable", "excellent", "fast", "comfortable", "well made", "worth the money", "easy to use"]
BAD = ["broken", "unreliable", "awful", "slow", "uncomfortable", "badly made", "a waste of money", "hard to use"]
# Praise and complaint share their words; negation flips them: "is {good}" against "is not {good}".
INTENTS = {
    "praise": ["{T} is {good}.", "{T} is not {bad}.", "{T} was {good}.", "{T} was not {bad}."],
    "complaint": ["{T} is {bad}.", "{T} is not {good}.", "{T} was {bad}.", "{T} was not {good}."],
    "question": ["Is {t} {good}?", "Is {t} {bad}?", "Was {t} {good}?", "Is {t} not {bad}?"],
}


def rows(n_per_class: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for label, templates in INTENTS.items():
        for _ in range(n_per_class):
            topic = rng.choice(TOPICS)
            text = rng.choice(templates).format(
                t=topic, T=topic[0].upper() + topic[1:], good=rng.choice(GOOD), bad=rng.choice(BAD)
            )
            out.append((text, label))
    rng.shuffle(out)
    return out


def write_csv(path: Path, data: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(data)
    return path


def write_splits(folder: Path, *, train: int = 24, valid: int = 8, test: int = 16, seed: int = 0) -> dict[str, Path]:
    """Separate train / valid / test CSVs (``n`` rows per class each), drawn with different seeds."""
    return {
        "train": write_csv(folder / "train.csv", rows(train, seed)),
        "valid": write_csv(folder / "valid.csv", rows(valid, seed + 1)),
        "test": write_csv(folder / "test.csv", rows(test, seed + 2)),
    }
