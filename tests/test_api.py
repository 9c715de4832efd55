"""``modeldeck.load``: task names, model names and paths resolved to a ready task, and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck import Settings
from modeldeck.errors import (
    EmptyInputError,
    InputTypeError,
    ModelDeckError,
    OptionError,
    UnknownModelError,
)
from modeldeck.tasks.results import NERResult

from .support import save_tiny_bert_ner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env({}, home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def ner(settings: Settings):
    pytest.importorskip("spacy")
    return modeldeck.load("ner", settings=settings)


@pytest.fixture(scope="module")
def parse(settings: Settings):
    pytest.importorskip("spacy")
    return modeldeck.load("parse", settings=settings)


@pytest.fixture(scope="module")
def embed(settings: Settings):
    pytest.importorskip("sentence_transformers")
    return modeldeck.load("embed", settings=settings)


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight BertForTokenClassification saved as hubs ship it."""
    pytest.importorskip("transformers")
    path = save_tiny_bert_ner(tmp_path_factory.mktemp("tiny-bert-ner"))
    return path


TINY_TEXT = "tim cook visited paris and london with jose."


def _check_offsets(result: NERResult, text: str) -> None:
    assert isinstance(result, NERResult)
    for entity in result.entities:
        assert 0 <= entity.start < entity.end <= len(text)
        assert text[entity.start : entity.end] == entity.text


# -- the default models ---------------------------------------------------------------------


def test_load_ner_gives_the_spacy_default(ner):
    assert ner.name == "ner"
    assert ner.info.name == "en_core_web_sm"
    assert ner.info.runtime == "spacy"
    assert ner.info.task == "ner"
    text = "Tim Cook visited Paris."
    result = ner(text)
    _check_offsets(result, text)
    assert ("Tim Cook", "PERSON") in {(e.text, e.label) for e in result.entities}


def test_load_parse_gives_the_spacy_default(parse):
    assert parse.name == "parse"
    assert parse.info.name == "en_core_web_sm"
    assert parse.info.task == "parse"
    assert parse("Tim Cook visited Paris.").to_dict()  # a real, non-empty parse


def test_load_embed_gives_minilm(embed):
    assert embed.name == "embed"
    assert embed.info.name == "all-MiniLM-L6-v2"
    assert embed.info.runtime == "sentence-transformers"
    assert embed.default_options.normalize is False
    vector = np.asarray(embed("a small test sentence").vector)
    assert vector.shape == (384,)


def test_load_ner_with_a_named_model(ner, settings):
    task = modeldeck.load("ner", model="en_core_web_sm", settings=settings)
    assert task.name == "ner"
    assert task.info.name == "en_core_web_sm"
    assert task("Ada Lovelace lived in London.").to_dict() == ner("Ada Lovelace lived in London.").to_dict()


# Long enough to be embedded in several token windows: the averaged windows are not unit length,
# even though MiniLM normalises each window itself.
LONG_TEXT = " ".join(
    ["the cat sleeps on the warm mat by the window."] * 40
    + ["interest rates and bond yields rose on the stock exchange today."] * 30
    + ["the rocket launched a satellite into orbit around mars."] * 30
)


def test_load_options_become_the_call_defaults(embed, settings):
    normalized = modeldeck.load("embed", normalize=True, settings=settings)
    assert normalized.default_options.normalize is True
    unit = np.asarray(normalized(LONG_TEXT).vector, dtype=np.float64)
    raw = np.asarray(embed(LONG_TEXT).vector, dtype=np.float64)
    assert np.linalg.norm(unit) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(raw) < 0.99  # the default really is unnormalised
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw), atol=1e-5)
    # A per-call option still wins over the load-time default.
    again = np.asarray(normalized(LONG_TEXT, normalize=False).vector, dtype=np.float64)
    np.testing.assert_allclose(again, raw, atol=1e-5)


