"""Task registry: one module per task, imported only when a task of that name is loaded."""

from __future__ import annotations

from typing import Any

from .._registry import Registry

__all__ = ["TASKS"]

TASKS: Registry[Any] = Registry("task", entry_point_group="modeldeck.tasks")
# Language
TASKS.register("ner", "modeldeck.tasks.ner:NERTask")
TASKS.register("parse", "modeldeck.tasks.parse:ParseTask")
TASKS.register("embed", "modeldeck.tasks.embed:EmbedTask")
TASKS.register("classify", "modeldeck.tasks.classify:ClassifyTask")
TASKS.register("qa", "modeldeck.tasks.qa:QATask")
TASKS.register("generate", "modeldeck.tasks.generate:GenerateTask")
TASKS.register("chat", "modeldeck.tasks.generate:ChatTask")
TASKS.register("translate", "modeldeck.tasks.translate:TranslateTask")
# Vision
TASKS.register("detect", "modeldeck.tasks.detect:DetectTask")
TASKS.register("segment", "modeldeck.tasks.detect:SegmentTask")
# Faces
TASKS.register("face-detect", "modeldeck.tasks.faces:FaceDetectTask")
TASKS.register("face-embed", "modeldeck.tasks.faces:FaceEmbedTask")
TASKS.register("face-verify", "modeldeck.tasks.faces:FaceVerifyTask")
