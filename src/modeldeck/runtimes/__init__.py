"""Adapters that are the only modules allowed to import a machine-learning framework.

Each adapter imports its framework lazily, inside functions, so importing this package (or a
task module) loads no framework. ``RUNTIMES`` maps the stable names used in ``ModelInfo.runtime``
to adapter classes; a model whose runtime is not registered here is refused before any backend
is looked up (``Task.from_model``), and another distribution adds one through the
``modeldeck.runtimes`` entry-point group (with its backends in ``modeldeck.backends``).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from .._registry import Registry
from .base import Runtime, import_framework

__all__ = ["PRELOAD", "RUNTIMES", "Runtime", "import_framework", "preload_modules"]

RUNTIMES: Registry[Any] = Registry("runtime", entry_point_group="modeldeck.runtimes")
RUNTIMES.register("spacy", "modeldeck.runtimes.spacy:SpacyRuntime")
RUNTIMES.register("sentence-transformers", "modeldeck.runtimes.sentence_transformers:SentenceTransformerRuntime")
RUNTIMES.register("transformers", "modeldeck.runtimes.transformers:TransformersRuntime")
RUNTIMES.register("onnxruntime", "modeldeck.runtimes.onnx:OnnxRuntime")
RUNTIMES.register("torchvision", "modeldeck.runtimes.torchvision:TorchvisionRuntime")
RUNTIMES.register("dlib", "modeldeck.runtimes.dlib:DlibRuntime")
RUNTIMES.register("opencv", "modeldeck.runtimes.opencv:OpenCVRuntime")
RUNTIMES.register("awd-lstm", "modeldeck.runtimes.awd_lstm:AwdLstmRuntime")  # fine-tuned with modeldeck.finetune
RUNTIMES.register("torch", "modeldeck.runtimes.facenet:FacenetRuntime")  # FaceNet state dicts (face-embed)
RUNTIMES.register("keras", "modeldeck.runtimes.keras:KerasRuntime")
RUNTIMES.register("tensorflow", "modeldeck.runtimes.tensorflow:SavedModelRuntime")
RUNTIMES.register("torchscript", "modeldeck.runtimes.torchscript:TorchScriptRuntime")
RUNTIMES.register("torch-export", "modeldeck.runtimes.torch_export:TorchExportRuntime")

#: Modules a server's fork server imports before it forks the workers (``serving/models.py``), by
#: runtime, so their pages are shared by every worker: the libraries several workers import
#: (numpy, torch: spaCy's thinc imports it too). Never a module whose import starts threads a fork
#: would break, nor one only a single worker would use (preloaded, its pages would be shared by
#: nobody and partly copied on write): so not sentence-transformers itself (its import pulls
#: pyarrow, whose allocator starts threads, scikit-learn and pandas, for the embed worker alone),
#: nor TensorFlow or Keras (threads at import; Keras chooses its backend once, at import).
PRELOAD: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "spacy": ("spacy",),
        "sentence-transformers": ("torch", "transformers"),
        "transformers": ("torch", "transformers"),
        "onnxruntime": ("onnxruntime",),
        "torchvision": ("torch", "torchvision"),
        "dlib": ("dlib", "PIL.Image"),
        "opencv": ("cv2",),
        "awd-lstm": ("torch",),
        "torch": ("torch",),
        "torchscript": ("torch",),
        "torch-export": ("torch",),
    }
)


def preload_modules(runtimes: Iterable[str]) -> list[str]:
    """The modules to preload for models of these runtimes, each once, in a stable order."""
    modules = ["numpy"]
    for runtime in runtimes:
        modules.extend(m for m in PRELOAD.get(runtime, ()) if m not in modules)
    return modules
