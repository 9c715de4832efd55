"""Drawing results: coloured boxes, readable tags kept inside the image, tinted masks, inputs untouched."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image as PILImage

import modeldeck
from modeldeck._draw import MASK_ALPHA, PALETTE, colour_for, contrast_ratio, draw, text_colour
from modeldeck.errors import InputTypeError
from modeldeck.tasks.vision_results import DetectResult, SegmentResult

from .fake_detector import detect_task, segment_task

GREY = (128, 128, 128)


def canvas(colour=GREY, size=(200, 120)) -> np.ndarray:
    return np.full((size[1], size[0], 3), colour, dtype=np.uint8)


def one_box(box, *, label="cat", score=0.87, class_id=0, size=(200, 120)) -> DetectResult:
    return DetectResult.from_arrays(np.array([box], np.float32), np.array([score]), np.array([class_id]), [label], size)


def colours_in(pixels: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in p) for p in pixels.reshape(-1, 3)}


def test_box_outline_takes_the_class_colour_and_inside_is_untouched():
    out = np.asarray(draw(canvas(), one_box((40, 50, 120, 100), class_id=3), line_width=3))
    colour = colour_for(3)
    assert tuple(out[75, 40]) == colour and tuple(out[75, 119]) == colour  # left and right edges
    assert tuple(out[99, 80]) == colour  # bottom edge
    assert tuple(out[75, 80]) == GREY and tuple(out[10, 190]) == GREY  # inside the box, and far away


def test_classes_get_distinct_colours_from_a_fixed_palette():
    assert colour_for(0) == PALETTE[0] and colour_for(len(PALETTE)) == PALETTE[0]
    assert len(set(PALETTE)) == len(PALETTE) and colour_for(1) != colour_for(0)


@pytest.mark.parametrize("background", [(0, 0, 0), (255, 255, 255), *PALETTE, (128, 128, 128), (255, 255, 0)])
def test_text_colour_always_reaches_wcag_contrast(background):
    assert contrast_ratio(background, text_colour(background)) >= 4.5


def tag_region(out: np.ndarray, box_top: int, x1: int, colour) -> np.ndarray:
    """The label tag: rows just above the box whose pixels start with the tag colour."""
    rows = [y for y in range(box_top) if tuple(out[y, x1 + 1]) == colour]
    assert rows, "no tag above the box"
    return out[min(rows) : max(rows) + 1, x1 : x1 + 60]


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 0, 0)])
def test_label_tag_is_readable_on_white_and_on_black(background):
    for class_id in (0, 4, 13):  # a red, a yellow, a dark blue
        colour = colour_for(class_id)
        out = np.asarray(draw(canvas(background), one_box((40, 60, 160, 110), class_id=class_id), font_size=14))
        tag = tag_region(out, 60, 40, colour)
        found = colours_in(tag)
        ink = text_colour(colour)
        assert colour in found and ink in found, f"tag {colour} lacks text pixels {ink}"
        assert contrast_ratio(colour, ink) >= 4.5
        assert tag.shape[0] >= 10  # tall enough for 14 px text
        # The text's own pixels (in ink) are a real share of the tag: it was written, not a speck.
        share = np.all(tag == ink, axis=2).mean()
        assert 0.03 < share < 0.6


def test_tag_text_shows_label_and_score_as_asked():
    result = one_box((40, 60, 160, 110))
    both = np.asarray(draw(canvas(), result, font_size=14))
    label_only = np.asarray(draw(canvas(), result, scores=False, font_size=14))
    none = np.asarray(draw(canvas(), result, labels=False, scores=False, font_size=14))
    colour = colour_for(0)
    width = {name: np.all(img[40:60] == colour, axis=2).any(axis=0).sum() for name, img in
             (("both", both), ("label", label_only))}  # fmt: skip
    assert width["both"] > width["label"] > 0  # "cat 0.87" is wider than "cat"
    assert not np.all(none[40:58] == colour, axis=2).any()  # no tag at all above the box


def test_tags_stay_inside_the_image():
    size = (200, 100)
    # At the very top: no room above, so the tag goes inside the box.
    top = np.asarray(draw(canvas(size=size), one_box((10, 0, 90, 60), size=size), font_size=14))
    ink = text_colour(colour_for(0))
    assert ink in colours_in(top[2:18, 10:70])  # the tag's text, just under the box's top edge
    assert np.all(top[2:16, 11] == colour_for(0))
    # At the right edge with a long label: shifted left so it ends at the border.
    right = np.asarray(
        draw(canvas(size=size), one_box((170, 50, 199, 90), label="traffic light", size=size), font_size=14)
    )
    row = right[45]
    assert tuple(row[199]) == colour_for(0)  # the tag reaches the last column
    assert tuple(row[150]) == colour_for(0)  # and starts left of the box


def test_mask_is_tinted_in_the_class_colour_with_an_outline():
    image = canvas((200, 200, 200), size=(160, 120))
    result = segment_task()(image, confidence=0.5)
    assert len(result) == 2
    out = np.asarray(draw(image, result, labels=False, scores=False, line_width=2)).astype(int)
    first = result[0]
    colour = np.array(colour_for(first.class_id))
    mask = first.mask.decode()
    ys, xs = np.nonzero(mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    expected = np.round(np.array([200, 200, 200]) * (1 - MASK_ALPHA) + colour * MASK_ALPHA)
    assert np.abs(out[cy, cx] - expected).max() <= 1  # tinted at 40 %
    # The outline: on the mask's edge, the full class colour.
    edge_x = int(xs[ys == cy].min())
    assert tuple(out[cy, edge_x]) == tuple(colour)
    # Inside the box but outside the ellipse (a corner): untouched.
    x1, y1 = int(first.box[0]) + 4, int(first.box[1]) + 4
    assert not mask[y1, x1] and tuple(out[y1, x1]) == (200, 200, 200)
    assert not np.array_equal(out, np.asarray(draw(image, result, labels=False, scores=False, masks=False)))


def test_input_array_and_pil_image_are_not_modified():
    array = canvas()
    before = array.copy()
    pil = PILImage.fromarray(canvas((10, 20, 30)))
    pil_before = np.asarray(pil).copy()
    result = segment_task()(array, confidence=0.1)
    drawn = draw(array, result)
    draw(pil, result)
    assert np.array_equal(array, before) and np.array_equal(np.asarray(pil), pil_before)
    assert drawn is not pil and drawn.mode == "RGB" and drawn.size == (200, 120)


def test_paths_bytes_base64_and_dict_results_draw_the_same(tmp_path):
    array = canvas()
    path = tmp_path / "grey.png"
    PILImage.fromarray(array).save(path)
    result = detect_task()(path)
    reference = np.asarray(draw(array, result))
    data = path.read_bytes()
    for image in (path, str(path), data, base64.b64encode(data).decode(), PILImage.open(io.BytesIO(data))):
        assert np.array_equal(np.asarray(draw(image, result)), reference)
    assert np.array_equal(np.asarray(draw(array, result.to_dict())), reference)
    seg = segment_task()(array)
    assert np.array_equal(
        np.asarray(draw(array, SegmentResult.from_dict(seg.to_dict()))), np.asarray(draw(array, seg.to_dict()))
    )


def test_result_for_another_size_is_rescaled():
    small = one_box((10, 10, 50, 30), size=(100, 60))
    out = np.asarray(draw(canvas(size=(200, 120)), small, line_width=2, labels=False, scores=False))
    assert tuple(out[40, 20]) == colour_for(0) and tuple(out[40, 100]) == colour_for(0)
    assert tuple(out[40, 60]) == GREY


def test_sizes_scale_with_the_image():
    def outline_width(size):
        result = one_box((size[0] * 0.2, size[1] * 0.2, size[0] * 0.8, size[1] * 0.8), size=size)
        out = np.asarray(draw(canvas(size=size), result, labels=False))
        row = np.all(out[size[1] // 2] == colour_for(0), axis=1)
        return int(row[: size[0] // 2].sum())

    assert outline_width((1600, 1200)) > outline_width((200, 150)) >= 2


def test_faces_with_landmarks_are_drawn():
    faces = SimpleNamespace(
        faces=[SimpleNamespace(box=(40, 30, 120, 110), score=0.99, landmarks=[(60, 60), (100, 60), (80, 90)])],
        width=200,
        height=120,
    )
    out = np.asarray(draw(canvas(), faces, font_size=12, line_width=2))
    colour = colour_for(0)
    assert tuple(out[60, 60]) == colour and tuple(out[90, 80]) == colour  # landmark dots
    assert tuple(out[70, 40]) == colour  # the box
    named = {"faces": [{"box": [40, 30, 120, 110], "score": 0.5, "landmarks": {"left_eye": [[60, 60]]}}]}
    assert tuple(np.asarray(draw(canvas(), named, line_width=2))[60, 60]) == colour


def test_a_missing_image_file_is_named(tmp_path):
    from modeldeck.errors import InputDecodeError

    with pytest.raises(InputDecodeError, match="no image file"):
        draw(str(tmp_path / "missing.jpg"), one_box((1, 1, 5, 5)))


def test_a_result_without_boxes_is_refused():
    with pytest.raises(InputTypeError, match="detections, instances or faces"):
        draw(canvas(), {"vector": [1.0]})


def test_empty_result_gives_an_unchanged_copy():
    empty = DetectResult(detections=(), width=200, height=120)
    assert np.array_equal(np.asarray(draw(canvas(), empty)), canvas())


def test_the_package_exports_the_drawing_function():
    out = modeldeck.draw(canvas(), one_box((40, 50, 120, 100)))
    assert out.size == (200, 120) and modeldeck.draw is draw
