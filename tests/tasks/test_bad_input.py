"""Unusable inputs and options raise the right InputError subclass with a message that says what to fix."""

from __future__ import annotations

import pytest

from modeldeck.errors import (
    EmptyInputError,
    InputDecodeError,
    InputError,
    InputTooLargeError,
    InputTypeError,
    InvalidTextError,
    OptionError,
    UnknownNameError,
)
from modeldeck.types import ModelInfo

TASKS = ["spacy_ner", "tiny_ner", "spacy_parse", "embedder"]


@pytest.fixture(params=TASKS)
def task(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        ("", EmptyInputError, "empty"),
        ("  \n\t ", EmptyInputError, "whitespace"),
        (42, InputTypeError, "int"),
        (None, InputTypeError, "NoneType"),
        ({"text": "hi"}, InputTypeError, "dict"),
        (b"caf\xe9", InputDecodeError, "UTF-8"),
        ("caf\ud800e", InvalidTextError, "surrogate '\\\\ud800' at character 3"),
    ],
)
def test_bad_text(task, raw, error, words) -> None:
    with pytest.raises(error, match=words) as info:
        task(raw)
    assert isinstance(info.value, InputError)
    assert info.value.hint


def test_utf8_bytes_are_accepted(spacy_ner) -> None:
    assert spacy_ner("Tim Cook visited Paris. é".encode()).texts[0] == "Tim Cook"


def test_text_over_limit(task, monkeypatch) -> None:
    monkeypatch.setattr(task, "max_text_chars", 10)
    with pytest.raises(InputTooLargeError, match="10"):
        task("this text is longer than ten characters")


def test_one_bad_item_in_a_list_raises(task) -> None:
    with pytest.raises(EmptyInputError):
        task(["fine text", "", "more text"])


def test_unknown_option(task) -> None:
    with pytest.raises(OptionError, match="unknown option 'colour'") as info:
        task("some text", colour="red")
    assert "valid options" in str(info.value)


def test_a_mistyped_option_gets_a_suggestion(embedder) -> None:
    with pytest.raises(OptionError, match=r"unknown option 'normalise' \(did you mean 'normalize'\?\)"):
        embedder("some text", normalise=True)


@pytest.mark.parametrize(
    ("fixture", "options"),
    [
        ("spacy_ner", {"min_score": "high"}),
        ("spacy_ner", {"min_score": 1.5}),
        ("spacy_ner", {"labels": 3}),
        ("spacy_ner", {"labels": []}),
        ("tiny_ner", {"min_score": -0.1}),
        ("embedder", {"normalize": "maybe"}),
        ("embedder", {"normalize": 1}),
    ],
)
def test_wrong_option_value(request, fixture, options) -> None:
    task = request.getfixturevalue(fixture)
    name = next(iter(options))
    with pytest.raises(OptionError, match=name):
        task("some text", **options)


def test_options_must_be_a_mapping(spacy_ner) -> None:
    with pytest.raises(OptionError, match="object"):
        spacy_ner.parse_options(["labels"])  # type: ignore[arg-type]


def test_unsupported_runtime_lists_supported(spacy_info: ModelInfo, minilm_info: ModelInfo) -> None:
    from modeldeck.tasks.embed import EmbedTask
    from modeldeck.tasks.ner import NERTask
    from modeldeck.tasks.parse import ParseTask

    onnx = ModelInfo(name="m", version="1", tasks=("ner",), runtime="onnx", path=spacy_info.path)
    with pytest.raises(UnknownNameError, match="onnx") as info:
        NERTask.from_model(onnx)
    assert "spacy, transformers" in str(info.value)
    with pytest.raises(UnknownNameError, match="sentence-transformers"):
        EmbedTask.from_model(spacy_info)
    with pytest.raises(UnknownNameError, match="spacy"):
        ParseTask.from_model(minilm_info)


def test_bad_load_time_options(spacy_info: ModelInfo) -> None:
    from modeldeck.tasks.ner import NERTask

    with pytest.raises(OptionError, match="batch_size"):
        NERTask.from_model(spacy_info, batch_size=0)
    with pytest.raises(OptionError, match="colour"):
        NERTask.from_model(spacy_info, colour="red")
