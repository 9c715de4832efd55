"""Face models: dlib's detectors and 128-D ResNet (offline, from pip), FaceNet and ONNX embedders (pulled)."""

from __future__ import annotations

from .catalog import CatalogEntry

__all__ = ["ENTRIES"]

ENTRIES: tuple[CatalogEntry, ...] = ()
