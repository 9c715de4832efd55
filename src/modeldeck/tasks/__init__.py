"""Task and backend registries: one module per task, imported only when a task of that name is loaded.

``TASKS`` maps task names to task classes; ``BACKENDS`` maps ``(task, runtime)`` to the backend
class that runs that task on that framework (see ``tasks/_backend.py``). Both are open to other
distributions through the ``modeldeck.tasks`` and ``modeldeck.backends`` entry-point groups.
"""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from ._backend import BackendRegistry

__all__ = ["BACKENDS", "TASKS"]

TASKS: Registry[Any] = Registry("task", entry_point_group="modeldeck.tasks")
BACKENDS = BackendRegistry()

# Language
TASKS.register("ner", "modeldeck.tasks.ner:NERTask")
TASKS.register("parse", "modeldeck.tasks.parse:ParseTask")
TASKS.register("embed", "modeldeck.tasks.embed:EmbedTask")
TASKS.register("classify", "modeldeck.tasks.classify:ClassifyTask")
TASKS.register("qa", "modeldeck.tasks.qa:QATask")
TASKS.register("generate", "modeldeck.tasks.generate:GenerateTask")
TASKS.register("chat", "modeldeck.tasks.generate:ChatTask")
TASKS.register("translate", "modeldeck.tasks.translate:TranslateTask")
BACKENDS.register("ner", "spacy", "modeldeck.tasks.ner:SpacyNER")
BACKENDS.register("ner", "transformers", "modeldeck.tasks.ner:TokenClassificationNER")
BACKENDS.register("parse", "spacy", "modeldeck.tasks.parse:SpacyParser")
BACKENDS.register("embed", "sentence-transformers", "modeldeck.tasks.embed:SentenceTransformersEmbedder")
BACKENDS.register("embed", "onnxruntime", "modeldeck.tasks.embed:OnnxEmbedder")
BACKENDS.register("classify", "transformers", "modeldeck.tasks.classify:SequenceClassificationHead")
BACKENDS.register("classify", "awd-lstm", "modeldeck.tasks.classify:AwdLstmClassifier")
BACKENDS.register("qa", "transformers", "modeldeck.tasks.qa:QuestionAnsweringHead")
# Variants made by ``modeldeck.optimize`` (runtimes/onnx_text.py): the same tasks over ONNX Runtime.
BACKENDS.register("ner", "onnxruntime", "modeldeck.tasks.ner:OnnxTokenClassificationNER")
BACKENDS.register("classify", "onnxruntime", "modeldeck.tasks.classify:OnnxSequenceClassifier")
BACKENDS.register("qa", "onnxruntime", "modeldeck.tasks.qa:OnnxQuestionAnswering")
BACKENDS.register("translate", "transformers", "modeldeck.tasks.translate:Seq2SeqHead")
BACKENDS.register("generate", "transformers", "modeldeck.tasks.generate:CausalLM")
BACKENDS.register("chat", "transformers", "modeldeck.tasks.generate:CausalLM")
# Vision
TASKS.register("detect", "modeldeck.tasks.detect:DetectTask")
TASKS.register("segment", "modeldeck.tasks.detect:SegmentTask")
for _task in ("detect", "segment"):
    # YOLO exports, and the R-CNN variants `modeldeck optimize detect` makes (tasks/_rcnn_onnx.py tells them apart).
    BACKENDS.register(_task, "onnxruntime", "modeldeck.tasks._rcnn_onnx:OnnxDetector")
    BACKENDS.register(_task, "torchvision", "modeldeck.tasks._rcnn:RCNNDetector")
# Faces
TASKS.register("face-detect", "modeldeck.tasks.faces:FaceDetectTask")
TASKS.register("face-embed", "modeldeck.tasks.faces:FaceEmbedTask")
TASKS.register("face-verify", "modeldeck.tasks.faces:FaceVerifyTask")
BACKENDS.register("face-detect", "dlib", "modeldeck.tasks.faces._detectors:DlibFaceDetector")
BACKENDS.register("face-detect", "opencv", "modeldeck.tasks.faces._detectors:OpenCVFaceDetector")
for _task in ("face-embed", "face-verify"):
    BACKENDS.register(_task, "dlib", "modeldeck.tasks.faces._embedders:DlibEmbedder")
    BACKENDS.register(_task, "torch", "modeldeck.tasks.faces._embedders:FacenetEmbedder")
    BACKENDS.register(_task, "onnxruntime", "modeldeck.tasks.faces._embedders:OnnxEmbedder")
# Models you bring: named tensors in and out, on each framework that has a signature.
TASKS.register("tensor", "modeldeck.tasks.tensor:TensorTask")
BACKENDS.register("tensor", "keras", "modeldeck.tasks.tensor:KerasTensorBackend")
BACKENDS.register("tensor", "tensorflow", "modeldeck.tasks.tensor:SavedModelTensorBackend")
BACKENDS.register("tensor", "torchscript", "modeldeck.tasks.tensor:TorchScriptTensorBackend")
BACKENDS.register("tensor", "torch-export", "modeldeck.tasks.tensor:TorchExportTensorBackend")
BACKENDS.register("tensor", "onnxruntime", "modeldeck.tasks.tensor:OnnxTensorBackend")
# Image classification
TASKS.register("classify-image", "modeldeck.tasks.classify_image:ClassifyImageTask")
BACKENDS.register("classify-image", "torchvision", "modeldeck.tasks._image_classifiers:TorchvisionClassifier")
BACKENDS.register("classify-image", "keras", "modeldeck.tasks._image_classifiers:KerasClassifier")
BACKENDS.register("classify-image", "tensorflow", "modeldeck.tasks._image_classifiers:SavedModelClassifier")
BACKENDS.register("classify-image", "torchscript", "modeldeck.tasks._image_classifiers:TorchScriptClassifier")
BACKENDS.register("classify-image", "torch-export", "modeldeck.tasks._image_classifiers:TorchExportClassifier")
BACKENDS.register("classify-image", "onnxruntime", "modeldeck.tasks._image_classifiers:OnnxClassifier")
del _task
