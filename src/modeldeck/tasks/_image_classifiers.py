"""The backends of ``classify-image``: one class per framework, each an ``ImageClassifier``.

- ``TorchvisionClassifier``: a torchvision architecture plus state dict; the published weights'
  transforms and category names (``runtimes/torchvision_classify.py``).
- ``KerasClassifier``, ``SavedModelClassifier``, ``TorchScriptClassifier``, ``TorchExportClassifier``,
  ``OnnxClassifier``: a model you bring, run through the tensor runtimes (``runtimes/tensors.py``).
  Its ``modeldeck.json`` (read by the store into the card) declares ``labels`` (a list, or
  ``"imagenet"``), ``preprocessing`` and optionally ``scores``; what it leaves out comes from the
  model's signature (input size and layout) and, for Keras applications (VGG16, ResNet50,
  MobileNetV2, EfficientNet...), from the family the model's name gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import numpy as np

from ..errors import ConfigError
from ..runtimes.tensors import TensorModel, TensorSpec, fixed_batch_size
from ..types import ModelInfo, OnnxSessionOptions
from ._backend import BackendBase
from ._image_prep import KERAS_FAMILIES, KERAS_MODES, ImagePreprocessing, keras_preprocessing, parse_preprocessing
from .classify_image import ScoreKind, card_labels, card_scores, imagenet_classes
from .tensor import (
    KerasTensorBackend,
    OnnxTensorBackend,
    SavedModelTensorBackend,
    TensorBackend,
    TorchExportTensorBackend,
    TorchScriptTensorBackend,
    check_load_args,
)

if TYPE_CHECKING:
    from ..runtimes.keras import KerasRuntime
    from ..runtimes.onnx import OnnxTensorModel
    from ..runtimes.torchvision_classify import TorchvisionClassifierRuntime

__all__ = [
    "KerasClassifier",
    "OnnxClassifier",
    "SavedModelClassifier",
    "TensorClassifier",
    "TorchExportClassifier",
    "TorchScriptClassifier",
    "TorchvisionClassifier",
    "keras_family",
    "sidecar_preprocessing",
]

_SIDECAR_EXAMPLE = (
    'e.g. {"labels": "imagenet", "preprocessing": {"size": 224, "resize": 256, '
    '"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}'
)


class TorchvisionClassifier(BackendBase):
    """A torchvision classifier; it gives logits, so the task applies the softmax."""

    scores: ScoreKind = "logits"
    runtime: TorchvisionClassifierRuntime

    def __init__(self, runtime: Any, *, labels: tuple[str, ...], preprocessing: ImagePreprocessing) -> None:
        super().__init__(runtime)
        self.labels = labels
        self.preprocessing = preprocessing

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, safe_mode: bool = True, signature: str | None = None) -> Self:
        from ..runtimes.torchvision_classify import TorchvisionClassifierRuntime

        check_load_args(info, safe_mode=safe_mode, signature=signature)
        runtime = TorchvisionClassifierRuntime.load(info.path, card=info.card, device=device)
        labels = card_labels(info.card.get("labels"), where=f"model {info.name!r}") or runtime.categories
        where = f"model {info.name!r} preprocessing"
        return cls(runtime, labels=labels, preprocessing=parse_preprocessing(runtime.preprocessing, where=where))

    def classify(self, batch: np.ndarray) -> np.ndarray:
        return self.runtime.classify(batch)


# -- models you bring ----------------------------------------------------------------------------


def keras_family(model_name: str) -> str | None:
    """The Keras application family of a model named by ``keras.applications`` (``mobilenetv2_1.00_224``)."""
    name = model_name.lower()
    if name in KERAS_FAMILIES:
        return name
    head = name.split("_")[0]
    return head if head in KERAS_FAMILIES else None


def _image_size(spec: TensorSpec, layout: str) -> tuple[int, int] | None:
    shape = spec.shape
    if shape is None or len(shape) != 4:
        return None
    h, w = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    return (h, w) if h is not None and w is not None else None


def _layout(spec: TensorSpec, default: str) -> str:
    shape = spec.shape
    if shape is not None and len(shape) == 4:
        if shape[-1] == 3 and shape[1] != 3:
            return "NHWC"
        if shape[1] == 3 and shape[-1] != 3:
            return "NCHW"
    return default


def _pair(value: Any, what: str, where: str) -> tuple[float, float, float] | None:
    if value is None:
        return None
    values = tuple(float(v) for v in value)
    if len(values) == 1:
        return values * 3  # type: ignore[return-value]
    if len(values) != 3:
        raise ConfigError(f"{where}: '{what}' needs 1 or 3 values (one per channel), got {list(values)}")
    return values  # type: ignore[return-value]


def sidecar_preprocessing(
    declared: Mapping[str, Any], spec: TensorSpec, *, default_layout: str, where: str
) -> ImagePreprocessing:
    """A ``modeldeck.json`` ``preprocessing`` (``store.sidecar.Preprocessing``) as the task's spec.

    ``size`` and ``layout`` default to what the input signature says; ``mode`` is a Keras
    applications mode, which ``mean``, ``std`` and ``scale`` refine; without a mode, pixel values
    are scaled by ``scale`` (default 1/255) before ``mean`` and ``std`` apply.
    """
    layout = declared.get("layout") or _layout(spec, default_layout)
    size = declared.get("size")
    if size is None:
        size = _image_size(spec, layout)
        if size is None:
            raise ConfigError(
                f"{where}: the model's input {spec.name!r} does not fix its height and width",
                hint='declare "preprocessing": {"size": [height, width]} in modeldeck.json',
            )
    elif isinstance(size, int):
        size = (size, size)
    data: dict[str, Any] = dict(KERAS_MODES[declared["mode"]]) if declared.get("mode") else {}
    data.update({"size": tuple(size), "layout": layout, "channel_order": declared.get("channels", "RGB")})
    if declared.get("mode") == "caffe" and "channels" not in declared:
        data["channel_order"] = "BGR"
    if declared.get("resize") is not None:
        data.update(resize="shorter-side", resize_size=int(declared["resize"]))
    if declared.get("scale") is not None:
        scale = float(declared["scale"])
        if scale <= 0:
            raise ConfigError(f"{where}: 'scale' must be positive, got {scale}")
        data["divisor"] = 1.0 / scale
    for key in ("mean", "std"):
        value = _pair(declared.get(key), key, where)
        if value is not None:
            data[key] = value
    return parse_preprocessing(data, where=where)


class TensorClassifier(BackendBase):
    """An image classifier over a tensor runtime: one image input, one output of class scores."""

    #: The tensor backend whose ``open`` loads this runtime's files.
    opener: ClassVar[type[TensorBackend]]
    #: The input layout when neither the sidecar nor the signature says.
    default_layout: ClassVar[str] = "NCHW"
    runtime: TensorModel

    def __init__(
        self,
        runtime: TensorModel,
        *,
        labels: tuple[str, ...],
        preprocessing: ImagePreprocessing,
        scores: ScoreKind,
        input_name: str,
        output_name: str | None,
    ) -> None:
        super().__init__(runtime)
        self.labels = labels
        self.preprocessing = preprocessing
        self.scores = scores
        self.input_name = input_name
        self.output_name = output_name
        self.batch_limit = fixed_batch_size(runtime.inputs)

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, safe_mode: bool = True, signature: str | None = None) -> Self:
        check_load_args(info, safe_mode=safe_mode, signature=signature)
        return cls.wrap(cls.opener.open(info, device=device, safe_mode=safe_mode, signature=signature), info)

    @classmethod
    def wrap(cls, runtime: TensorModel, info: ModelInfo) -> Self:
        """The classifier over an opened runtime; the runtime is closed when its files do not fit."""
        where = f"model {info.name!r}"
        try:
            return cls.from_runtime(runtime, info.card, where=where)
        except BaseException:
            close = getattr(runtime, "close", None)  # not every tensor runtime holds something to close
            if callable(close):
                close()
            raise

    @classmethod
    def from_runtime(cls, runtime: TensorModel, card: Mapping[str, Any], *, where: str) -> Self:
        if len(runtime.inputs) != 1:
            names = [s.name for s in runtime.inputs]
            raise ConfigError(
                f"{where} takes {len(names)} inputs {names}; an image classifier takes one image",
                hint="serve it as a 'tensor' model instead",
            )
        spec = runtime.inputs[0]
        declared = card.get("preprocessing")
        if declared is not None:
            if not isinstance(declared, Mapping):
                raise ConfigError(f"{where}: 'preprocessing' must be an object, got {declared!r}")
            preprocessing = sidecar_preprocessing(declared, spec, default_layout=cls.default_layout, where=where)
        else:
            preprocessing = cls.default_preprocessing(runtime, spec, where=where)
        outputs = [s.name for s in runtime.outputs]
        output_name: str | None = outputs[0] if len(outputs) == 1 else None
        declared_outputs = card.get("outputs")
        if len(outputs) > 1:
            if not declared_outputs:
                raise ConfigError(
                    f"{where} has {len(outputs)} outputs {outputs}; which one holds the class scores?",
                    hint='declare it first in modeldeck.json: "outputs": [{"name": "..."}]',
                )
            output_name = str(declared_outputs[0]["name"])
        labels = card_labels(card.get("labels"), where=where)
        classes = _classes(runtime, output_name)
        if labels is None:
            if classes != 1000:
                raise ConfigError(
                    f"{where} does not name its classes" + (f" ({classes} outputs)" if classes else ""),
                    hint=f"list them in modeldeck.json, {_SIDECAR_EXAMPLE}",
                )
            labels = imagenet_classes()
        if classes is not None and classes != len(labels):
            raise ConfigError(
                f"{where} gives {classes} scores per image but {len(labels)} labels are declared",
                hint="list one label per output, in output order",
            )
        return cls(
            runtime,
            labels=labels,
            preprocessing=preprocessing,
            scores=card_scores(card.get("scores"), where=where),
            input_name=spec.name,
            output_name=output_name,
        )

    @classmethod
    def default_preprocessing(cls, runtime: TensorModel, spec: TensorSpec, *, where: str) -> ImagePreprocessing:
        raise ConfigError(
            f"{where} does not say how to preprocess its images",
            hint=f'declare "preprocessing" in modeldeck.json, {_SIDECAR_EXAMPLE}',
        )

    def classify(self, batch: np.ndarray) -> np.ndarray:
        step = self.batch_limit
        if step is not None and step != len(batch):
            # A model exported for a fixed batch size (often 1) runs that many images per call; a short
            # last chunk is padded with copies of its last image, whose scores are dropped.
            parts = []
            for start in range(0, len(batch), step):
                chunk = batch[start : start + step]
                count = len(chunk)
                if count < step:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - count, axis=0)])
                parts.append(self.classify(chunk)[:count])
            return np.concatenate(parts)
        outputs = self.runtime.run({self.input_name: batch})
        raw = outputs[self.output_name] if self.output_name is not None else next(iter(outputs.values()))
        return np.asarray(raw).reshape(len(batch), -1)


def _classes(runtime: TensorModel, output_name: str | None) -> int | None:
    for spec in runtime.outputs:
        if spec.name == output_name and spec.shape is not None and len(spec.shape) == 2:
            return spec.shape[1]
    return None


class KerasClassifier(TensorClassifier):
    """A ``.keras`` classifier; Keras applications are recognised by their model name."""

    opener = KerasTensorBackend
    default_layout = "NHWC"

    @classmethod
    def default_preprocessing(cls, runtime: TensorModel, spec: TensorSpec, *, where: str) -> ImagePreprocessing:
        keras_runtime = cast("KerasRuntime", runtime)  # opened by KerasTensorBackend: it holds the Keras model
        family = keras_family(str(keras_runtime.model.name))
        if family is None:
            return super().default_preprocessing(runtime, spec, where=where)
        mode, side = KERAS_FAMILIES[family]
        size = _image_size(spec, "NHWC") or (side, side)
        return keras_preprocessing(mode, size)


class SavedModelClassifier(TensorClassifier):
    opener = SavedModelTensorBackend
    default_layout = "NHWC"


class TorchScriptClassifier(TensorClassifier):
    opener = TorchScriptTensorBackend


class TorchExportClassifier(TensorClassifier):
    opener = TorchExportTensorBackend


class OnnxClassifier(TensorClassifier):
    opener = OnnxTensorBackend

    @classmethod
    def load(
        cls,
        info: ModelInfo,
        *,
        device: str,
        safe_mode: bool = True,
        signature: str | None = None,
        session: OnnxSessionOptions | None = None,
    ) -> Self:
        check_load_args(info, safe_mode=safe_mode, signature=signature)
        return cls.wrap(OnnxTensorBackend.open_session(info, device=device, session=session), info)

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": cast("OnnxTensorModel", self.runtime).session_options()}
