"""Extractive QA on a tiny random BERT through the real loading code; spans checked by brute force."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import EmptyInputError, InputTooLargeError, InputTypeError, OptionError
from modeldeck.tasks.qa import Answer, QAResult, QATask
from modeldeck.tasks.results import to_arrow

from .language_models import save_tiny_bert_qa

pytest.importorskip("transformers")

CONTEXTS = [
    "Tim Cook founded the company in Paris in 1999. José  went to   London 😀 and Berlin, where he was born.",
    "Café crème à Paris: née 😀😀 in 2001   —   she founded it with Tim!  Who?  Jose Cook of London.",
    # Longer than one 64-token window: answers come from several stride windows.
    " ".join(
        f"In {year} the company of {name} was founded in {city}, and {name} was born there."
        for year, name, city in [
            ("1999", "Tim Cook", "Paris"),
            ("2001", "José", "London"),
            ("1999", "Cook", "Berlin"),
            ("2001", "Tim", "Paris"),
            ("1999", "Jose", "Berlin"),
            ("2001", "Tim Cook", "London"),
        ]
    ),
]
QUESTIONS = ["Who founded the company?", "Where was she born?", "When was it founded in Berlin?"]


@pytest.fixture(scope="module")
def qa_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert_qa(tmp_path_factory.mktemp("tiny-bert-qa"))


@pytest.fixture(scope="module")
def qa(qa_path: Path, tmp_path_factory: pytest.TempPathFactory) -> QATask:
    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"))
    task = modeldeck.load("qa", model=str(qa_path), settings=settings, batch_size=8)
    assert isinstance(task, QATask)
    return task


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x))
    return z / z.sum()


def _reference_windows(tokenizer, question: str, context: str, max_len: int, stride: int):
    enc = tokenizer(
        question, context, truncation="only_second", max_length=max_len, stride=stride,
        return_overflowing_tokens=True, return_offsets_mapping=True,
    )  # fmt: skip
    for w in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(w)
        yield enc["input_ids"][w], enc["offset_mapping"][w], [s == 1 for s in seq], enc.word_ids(w)


def _plan(qa: QATask, question: str, options) -> tuple[int, int]:
    """Window length and stride: the stride is at most half the room the question leaves ([CLS] q [SEP] c [SEP])."""
    max_len, stride = qa.window_plan(options)
    room = max_len - len(qa.runtime.tokenizer(question, add_special_tokens=False)["input_ids"]) - 3
    return max_len, min(stride, room // 2)


def _brute_force(tokenizer, question, context, logits, *, max_len, stride, top_k, max_answer_len, align=True):
    """Every valid span of every window, scored from scratch; identical char spans keep their best.

    With ``align`` a span widens to the whole words of its first and last token (word spans from all windows).
    """
    found: dict[tuple[int, int], float] = {}
    null = 1.0
    windows = list(_reference_windows(tokenizer, question, context, max_len, stride))
    assert len(windows) == len(logits)
    words: dict[int, list[int]] = {}
    for _, offsets, in_context, word_ids in windows:
        for (s, e), c, word in zip(offsets, in_context, word_ids, strict=True):
            if c:
                words.setdefault(word, []).extend([s, e])
    for (ids, offsets, in_context, word_ids), (start_logits, end_logits) in zip(windows, logits, strict=True):
        assert ids[0] == tokenizer.cls_token_id
        keep = [c or i == 0 for i, c in enumerate(in_context)]  # the context and [CLS]
        ps = _softmax(np.array([s if k else -10000.0 for s, k in zip(start_logits, keep, strict=True)]))
        pe = _softmax(np.array([e if k else -10000.0 for e, k in zip(end_logits, keep, strict=True)]))
        null = min(null, ps[0] * pe[0])
        n = len(ids)
        for i in range(n):
            for j in range(n):
                if in_context[i] and in_context[j] and 0 <= j - i < max_answer_len:
                    if align:
                        span = (min(words[word_ids[i]]), max(words[word_ids[j]]))
                    else:
                        span = (offsets[i][0], offsets[j][1])
                    found[span] = max(found.get(span, -1.0), ps[i] * pe[j])
    ranked = sorted(found.items(), key=lambda item: -item[1])[:top_k]
    return ranked, null


@pytest.mark.parametrize(
    ("top_k", "max_answer_len", "align"), [(1, 15, True), (5, 3, True), (7, 1, False), (20, 30, False), (20, 4, True)]
)
def test_spans_match_a_brute_force_search(qa: QATask, top_k: int, max_answer_len: int, align: bool) -> None:
    options = qa.parse_options({"top_k": top_k, "max_answer_len": max_answer_len, "align_to_words": align})
    for context in CONTEXTS:
        for question in QUESTIONS:
            max_len, stride = _plan(qa, question, options)
            encoded = qa.preprocess({"question": question, "context": context}, options)
            raw = qa.forward([encoded])[0]
            result = qa.postprocess(raw, encoded, options)
            expected, _ = _brute_force(
                qa.runtime.tokenizer, question, context, raw,
                max_len=max_len, stride=stride, top_k=top_k, max_answer_len=max_answer_len, align=align,
            )  # fmt: skip
            assert [(a.start, a.end) for a in result] == [span for span, _ in expected]
            np.testing.assert_allclose([a.score for a in result], [s for _, s in expected], rtol=1e-9)
            assert all(a.text == context[a.start : a.end] for a in result)


def test_long_context_uses_several_windows_and_answers_from_any(qa: QATask) -> None:
    context = CONTEXTS[2]
    options = qa.parse_options({"top_k": 40})
    encoded = qa.preprocess({"question": QUESTIONS[0], "context": context}, options)
    w = encoded.windows
    assert len(w) >= 3
    # Consecutive windows overlap: the stride tokens appear in both.
    first_end = int(w.offsets[0][w.context_mask[0]][-1][1])
    second_start = int(w.offsets[1][w.context_mask[1]][0][0])
    assert second_start < first_end
    result = qa(question=QUESTIONS[0], context=context, top_k=40)
    assert result.windows == len(w)
    assert any(a.start >= first_end for a in result), "no answer came from a later window"
    assert any(a.end <= second_start for a in result), "no answer came from the first window"


def test_forward_logits_are_the_models_own(qa: QATask) -> None:
    import torch

    options = qa.default_options
    batch = [qa.preprocess({"question": q, "context": c}, options) for q, c in zip(QUESTIONS, CONTEXTS, strict=True)]
    raws = qa.forward(batch)
    for encoded, raw in zip(batch, raws, strict=True):
        assert len(raw) == len(encoded.windows)
        for w, (start, end) in enumerate(raw):
            ids = torch.from_numpy(encoded.windows.ids[w][None, :])
            types = torch.from_numpy(encoded.windows.type_ids[w][None, :])
            with torch.no_grad():
                out = qa.runtime.model(input_ids=ids, token_type_ids=types)
            np.testing.assert_allclose(start, out.start_logits[0].numpy(), atol=1e-4)
            np.testing.assert_allclose(end, out.end_logits[0].numpy(), atol=1e-4)


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


def test_offsets_point_into_the_original_context(qa: QATask) -> None:
    tokenizer = qa.runtime.tokenizer
    options = qa.default_options
    for context in CONTEXTS[:2]:
        encoded = qa.preprocess({"question": "who", "context": context}, options)
        w = encoded.windows
        for ids, offsets, mask in zip(w.ids, w.offsets, w.context_mask, strict=True):
            for token_id, (s, e), in_context in zip(ids, offsets, mask, strict=True):
                token = tokenizer.convert_ids_to_tokens(int(token_id))
                if in_context and token != tokenizer.unk_token:
                    assert _fold(context[s:e]) == token.removeprefix("##")
        result = qa(question="who", context=context, top_k=30, max_answer_len=6)
        assert len(result) == 30
        for answer in result:
            assert answer.text == context[answer.start : answer.end]
            assert answer.text == answer.text.strip() and answer.text


def test_top_k_sorted_unique_and_max_answer_len(qa: QATask) -> None:
    result = qa(question="who founded it", context=CONTEXTS[0], top_k=10, max_answer_len=2)
    assert len(result) == 10
    scores = [a.score for a in result]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    assert len({(a.start, a.end) for a in result}) == 10
    tokenizer = qa.runtime.tokenizer
    for answer in result:  # two word pieces at most; a word piece never holds a space
        assert len(tokenizer(answer.text, add_special_tokens=False)["input_ids"]) <= 2
    single = qa(question="who founded it", context=CONTEXTS[0], top_k=5, max_answer_len=1)
    whole = {(s, e) for s, e in qa.preprocess({"question": "who", "context": CONTEXTS[0]}, qa.default_options)
             .windows.offsets[0].tolist()}  # fmt: skip
    assert all((a.start, a.end) in whole for a in single)
    assert single.best == single[0] and single.text == single[0].text


def test_no_answer_score_and_when_it_wins(qa: QATask) -> None:
    question, context = QUESTIONS[0], CONTEXTS[2]
    options = qa.parse_options({"handle_impossible_answer": True, "top_k": 3})
    encoded = qa.preprocess({"question": question, "context": context}, options)
    raw = qa.forward([encoded])[0]
    max_len, stride = _plan(qa, question, options)
    ranked, null = _brute_force(
        qa.runtime.tokenizer, question, context, raw, max_len=max_len, stride=stride, top_k=3, max_answer_len=15
    )
    result = qa.postprocess(raw, encoded, options)
    assert result.no_answer_score == pytest.approx(null, rel=1e-9)
    expected = sorted([*(s for _, s in ranked), null], reverse=True)[:3]
    np.testing.assert_allclose([a.score for a in result], expected, rtol=1e-9)
    assert result.has_answer == (ranked[0][1] > null)

    # Large [CLS] logits in every window: "no answer" wins, as an empty answer ranked first.
    boosted = [(s.copy(), e.copy()) for s, e in raw]
    for (s, e), cls in zip(boosted, encoded.windows.cls_index, strict=True):
        s[cls] = e[cls] = 50.0
    won = qa.postprocess(boosted, encoded, options)
    assert won.answers[0] == Answer("", 0, 0, won.no_answer_score) and not won.has_answer and won.text == ""
    assert won.no_answer_score > 0.99 and len(won) == 3
    # Without the option the same logits still give real spans and no no-answer score.
    plain = qa.postprocess(boosted, encoded, qa.default_options)
    assert plain.has_answer and plain.no_answer_score is None


def test_call_forms_agree(qa: QATask) -> None:
    by_keywords = qa(question=QUESTIONS[0], context=CONTEXTS[0], top_k=2)
    by_mapping = qa({"question": QUESTIONS[0], "context": CONTEXTS[0]}, top_k=2)
    by_list = qa([{"question": QUESTIONS[0], "context": CONTEXTS[0]}, {"question": "x", "context": "y"}], top_k=2)
    by_questions = qa(question=[QUESTIONS[0], QUESTIONS[1]], context=CONTEXTS[0], top_k=2)
    by_pairs = qa(question=QUESTIONS[:2], context=CONTEXTS[:2], top_k=2)
    assert isinstance(by_keywords, QAResult) and isinstance(by_mapping, QAResult)
    assert isinstance(by_list, list) and len(by_list) == 2 and len(by_questions) == 2 and len(by_pairs) == 2
    spans = [(a.start, a.end) for a in by_keywords]
    for other in (by_mapping, by_list[0], by_questions[0], by_pairs[0]):
        assert [(a.start, a.end) for a in other] == spans
        np.testing.assert_allclose([a.score for a in other], [a.score for a in by_keywords], rtol=1e-4)
    assert [(a.start, a.end) for a in by_pairs[1]] == [
        (a.start, a.end) for a in qa(question=QUESTIONS[1], context=CONTEXTS[1], top_k=2)
    ]
    with pytest.raises(InputTypeError, match="2 questions and 3 contexts"):
        qa(question=QUESTIONS[:2], context=CONTEXTS)
    with pytest.raises(InputTypeError, match="not both"):
        qa({"question": "a", "context": "b"}, question="a")


def test_one_model_call_per_batch_of_windows(qa: QATask) -> None:
    calls: list[int] = []
    handle = qa.runtime.model.register_forward_hook(lambda module, args, kwargs_or_out: calls.append(1))
    try:
        batch = [qa.preprocess({"question": q, "context": CONTEXTS[2]}, qa.default_options) for q in QUESTIONS]
        windows = sum(len(item.windows) for item in batch)
        assert windows > qa.batch_size // 2
        qa.forward(batch)
    finally:
        handle.remove()
    assert len(calls) == -(-windows // qa.batch_size)  # ceil: one call per chunk of batch_size windows


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        ({"question": "", "context": "paris"}, EmptyInputError, "question"),
        ({"question": "who", "context": "   "}, EmptyInputError, "context"),
        ({"question": "who"}, InputTypeError, "'context'"),
        ({"context": "paris"}, InputTypeError, "'question'"),
        ({"question": 3, "context": "paris"}, InputTypeError, "question must be a string"),
        ({"question": "who", "context": ["paris"]}, InputTypeError, "context must be a string"),
        ({"question": "who", "context": "paris", "id": 1}, InputTypeError, "'id'"),
        ("who founded it?", InputTypeError, "'question' and 'context'"),
    ],
)
def test_bad_input_names_what_to_fix(qa: QATask, raw, error, words) -> None:
    with pytest.raises(error, match=words):
        qa(raw)


def test_keyword_call_with_a_missing_part(qa: QATask) -> None:
    with pytest.raises(InputTypeError, match="'context'"):
        qa(question="who")
    with pytest.raises(InputTypeError, match="question and a context"):
        qa()


def test_bad_items_in_a_list_get_their_own_errors(qa: QATask) -> None:
    items = [{"question": "who", "context": CONTEXTS[0]}, {"question": "who"}, {"question": "", "context": "x"}]
    results = qa.predict_each(items)
    assert isinstance(results[0], QAResult) and results[0].has_answer
    assert isinstance(results[1], InputTypeError) and isinstance(results[2], EmptyInputError)


def test_too_long_question_and_bad_options(qa: QATask) -> None:
    with pytest.raises(InputTooLargeError, match="question"):
        qa(question="who " * 80, context="paris")
    with pytest.raises(OptionError, match="max_seq_len <= 64"):
        qa(question="who", context="paris", max_seq_len=512)
    with pytest.raises(OptionError, match="valid options for qa"):
        qa(question="who", context="paris", beam=2)
    with pytest.raises(OptionError, match="top_k"):
        qa(question="who", context="paris", top_k=0)


@pytest.mark.slow
def test_megabyte_context_works_and_beyond_the_limit_is_refused(qa: QATask) -> None:
    sentence = "tim cook founded the company in paris in 1999 . "
    big = (sentence * (1_000_000 // len(sentence) + 1))[:1_000_000]
    wide = QATask(qa.info, qa.backend, batch_size=256)  # thousands of windows: fewer, larger model calls
    result = wide(question="who founded it?", context=big, top_k=2)
    assert result.windows > 1000 and len(result) == 2
    assert all(a.text == big[a.start : a.end] for a in result)
    small = QATask(qa.info, qa.backend, max_text_chars=1000)
    with pytest.raises(InputTooLargeError, match="1,000"):
        small(question="who", context=big[:1001])


def test_result_round_trips(qa: QATask) -> None:
    results = [
        qa(question="who", context=CONTEXTS[0], top_k=3),
        qa(question="who", context=CONTEXTS[0], handle_impossible_answer=True),
    ]
    for result in results:
        assert QAResult.from_dict(result.to_dict()) == result
    column = to_arrow([*results, None], QAResult)
    assert column.to_pylist() == [r.to_dict() for r in results] + [None]


def test_task_is_inferred_from_the_folder(qa_path: Path, tmp_path: Path) -> None:
    task = modeldeck.load(str(qa_path), settings=Settings.from_env({}, home=tmp_path))
    assert task.name == "qa" and "top_k" in task.describe()["options"]["properties"]


def test_a_question_with_more_words_than_the_context(qa: QATask) -> None:
    # Regression: word spans were looked up for question tokens too, past the context's last word.
    result = qa(question="who was born in paris in 1999 ?", context="Paris")
    assert all(a.text == "Paris"[a.start : a.end] for a in result.answers)
