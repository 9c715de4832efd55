"""Detection and segmentation artifacts (YOLO ONNX, torchvision COCO weights), pulled and verified on first use."""

from __future__ import annotations

from .catalog import CatalogEntry

__all__ = ["ENTRIES"]

ENTRIES: tuple[CatalogEntry, ...] = ()
