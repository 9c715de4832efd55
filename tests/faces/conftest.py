"""Face-test fixtures: real dlib and OpenCV models from pip packages, loaded once per session."""

from __future__ import annotations

import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings

from .face_builders import astronaut, coffee, lfw_faces


@pytest.fixture(scope="session")
def astro() -> np.ndarray:
    pytest.importorskip("skimage")
    return astronaut()


@pytest.fixture(scope="session")
def coffee_photo() -> np.ndarray:
    pytest.importorskip("skimage")
    return coffee()


@pytest.fixture(scope="session")
def lfw() -> list[np.ndarray]:
    pytest.importorskip("skimage")
    return lfw_faces()


@pytest.fixture(scope="session")
def face_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A private store home: the built-in face models come from pip packages and need nothing in it."""
    return Settings(home=tmp_path_factory.mktemp("face-home"))


@pytest.fixture(scope="session")
def hog(face_settings: Settings):
    pytest.importorskip("dlib")
    return modeldeck.load("face-detect", settings=face_settings)


@pytest.fixture(scope="session")
def embedder(face_settings: Settings):
    pytest.importorskip("dlib")
    return modeldeck.load("face-embed", settings=face_settings)


@pytest.fixture(scope="session")
def verifier(face_settings: Settings):
    pytest.importorskip("dlib")
    return modeldeck.load("face-verify", settings=face_settings)
