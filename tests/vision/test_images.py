"""Image input: every format, orientation and colour mode, base64 and arrays, and what must be refused."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageFile

from modeldeck.errors import EmptyInputError, InputDecodeError, InputTooLargeError, InputTypeError
from modeldeck.images import MIN_IMAGE_SIDE, Image, is_image_path, load_image, read_path, resolve_paths

from .fake_detector import detect_task

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def encode(img: PILImage.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def halves(width: int = 40, height: int = 20, left: tuple[int, ...] = RED, right: tuple[int, ...] = BLUE):
    """Left half one colour, right half another: shows both orientation and colour."""
    img = PILImage.new("RGB", (width, height), left)
    img.paste(right, (width // 2, 0, width, height))
    return img


def near(pixel: np.ndarray, colour: tuple[int, ...], tol: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tol))


def png_header(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` and whose data is a few bytes: no pixels exist."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# --- formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params", "tol", "expected"),
    [
        ("PNG", {}, 0, "PNG"),
        ("JPEG", {"quality": 95}, 12, "JPEG"),
        ("WEBP", {"lossless": True}, 0, "WEBP"),
        ("WEBP", {"quality": 90}, 16, "WEBP"),
        ("BMP", {}, 0, "BMP"),
        ("TIFF", {}, 0, "TIFF"),
        ("TIFF", {"compression": "tiff_lzw"}, 0, "TIFF"),
        ("GIF", {}, 0, "GIF"),
    ],
)
def test_every_format_decodes_to_rgb_uint8(fmt, params, tol, expected):
    image = load_image(encode(halves(), fmt, **params))
    assert isinstance(image, Image) and image.format == expected
    assert image.pixels.shape == (20, 40, 3) and image.pixels.dtype == np.uint8
    assert image.size == (40, 20) and (image.width, image.height) == (40, 20)
    assert near(image.pixels[10, 5], RED, tol) and near(image.pixels[10, 35], BLUE, tol)


def test_pixels_are_read_only():
    image = load_image(encode(halves(), "PNG"))
    with pytest.raises(ValueError):
        image.pixels[0, 0] = 0
    assert image.to_pil().size == (40, 20)


def test_animated_gif_gives_its_first_frame():
    frames = [PILImage.new("RGB", (32, 32), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert PILImage.open(io.BytesIO(data)).n_frames == 3
    image = load_image(data)
    assert near(image.pixels[16, 16], RED, 0) and image.format == "GIF"


def test_multi_picture_jpeg_decodes_its_first_picture():
    data = encode(halves(), "MPO", save_all=True, append_images=[halves(left=GREEN)])
    image = load_image(data)
    assert image.format == "MPO" and near(image.pixels[10, 5], RED)


def test_animated_webp_gives_its_first_frame():
    frames = [PILImage.new("RGB", (32, 32), colour) for colour in (GREEN, RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=50)
    assert near(load_image(data).pixels[16, 16], GREEN, 0)


# --- EXIF orientation ----------------------------------------------------------------------------


def jpeg_with_orientation(orientation: int) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    return encode(halves(), "JPEG", quality=95, exif=exif.tobytes())


def test_orientation_6_rotates_clockwise():
    # Tag 6: the stored image must be turned 90 degrees clockwise, so its left half ends up on top.
    data = jpeg_with_orientation(6)
    assert PILImage.open(io.BytesIO(data)).getexif()[0x0112] == 6
    image = load_image(data)
    assert image.pixels.shape == (40, 20, 3)
    assert near(image.pixels[5, 10], RED) and near(image.pixels[35, 10], BLUE)


def test_orientation_8_rotates_counter_clockwise():
    image = load_image(jpeg_with_orientation(8))
    assert image.pixels.shape == (40, 20, 3)
    assert near(image.pixels[5, 10], BLUE) and near(image.pixels[35, 10], RED)


def test_orientation_3_turns_upside_down_and_1_keeps():
    assert near(load_image(jpeg_with_orientation(3)).pixels[10, 5], BLUE)
    assert near(load_image(jpeg_with_orientation(1)).pixels[10, 5], RED)


def test_orientation_applies_to_pil_input_too():
    pil = PILImage.open(io.BytesIO(jpeg_with_orientation(6)))
    assert load_image(pil).pixels.shape == (40, 20, 3)


# --- colour modes ----------------------------------------------------------------------------------


def test_grayscale_becomes_three_equal_channels():
    gray = PILImage.new("L", (16, 16), 77)
    pixels = load_image(encode(gray, "PNG")).pixels
    assert pixels.shape == (16, 16, 3) and np.all(pixels == 77)


def test_one_bit_image_becomes_black_and_white():
    img = PILImage.new("1", (16, 16), 0)
    img.paste(1, (8, 0, 16, 16))
    pixels = load_image(encode(img, "PNG")).pixels
    assert np.all(pixels[:, :8] == 0) and np.all(pixels[:, 8:] == 255)


def test_palette_with_transparency_is_composited_over_white():
    img = PILImage.new("P", (16, 16), 0)
    img.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    img.paste(1, (0, 0, 8, 16))
    data = encode(img, "PNG", transparency=0)  # palette index 0 (black) is transparent
    pixels = load_image(data).pixels
    assert near(pixels[8, 2], RED, 0) and near(pixels[8, 12], (255, 255, 255), 0)


def test_rgba_is_composited_over_white():
    img = PILImage.new("RGBA", (16, 16), (0, 0, 0, 0))
    img.paste((0, 0, 0, 128), (0, 0, 8, 16))
    img.paste((0, 0, 255, 255), (8, 0, 16, 16))
    pixels = load_image(encode(img, "PNG")).pixels
    assert near(pixels[8, 2], (127, 127, 127), 1) and near(pixels[8, 12], BLUE, 0)


def test_la_image_is_composited_over_white():
    img = PILImage.new("LA", (16, 16), (0, 0))
    assert near(load_image(encode(img, "PNG")).pixels[4, 4], (255, 255, 255), 0)


def test_cmyk_jpeg_is_converted():
    cmyk = PILImage.new("CMYK", (32, 32), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    data = encode(cmyk, "JPEG", quality=95)
    assert PILImage.open(io.BytesIO(data)).mode == "CMYK"
    assert near(load_image(data).pixels[16, 16], RED, 16)


def test_sixteen_bit_png_keeps_its_brightness():
    # Regression: 16-bit grayscale was stretched by the image's own maximum, so a mid-grey 16-bit
    # image came out white. 16-bit values map to 8-bit by the full range (v / 257).
    half = PILImage.new("I;16", (16, 16), 32896)
    pixels = load_image(encode(half, "PNG")).pixels
    assert np.all(pixels == 128)
    ramp = np.linspace(0, 65535, 16 * 16).astype(np.uint16).reshape(16, 16)
    pixels = load_image(encode(PILImage.fromarray(ramp), "PNG")).pixels
    assert pixels[0, 0, 0] == 0 and pixels[-1, -1, 0] == 255
    assert np.all(np.diff(pixels[..., 0].ravel().astype(int)) >= 0)


def test_sixteen_bit_rgb_png():
    array = np.zeros((16, 16, 3), dtype=np.uint16)
    array[..., 0] = 65535
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in array)
    header = png_header(16, 16, bit_depth=16, colour_type=2)
    data = header[: header.index(b"IDAT") - 4]
    idat = zlib.compress(raw)
    data += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    data += struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    assert near(load_image(data).pixels[8, 8], RED, 0)


def test_float_tiff_in_unit_range():
    array = np.full((16, 16), 0.5, dtype=np.float32)
    pixels = load_image(encode(PILImage.fromarray(array, mode="F"), "TIFF")).pixels
    assert np.all(np.abs(pixels.astype(int) - 128) <= 1)


# --- base64 and data URLs -------------------------------------------------------------------------


def test_base64_string_and_data_url_decode_the_same():
    data = encode(halves(), "PNG")
    text = base64.b64encode(data).decode()
    plain = load_image(text).pixels
    url = load_image("data:image/png;base64," + text).pixels
    wrapped = load_image("\n".join(text[i : i + 76] for i in range(0, len(text), 76))).pixels
    unpadded = load_image(text.rstrip("=")).pixels
    urlsafe = load_image(base64.urlsafe_b64encode(data).decode()).pixels
    reference = load_image(data).pixels
    for pixels in (plain, url, wrapped, unpadded, urlsafe):
        assert np.array_equal(pixels, reference)


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("not base64 at all!", InputDecodeError, "base64"),
        ("data:image/png,rawbytes", InputDecodeError, "data URL"),
        ("data:image/png;base64,", EmptyInputError, "empty"),
        ("   ", EmptyInputError, "empty"),
        (base64.b64encode(b"hello, I am a text file").decode(), InputDecodeError, "not an image"),
    ],
)
def test_bad_strings_are_refused(text, error, words):
    with pytest.raises(error) as info:
        load_image(text)
    assert words in str(info.value) and info.value.hint


# --- PIL images and arrays ----------------------------------------------------------------------------


def test_pil_image_input_in_any_mode():
    for mode in ("RGB", "L", "RGBA", "P", "CMYK", "I;16"):
        pixels = load_image(halves().convert(mode)).pixels
        assert pixels.shape == (20, 40, 3) and pixels.dtype == np.uint8


def test_arrays_of_every_accepted_shape():
    rgb = np.asarray(halves())
    assert np.array_equal(load_image(rgb).pixels, rgb)
    gray = np.full((12, 10), 9, dtype=np.uint8)
    assert load_image(gray).pixels.shape == (12, 10, 3) and np.all(load_image(gray).pixels == 9)
    assert np.all(load_image(gray[:, :, None]).pixels == 9)
    rgba = np.zeros((12, 10, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent black: white
    assert np.all(load_image(rgba).pixels == 255)
    rgba[..., 3] = 255
    assert np.all(load_image(rgba).pixels == 0)


def test_array_input_is_copied_not_aliased():
    rgb = np.asarray(halves()).copy()
    image = load_image(rgb)
    rgb[:] = 0
    assert near(image.pixels[10, 5], RED, 0)
    flipped = load_image(np.asarray(halves())[:, ::-1])
    assert near(flipped.pixels[10, 5], BLUE, 0) and flipped.pixels.flags.c_contiguous


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((16, 16, 3), dtype=np.float32), "uint8"),
        (np.zeros((16, 16, 3), dtype=np.uint16), "uint8"),
        (np.zeros((16, 16, 3), dtype=bool), "uint8"),
        (np.zeros((16, 16, 2), dtype=np.uint8), "shape"),
        (np.zeros((16, 16, 5), dtype=np.uint8), "shape"),
        (np.zeros((2, 16, 16, 3), dtype=np.uint8), "shape"),
        (np.zeros(16, dtype=np.uint8), "shape"),
    ],
)
def test_wrong_arrays_are_refused(array, words):
    with pytest.raises(InputTypeError) as info:
        load_image(array)
    assert words in str(info.value)


def test_an_image_object_passes_through():
    image = load_image(encode(halves(), "PNG"))
    assert load_image(image) is image
    with pytest.raises(InputTooLargeError):
        load_image(image, max_pixels=100)


@pytest.mark.parametrize("value", [None, 42, 3.5, ["a"], {"image": "x"}, object()])
def test_other_types_are_refused(value):
    with pytest.raises(InputTypeError):
        load_image(value)


# --- bad bytes and limits ---------------------------------------------------------------------------


def test_empty_bytes():
    for empty in (b"", bytearray(), memoryview(b"")):
        with pytest.raises(EmptyInputError):
            load_image(empty)


def test_corrupt_bytes_text_file_and_truncated_jpeg():
    rng = np.random.default_rng(0)
    with pytest.raises(InputDecodeError, match="not an image"):
        load_image(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(InputDecodeError, match="not an image"):
        load_image(b"name,score\nalice,3\nbob,4\n" * 20)
    photo = encode(PILImage.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(InputDecodeError, match=r"truncated|decoded"):
        load_image(photo[: len(photo) // 2])
    png = encode(halves(), "PNG")
    with pytest.raises(InputDecodeError):
        load_image(png[:60])  # the header survives, the pixels do not


def test_svg_and_pdf_are_not_accepted():
    with pytest.raises(InputDecodeError):
        load_image(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    with pytest.raises(InputDecodeError):
        load_image(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")


@pytest.mark.parametrize("size", [(1, 1), (MIN_IMAGE_SIDE - 1, 100), (100, 2)])
def test_tiny_images_are_refused(size):
    with pytest.raises(InputDecodeError, match="at least"):
        load_image(encode(PILImage.new("RGB", size), "PNG"))
    with pytest.raises(InputDecodeError, match="at least"):
        load_image(np.zeros((size[1], size[0], 3), dtype=np.uint8))


def test_smallest_allowed_side_is_accepted():
    assert load_image(encode(PILImage.new("RGB", (MIN_IMAGE_SIDE, MIN_IMAGE_SIDE)), "PNG")).size == (8, 8)


@pytest.fixture
def no_pixel_decoding(monkeypatch):
    """Fail the test if any image's pixels are decoded."""
    calls = []

    def refuse(self, *args, **kwargs):
        calls.append(self.size)
        raise AssertionError(f"pixels of a {self.size} image were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    return calls


def test_huge_png_is_refused_from_its_header(no_pixel_decoding):
    data = png_header(20_000, 20_000)
    assert len(data) < 200
    with pytest.raises(InputTooLargeError) as info:
        load_image(data)
    assert "400000000" in str(info.value) and "50,000,000" in str(info.value)
    assert no_pixel_decoding == []


def test_real_compressed_bomb_is_refused_before_decoding(no_pixel_decoding):
    # A genuine, valid 9000x9000 one-bit PNG of a few kilobytes: 81 MP, over the default 50 MP.
    data = encode(PILImage.new("1", (9000, 9000), 0), "PNG", optimize=True)
    assert len(data) < 100_000
    with pytest.raises(InputTooLargeError, match="81,000,000"):
        load_image(data)
    assert no_pixel_decoding == []


def test_pixel_limit_is_configurable():
    data = encode(PILImage.new("RGB", (100, 100)), "PNG")
    with pytest.raises(InputTooLargeError, match="10,000 pixels"):
        load_image(data, max_pixels=9_999)
    assert load_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(InputTooLargeError):
        load_image(np.zeros((100, 100, 3), dtype=np.uint8), max_pixels=9_999)
    with pytest.raises(InputTooLargeError):
        load_image(PILImage.new("RGB", (100, 100)), max_pixels=9_999)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_limit_above_pillows_own_is_honoured():
    # Pillow warns above ~89 MP; a server configured for more must not refuse a 90 MP image because of it.
    data = png_header(10_000, 9_000)
    with pytest.raises(InputTooLargeError, match="90,000,000"):
        load_image(data)  # default 50 MP limit: refused by ours, with the size in the message
    with pytest.raises(InputDecodeError):  # allowed by the limit, then the (fake) pixel data is short
        load_image(data, max_pixels=100_000_000)


# --- paths: only at the edges ---------------------------------------------------------------------------


@pytest.fixture
def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    halves(64, 48).save(path)
    return path


def test_paths_are_detected_and_read(photo_file, tmp_path):
    assert is_image_path(photo_file) and is_image_path(str(photo_file))
    assert not is_image_path(base64.b64encode(photo_file.read_bytes()).decode())
    assert not is_image_path("data:image/png;base64,AAAA")
    assert read_path(photo_file) == photo_file.read_bytes()
    resolved = resolve_paths([str(photo_file), b"raw", "QUJD"])
    assert resolved == [photo_file.read_bytes(), b"raw", "QUJD"]
    with pytest.raises(InputDecodeError, match="no image file"):
        read_path(tmp_path / "missing.png")
    with pytest.raises(InputTypeError, match="folder"):
        read_path(tmp_path)


def test_a_missing_file_name_says_so_rather_than_base64(tmp_path):
    # Regression: a mistyped path fell through to base64 decoding and reported "must be base64".
    with pytest.raises(InputDecodeError, match="no image file"):
        resolve_paths([str(tmp_path / "missing.jpg")])
    with pytest.raises(InputDecodeError, match="no image file"):
        resolve_paths(["street.JPEG"])


@pytest.mark.parametrize("url", ["https://example.com/a.jpg", "http://example.com/street.png?size=2"])
def test_an_image_url_says_urls_are_not_fetched(url):
    # Regression: Path() folded the "//" and the user read "no image file at 'https:/example.com/a.jpg'".
    task = detect_task()
    for given in (url, Path(url)):  # a Python string, and the Path the CLI makes of an argument
        with pytest.raises(InputTypeError, match="looks like a URL") as caught:
            task(given)
        assert "download the image first" in str(caught.value)
    out = task.run_batch([(url, task.default_options)])  # the server and the jobs: a string there is base64
    assert isinstance(out[0], InputTypeError) and "URL" in str(out[0])


def test_task_call_accepts_paths(photo_file):
    task = detect_task()
    by_str, by_path = task(str(photo_file)), task(photo_file)
    assert (by_str.width, by_str.height) == (64, 48) and by_str.to_dict() == by_path.to_dict()
    assert [r.width for r in task([photo_file, str(photo_file)])] == [64, 64]
    assert [r.width for r in task.predict([photo_file])] == [64]


def test_predict_each_isolates_a_bad_path(photo_file, tmp_path):
    task = detect_task()
    results = task.predict_each([photo_file, tmp_path / "missing.png", tmp_path, str(photo_file)])
    assert results[0].width == 64 and results[3].width == 64
    assert isinstance(results[1], InputDecodeError) and isinstance(results[2], InputTypeError)


def test_run_batch_never_reads_paths(photo_file):
    # The server and the jobs call run_batch: a string there is base64, never a file name.
    task = detect_task()
    out = task.run_batch([(str(photo_file), task.default_options), (photo_file.read_bytes(), task.default_options)])
    assert isinstance(out[0], InputDecodeError) and "base64" in str(out[0])
    assert out[1].width == 64
    assert task.detector.seen == [(64, 48)]


# --- real photographs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
def test_real_photos_round_trip(name):
    skimage_data = pytest.importorskip("skimage.data")
    array = getattr(skimage_data, name)()
    original = PILImage.fromarray(array)
    assert np.array_equal(load_image(encode(original, "PNG")).pixels, array)
    jpeg = load_image(encode(original, "JPEG", quality=92)).pixels
    assert jpeg.shape == array.shape
    assert np.abs(jpeg.astype(int) - array.astype(int)).mean() < 4.0
    assert np.array_equal(load_image(base64.b64encode(encode(original, "WEBP", lossless=True)).decode()).pixels, array)
