"""Tell a model's runtime and tasks from the files in a directory."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UnknownModelError

__all__ = ["infer_layout"]

# Head class suffix -> tasks (the first is the default), for Hugging Face configs whose architecture says what it does.
_HF_HEADS = (
    ("ForTokenClassification", ("ner",)),
    ("ForSequenceClassification", ("classify",)),
    ("ForQuestionAnswering", ("qa",)),
    ("ForCausalLM", ("generate", "chat")),
    ("LMHeadModel", ("generate", "chat")),
    # Translation models by name: other *ForConditionalGeneration heads (vision-language, speech) are not.
    ("MTModel", ("translate",)),
    ("M2M100ForConditionalGeneration", ("translate",)),
    ("MBartForConditionalGeneration", ("translate",)),
    ("FSMTForConditionalGeneration", ("translate",)),
)


def _architectures(config: Path) -> list[str]:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    archs = data.get("architectures") if isinstance(data, dict) else None
    return [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []


def _sidecar_layout(sidecar: Path, task: str | None) -> tuple[str, tuple[str, ...]] | None:
    """A ``modeldeck.json`` that names its ``runtime`` (and ``tasks``) says what the folder is."""
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    runtime = data.get("runtime") if isinstance(data, dict) else None
    if not isinstance(runtime, str) or not runtime:
        return None
    tasks = data.get("tasks")
    if isinstance(tasks, list) and tasks and all(isinstance(t, str) and t for t in tasks):
        return runtime, tuple(tasks)
    if task is not None:
        return runtime, (task,)
    raise UnknownModelError(
        f"{str(sidecar)!r} names runtime {runtime!r} but not the tasks the model serves",
        hint='add "tasks": [...] to it, or pass the task explicitly',
    )


def infer_layout(path: Path, task: str | None = None) -> tuple[str, tuple[str, ...]]:
    """``(runtime, tasks)`` for a spaCy pipeline, sentence-transformers or Hugging Face directory."""
    if path.is_dir():
        sidecar = _sidecar_layout(path / "modeldeck.json", task)
        if sidecar is not None:
            return sidecar
        if (path / "config.cfg").is_file() and (path / "meta.json").is_file():
            return "spacy", ("ner", "parse")
        if (path / "modules.json").is_file():
            return "sentence-transformers", ("embed",)
        if (path / "config.json").is_file():
            for arch in _architectures(path / "config.json"):
                for suffix, head_tasks in _HF_HEADS:
                    if arch.endswith(suffix):
                        return "transformers", head_tasks
            if task is not None:
                return "transformers", (task,)
            raise UnknownModelError(
                f"{str(path)!r} is a Hugging Face model directory, but its config does not say which task it serves",
                hint="pass the task explicitly (task=... or --task)",
            )
    if path.is_file() and path.suffix in (".pt", ".pth") and task in ("face-embed", "face-verify"):
        # A torch state dict for a face task: FaceNet (InceptionResnetV1) is the torch face embedder.
        return "torch", ("face-embed", "face-verify")
    if path.is_file() and path.suffix == ".onnx" and task is not None:
        return "onnxruntime", (task,)
    raise UnknownModelError(
        f"cannot tell what model {str(path)!r} is",
        hint="expected a spaCy pipeline (config.cfg + meta.json), a sentence-transformers directory "
        "(modules.json) or a Hugging Face directory (config.json); otherwise give tasks and runtime",
    )
