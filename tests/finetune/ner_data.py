"""A small NER data set written by the tests: template sentences with varied fillers and char-span entities.

Three entity types (PER, ORG, CITY) appear in a dozen sentence shapes; names and places are drawn
from lists split between train and test, so the test rows name people, companies and cities the
training rows never saw: the tagger must learn the context and the shape of a name, not a gazetteer.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

FIRST = ["Anna", "Marek", "Priya", "Tomasz", "Lucia", "Kenji", "Fatima", "Oskar", "Chloe", "Dmitri", "Amara", "Hugo"]
LAST = ["Kowalski", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Novak", "Brennan", "Ferreira", "Schmidt"]
ORGS = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Northwind Traders",
    "Umbrella Labs",
    "Stark Industries",
    "Wayne Enterprises",
    "Vandelay Imports",
    "Hooli",
    "Cyberdyne Systems",
    "Soylent Foods",
    "Tyrell Group",
]
CITIES = [
    "Berlin",
    "Lisbon",
    "Krakow",
    "Osaka",
    "Nairobi",
    "Toronto",
    "Lyon",
    "Porto",
    "Dublin",
    "Seoul",
    "Quito",
    "Oslo",
]
TEMPLATES = [
    "{PER} joined {ORG} last spring.",
    "{PER} moved to {CITY} in 2019.",
    "Yesterday {PER} met the board of {ORG} in {CITY}.",
    "{ORG} opened a new office in {CITY}.",
    "The contract between {ORG} and {ORG} was signed by {PER}.",
    "According to {PER}, {ORG} will hire fifty engineers.",
    "Flights from {CITY} to {CITY} were cancelled on Monday.",
    "{PER} is the new head of research at {ORG}.",
    "We visited {CITY} with {PER} after the conference.",
    "Shares of {ORG} fell after the news from {CITY}.",
    "The weather was mild and nobody went outside.",
    "{PER} thanked {PER} for the help with the report.",
]
_SLOT = re.compile(r"\{(PER|ORG|CITY)\}")


def _fillers(seed_half: int) -> dict[str, list[str]]:
    """Half of each list (train: 0, test: 1), so test rows hold unseen names."""

    def half(items: list[str]) -> list[str]:
        return items[seed_half::2]

    people = [f"{f} {last}" for f in half(FIRST) for last in half(LAST)]
    return {"PER": people, "ORG": half(ORGS), "CITY": half(CITIES)}


def sentence(rng: random.Random, fillers: dict[str, list[str]]) -> dict[str, object]:
    template = rng.choice(TEMPLATES)
    text, entities, at = "", [], 0
    for match in _SLOT.finditer(template):
        text += template[at : match.start()]
        value = rng.choice(fillers[match.group(1)])
        entities.append([len(text), len(text) + len(value), match.group(1)])
        text += value
        at = match.end()
    text += template[at:]
    return {"text": text, "entities": entities}


def rows(n: int, seed: int, *, unseen: bool = False) -> list[dict[str, object]]:
    rng = random.Random(seed)
    fillers = _fillers(1 if unseen else 0)
    return [sentence(rng, fillers) for _ in range(n)]


def write_jsonl(path: Path, data: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in data), encoding="utf-8")
    return path


def write_ner_splits(folder: Path, *, train: int = 96, valid: int = 24, test: int = 48) -> dict[str, Path]:
    """Train and valid share the fillers of one half of the lists; test uses the other half."""
    return {
        "train": write_jsonl(folder / "train.jsonl", rows(train, 0)),
        "valid": write_jsonl(folder / "valid.jsonl", rows(valid, 1)),
        "test": write_jsonl(folder / "test.jsonl", rows(test, 2, unseen=True)),
    }
