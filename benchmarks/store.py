"""The cost of checking the default deck's files at load: cold (no verdicts) and warm, beside no check.

    python benchmarks/store.py [--rounds 5]

Resolves ner, parse, embed, face-detect and face-verify through a fresh ``ModelStore`` in a fresh
``MODELDECK_HOME``: once with no cached verdicts (every file hashed), then warm (stat only), and
the same resolution with the check replaced by a no-op, in the same run. Reports medians in ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import save

from modeldeck.config import Settings
from modeldeck.store import ModelStore

DECK = ("ner", "parse", "embed", "face-detect", "face-verify")


def resolve_all(settings: Settings) -> float:
    started = time.perf_counter()
    for ref in DECK:
        ModelStore(settings).resolve(ref)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cold, warm, unchecked = [], [], []
    for _ in range(args.rounds):
        home = Path(tempfile.mkdtemp(prefix="modeldeck-bench-"))
        try:
            settings = Settings(home=home)
            cold.append(resolve_all(settings))
            warm.append(resolve_all(settings))
            original = ModelStore._check_located
            ModelStore._check_located = lambda self, entry, located: None  # type: ignore[method-assign]
            try:
                unchecked.append(resolve_all(settings))
            finally:
                ModelStore._check_located = original  # type: ignore[method-assign]
        finally:
            shutil.rmtree(home)
    result = {
        "deck": list(DECK),
        "cold_ms": statistics.median(cold),
        "warm_ms": statistics.median(warm),
        "unchecked_ms": statistics.median(unchecked),
    }
    print(
        f"resolve the default deck: cold check {result['cold_ms']:.1f} ms, warm check {result['warm_ms']:.1f} ms, "
        f"no check {result['unchecked_ms']:.1f} ms"
    )
    save("store", result)


if __name__ == "__main__":
    main()
