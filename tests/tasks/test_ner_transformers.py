"""NER with a Hugging Face token classifier: a tiny random BERT built in conftest, real loading code."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from modeldeck.tasks.ner import aggregate_entities
from modeldeck.tasks.results import NERResult

from ..support import TINY_LABELS

TEXTS = [
    "José  plays in   New York 😀 with Tim Cook.",
    "tim cook visited paris, and berlin!",
    "Playing   in London... 😀😀 José's cat",
    "x",
    "\u00e9\u0301 combining accents é and a tab\tin paris",
]


def _reference_entities(text, offsets, probs, id2label, word_ids):
    """Brute force: a word range is an entity iff it is maximal among ranges that one entity may span."""
    words = []
    for i, word in enumerate(word_ids):
        if word < 0:
            continue
        if words and words[-1][0] == word and i == words[-1][3] + 1:
            words[-1][2] = max(words[-1][2], int(offsets[i][1]))
            words[-1][3] = i
        else:
            label = id2label[int(np.argmax(probs[i]))]
            words.append([word, int(offsets[i][0]), int(offsets[i][1]), i, label, float(np.max(probs[i]))])

    def tag_kind(label):
        if label == "O":
            return "O", None
        if label[:2] in ("B-", "I-", "E-", "S-"):
            return label[0], label[2:]
        return "I", label

    def joins(a, b):  # may word b continue the entity that word a is in?
        ta, ka = tag_kind(words[a][4])
        tb, kb = tag_kind(words[b][4])
        return ka is not None and ka == kb and ta not in "ES" and tb in "IE"

    found = set()
    for i in range(len(words)):
        for j in range(i, len(words)):
            if tag_kind(words[i][4])[1] is None:
                continue
            if not all(joins(k, k + 1) for k in range(i, j)):
                continue
            if i > 0 and joins(i - 1, i):
                continue
            if j + 1 < len(words) and joins(j, j + 1):
                continue
            score = sum(words[k][5] for k in range(i, j + 1)) / (j - i + 1)
            found.add((tag_kind(words[i][4])[1], words[i][1], words[j][2], round(score, 6)))
    return found


def _planted_probs(rng: np.random.Generator, n: int, labels: int) -> np.ndarray:
    chosen = rng.integers(0, labels, size=n)
    probs = rng.dirichlet(np.ones(labels), size=n)
    probs[np.arange(n), chosen] += 1.0
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    "id2label", [TINY_LABELS, {0: "O", 1: "PER", 2: "LOC"}, {0: "O", 1: "S-PER", 2: "B-LOC", 3: "E-LOC", 4: "I-LOC"}]
)
def test_aggregation_matches_brute_force_on_planted_probabilities(tiny_ner, id2label) -> None:
    rng = np.random.default_rng(42)
    for text in TEXTS:
        tokens = tiny_ner.runtime.tokenize(text)
        for _ in range(30):
            probs = _planted_probs(rng, len(tokens), len(id2label))
            spans = aggregate_entities(tokens.offsets, probs, id2label, tokens.word_ids)
            got = {(label, start, end, round(score, 6)) for label, start, end, score in spans}
            assert got == _reference_entities(text, tokens.offsets, probs, id2label, tokens.word_ids)


def test_aggregation_joins_sub_words_and_uses_first_piece() -> None:
    # "playing" = play ##ing ; "paris"
    offsets = np.array([[0, 4], [4, 7], [8, 13]])
    word_ids = np.array([0, 0, 1])
    probs = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.2, 0.1, 0.7]], dtype=np.float32)
    spans = aggregate_entities(offsets, probs, {0: "O", 1: "B-PER", 2: "I-PER"}, word_ids)
    assert [(label, s, e) for label, s, e, _ in spans] == [("PER", 0, 13)]
    assert spans[0][3] == pytest.approx((0.8 + 0.7) / 2)


def test_tokenizer_offsets_map_to_original_text(tiny_ner) -> None:
    text = "José  plays 😀 in   Paris."
    tokens = tiny_ner.runtime.tokenize(text)
    pieces = [text[s:e] for s, e in tokens.offsets]
    assert pieces == ["José", "play", "s", "😀", "in", "Paris", "."]


@pytest.mark.parametrize("text", TEXTS)
def test_random_model_entities_have_exact_offsets(tiny_ner, text: str) -> None:
    result = tiny_ner(text)
    for entity in result:
        assert 0 <= entity.start < entity.end <= len(text)
        assert text[entity.start : entity.end] == entity.text
        assert entity.label in {"PER", "LOC"}
        assert entity.score is not None and 0.0 <= entity.score <= 1.0
    assert NERResult.from_dict(result.to_dict()) == result


def test_random_model_produces_entities(tiny_ner) -> None:
    results = tiny_ner(TEXTS)
    assert sum(len(r) for r in results) > 0


def test_runtime_reports_limits_and_memory(tiny_ner) -> None:
    assert tiny_ner.runtime.max_tokens == 64
    assert tiny_ner.runtime.max_content_tokens == 62
    assert tiny_ner.runtime.memory_bytes() > 0
    assert tiny_ner.describe()["runtime"]["name"] == "transformers"
    assert tiny_ner.labels == ("LOC", "PER")


LONG = " ".join(["the cat went to paris with tim ."] * 25)  # ~200 tokens, the model takes 62 at once


def test_long_text_windows_match_each_window_run_alone(tiny_ner) -> None:
    """Merged probabilities equal the model run alone on the window where the token is most central."""
    torch = pytest.importorskip("torch")
    encoded = tiny_ner.preprocess(LONG, tiny_ner.default_options)
    tokens, windows = encoded.model_input.tokens, encoded.model_input.windows
    assert len(tokens) > 64 and len(windows) > 2
    (merged,) = tiny_ner.forward([encoded])
    assert merged.shape == (len(tokens), len(TINY_LABELS))

    tokenizer, model = tiny_ner.runtime.tokenizer, tiny_ner.runtime.model
    alone = []
    with torch.no_grad():
        for start, end in windows:
            ids = [tokenizer.cls_token_id, *tokens.ids[start:end].tolist(), tokenizer.sep_token_id]
            logits = model(input_ids=torch.tensor([ids])).logits[0, 1:-1]
            alone.append(torch.softmax(logits, -1).numpy())
    for i in range(len(tokens)):
        central = max(
            (w for w, (s, e) in enumerate(windows) if s <= i < e),
            key=lambda w: (min(i - windows[w][0], windows[w][1] - 1 - i), -w),
        )
        np.testing.assert_allclose(merged[i], alone[central][i - windows[central][0]], atol=1e-5)


def test_long_text_is_not_truncated(tiny_ner, monkeypatch) -> None:
    """Planted logits (LOC for 'paris', else O) find every 'paris', including those past 64 tokens."""
    torch = pytest.importorskip("torch")
    model = tiny_ner.runtime.model
    paris = tiny_ner.runtime.tokenizer.convert_tokens_to_ids("paris")

    def planted(input_ids, attention_mask=None, **_):
        logits = torch.zeros((*input_ids.shape, len(TINY_LABELS)))
        logits[..., 0] = 5.0
        logits[..., 3] = torch.where(input_ids == paris, 10.0, 0.0)
        return SimpleNamespace(logits=logits)

    monkeypatch.setattr(model, "forward", planted)
    result = tiny_ner([LONG, "paris"])
    expected = [i for i in range(len(LONG)) if LONG.startswith("paris", i)]
    assert [e.start for e in result[0]] == expected
    assert all(e.label == "LOC" and e.text == "paris" for e in result[0])
    assert result[1].spans == ((0, 5),)
