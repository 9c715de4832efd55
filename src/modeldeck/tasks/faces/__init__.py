"""The face tasks: detection (face-detect), embeddings (face-embed) and verification (face-verify)."""

from __future__ import annotations

from ._detect import FaceDetectOptions, FaceDetectTask
from ._embed import FaceEmbedOptions, FaceEmbedTask, select_face
from ._embedders import distance, match_confidence
from ._results import EmbeddedFace, Face, FaceEmbeddings, Faces, Verification
from ._verify import FaceVerifyOptions, FaceVerifyTask

__all__ = [
    "EmbeddedFace",
    "Face",
    "FaceDetectOptions",
    "FaceDetectTask",
    "FaceEmbedOptions",
    "FaceEmbedTask",
    "FaceEmbeddings",
    "FaceVerifyOptions",
    "FaceVerifyTask",
    "Faces",
    "Verification",
    "distance",
    "match_confidence",
    "select_face",
]
