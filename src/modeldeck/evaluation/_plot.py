"""matplotlib for figures written to files: imported on first use, always on the Agg backend."""

from __future__ import annotations

from typing import Any

from ..runtimes.base import import_framework

__all__ = ["pyplot"]


def pyplot() -> Any:
    matplotlib = import_framework("matplotlib", package="matplotlib", extra="finetune", purpose="plots")
    matplotlib.use("Agg", force=True)  # files only: never open a window, never need a display
    return import_framework("matplotlib.pyplot", package="matplotlib", extra="finetune", purpose="plots")
