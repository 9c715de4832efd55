"""Task registry: one module per task, imported only when a task of that name is loaded."""

from __future__ import annotations

from typing import Any

from .._registry import Registry

__all__ = ["TASKS"]

TASKS: Registry[Any] = Registry("task", entry_point_group="modeldeck.tasks")
TASKS.register("ner", "modeldeck.tasks.ner:NERTask")
TASKS.register("parse", "modeldeck.tasks.parse:ParseTask")
TASKS.register("embed", "modeldeck.tasks.embed:EmbedTask")
