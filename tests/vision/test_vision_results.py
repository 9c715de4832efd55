"""Vision results: sorted by score, column views, lossless dict and Arrow forms, RLE masks equal to pycocotools'."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pycocotools import mask as coco_mask

from modeldeck.tasks.results import to_arrow
from modeldeck.tasks.vision_results import DetectResult, Mask, SegmentResult


def _masks(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    masks = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        masks[i, y : y + rng.integers(2, h - y), x : x + rng.integers(2, w - x)] = True
    return masks


def test_detections_are_sorted_by_score_with_column_views():
    xyxy = np.array([[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4]], dtype=np.float64)
    result = DetectResult.from_arrays(xyxy, np.array([0.2, 0.9, 0.5]), np.array([3, 1, 3]), ["c", "a", "c"], (40, 30))
    assert [d.score for d in result] == pytest.approx([0.9, 0.5, 0.2])
    assert [d.label for d in result] == ["a", "c", "c"]
    assert result[0].box == (5.0, 5.0, 20.0, 30.0) and result[0].width == 15.0 and result[0].height == 25.0
    boxes = result.boxes
    assert boxes.xyxy.dtype == np.float32 and boxes.xyxy.shape == (3, 4) and not boxes.xyxy.flags.writeable
    np.testing.assert_array_equal(boxes.class_id, [1, 3, 3])
    assert boxes.label == ("a", "c", "c") and len(boxes) == 3
    assert (result.width, result.height) == (40, 30)
    assert DetectResult.from_dict(result.to_dict()) == result


def test_an_empty_result_keeps_its_shapes():
    result = DetectResult.from_arrays(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), [], (8, 8))
    assert len(result) == 0 and result.boxes.xyxy.shape == (0, 4)
    assert DetectResult.from_dict(result.to_dict()) == result


def test_mask_rle_equals_pycocotools_and_decodes_back():
    rng = np.random.default_rng(7)
    for mask in _masks(rng, 6, 37, 53):
        ours = Mask.encode(mask)
        theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ours.counts.encode("ascii") == theirs["counts"] and list(ours.size) == theirs["size"]
        np.testing.assert_array_equal(ours.decode(), mask)
        assert ours.area == int(mask.sum())


def test_mask_accepts_uncompressed_rle_from_coco_files():
    mask = np.zeros((4, 5), dtype=bool)
    mask[1:3, 1:4] = True
    # Column-major run lengths, starting with zeros: the form COCO annotations use for crowds.
    runs, flat, current, count = [], mask.flatten(order="F"), False, 0
    for value in flat:
        if value != current:
            runs.append(count)
            current, count = value, 0
        count += 1
    runs.append(count)
    back = Mask.from_dict({"size": [4, 5], "counts": runs})
    np.testing.assert_array_equal(back.decode(), mask)


def test_segment_result_round_trips_through_dict_and_arrow():
    rng = np.random.default_rng(3)
    masks = _masks(rng, 3, 20, 30)
    result = SegmentResult.from_arrays(
        np.array([[1, 1, 5, 5], [2, 2, 9, 9], [0, 0, 3, 3]], dtype=np.float32),
        np.array([0.3, 0.8, 0.6]),
        np.array([0, 1, 2]),
        ["x", "y", "z"],
        masks,
        (30, 20),
    )
    assert [i.label for i in result] == ["y", "z", "x"]
    np.testing.assert_array_equal(result[0].mask.decode(), masks[1])  # the mask follows its instance
    assert result.detections[0].label == "y"
    assert SegmentResult.from_dict(result.to_dict()) == result
    array = to_arrow([result, None], SegmentResult)
    assert isinstance(array.type, pa.StructType)
    rows = array.to_pylist()
    assert SegmentResult.from_dict(rows[0]) == result and rows[1] is None


def test_detect_result_round_trips_through_arrow():
    result = DetectResult.from_arrays(np.array([[0.5, 1.5, 2.5, 3.5]]), np.array([0.7]), np.array([2]), ["k"], (9, 9))
    rows = to_arrow([result], DetectResult).to_pylist()
    assert DetectResult.from_dict(rows[0]) == result
