"""Cutting long inputs and mapping pieces back: pure functions, checked against simple references."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from modeldeck.tasks._chunking import merge_windows, plan_windows, split_text, token_chunks


def _random_text(rng: random.Random, n_words: int) -> str:
    words = ["alpha", "b", "gamma.", "Delta!", "é", "😀", "x" * 30, "end.\n\n", "  ", "\t", "q?"]
    return " ".join(rng.choice(words) for _ in range(n_words))


@pytest.mark.parametrize("max_chars", [1, 7, 16, 50, 200])
def test_split_text_pieces_cover_text_exactly(max_chars: int) -> None:
    rng = random.Random(max_chars)
    for _ in range(20):
        text = _random_text(rng, rng.randint(1, 80))
        pieces = split_text(text, max_chars)
        assert "".join(piece for _, piece in pieces) == text
        assert all(0 < len(piece) <= max_chars for _, piece in pieces)
        for offset, piece in pieces:
            assert text[offset : offset + len(piece)] == piece


def test_split_text_prefers_sentence_then_space_boundaries() -> None:
    text = "One two three. Four five six seven eight"
    pieces = [piece for _, piece in split_text(text, 24)]
    assert pieces[0] == "One two three. "
    pieces = [piece for _, piece in split_text("aaaa bbbb cccc dddd", 12)]
    assert pieces == ["aaaa bbbb ", "cccc dddd"]
    assert [p for _, p in split_text("abcdefghij", 4)] == ["abcd", "efgh", "ij"]


def test_split_text_short_text_is_one_piece() -> None:
    assert split_text("hello", 5) == [(0, "hello")]


@pytest.mark.parametrize(("n", "size", "overlap"), [(0, 5, 1), (5, 5, 1), (6, 5, 1), (100, 10, 3), (101, 62, 15)])
def test_plan_windows_cover_every_token_within_size(n: int, size: int, overlap: int) -> None:
    windows = plan_windows(n, size, overlap)
    covered = set()
    for start, end in windows:
        assert 0 <= start <= end <= n
        assert end - start <= size
        covered.update(range(start, end))
    assert covered == set(range(n))
    for (s1, e1), (s2, _) in itertools.pairwise(windows):
        assert s2 > s1 and e1 - s2 >= overlap


def test_merge_windows_takes_each_token_from_its_most_central_window() -> None:
    rng = np.random.default_rng(0)
    n = 40
    windows = plan_windows(n, 12, 4)
    values = [rng.random((e - s, 3)).astype(np.float32) for s, e in windows]
    merged = merge_windows(n, windows, values)
    for i in range(n):
        # Reference: brute-force over windows, larger distance wins, ties to the earlier window.
        best, best_distance = None, -1
        for w, (s, e) in enumerate(windows):
            if s <= i < e and min(i - s, e - 1 - i) > best_distance:
                best, best_distance = w, min(i - s, e - 1 - i)
        assert best is not None
        np.testing.assert_array_equal(merged[i], values[best][i - windows[best][0]])


def test_token_chunks_cut_between_words() -> None:
    word_ids = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4])
    chunks = token_chunks(word_ids, 4)
    assert chunks == [(0, 3), (3, 7), (7, 9)]
    # A word longer than a chunk is cut inside.
    assert token_chunks(np.array([0, 0, 0, 0, 0]), 2) == [(0, 2), (2, 4), (4, 5)]
    assert token_chunks(np.array([], dtype=np.int64), 3) == []
