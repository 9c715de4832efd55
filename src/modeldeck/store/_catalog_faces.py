"""Face models: dlib's detectors and 128-D ResNet (offline, from pip), OpenCV's Haar cascade, FaceNet (pulled)."""

from __future__ import annotations

from ._entry import CatalogEntry
from .sources import PipSource, URLSource

__all__ = ["ENTRIES"]

_DLIB_MODELS = ("face_recognition_models",)
_DLIB_LICENSE = "CC0-1.0"

ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="dlib-hog",
        tasks=("face-detect",),
        runtime="dlib",
        # HOG is built into dlib; the package's folder brings the landmark predictors.
        source=PipSource(
            modules=_DLIB_MODELS,
            marker="models/shape_predictor_5_face_landmarks.dat",
            pip_name="face_recognition_models",
        ),
        license=_DLIB_LICENSE,
        card={
            "description": "dlib frontal face detector (HOG + linear SVM) with 5/68-point shape predictors",
            "detector": "hog",
            "landmarks": [5, 68],
            "note": "the 68-point predictor was trained on iBUG 300-W, whose licence excludes commercial use",
        },
        default_for=("face-detect",),
    ),
    CatalogEntry(
        name="dlib-cnn",
        tasks=("face-detect",),
        runtime="dlib",
        source=PipSource(
            modules=_DLIB_MODELS, marker="models/mmod_human_face_detector.dat", pip_name="face_recognition_models"
        ),
        license=_DLIB_LICENSE,
        card={
            "description": "dlib MMOD CNN face detector: more poses than HOG, about 1 s per 512x512 image on a CPU",
            "detector": "cnn",
            "landmarks": [5, 68],
        },
    ),
    CatalogEntry(
        name="opencv-haar",
        tasks=("face-detect",),
        runtime="opencv",
        source=PipSource(
            modules=("cv2",), marker="data/haarcascade_frontalface_default.xml", pip_name="opencv-python-headless"
        ),
        license="BSD-3-Clause",
        card={"description": "OpenCV Viola-Jones Haar cascade, frontal faces", "detector": "haar"},
    ),
    CatalogEntry(
        name="dlib-resnet",
        tasks=("face-embed", "face-verify"),
        runtime="dlib",
        source=PipSource(
            modules=_DLIB_MODELS,
            marker="models/dlib_face_recognition_resnet_model_v1.dat",
            pip_name="face_recognition_models",
        ),
        license=_DLIB_LICENSE,
        card={
            "description": "dlib ResNet-29 face descriptor on 150x150 chips aligned by 5 landmarks; 99.38% on LFW",
            "dim": 128,
            "metric": "euclidean",
            "threshold": 0.6,
            "detector": "hog",
        },
        default_for=("face-embed", "face-verify"),
    ),
    CatalogEntry(
        name="facenet-vggface2",
        tasks=("face-embed", "face-verify"),
        runtime="torch",
        source=URLSource(
            url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
            # The digest several independent projects pin for this release file (e.g. one that
            # checks it with `sha256sum -c` when building its image); the size matches its 107 MB.
            sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
            size=111_898_327,
        ),
        license="MIT",
        card={
            "description": "FaceNet Inception-ResNet-v1 trained on VGGFace2 (facenet-pytorch port), 160x160 input",
            "dim": 512,
            "metric": "euclidean",
            "threshold": 1.04,
            "threshold_source": "DeepFace's Facenet512 euclidean_l2 threshold; not re-tuned for this pipeline",
            "input_size": 160,
            "weights": "David Sandberg's facenet 20180402-114759 (VGGFace2), ported by facenet-pytorch (MIT)",
        },
    ),
)
