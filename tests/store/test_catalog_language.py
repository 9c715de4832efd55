"""The built-in language catalog: pinned hub entries that validate, round-trip and fail fast offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modeldeck.config import Settings
from modeldeck.errors import OfflineError
from modeldeck.store import ModelStore
from modeldeck.store._catalog_language import ENTRIES
from modeldeck.store.catalog import BUILTIN_CATALOG
from modeldeck.store.sources import HFSource
from modeldeck.tasks import TASKS

EXPECTED = {
    "distilbert-base-cased-distilled-squad": "qa",
    "distilbert-sst2": "classify",
    "opus-mt-en-de": "translate",
    "gpt2": "generate",
    "distilgpt2": "generate",
}


def test_entries_are_pinned_hub_models_with_a_licence() -> None:
    assert {e.name: e.tasks[0] for e in ENTRIES} == EXPECTED
    for entry in ENTRIES:
        assert entry in BUILTIN_CATALOG
        assert isinstance(entry.source, HFSource) and re.fullmatch(r"[0-9a-f]{40}", entry.source.revision)
        assert "/" in entry.source.repo_id and entry.runtime == "transformers"
        assert entry.license not in ("", "unknown") and entry.card["description"]
        assert all(task in TASKS for task in entry.tasks)
        # Only PyTorch weights and tokenizer files are pulled.
        assert entry.source.allow_patterns and not any("h5" in p or "msgpack" in p for p in entry.source.allow_patterns)
        again = type(entry.source)(**{k: v for k, v in entry.source.to_dict().items() if k != "kind"})
        assert again == entry.source


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_resolving_offline_fails_fast_naming_the_model(name: str, tmp_path: Path) -> None:
    calls: list[object] = []
    store = ModelStore(Settings(home=tmp_path, offline=True), hub_download=lambda **kw: calls.append(kw))
    with pytest.raises(OfflineError) as err:
        store.resolve(name)
    assert repr(name) in str(err.value) and f"modeldeck models pull {name}" in str(err.value)
    assert calls == []