def test_calling_on_a_list_returns_a_list_in_order(ner):
    texts = ["Tim Cook visited Paris.", "Ada Lovelace lived in London.", "Nothing here."]
    results = ner(texts)
    assert isinstance(results, list) and len(results) == 3
    assert [r.to_dict() for r in results] == [ner(t).to_dict() for t in texts]
    assert "Paris" in {e.text for e in results[0].entities}
    assert "London" in {e.text for e in results[1].entities}


def test_predict_each_answers_good_inputs_and_returns_errors_for_bad_ones(ner):
    outputs = ner.predict_each(["Tim Cook visited Paris.", "", 5])
    assert len(outputs) == 3
    assert isinstance(outputs[0], NERResult)
    assert isinstance(outputs[1], EmptyInputError)
    assert isinstance(outputs[2], InputTypeError)
    assert "int" in outputs[2].message


# -- a local Hugging Face directory ---------------------------------------------------------


def test_load_ner_from_a_hugging_face_directory(tiny_bert_dir, settings):
    task = modeldeck.load("ner", model=str(tiny_bert_dir), settings=settings)
    assert task.name == "ner"
    assert task.info.runtime == "transformers"
    assert task.info.path == tiny_bert_dir.resolve()
    result = task(TINY_TEXT)
    _check_offsets(result, TINY_TEXT)
    assert set(result.labels) <= {"PER", "LOC"}
    assert len(result.entities) > 0  # the scaled random head does predict entities


def test_load_infers_the_task_from_config_json(tiny_bert_dir, settings):
    task = modeldeck.load(str(tiny_bert_dir), settings=settings)
    assert task.name == "ner"
    assert task.info.runtime == "transformers"
    assert task.info.tasks == ("ner",)
    results = task([TINY_TEXT, "berlin is a cat"])
    assert len(results) == 2
    _check_offsets(results[0], TINY_TEXT)
    _check_offsets(results[1], "berlin is a cat")


def test_a_model_that_does_not_serve_the_task_is_a_clear_error(tiny_bert_dir, settings):
    with pytest.raises(ModelDeckError) as info:
        modeldeck.load("parse", model=str(tiny_bert_dir), settings=settings)
    err = info.value
    assert isinstance(err, (UnknownModelError, OptionError))
    assert "'parse'" in err.message
    assert err.hint is not None and "ner" in err.hint
    assert "en_core_web_sm" in err.hint  # points at the model that does serve parse


# -- errors ----------------------------------------------------------------------------------


def test_an_unknown_name_lists_known_models(settings):
    with pytest.raises(UnknownModelError) as info:
        modeldeck.load("bogus", settings=settings)
    err = info.value
    assert err.code == "MD202"
    assert "'bogus'" in err.message
    assert err.hint is not None
    assert "en_core_web_sm" in err.hint and "all-MiniLM-L6-v2" in err.hint


def test_model_with_something_that_is_not_a_task_names_the_valid_tasks(settings):
    with pytest.raises(OptionError) as info:
        modeldeck.load("notatask", model="x", settings=settings)
    err = info.value
    assert "'notatask'" in err.message
    assert err.hint is not None
    for task in ("ner", "parse", "embed"):
        assert task in err.hint


def test_unknown_option_lists_the_valid_options(ner, settings):
    with pytest.raises(OptionError) as info:
        modeldeck.load("ner", colour="red", settings=settings)
    err = info.value
    assert "colour" in err.message
    assert err.hint is not None and "labels" in err.hint and "min_score" in err.hint


def test_a_bad_option_value_is_an_option_error(embed, settings):
    with pytest.raises(OptionError, match="normalize"):
        modeldeck.load("embed", normalize="sometimes", settings=settings)


def test_a_negative_batch_size_is_an_option_error(embed, settings):
    with pytest.raises(OptionError, match="batch_size"):
        modeldeck.load("embed", batch_size=-1, settings=settings)


def test_a_zero_batch_size_is_an_option_error(embed, settings):
    with pytest.raises(OptionError, match="batch_size"):
        modeldeck.load("embed", batch_size=0, settings=settings)


def test_batch_size_defaults_to_the_settings(embed, settings):
    assert embed.batch_size == settings.max_batch_size
    assert modeldeck.load("embed", batch_size=3, settings=settings).batch_size == 3
