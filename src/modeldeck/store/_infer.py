"""Tell a model's runtime and tasks from the files in a directory."""

from __future__ import annotations

import json
import mmap
import zipfile
from pathlib import Path

from ..errors import UnknownModelError

__all__ = ["BYOM_RUNTIMES", "infer_layout"]

#: Runtimes of models you bring: their sidecar is validated and becomes the card (``store/sidecar.py``).
BYOM_RUNTIMES = frozenset({"keras", "tensorflow", "torchscript", "torch-export", "onnxruntime"})
_TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript", ".jit")
# ultralytics writes {"task": "detect"} (or "segment") into the ONNX model's metadata_props. In
# protobuf that entry is these exact bytes (key = field 1, value = field 2, each length-prefixed);
# matching them spares the store an onnx/onnxruntime import to read one string.
_YOLO_TASK_MARKERS = {
    b"\n\x04task\x12\x06detect": ("detect", "tensor"),
    b"\n\x04task\x12\x07segment": ("segment", "detect", "tensor"),
}

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


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a ``code/`` folder (``torch.save`` pickles have none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _yolo_tasks(path: Path) -> tuple[str, ...] | None:
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for marker, tasks in _YOLO_TASK_MARKERS.items():
                if data.find(marker) >= 0:
                    return tasks
    except (OSError, ValueError):  # an empty file cannot be mapped
        return None
    return None


def _byom_layout(path: Path, task: str | None) -> tuple[str, tuple[str, ...]] | None:
    """A model you bring (Keras, SavedModel, TorchScript, torch.export, ONNX): runtime from the files,
    tasks from the argument, else the sidecar, else ``tensor``."""
    runtime: str | None = None
    default: tuple[str, ...] = ("tensor",)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        runtime = "tensorflow"
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".keras":
            runtime = "keras"
        elif suffix == ".pt2":
            runtime = "torch-export"
        elif suffix in _TORCHSCRIPT_SUFFIXES or (suffix in (".pt", ".pth") and _is_torchscript(path)):
            runtime = "torchscript"
        elif suffix in (".pt", ".pth") and task in (None, "tensor"):
            # Not TorchScript: a pickle. The torchscript runtime refuses it with the way to re-save it.
            runtime = "torchscript"
        elif suffix == ".onnx":
            runtime = "onnxruntime"
            default = _yolo_tasks(path) or default
    if runtime is None:
        return None
    if task is not None:
        return runtime, (task,)
    from .sidecar import read_sidecar

    sidecar = read_sidecar(path)
    declared = sidecar.task_names() if sidecar is not None else None
    return (sidecar.runtime if sidecar is not None and sidecar.runtime else runtime), declared or default


def infer_layout(path: Path, task: str | None = None) -> tuple[str, tuple[str, ...]]:
    """``(runtime, tasks)`` for a spaCy pipeline, sentence-transformers or Hugging Face directory,
    or a model you bring (``.keras``, a SavedModel directory, ``.pt2``, TorchScript, ``.onnx``)."""
    if path.is_dir():
        sidecar = _sidecar_layout(path / "modeldeck.json", task)
        if sidecar is not None:
            return sidecar
    if path.is_file() and path.suffix == ".onnx" and task is not None:
        return "onnxruntime", (task,)
    byom = _byom_layout(path, task)
    if byom is not None:
        return byom
    if path.is_dir():
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
    raise UnknownModelError(
        f"cannot tell what model {str(path)!r} is",
        hint="expected a spaCy pipeline (config.cfg + meta.json), a sentence-transformers directory "
        "(modules.json), a Hugging Face directory (config.json), a .keras file, a SavedModel directory, "
        "a .pt2 or TorchScript file, or an .onnx file; otherwise give tasks and runtime",
    )
