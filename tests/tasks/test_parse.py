"""Parsing with the real spaCy en_core_web_sm pipeline."""

from __future__ import annotations

from modeldeck.tasks.results import ParseResult


def _check_structure(text: str, result: ParseResult) -> None:
    n = len(result.tokens)
    for token in result:
        assert text[token.start : token.end] == token.text
        assert 0 <= token.head < n
    for sentence in result.sentences:
        assert text[sentence.start : sentence.end] == sentence.text
        assert 0 <= sentence.token_start < sentence.token_end <= n
        roots = [i for i in range(sentence.token_start, sentence.token_end) if result.tokens[i].head == i]
        assert len(roots) == 1
    covered = [i for s in result.sentences for i in range(s.token_start, s.token_end)]
    assert covered == list(range(n))


def test_tokens_sentences_and_heads(spacy_parse) -> None:
    text = "Hello there. How are you?"
    result = spacy_parse(text)
    _check_structure(text, result)
    assert result.texts == ("Hello", "there", ".", "How", "are", "you", "?")
    assert [s.text for s in result.sentences] == ["Hello there.", "How are you?"]
    assert [result.tokens[i].dep for i in result.roots] == ["ROOT", "ROOT"]
    are = result.tokens[4]
    assert (are.lemma, are.pos, are.tag) == ("be", "AUX", "VBP")
    assert result.tokens[5].head == 4 and result.tokens[5].dep == "nsubj"
    assert result.sentence_tokens(1)[0].text == "How"


def test_only_needed_components_are_loaded(spacy_parse) -> None:
    assert "ner" not in spacy_parse.runtime.pipe_names
    assert "parser" in spacy_parse.runtime.pipe_names


def test_extra_whitespace_keeps_offsets(spacy_parse) -> None:
    text = "  Café   au lait 😀 is nice.\n\nYes!"
    _check_structure(text, spacy_parse(text))


def test_long_text_pieces_keep_doc_level_heads(spacy_parse, monkeypatch) -> None:
    text = "The quick brown fox jumps over the lazy dog. It was not amused at all.   " * 4
    full = spacy_parse(text)
    monkeypatch.setattr(spacy_parse.runtime.nlp, "max_length", 50)
    assert len(spacy_parse.preprocess(text, spacy_parse.default_options).pieces) > 4
    result = spacy_parse(text)
    _check_structure(text, result)
    # Pieces are cut at sentence ends here, so the tokens and heads match the parse of the whole text.
    assert [(t.start, t.end) for t in result] == [(t.start, t.end) for t in full]
    assert result.heads == full.heads


def test_result_round_trip(spacy_parse) -> None:
    result = spacy_parse("Hello there. How are you?")
    assert ParseResult.from_dict(result.to_dict()) == result
