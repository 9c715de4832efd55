"""NER with the real spaCy en_core_web_sm pipeline."""

from __future__ import annotations

import pytest

from modeldeck.errors import OptionError
from modeldeck.tasks.results import NERResult


def test_finds_person_and_place(spacy_ner) -> None:
    result = spacy_ner("Tim Cook visited Paris.")
    assert isinstance(result, NERResult)
    spans = {(e.text, e.label, e.start, e.end) for e in result}
    assert ("Tim Cook", "PERSON", 0, 8) in spans
    assert ("Paris", "GPE", 17, 22) in spans
    assert all(e.score is None for e in result)
    assert "PERSON" in result.labels


def test_only_ner_components_are_loaded(spacy_ner) -> None:
    assert spacy_ner.runtime.pipe_names == ["ner"]
    assert "PERSON" in spacy_ner.labels


def test_labels_filter(spacy_ner) -> None:
    result = spacy_ner("Tim Cook visited Paris.", labels=["GPE"])
    assert result.labels == ("GPE",)
    assert spacy_ner("Tim Cook visited Paris.", labels="PERSON").texts == ("Tim Cook",)


def test_unknown_label_lists_valid_ones(spacy_ner) -> None:
    with pytest.raises(OptionError, match="PER") as info:
        spacy_ner("Tim Cook visited Paris.", labels=["PER"])
    assert "PERSON" in str(info.value)


def test_min_score_keeps_unscored_entities(spacy_ner) -> None:
    assert len(spacy_ner("Tim Cook visited Paris.", min_score=0.9)) >= 2


def test_list_in_list_out(spacy_ner) -> None:
    results = spacy_ner(["Tim Cook visited Paris.", "Nothing here.", "Angela Merkel lives in Berlin."])
    assert len(results) == 3
    assert "Berlin" in results[2].texts


def test_long_text_is_split_and_offsets_point_into_the_original(spacy_ner, monkeypatch) -> None:
    text = "Filler words come first here.   Then Tim Cook visited Paris.\n\nLater Angela Merkel went to Berlin. " * 3
    monkeypatch.setattr(spacy_ner.runtime.nlp, "max_length", 40)
    encoded = spacy_ner.preprocess(text, spacy_ner.default_options)
    assert len(encoded.model_input.pieces) > 5
    result = spacy_ner(text)
    for entity in result:
        assert text[entity.start : entity.end] == entity.text
    found = {(e.text, e.label) for e in result}
    assert ("Paris", "GPE") in found and ("Berlin", "GPE") in found
    last_berlin = text.rindex("Berlin")
    assert (last_berlin, last_berlin + 6) in result.spans


def test_result_round_trip(spacy_ner) -> None:
    result = spacy_ner("Tim Cook visited Paris.")
    assert NERResult.from_dict(result.to_dict()) == result
