"""face-detect with real weights: dlib HOG and CNN, OpenCV's Haar cascade; boxes, landmarks, options, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import modeldeck
from modeldeck.errors import InputDecodeError, InputTooLargeError, OptionError
from modeldeck.runtimes.opencv import decode_yunet
from modeldeck.tasks.faces import Face, Faces
from modeldeck.tasks.results import to_arrow

from .face_builders import ASTRONAUT_FACE, iou, png, save_planted_yunet


def _inside(point: tuple[float, float], box: tuple[float, ...], slack: float = 0.0) -> bool:
    return box[0] - slack <= point[0] <= box[2] + slack and box[1] - slack <= point[1] <= box[3] + slack


def test_hog_finds_the_astronaut_face_where_it_is(hog, astro):
    faces = hog(astro, upsample=0)
    assert isinstance(faces, Faces) and (faces.width, faces.height) == (512, 512)
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, ASTRONAUT_FACE) >= 0.7, face.box
    assert face.score > 0
    assert len(face.landmarks) == 5
    assert all(_inside(p, face.box) for p in face.landmarks)


def test_default_upsampling_ranks_the_real_face_first(hog, astro):
    faces = hog(astro)  # upsample=1 finds smaller faces, and here one weak false positive too
    assert len(faces) >= 1
    assert iou(faces[0].box, ASTRONAUT_FACE) >= 0.7
    assert list(faces.scores) == sorted(faces.scores, reverse=True)


def test_68_landmarks_and_none(hog, astro):
    faces68 = hog(astro, upsample=0, landmarks=68)
    points = faces68[0].landmarks
    assert len(points) == 68
    assert sum(_inside(p, faces68[0].box, slack=10) for p in points) >= 60
    assert hog(astro, upsample=0, landmarks=None)[0].landmarks == ()


def test_boxes_are_in_original_pixels_of_a_resized_image(hog, astro):
    from PIL import Image

    big = np.asarray(Image.fromarray(astro).resize((1024, 1024)))
    face = hog(big, upsample=0)[0]
    scaled = tuple(v * 2 for v in ASTRONAUT_FACE)
    assert iou(face.box, scaled) >= 0.7


def test_boxes_are_clipped_to_the_image(hog, astro):
    cropped = np.ascontiguousarray(astro[90:, 185:])  # cuts through the face's top-left corner
    faces = hog(cropped, upsample=0)
    assert len(faces) == 1  # dlib's own box starts left of and above the image here
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= cropped.shape[1] and 0 <= y1 < y2 <= cropped.shape[0]


def test_min_face_size_and_max_faces_filter(hog, astro):
    assert len(hog(astro, upsample=0, min_face_size=200)) == 0
    assert len(hog(astro, upsample=1, max_faces=1)) == 1


def test_no_face_in_the_coffee_photo(hog, coffee_photo):
    assert len(hog(coffee_photo)) == 0


def test_a_detector_specific_option_on_the_wrong_detector_is_refused(hog):
    with pytest.raises(OptionError, match="scale_factor"):
        hog.parse_options({"scale_factor": 1.2})
    with pytest.raises(OptionError):
        hog.parse_options({"upsample": 4})


def test_paths_bytes_and_arrays_give_the_same_faces(hog, astro, tmp_path):
    data = png(astro)
    path = tmp_path / "astronaut.png"
    path.write_bytes(data)
    a, b, c = hog([astro, data, str(path)], upsample=0)
    assert a == b == c


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (np.zeros((4, 4, 3), dtype=np.uint8), InputDecodeError),
        (b"\x89PNG\r\n\x1a\nnot really a png", InputDecodeError),
        (b"\xff\xd8\xff\xe0 truncated jpeg", InputDecodeError),
    ],
)
def test_bad_images_are_clear_input_errors(hog, raw, error):
    with pytest.raises(error) as info:
        hog(raw)
    assert info.value.hint


def test_a_huge_image_is_refused_before_decoding(face_settings, astro):
    small_limit = modeldeck.load("face-detect", settings=face_settings, max_image_pixels=100_000)
    with pytest.raises(InputTooLargeError, match="pixels"):
        small_limit(png(astro))  # 262,144 pixels


def test_one_bad_image_fails_alone_in_a_batch(hog, astro):
    opts = hog.parse_options({"upsample": 0})
    out = hog.run_batch([(astro, opts), (b"garbage", opts), (png(astro), opts)])
    assert isinstance(out[0], Faces) and isinstance(out[2], Faces)
    assert isinstance(out[1], InputDecodeError)
    assert out[0] == out[2]


def test_result_round_trips_through_dict_and_arrow(hog, astro):
    faces = hog(astro)
    assert Faces.from_dict(faces.to_dict()) == faces
    column = to_arrow([faces, None], Faces)
    assert Faces.from_dict(column.to_pylist()[0]) == faces
    assert faces.boxes.shape == (len(faces), 4) and not faces.boxes.flags.writeable


@pytest.mark.slow
def test_cnn_detector_finds_the_astronaut_face(face_settings, astro):
    pytest.importorskip("dlib")
    cnn = modeldeck.load("face-detect", model="dlib-cnn", settings=face_settings)
    assert cnn.detector.kind == "cnn"
    faces = cnn(astro)
    assert len(faces) == 1
    assert iou(faces[0].box, ASTRONAUT_FACE) >= 0.7
    assert 0 < faces[0].score
    assert len(faces[0].landmarks) == 5


def test_haar_cascade_finds_the_astronaut_face(face_settings, astro, coffee_photo):
    pytest.importorskip("cv2")
    haar = modeldeck.load("face-detect", model="opencv-haar", settings=face_settings)
    assert haar.detector.kind == "haar"
    faces = haar(astro)
    assert len(faces) == 1
    assert iou(faces[0].box, ASTRONAUT_FACE) >= 0.7
    assert len(faces[0].landmarks) == 5  # dlib's predictor placed on the cascade's box
    assert len(haar(coffee_photo)) == 0
    strict = haar(astro, min_neighbors=40, scale_factor=1.05)
    assert len(strict) <= len(faces)
    with pytest.raises(OptionError, match="upsample"):
        haar(astro, upsample=1)


def test_yunet_rows_decode_to_boxes_scores_and_landmarks():
    # cv2.FaceDetectorYN's documented row: x, y, w, h, then (x, y) of right eye, left eye, nose tip,
    # right and left mouth corner, then the score. No YuNet weights are available offline.
    rows = np.array([[10, 20, 30, 40, 15, 30, 30, 30, 22, 40, 16, 50, 28, 50, 0.95]], dtype=np.float32)
    boxes, scores, landmarks = decode_yunet(rows)
    assert boxes.tolist() == [[10, 20, 40, 60]]
    assert scores.tolist() == pytest.approx([0.95])
    assert landmarks.shape == (1, 5, 2) and landmarks[0, 2].tolist() == [22, 40]
    empty = decode_yunet(None)
    assert empty[0].shape == (0, 4) and empty[2].shape == (0, 5, 2)


def test_yunet_through_opencv_on_a_planted_graph(tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("onnx")
    from modeldeck.config import Settings
    from modeldeck.store import ModelStore

    settings = Settings(home=tmp_path / "home")
    graph = save_planted_yunet(tmp_path / "yunet.onnx")
    ModelStore(settings).import_model(graph, "yunet-planted", tasks=("face-detect",), runtime="opencv")
    yunet = modeldeck.load("face-detect", model="yunet-planted", settings=settings)
    assert yunet.detector.kind == "yunet"
    faces = yunet(np.zeros((64, 64, 3), dtype=np.uint8))
    assert len(faces) == 1
    face = faces[0]
    assert face.box == pytest.approx((24, 12, 48, 44)) and face.score == pytest.approx(0.9)
    expected = [((0.1 * (2 * n + 1) + 4) * 8, (0.1 * (2 * n + 2) + 3) * 8) for n in range(5)]
    assert np.allclose(face.landmarks, expected, atol=1e-4)  # YuNet's own five points
    assert len(yunet(np.zeros((64, 64, 3), dtype=np.uint8), threshold=0.95)) == 0
    with pytest.raises(OptionError, match="upsample"):
        yunet.parse_options({"upsample": 1})


def test_face_from_dict_accepts_missing_landmarks():
    face = Face.from_dict({"box": [1, 2, 3, 4], "score": 0.5})
    assert face.landmarks == () and face.area == 4.0


def test_face_models_are_found_without_importing_their_package(hog, astro):
    import sys

    hog(astro, upsample=0, landmarks=68)  # every dlib file this task reads
    # face_recognition_models imports pkg_resources on import: it is located with find_spec only.
    assert "face_recognition_models" not in sys.modules
    assert hog.describe()["detector"] == "hog"


def test_importing_the_face_tasks_loads_no_framework():
    import subprocess
    import sys

    code = (
        "import sys, modeldeck.tasks.faces, modeldeck.runtimes.dlib, modeldeck.runtimes.opencv, "
        "modeldeck.runtimes.facenet\n"
        "print(sorted(m for m in ('dlib', 'cv2', 'torch', 'onnxruntime', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
