"""``modeldeck.optimize()``: ONNX and int8 variants of a model, each verified against the original and timed.

``optimize("embed", int8=True)`` exports the task's default model to ONNX, quantizes it to int8
in a few ways, measures each variant's agreement with the original on a calibration set (or a
built-in varied sample) and its speed at batch 1 and 32, and stores the variants inside the
accuracy ``Budget`` as new versions of the same model (``NAME@onnx``, ``NAME@int8``). See
docs/optimize.md.
"""

from __future__ import annotations

from ._compare import Budget
from ._optimize import OptimizeReport, VariantReport, optimize

__all__ = ["Budget", "OptimizeReport", "VariantReport", "optimize"]
