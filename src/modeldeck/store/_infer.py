"""Tell a model's runtime and tasks from the files in a directory."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UnknownModelError

__all__ = ["infer_layout"]

# Head class suffix -> task, for Hugging Face configs whose architecture says what it does.
_HF_HEADS = (
    ("ForTokenClassification", "ner"),
    ("ForSequenceClassification", "classify"),
    ("ForQuestionAnswering", "qa"),
    ("ForCausalLM", "generate"),
    ("LMHeadModel", "generate"),
)


def _architectures(config: Path) -> list[str]:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    archs = data.get("architectures") if isinstance(data, dict) else None
    return [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []


def infer_layout(path: Path, task: str | None = None) -> tuple[str, tuple[str, ...]]:
    """``(runtime, tasks)`` for a spaCy pipeline, sentence-transformers or Hugging Face directory."""
    if path.is_dir():
        if (path / "config.cfg").is_file() and (path / "meta.json").is_file():
            return "spacy", ("ner", "parse")
        if (path / "modules.json").is_file():
            return "sentence-transformers", ("embed",)
        if (path / "config.json").is_file():
            for arch in _architectures(path / "config.json"):
                for suffix, head_task in _HF_HEADS:
                    if arch.endswith(suffix):
                        return "transformers", (head_task,)
            if task is not None:
                return "transformers", (task,)
            raise UnknownModelError(
                f"{str(path)!r} is a Hugging Face model directory, but its config does not say which task it serves",
                hint="pass the task explicitly (task=... or --task)",
            )
    if path.is_file() and path.suffix == ".onnx" and task is not None:
        return "onnxruntime", (task,)
    raise UnknownModelError(
        f"cannot tell what model {str(path)!r} is",
        hint="expected a spaCy pipeline (config.cfg + meta.json), a sentence-transformers directory "
        "(modules.json) or a Hugging Face directory (config.json); otherwise give tasks and runtime",
    )
