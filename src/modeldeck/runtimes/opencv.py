"""OpenCV face detectors: the Haar cascade that ships with opencv-python, and YuNet (``cv2.FaceDetectorYN``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelNotInstalledError
from .base import import_framework

__all__ = ["HAAR_FILE", "OpenCVRuntime", "decode_yunet"]

HAAR_FILE = "haarcascade_frontalface_default.xml"


def _cv2() -> Any:
    return import_framework("cv2", package="opencv-python-headless", extra="faces", purpose="OpenCV face detectors")


def decode_yunet(faces: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split YuNet's ``(N, 15)`` rows (x, y, w, h, 5 landmark x/y pairs, score) into boxes, scores, landmarks.

    The landmarks are, in order: right eye, left eye, nose tip, right and left mouth corners
    (right and left of the person).
    """
    if faces is None or len(faces) == 0:
        return np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2))
    rows = np.asarray(faces, dtype=np.float64).reshape(-1, 15)
    x, y, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.stack([x, y, x + w, y + h], axis=1)
    return boxes, rows[:, 14].copy(), rows[:, 4:14].reshape(-1, 5, 2).copy()


class OpenCVRuntime:
    """One OpenCV face detector: ``kind`` is ``"haar"`` (an XML cascade) or ``"yunet"`` (an ONNX file)."""

    name = "opencv"
    device = "cpu"

    def __init__(self, path: Path, kind: str) -> None:
        self.cv2 = _cv2()
        self.path = Path(path)
        self.kind = kind
        if kind == "haar":
            self.model: Any = self.cv2.CascadeClassifier(str(self.path))
            if self.model.empty():
                raise ModelNotInstalledError(
                    f"OpenCV could not read the Haar cascade {str(self.path)!r}",
                    hint="reinstall opencv-python-headless (4.x ships the cascades; 5.x does not)",
                )
        elif kind == "yunet":
            # The input size is set per image before each call; 320x320 is only a placeholder.
            self.model = self.cv2.FaceDetectorYN.create(str(self.path), "", (320, 320), 0.9, 0.3, 5000)
        else:
            raise ValueError(f"kind must be 'haar' or 'yunet', got {kind!r}")

    @classmethod
    def load(cls, path: Path, *, device: str = "cpu") -> OpenCVRuntime:
        """A folder or an XML file is a Haar cascade; an ``.onnx`` file is YuNet."""
        path = Path(path)
        if path.is_dir():
            for candidate in (path / HAAR_FILE, path / "data" / HAAR_FILE):
                if candidate.is_file():
                    return cls(candidate, "haar")
            onnx = sorted(path.glob("*.onnx"))
            if onnx:
                return cls(onnx[0], "yunet")
            raise ModelNotInstalledError(
                f"no {HAAR_FILE} and no YuNet .onnx file in {str(path)!r}",
                hint="point the model at the cascade XML or the YuNet .onnx file",
            )
        return cls(path, "yunet" if path.suffix.lower() == ".onnx" else "haar")

    def detect_haar(
        self, pixels: np.ndarray, *, scale_factor: float, min_neighbors: int, min_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)`` x1, y1, x2, y2 and the cascade's level weights as scores."""
        cv2 = self.cv2
        gray = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
        gray = cv2.equalizeHist(gray)
        side = max(int(min_size), 1)
        rects, _, weights = self.model.detectMultiScale3(
            gray,
            scaleFactor=scale_factor,
            minNeighbors=min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return boxes, np.asarray(weights, dtype=np.float64).reshape(-1)

    def detect_yunet(
        self, pixels: np.ndarray, *, score_threshold: float, nms_threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, scores and 5-point landmarks from YuNet (see ``decode_yunet``)."""
        cv2 = self.cv2
        bgr = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2BGR)
        height, width = bgr.shape[:2]
        self.model.setInputSize((width, height))
        self.model.setScoreThreshold(float(score_threshold))
        self.model.setNMSThreshold(float(nms_threshold))
        _, faces = self.model.detect(bgr)
        return decode_yunet(faces)

    def memory_bytes(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None
