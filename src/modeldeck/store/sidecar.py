"""The ``modeldeck.json`` beside a model you bring: its task, labels, preprocessing and signature.

For a file (``churn.keras``) the sidecar is ``churn.modeldeck.json`` beside it, or else a
``modeldeck.json`` in the same folder; for a directory (a SavedModel) it is ``modeldeck.json``
inside. It is validated by ``ModelSidecar``, which rejects unknown keys, so a typo is an error
and not a silently ignored setting. What it declares becomes the model's card
(``ModelInfo.card``), which is how tasks read it: they never open files themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError

__all__ = ["SIDECAR", "ModelSidecar", "Preprocessing", "TensorDecl", "find_sidecar", "read_sidecar"]

SIDECAR = "modeldeck.json"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorDecl(_Strict):
    """One input or output: ``shape`` starts with the batch dimension, ``null`` where dynamic."""

    name: str = Field(min_length=1)
    dtype: str | None = None
    shape: list[int | None] | None = None


class Preprocessing(_Strict):
    """How an image becomes the model's input tensor (for ``classify-image`` over your own model)."""

    size: int | tuple[int, int] | None = Field(default=None, description="input side, or (height, width)")
    resize: int | None = Field(default=None, description="resize the shorter side to this before a center crop")
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scale: float | None = Field(default=None, description="multiply pixel values (0-255) by this first")
    channels: Literal["RGB", "BGR"] = "RGB"
    layout: Literal["NCHW", "NHWC"] | None = None
    mode: Literal["caffe", "tf", "torch"] | None = Field(default=None, description="a Keras applications mode")


class ModelSidecar(_Strict):
    task: str | None = None
    tasks: list[str] | None = None
    runtime: str | None = None
    labels: list[str] | Literal["imagenet"] | None = Field(
        default=None, description='class names in output order, or "imagenet" for the 1000 shipped with modeldeck'
    )
    scores: Literal["logits", "probabilities", "auto"] | None = Field(
        default=None, description="classify-image: what the model outputs (default auto: a softmax output is seen)"
    )
    preprocessing: Preprocessing | None = None
    signature: str | None = Field(default=None, description="the SavedModel signature to run")
    inputs: list[TensorDecl] | None = None
    outputs: list[TensorDecl] | None = None
    license: str | None = None
    description: str | None = None

    def task_names(self) -> tuple[str, ...] | None:
        if self.tasks:
            return tuple(self.tasks)
        return (self.task,) if self.task else None

    def card(self) -> dict[str, Any]:
        """What tasks read from the model's card: everything declared except task and runtime."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"task", "tasks", "runtime"})


def find_sidecar(path: Path) -> Path | None:
    if path.is_dir():
        candidates = [path / SIDECAR]
    else:
        candidates = [path.with_name(f"{path.stem}.{SIDECAR}"), path.parent / SIDECAR]
    return next((c for c in candidates if c.is_file()), None)


def read_sidecar(path: Path) -> ModelSidecar | None:
    """The validated sidecar of the model at ``path``, or ``None`` when it has none."""
    file = find_sidecar(path)
    if file is None:
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {str(file)!r}: {exc}", hint=f"{SIDECAR} must be a JSON object") from None
    try:
        return ModelSidecar.model_validate(data)
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item["loc"]) or "(top level)"
            extra = item["type"] == "extra_forbidden"
            problems.append(f"unknown key {where!r}" if extra else f"{where}: {item['msg']}")
        valid = ", ".join(ModelSidecar.model_fields)
        raise ConfigError(f"{str(file)!r}: {'; '.join(problems)}", hint=f"valid keys: {valid}") from None
