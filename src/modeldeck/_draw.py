"""Draw vision results on their image: class-coloured boxes, readable label tags, translucent masks.

``draw(image, result)`` takes the image in any form ``modeldeck.images.load_image`` accepts (or a
file path) and a result of ``detect``, ``segment``, ``face-detect`` or ``classify-image`` (its top
label as a tag in the top-left corner), as the result object or its ``to_dict()`` form, and returns
a new RGB ``PIL.Image``; the input is never modified.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputTypeError
from .images import load_image, resolve_paths
from .runtimes.base import import_framework

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["MASK_ALPHA", "PALETTE", "colour_for", "contrast_ratio", "draw", "text_colour"]

#: Class colours, picked to stay distinct from each other and from common photo backgrounds.
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    for h in (
        "FF3838", "2C99A8", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334",
        "00D4BB", "FF37C7", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8",
    )
)  # fmt: skip
MASK_ALPHA = 0.4
_BLACK, _WHITE = (0, 0, 0), (255, 255, 255)


def colour_for(class_id: int) -> tuple[int, int, int]:
    return PALETTE[class_id % len(PALETTE)]


def _luminance(rgb: Sequence[int]) -> float:
    """WCAG relative luminance of an sRGB colour (0 black .. 1 white)."""
    linear = [(c / 12.92) if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255.0 for v in rgb)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: Sequence[int], b: Sequence[int]) -> float:
    """WCAG contrast ratio, 1 (none) to 21 (black on white)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_colour(background: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (at least 4.5:1 for any colour)."""
    return _BLACK if contrast_ratio(background, _BLACK) >= contrast_ratio(background, _WHITE) else _WHITE


@dataclass(frozen=True, slots=True)
class _Item:
    box: tuple[float, float, float, float]
    score: float | None
    label: str
    class_id: int
    mask: Any = None  # a Mask, a mask dict, or a bool array
    landmarks: Any = None


def _get(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _top_label(result: Any) -> tuple[str, float | None] | None:
    """The best label and score of a classification result (``labels`` ranked best first), else None.

    A classification whose labels were all cut (``min_score``) gives ``("", None)``: nothing to tag.
    """
    labels = _get(result, "labels")
    if labels is None or isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        return None
    if not labels:
        return "", None
    score = _get(labels[0], "score")
    return str(_get(labels[0], "label")), None if score is None else float(score)


def _items(result: Any) -> tuple[list[_Item], tuple[int, int] | None, str]:
    """The drawable items of a result (object or dict), the image size it refers to, and its kind."""
    fields = (("instances", "instance"), ("detections", "detection"), ("faces", "face"))
    found, kind = next(((_get(result, f), k) for f, k in fields if _get(result, f) is not None), (None, ""))
    if found is None:
        raise InputTypeError(
            f"cannot draw a {type(result).__name__}: it has no detections, instances or faces, "
            "nor classification labels",
            hint="pass the result of a detect, segment, face-detect or classify-image task (or its to_dict())",
        )
    items = []
    for entry in found:
        box = tuple(float(v) for v in _get(entry, "box"))
        score = _get(entry, "score")
        items.append(
            _Item(
                box=box,  # type: ignore[arg-type]
                score=None if score is None else float(score),
                label=str(_get(entry, "label", kind)),
                class_id=int(_get(entry, "class_id", 0) or 0),
                mask=_get(entry, "mask"),
                landmarks=_get(entry, "landmarks"),
            )
        )
    width, height = _get(result, "width"), _get(result, "height")
    return items, (int(width), int(height)) if width and height else None, kind


def _mask_array(mask: Any, size: tuple[int, int]) -> np.ndarray | None:
    """A (height, width) bool array for the image of ``size``, from a Mask, its dict or an array."""
    from .tasks.vision_results import Mask

    if mask is None:
        return None
    if isinstance(mask, Mapping):
        mask = Mask.from_dict(mask)
    array = mask.decode() if isinstance(mask, Mask) else np.asarray(mask, dtype=bool)
    width, height = size
    if array.shape != (height, width):
        pil = import_framework("PIL.Image", package="pillow", extra="vision", purpose="drawing")
        resized = pil.fromarray(array.astype(np.uint8) * 255).resize((width, height), pil.Resampling.NEAREST)
        array = np.asarray(resized) > 127
    return array


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    """The pixels of ``mask`` within ``width`` pixels of its edge."""
    inner = mask.copy()
    for _ in range(max(1, width)):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def _points(landmarks: Any) -> list[tuple[float, float]]:
    """Landmarks as (x, y) points: an (N, 2) array or list, or a mapping of names to points or lists."""
    if landmarks is None:
        return []
    values = landmarks.values() if isinstance(landmarks, Mapping) else [landmarks]
    points: list[tuple[float, float]] = []
    for value in values:
        array = np.asarray(value, dtype=np.float64).reshape(-1, 2)
        points.extend((float(x), float(y)) for x, y in array)
    return points


def _load(image: Any) -> PILImage:
    if isinstance(image, (str, os.PathLike)):
        image = resolve_paths([image])[0]  # a file's bytes; base64 strings and data URLs pass through
    # load_image copies into new read-only pixels; the copy below is the canvas we draw on.
    return load_image(image).to_pil().copy()


def draw(
    image: Any,
    result: Any,
    *,
    labels: bool = True,
    scores: bool = True,
    masks: bool = True,
    line_width: int | None = None,
    font_size: int | None = None,
) -> PILImage:
    """``image`` with ``result`` drawn on it, as a new RGB PIL image.

    Boxes are coloured by class id; each gets a filled tag ("label 0.87") in its colour with black or
    white text, whichever contrasts more, kept inside the image. Segment masks are tinted at 40 %
    opacity with a solid outline; face landmarks are dots. Line width and font size scale with the
    image unless given. Boxes are rescaled if the result was computed on an image of another size.
    """
    pil = import_framework("PIL.Image", package="pillow", extra="vision", purpose="drawing")
    from PIL import ImageDraw, ImageFont

    canvas = _load(image)
    width, height = canvas.size
    top = _top_label(result)
    items, result_size, _ = ([], None, "labels") if top is not None else _items(result)
    sx, sy = (width / result_size[0], height / result_size[1]) if result_size else (1.0, 1.0)
    lw = line_width if line_width is not None else max(2, round((width + height) / 2 * 0.003))
    size = font_size if font_size is not None else max(10, round((width + height) / 2 * 0.025))
    if lw < 1 or size < 1:
        raise InputTypeError(f"line_width and font_size must be >= 1, got {lw} and {size}")

    if masks and any(item.mask is not None for item in items):
        pixels = np.array(canvas, dtype=np.float32)
        # Lowest score first, so the most confident instance ends up on top.
        for item in sorted(items, key=lambda i: i.score or 0.0):
            mask = _mask_array(item.mask, (width, height))
            if mask is None or not mask.any():
                continue
            colour = np.array(colour_for(item.class_id), dtype=np.float32)
            pixels[mask] = pixels[mask] * (1.0 - MASK_ALPHA) + colour * MASK_ALPHA
            pixels[_outline(mask, max(1, lw // 2))] = colour
        canvas = pil.fromarray(pixels.round().clip(0, 255).astype(np.uint8), mode="RGB")

    pen = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=size)
    tags = []
    for item in items:
        colour = colour_for(item.class_id)
        x1, y1, x2, y2 = item.box[0] * sx, item.box[1] * sy, item.box[2] * sx, item.box[3] * sy
        x1, x2 = sorted((min(max(x1, 0.0), width - 1.0), min(max(x2, 0.0), width - 1.0)))
        y1, y2 = sorted((min(max(y1, 0.0), height - 1.0), min(max(y2, 0.0), height - 1.0)))
        pen.rectangle((x1, y1, x2, y2), outline=colour, width=lw)
        for px, py in _points(item.landmarks):
            r = max(2, lw)
            pen.ellipse((px * sx - r, py * sy - r, px * sx + r, py * sy + r), fill=colour, outline=text_colour(colour))
        text = " ".join(
            part
            for part in (item.label if labels else "", f"{item.score:.2f}" if scores and item.score is not None else "")
            if part
        )
        if text:
            tags.append((text, colour, x1, y1))
    if top is not None:  # a classification: its best label, tagged in the top-left corner
        label, score = top
        shown = (label if labels else "", f"{score:.2f}" if scores and score is not None and label else "")
        text = " ".join(part for part in shown if part)
        if text:
            tags.append((text, colour_for(0), 0.0, 0.0))
    # Tags last, so no box line crosses a tag's text.
    for text, colour, x1, y1 in tags:
        left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
        pad = max(1, size // 6)
        tw, th = right - left + 2 * pad, bottom - top + 2 * pad
        tx = min(max(0.0, x1), max(0.0, width - tw))
        ty = y1 - th if y1 - th >= 0 else min(y1 + lw, max(0.0, height - th))  # above the box, else inside
        pen.rectangle((tx, ty, tx + tw - 1, ty + th - 1), fill=colour)
        pen.text((tx + pad - left, ty + pad - top), text, fill=text_colour(colour), font=font)
    return canvas
