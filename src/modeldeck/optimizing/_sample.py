"""The built-in verification samples, made in code so no download is needed: varied sentences, and scenes for detectors.

Varied on purpose: lengths from one word to past a 256-token window (so chunking is exercised),
questions, numbers, code, URLs, accents, CJK, emoji and odd spacing, since quantization errors
show first on inputs unlike the usual ones. The scenes vary size and aspect (so a detector's
resize runs at many scales), background (flat, gradient, noise) and the number of objects.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["QUESTIONS", "builtin_scenes", "builtin_texts"]

_SUBJECTS = (
    "The model",
    "Our support team",
    "A small startup in Lyon",
    "The central bank",
    "My grandmother",
    "The new GPU cluster",
    "Researchers at the university",
    "The football club",
    "This recipe",
    "The city council of São Paulo",
    "Der Zug nach München",
    "Le comité",
    "東京の会社",
)
_VERBS = (
    "announced",
    "rejected",
    "shipped",
    "is investigating",
    "could not reproduce",
    "will publish",
    "quietly deprecated",
    "doubled the price of",
    "recommends",
    "fell in love with",
)
_OBJECTS = (
    "a faster inference server",
    "the quarterly earnings report",
    "an outage affecting 3.2% of users",
    "the 2026 championship final",
    "a vegan lasagne with roasted peppers",
    "version 2.14.1 of the library",
    "the ticket #48213 about refunds",
    "new rules for electric scooters",
    "a café near the Seine",
    "the API at https://example.com/v1/models?limit=10",
    "a bug in `def encode(self, texts):`",
    "its CO₂ emissions by 40 per cent",
    "the 🚀 launch",
)
_TAILS = (
    "",
    " yesterday.",
    " on Monday, according to Reuters.",
    " — nobody expected that!",
    ", which surprised analysts.",
    " (see the attached PDF).",
    "?",
    " lol",
    " despite heavy rain in the north-east.",
)
_QUESTIONS = (
    "How do I reset my password?",
    "What is the capital of Australia?",
    "Why is the sky blue?",
    "Can I return shoes after 30 days?",
    "Wie spät ist es?",
    "Est-ce que le musée est ouvert le lundi ?",
    "refund??",
    "ok",
)


#: Questions put to each context when a QA model is verified (answers are compared, not judged right).
QUESTIONS = ("Who announced it?", "What was shipped?", "When did it happen?", "Where is the company?", "Why?")


def builtin_texts(count: int = 300, *, seed: int = 0) -> list[str]:
    """``count`` deterministic, varied texts (the same list for the same arguments)."""
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < count:
        kind = len(texts) % 10
        if kind < 6:
            texts.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_TAILS)}")
        elif kind == 6:
            texts.append(rng.choice(_QUESTIONS))
        elif kind == 7:
            texts.append(rng.choice(_OBJECTS).upper() if rng.random() < 0.5 else "  " + rng.choice(_OBJECTS) + "\n\t")
        elif kind == 8:
            # A paragraph of several sentences: some pass the model's window and are embedded in chunks.
            n = rng.randint(3, 24)
            texts.append(
                " ".join(
                    f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_TAILS)}"
                    for _ in range(n)
                )
            )
        else:
            texts.append(rng.choice(("yes", "No.", "42", "¿Qué?", "👍", "see you at 5pm", "ERROR 500")))
    return texts


def builtin_scenes(count: int = 24, *, seed: int = 0) -> list[np.ndarray]:
    """``count`` RGB scenes (H, W, 3) uint8, 64 to 480 pixels a side: rectangles, discs, stripes on varied grounds."""
    import numpy as np

    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(count):
        h, w = int(rng.integers(64, 481)), int(rng.integers(64, 481))
        y, x = np.mgrid[0:h, 0:w]
        kind = i % 3
        if kind == 0:  # a flat colour
            ground = np.broadcast_to(rng.integers(0, 256, 3), (h, w, 3)).astype(np.float64)
        elif kind == 1:  # a two-way gradient
            ground = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), rng.uniform(0, 255))], -1)
        else:  # textured noise
            ground = rng.normal(128, 40, (h, w, 3))
        image = ground.clip(0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(1, 7))):
            colour = rng.integers(0, 256, 3)
            cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
            ry, rx = int(rng.integers(4, max(5, h // 3))), int(rng.integers(4, max(5, w // 3)))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                image[max(0, cy - ry) : cy + ry, max(0, cx - rx) : cx + rx] = colour
            elif shape == 1:
                image[((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1] = colour
            else:  # a striped patch
                stripes = ((x + y) // max(2, rx // 3)) % 2 == 0
                image[stripes & (np.abs(y - cy) < ry) & (np.abs(x - cx) < rx)] = colour
        scenes.append(image)
    return scenes
