"""dlib's face models: HOG and CNN (MMOD) detectors, 5- and 68-point shape predictors, the 128-D ResNet.

The model files ship in the ``face_recognition_models`` package. That package imports
``pkg_resources`` when imported, so it is located with ``importlib.util.find_spec`` and never
imported. dlib objects (rectangles, ``full_object_detection`` shapes) stay inside this module
except as opaque handles: callers get numpy arrays.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelNotInstalledError
from .base import import_framework

__all__ = ["DETECTOR_FILE", "PREDICTOR_FILES", "RECOGNITION_FILE", "DlibRuntime", "face_models_dir"]

DETECTOR_FILE = "mmod_human_face_detector.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
PREDICTOR_FILES = {5: "shape_predictor_5_face_landmarks.dat", 68: "shape_predictor_68_face_landmarks.dat"}
#: The chip dlib's ResNet was trained on: 150x150, 25% padding around the 5-point alignment.
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def _dlib() -> Any:
    return import_framework("dlib", package="dlib-bin", extra="faces", purpose="dlib face models")


def face_models_dir() -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models`` package (not imported)."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = Path(base) / "models"
        if (folder / RECOGNITION_FILE).is_file():
            return folder
    raise ModelNotInstalledError(
        "dlib's face model files were not found (package face_recognition_models)",
        hint="run: pip install face_recognition_models",
    )


def _model_file(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / "models" / name):
        if candidate.is_file():
            return candidate
    try:
        return face_models_dir() / name
    except ModelNotInstalledError:
        raise ModelNotInstalledError(
            f"dlib model file {name!r} is neither in {str(folder)!r} nor in face_recognition_models",
            hint="run: pip install face_recognition_models",
        ) from None


class DlibRuntime:
    """dlib face models loaded from one folder; each model is read on first use and kept.

    ``detector`` is ``"hog"`` (``get_frontal_face_detector``, built into dlib) or ``"cnn"``
    (the MMOD detector in ``mmod_human_face_detector.dat``).
    """

    name = "dlib"
    device = "cpu"

    def __init__(self, folder: Path, *, detector: str = "hog") -> None:
        if detector not in ("hog", "cnn"):
            raise ValueError(f"detector must be 'hog' or 'cnn', got {detector!r}")
        self.dlib = _dlib()
        self.folder = Path(folder)
        self.detector_kind = detector
        self._detector: Any = None
        self._predictors: dict[int, Any] = {}
        self._recognizer: Any = None
        self._loaded: list[Path] = []

    @classmethod
    def load(cls, path: Path, *, device: str = "cpu", detector: str = "hog") -> DlibRuntime:
        folder = Path(path)
        return cls(folder if folder.is_dir() else folder.parent, detector=detector)

    # -- models, read lazily ----------------------------------------------------------

    def _file(self, name: str) -> str:
        path = _model_file(self.folder, name)
        self._loaded.append(path)
        return str(path)

    @property
    def detector(self) -> Any:
        if self._detector is None:
            if self.detector_kind == "hog":
                self._detector = self.dlib.get_frontal_face_detector()
            else:
                self._detector = self.dlib.cnn_face_detection_model_v1(self._file(DETECTOR_FILE))
        return self._detector

    def predictor(self, points: int) -> Any:
        if points not in PREDICTOR_FILES:
            raise ValueError(f"dlib shape predictors have 5 or 68 points, not {points}")
        if points not in self._predictors:
            self._predictors[points] = self.dlib.shape_predictor(self._file(PREDICTOR_FILES[points]))
        return self._predictors[points]

    @property
    def recognizer(self) -> Any:
        if self._recognizer is None:
            self._recognizer = self.dlib.face_recognition_model_v1(self._file(RECOGNITION_FILE))
        return self._recognizer

    def warm_up(self, *, landmarks: Sequence[int] = (), recognition: bool = False) -> None:
        """Read the model files now, so a bad install fails at load time, not on the first image."""
        _ = self.detector
        for points in landmarks:
            self.predictor(points)
        if recognition:
            _ = self.recognizer

    # -- inference --------------------------------------------------------------------

    def detect(self, pixels: np.ndarray, *, upsample: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)`` as float ``x1, y1, x2, y2`` (dlib's inclusive corners, +1 on the far side) and scores."""
        if self.detector_kind == "hog":
            rects, scores, _ = self.detector.run(pixels, upsample, threshold)
        else:
            found = [d for d in self.detector(pixels, upsample) if d.confidence >= threshold]
            rects, scores = [d.rect for d in found], [d.confidence for d in found]
        return _rects_to_xyxy(rects), np.asarray(scores, dtype=np.float64).reshape(-1)

    def shapes(self, pixels: np.ndarray, boxes: np.ndarray, points: int) -> list[Any]:
        """One landmark shape (an opaque dlib handle) per box."""
        predictor = self.predictor(points)
        return [predictor(pixels, self._rect(box)) for box in boxes]

    def _rect(self, box: np.ndarray) -> Any:
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        return self.dlib.rectangle(x1, y1, max(x1, x2 - 1), max(y1, y2 - 1))

    @staticmethod
    def points(shape: Any) -> np.ndarray:
        """A shape's landmarks as ``(K, 2)`` float pixel coordinates."""
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64).reshape(-1, 2)

    def descriptors(
        self, images: Sequence[np.ndarray], shapes: Sequence[Sequence[Any]], *, num_jitters: int = 0
    ) -> list[np.ndarray]:
        """128-D descriptors, ``(k_i, 128)`` float32 per image, from one batched dlib call.

        dlib aligns every face itself (``get_face_chip``: 150x150, 25% padding) from its
        5-point shape, then runs its ResNet over all faces of all images together.
        """
        keep = [i for i, s in enumerate(shapes) if len(s)]
        out = [np.zeros((0, 128), dtype=np.float32) for _ in images]
        if not keep:
            return out
        dlib = self.dlib
        batch_shapes = []
        for i in keep:
            group = dlib.full_object_detections()
            group.extend(list(shapes[i]))
            batch_shapes.append(group)
        vectors = self.recognizer.compute_face_descriptor(
            [images[i] for i in keep], batch_shapes, num_jitters, CHIP_PADDING
        )
        for i, per_image in zip(keep, vectors, strict=True):
            out[i] = np.array([np.asarray(v) for v in per_image], dtype=np.float32).reshape(-1, 128)
        return out

    def descriptors_of_chips(self, chips: Sequence[np.ndarray], *, num_jitters: int = 0) -> np.ndarray:
        """``(N, 128)`` float32 descriptors of already aligned 150x150 RGB chips, in one call."""
        if not chips:
            return np.zeros((0, 128), dtype=np.float32)
        vectors = self.recognizer.compute_face_descriptor(list(chips), num_jitters)
        return np.array([np.asarray(v) for v in vectors], dtype=np.float32).reshape(-1, 128)

    def chips(self, pixels: np.ndarray, shapes: Sequence[Any], *, size: int, padding: float) -> list[np.ndarray]:
        """Faces rotated upright and scaled to ``size`` x ``size`` from their landmark shapes (dlib's alignment)."""
        if not shapes:
            return []
        group = self.dlib.full_object_detections()
        group.extend(list(shapes))
        return [np.asarray(c) for c in self.dlib.get_face_chips(pixels, group, size=size, padding=padding)]

    def memory_bytes(self) -> int | None:
        return sum(p.stat().st_size for p in set(self._loaded)) or None


def _rects_to_xyxy(rects: Sequence[Any]) -> np.ndarray:
    return np.array([(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects], dtype=np.float64).reshape(
        -1, 4
    )
