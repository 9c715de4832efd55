"""Image input shared by every image task: decode, orient, convert to RGB, and refuse what is unsafe.

An image input is encoded bytes (JPEG, PNG, WebP, BMP, GIF, TIFF), a base64 string (optionally a
``data:`` URL), a PIL image or a uint8 array. File paths are read only at the edges (the Python
call and the CLI, through ``read_path``), never from a string that arrived over HTTP.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import EmptyInputError, InputDecodeError, InputTooLargeError, InputTypeError
from .runtimes.base import import_framework

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "MIN_IMAGE_SIDE",
    "Image",
    "check_image",
    "check_not_url",
    "decode_base64",
    "is_image_path",
    "load_image",
    "read_path",
    "resolve_paths",
]

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
#: Below this many pixels a side, no detector or face model can see anything.
MIN_IMAGE_SIDE = 8
# Pillow's JPEG opener also returns multi-picture (MPO) files, whose format reads "MPO".
_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
# A string ending like this is a file name: base64 has no dot, so it can never be an image's base64.
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".mpo")
_ORIENTATION = 0x0112
_HINT = "send a JPEG, PNG, WebP, BMP, GIF or TIFF image"


def _pil() -> Any:
    return import_framework("PIL.Image", package="pillow", extra="vision", purpose="image input")


@dataclass(frozen=True, slots=True, eq=False)
class Image:
    """A decoded image: read-only ``pixels`` of shape ``(height, width, 3)``, uint8 RGB, EXIF-oriented."""

    pixels: np.ndarray
    format: str | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``, as PIL orders it."""
        return self.width, self.height

    def to_pil(self) -> PILImage:
        return _pil().fromarray(self.pixels, mode="RGB")


def is_image_path(value: object) -> bool:
    """True for a ``Path``, or a string that names an existing file (not base64, not a data URL)."""
    if isinstance(value, os.PathLike):
        return True
    if not isinstance(value, str) or value.startswith("data:") or len(value) > 4096 or "\n" in value:
        return False
    try:
        return Path(value).is_file()
    except OSError:
        return False


# "https://host/a.jpg", and the same after ``Path`` has folded its "//" into "/" (the CLI's inputs are Paths).
_URL = re.compile(r"(?i)(https?|ftp|s3|gs|file)://?[^/]")


def check_not_url(value: str | os.PathLike[str]) -> None:
    """Refuse an image URL with an error that says so, rather than a mangled "no such file"."""
    text = os.fspath(value)
    if isinstance(text, str) and _URL.match(text):
        raise InputTypeError(
            f"{text!r} looks like a URL; image URLs are not fetched (modeldeck reads only local files and bytes)",
            hint="download the image first (e.g. curl -o image.jpg URL) and pass the file",
        )


def read_path(value: str | os.PathLike[str]) -> bytes:
    """The bytes of an image file named at the edges (Python call or CLI)."""
    check_not_url(value)
    path = Path(value)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputDecodeError(f"no image file at {str(path)!r}", hint="check the path") from None
    except IsADirectoryError:
        raise InputTypeError(f"{str(path)!r} is a folder, not an image file", hint="pass one image file") from None
    except OSError as exc:
        raise InputDecodeError(f"cannot read the image file {str(path)!r}: {exc.strerror}") from None


def _names_a_file(value: object) -> bool:
    return is_image_path(value) or (
        isinstance(value, str) and len(value) <= 4096 and value.lower().endswith(_IMAGE_SUFFIXES)
    )


def resolve_paths(inputs: list[Any]) -> list[Any]:
    """Replace every path among ``inputs`` by the file's bytes; other inputs pass through.

    A string that ends like an image file name but names no file raises "no image file", not a
    confusing base64 error.
    """
    return [read_path(raw) if _names_a_file(raw) else raw for raw in inputs]


def decode_base64(text: str) -> bytes:
    """The bytes of a base64 image string: plain or a ``data:`` URL, URL-safe alphabet and missing padding allowed."""
    payload = text
    if text.startswith("data:"):
        header, sep, payload = text.partition(",")
        if not sep or ";base64" not in header:
            raise InputDecodeError("a data URL image must be base64 encoded", hint="use data:image/png;base64,...")
    compact = "".join(payload.split())
    if "-" in compact or "_" in compact:  # the URL-safe alphabet (RFC 4648 section 5)
        compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)  # clients often strip the padding
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InputDecodeError(
            f"a string image must be base64 (got {text[:32]!r}{'…' if len(text) > 32 else ''})",
            hint="send the file base64-encoded, or as a multipart upload; paths are read only by the Python "
            "API and the CLI",
        ) from None


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputTooLargeError(
            f"the image is {width}x{height} = {width * height:,} pixels, more than the limit of {max_pixels:,}",
            hint="downscale the image, or raise MODELDECK_MAX_IMAGE_PIXELS",
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InputDecodeError(
            f"the image is {width}x{height}; each side must be at least {MIN_IMAGE_SIDE} pixels",
            hint="send a larger image",
        )


def _to_rgb(img: PILImage) -> PILImage:
    pil = _pil()
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels become white rather than whatever colour the encoder left under them.
        rgba = img.convert("RGBA")
        background = pil.new("RGBA", rgba.size, (255, 255, 255, 255))
        return pil.alpha_composite(background, rgba).convert("RGB")
    if img.mode.startswith("I"):
        # 16-bit samples span 0..65535 (PNG, TIFF): map the full range, never stretch by the image's
        # own maximum, which would turn a dark 16-bit image white.
        array = np.asarray(img, dtype=np.float64)
        return _gray_to_rgb(pil, array / 257.0)
    if img.mode == "F":
        array = np.asarray(img, dtype=np.float64)
        low, top = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        # Floats in 0..1 are intensities; anything else is data of unknown range, shown stretched.
        scale = 255.0 if low >= 0.0 and top <= 1.0 else 255.0 / ((top - low) or 1.0)
        return _gray_to_rgb(pil, (array - (0.0 if scale == 255.0 else low)) * scale)
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _gray_to_rgb(pil: Any, levels: np.ndarray) -> PILImage:
    return pil.fromarray(np.clip(np.round(levels), 0, 255).astype(np.uint8)).convert("RGB")


def _decode_bytes(data: bytes, max_pixels: int) -> Image:
    if not data:
        raise EmptyInputError("the image is empty (0 bytes)", hint=_HINT)
    pil = _pil()
    with _pillow_errors(pil, data, max_pixels, "decoded"):
        # Pillow's own bomb check only warns below twice its limit; ours (from the header, before a
        # single pixel is decoded) is the one that applies. No warnings filter is touched here:
        # catch_warnings is process-global state, unsafe from the server's threads.
        img = pil.open(io.BytesIO(data), formats=_FORMATS)
        _check_size(img.width, img.height, max_pixels)
        fmt = img.format
        img.seek(0)  # an animated GIF or WebP: its first frame
        img.load()
    return _freeze(np.asarray(_to_rgb(_oriented(img))), fmt, owned=True)


@contextlib.contextmanager
def _pillow_errors(pil: Any, data: bytes, max_pixels: int, action: str) -> Iterator[None]:
    """Pillow's errors while opening ``data`` as the input errors they mean."""
    from PIL import UnidentifiedImageError

    try:
        yield
    except UnidentifiedImageError:
        raise InputDecodeError(
            f"the bytes are not an image in a supported format (they start with {data[:12]!r})", hint=_HINT
        ) from None
    except (pil.DecompressionBombError, pil.DecompressionBombWarning) as exc:
        raise InputTooLargeError(
            f"the image declares more pixels than is safe to decode ({exc}); the limit is {max_pixels:,} pixels",
            hint="downscale the image",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputDecodeError(f"the image could not be {action} ({exc})", hint="the file may be truncated") from None


def _oriented(img: PILImage) -> PILImage:
    """The image turned upright by its EXIF Orientation tag (a copy only when it must turn)."""
    from PIL import ImageOps

    if img.getexif().get(_ORIENTATION, 1) in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(img) or img
    return img


def _from_array(array: np.ndarray, max_pixels: int) -> Image:
    if array.dtype != np.uint8:
        raise InputTypeError(
            f"an image array must be uint8, got {array.dtype}",
            hint="scale to 0..255 and cast: (array * 255).clip(0, 255).astype('uint8')",
        )
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        array = (array[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    elif not (array.ndim == 3 and array.shape[2] == 3):
        raise InputTypeError(
            f"an image array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}",
            hint="pass one RGB image as height x width x 3",
        )
    _check_size(array.shape[1], array.shape[0], max_pixels)
    return _freeze(array, None)


def _freeze(array: np.ndarray, fmt: str | None, *, owned: bool = False) -> Image:
    """Read-only contiguous pixels; a caller's array is copied (``owned``: a fresh one from Pillow is not)."""
    pixels = np.ascontiguousarray(array, dtype=np.uint8)
    if not owned and (pixels is array or pixels.base is not None):
        pixels = pixels.copy()
    pixels.flags.writeable = False
    return Image(pixels=pixels, format=fmt)


def check_image(raw: object, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
    """Check one encoded image input without decoding its pixels: its type, base64, format and size.

    The server calls this before queueing, so a bad or oversized image is refused at once; the
    header gives the size, so the cost is a few kilobytes read whatever the image declares.
    """
    if isinstance(raw, str):
        if not raw.strip():
            raise EmptyInputError("the image string is empty", hint="send the image base64-encoded")
        raw = decode_base64(raw)
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise InputTypeError(
            f"an image must be bytes or a base64 string, got {type(raw).__name__}",
            hint="send the file base64-encoded, or as a multipart upload",
        )
    data = bytes(raw)
    if not data:
        raise EmptyInputError("the image is empty (0 bytes)", hint=_HINT)
    pil = _pil()
    with _pillow_errors(pil, data, max_pixels, "read"), pil.open(io.BytesIO(data), formats=_FORMATS) as img:
        _check_size(img.width, img.height, max_pixels)


def load_image(raw: object, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image:
    """Decode one image input (bytes, base64 string, PIL image, uint8 array or ``Image``) to RGB.

    Raises an ``InputError`` that names the problem: empty, not an image, truncated, too many
    pixels, too small, or an unsupported type.
    """
    if isinstance(raw, Image):
        _check_size(raw.width, raw.height, max_pixels)
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(raw), max_pixels)
    if isinstance(raw, str):
        if not raw.strip():
            raise EmptyInputError("the image string is empty", hint="send the image base64-encoded")
        check_not_url(raw)
        return _decode_bytes(decode_base64(raw), max_pixels)
    if isinstance(raw, np.ndarray):
        return _from_array(raw, max_pixels)
    pil_module = _pil() if type(raw).__module__.startswith("PIL.") else None
    if pil_module is not None and isinstance(raw, pil_module.Image):
        _check_size(raw.width, raw.height, max_pixels)
        return _freeze(np.asarray(_to_rgb(_oriented(raw))), raw.format, owned=True)
    raise InputTypeError(
        f"an image must be bytes, a base64 string, a PIL image or a uint8 array, got {type(raw).__name__}",
        hint="pass a file path (Python and CLI), the file's bytes, or a decoded image",
    )
