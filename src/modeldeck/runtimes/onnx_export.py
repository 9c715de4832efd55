"""Export to ONNX (torch side) and int8 quantization (onnxruntime side): the framework work of ``modeldeck.optimize``.

Every exported folder holds ``model.onnx``, the tokenizer or preprocessing files the original
uses, and ``modeldeck-onnx.json`` (``OnnxExportConfig``): what the graph takes and gives, so that
loading a variant needs onnxruntime and ``tokenizers`` only, never torch.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnknownModelError
from .base import import_framework

__all__ = [
    "EXPORT_CONFIG",
    "FAMILY_KEY",
    "OPSET",
    "RCNN_FAMILY",
    "OnnxExportConfig",
    "export_sentence_transformer",
    "export_torchvision_classifier",
    "export_torchvision_detector",
    "export_transformers_head",
    "matmul_nodes",
    "quantize_int8",
    "read_export_config",
    "resized_size",
    "tool_versions",
]

EXPORT_CONFIG = "modeldeck-onnx.json"
# Opset 17 has LayerNormalization as one op; onnxruntime >= 1.14 runs it, and the legacy exporter writes it.
OPSET = 17
#: The graph metadata key (and value) that mark a torchvision R-CNN exported by modeldeck, so that the
#: ``detect`` ONNX backend tells it from a YOLO export without guessing from shapes.
FAMILY_KEY = "modeldeck.family"
RCNN_FAMILY = "torchvision-rcnn"
_TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json")


@dataclass(frozen=True)
class OnnxExportConfig:
    """What ``modeldeck-onnx.json`` says about an exported graph (read back by the ONNX text runtimes)."""

    family: str  # "sentence-transformers" or a transformers head ("sequence-classification", ...)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    max_tokens: int
    pad_id: int = 0
    labels: dict[str, str] = field(default_factory=dict)  # id2label of a head, as strings
    problem_type: str | None = None
    dim: int | None = None  # an embedder's vector size
    cls_id: int | None = None  # where a QA head puts "no answer"
    question_first: bool = True  # QA: the question goes first unless the tokenizer pads on the left

    def write(self, folder: Path) -> None:
        data = asdict(self)
        data["inputs"], data["outputs"] = list(self.inputs), list(self.outputs)
        (folder / EXPORT_CONFIG).write_text(json.dumps({"format": 1, **data}, indent=2) + "\n", encoding="utf-8")


def read_export_config(folder: Path) -> OnnxExportConfig:
    path = folder / EXPORT_CONFIG
    if not path.is_file():
        raise UnknownModelError(
            f"{str(folder)!r} has no {EXPORT_CONFIG}, so it is not an ONNX text model modeldeck exported",
            hint="make the variant with `modeldeck optimize TASK`, or serve a plain .onnx file through the tensor task",
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.pop("format", None) != 1:
        raise UnknownModelError(f"{str(path)!r} has an unknown format", hint="export the variant again")
    data["inputs"], data["outputs"] = tuple(data["inputs"]), tuple(data["outputs"])
    return OnnxExportConfig(**data)


def tool_versions() -> dict[str, str]:
    """The versions an export depends on, for a variant's provenance (what is not installed is left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("modeldeck", "torch", "transformers", "sentence-transformers", "onnx", "onnxruntime", "tokenizers"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _export(module: Any, args: tuple[Any, ...], names: Sequence[str], outputs: Sequence[str], file: Path) -> None:
    """``torch.onnx.export`` through the TorchScript exporter, with batch and sequence axes left dynamic.

    The dynamo exporter needs ``onnxscript`` and rewrites sdpa attention in ways onnxruntime's
    transformer fusions do not recognise; the TorchScript one traces these encoders exactly
    (checked against torch on every export by ``modeldeck.optimize``).
    """
    torch = import_framework("torch", package="torch", extra="torch")
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    for name in outputs:
        axes[name] = {0: "batch"} if name in ("sentence_embedding", "logits") else {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # Tracer notes about Python conditions on shapes: those conditions hold for every padded batch.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(file),
            input_names=list(names),
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _sample_inputs(tokenizer: Any, names: Sequence[str]) -> tuple[Any, ...]:
    enc = tokenizer(
        ["an example sentence for tracing", "a second, longer example sentence for the trace"],
        padding=True,
        return_tensors="pt",
    )
    return tuple(enc[name] for name in names)


def _save_tokenizer(tokenizer: Any, source: Path, out: Path) -> None:
    # The fast tokenizer the original really runs, as tokenizers' own JSON: the variant loads it with
    # ``tokenizers`` alone. The original's other tokenizer and config files travel with it, unchanged.
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)


def export_sentence_transformer(source: Path, out: Path) -> OnnxExportConfig:
    """A sentence-transformers folder as one graph: the transformer, then the model's own modules
    (pooling, normalisation, dense layers) run inside the graph exactly as ``encode`` runs them."""
    torch = import_framework("torch", package="torch", extra="torch")
    st = import_framework("sentence_transformers", package="sentence-transformers", extra="torch")
    from .transformers import quiet_loading

    with quiet_loading(import_framework("transformers", package="transformers", extra="torch")):
        model = st.SentenceTransformer(str(source), device="cpu", local_files_only=True).eval()
    names = tuple(n for n in _TEXT_INPUTS if n in model.tokenizer.model_input_names)

    class _Encoder(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    out.mkdir(parents=True, exist_ok=True)
    _export(
        _Encoder().eval(), _sample_inputs(model.tokenizer, names), names, ("sentence_embedding",), out / "model.onnx"
    )
    _save_tokenizer(model.tokenizer, source, out)
    for extra in ("sentence_bert_config.json", "modules.json", "config_sentence_transformers.json"):
        if (source / extra).is_file():
            shutil.copy2(source / extra, out / extra)
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    config = OnnxExportConfig(
        family="sentence-transformers",
        inputs=names,
        outputs=("sentence_embedding",),
        max_tokens=int(model.max_seq_length),
        pad_id=int(model.tokenizer.pad_token_id or 0),
        dim=int(getter()),
    )
    config.write(out)
    return config


_HEAD_OUTPUTS = {
    "sequence-classification": ("logits",),
    "token-classification": ("logits",),
    "question-answering": ("start_logits", "end_logits"),
}


def export_transformers_head(source: Path, head: str, out: Path) -> OnnxExportConfig:
    """A Hugging Face head (sequence / token classification, extractive QA) as one graph of its logits."""
    if head not in _HEAD_OUTPUTS:
        raise ConfigError(
            f"no ONNX export for the transformers head {head!r}", hint=f"heads: {', '.join(_HEAD_OUTPUTS)}"
        )
    torch = import_framework("torch", package="torch", extra="torch")
    from .transformers import TransformersRuntime

    runtime = TransformersRuntime.load(source, head=head, device="cpu")
    model, tokenizer = runtime.model, runtime.tokenizer
    names = tuple(n for n in _TEXT_INPUTS if n in tokenizer.model_input_names)
    outputs = _HEAD_OUTPUTS[head]

    class _Head(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            result = self.model(**dict(zip(names, tensors, strict=True)), return_dict=True)
            return tuple(result[name] for name in outputs)

    out.mkdir(parents=True, exist_ok=True)
    _export(_Head().eval(), _sample_inputs(tokenizer, names), names, outputs, out / "model.onnx")
    _save_tokenizer(tokenizer, source, out)
    config = OnnxExportConfig(
        family=head,
        inputs=names,
        outputs=outputs,
        max_tokens=runtime.max_tokens,
        pad_id=runtime._pad_id,
        labels={str(k): v for k, v in runtime.id2label.items()},
        problem_type=runtime.problem_type,
        cls_id=tokenizer.cls_token_id,
        question_first=getattr(tokenizer, "padding_side", "right") == "right",
    )
    config.write(out)
    return config


def export_torchvision_classifier(source: Path, card: Mapping[str, Any], out: Path) -> None:
    """A torchvision classifier folder as a graph of logits over NCHW images (batch, height and width dynamic),
    with a ``modeldeck.json`` that gives the ONNX ``classify-image`` backend the same labels and preprocessing."""
    from .torchvision import SIDECAR
    from .torchvision_classify import TorchvisionClassifierRuntime

    torch = import_framework("torch", package="torch", extra="torch")
    runtime = TorchvisionClassifierRuntime.load(source, card=card, device="cpu")
    prep = runtime.preprocessing
    if prep.get("interpolation", "bilinear") != "bilinear" or prep.get("resize") not in (None, "shorter-side"):
        raise ConfigError(
            f"the preprocessing of {source.name!r} ({prep}) has no modeldeck.json equivalent for an ONNX variant",
            hint="only bilinear shorter-side resizes and center crops are exported",
        )
    height, width = prep["size"] if not isinstance(prep["size"], int) else (prep["size"], prep["size"])
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            runtime.model,
            (torch.zeros(1, 3, height, width),),
            str(out / "model.onnx"),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    sidecar: dict[str, Any] = {
        "task": "classify-image",
        "runtime": "onnxruntime",
        "labels": list(runtime.categories),
        "scores": "logits",
        "preprocessing": {
            "size": [height, width],
            "scale": 1.0 / float(prep.get("divisor", 255.0)),
            "mean": list(prep["mean"]),
            "std": list(prep["std"]),
            "layout": "NCHW",
            "channels": "RGB",
        },
    }
    if prep.get("resize_size") is not None:
        sidecar["preprocessing"]["resize"] = int(prep["resize_size"])
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")


def export_torchvision_detector(source: Path, card: Mapping[str, Any], out: Path) -> None:
    """A torchvision Faster / Mask R-CNN folder as a graph from one image to its scored candidate boxes.

    The graph takes ``image`` ``[3, H, W]`` (float RGB in [0, 1]) and ``resized`` ``[h, w, 0]``, an
    empty tensor whose shape is the size the model's transform resizes the image to (computed by
    the caller, ``resized_size``). The traced transform would compute that size in float32 and lose
    a pixel on some sizes (436 x 96/436 floors to 95); torchvision computes it in double, so the size
    comes in from outside. The graph normalises, resizes bilinearly to that size and pads as the
    transform does, then runs the backbone, the RPN (its NMS and proposal counts are the model's
    constructor settings, fixed in the graph) and the box head. It gives what torchvision's
    ``postprocess_detections`` starts from: ``boxes`` ``[proposals, classes - 1, 4]``, decoded and
    clipped, in resized-image pixels, and their softmax ``scores`` ``[proposals, classes - 1]``
    (background dropped). The request's own selection (score threshold, NMS IoU, classes, how many)
    stays outside the graph, in the ``detect`` backend (``tasks/_rcnn_onnx.py``), so every request
    option keeps its meaning. A Mask R-CNN is exported without its mask head: the variant serves
    ``detect``. The graph's metadata holds ``FAMILY_KEY``, the transform's ``min_size`` / ``max_size``
    and the class names (``labels``, a JSON list, background first), so the file alone is the model.
    """
    from .torchvision import TorchvisionRuntime

    torch = import_framework("torch", package="torch", extra="torch")
    onnx = import_framework("onnx", package="onnx", extra="onnx", purpose="ONNX export")
    runtime = TorchvisionRuntime.load(source, card=card, device="cpu")  # imports torchvision, or says how to
    model = runtime.model
    from torchvision.models.detection.image_list import ImageList
    from torchvision.ops import boxes as box_ops

    transform = model.transform
    if transform.fixed_size is not None or len(transform.min_size) != 1:
        raise ConfigError(
            f"{source.name!r} resizes to a fixed size or to one of several sizes ({transform.min_size}), "
            "which the ONNX export does not reproduce",
            hint="export a model built with one min_size and no fixed_size",
        )

    class _Candidates(torch.nn.Module):  # type: ignore[misc, name-defined]
        """``GeneralizedRCNN.forward`` for one image, stopped where the per-request selection begins."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, image: Any, resized: Any) -> tuple[Any, Any]:
            size = (resized.shape[0], resized.shape[1])
            pixels = torch.nn.functional.interpolate(
                transform.normalize(image)[None], size=size, mode="bilinear", align_corners=False
            )[0]
            images = ImageList(transform.batch_images([pixels], size_divisible=transform.size_divisible), [size])
            features = self.model.backbone(images.tensors)
            proposals, _ = self.model.rpn(images, features)
            heads = self.model.roi_heads
            pooled = heads.box_head(heads.box_roi_pool(features, proposals, images.image_sizes))
            logits, regression = heads.box_predictor(pooled)
            boxes = box_ops.clip_boxes_to_image(heads.box_coder.decode(regression, proposals), size)
            return boxes[:, 1:], torch.nn.functional.softmax(logits, -1)[:, 1:]

    min_size, max_size = int(transform.min_size[-1]), int(transform.max_size)
    height, width = 240, 320
    h, w = resized_size((height, width), min_size, max_size)
    out.mkdir(parents=True, exist_ok=True)
    file = out / "model.onnx"
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # Tracer notes about Python conditions on shapes: torchvision's detection code takes its
        # ONNX branches while tracing (torchvision._is_tracing), which hold for every image size.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Candidates().eval(),
            (torch.rand(3, height, width, generator=torch.Generator().manual_seed(0)), torch.zeros(h, w, 0)),
            str(file),
            input_names=["image", "resized"],
            output_names=["boxes", "scores"],
            dynamic_axes={
                "image": {1: "height", 2: "width"},
                "resized": {0: "resized_height", 1: "resized_width"},
                "boxes": {0: "proposals"},
                "scores": {0: "proposals"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    graph = onnx.load(str(file))
    onnx.helper.set_model_props(
        graph,
        {
            FAMILY_KEY: RCNN_FAMILY,
            "architecture": runtime.spec.architecture,
            "min_size": str(min_size),
            "max_size": str(max_size),
            "labels": json.dumps(list(runtime.categories)),
        },
    )
    onnx.save(graph, str(file))


def resized_size(size: tuple[int, int], min_size: int, max_size: int) -> tuple[int, int]:
    """The (height, width) torchvision's ``GeneralizedRCNNTransform`` resizes a (height, width) image to.

    Its scale is ``min(min_size / shorter side, max_size / longer side)`` and each side becomes
    ``int(side * scale)``, both in double precision, as ``interpolate(recompute_scale_factor=True)``
    computes them outside a trace.
    """
    height, width = size
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return int(height * scale), int(width * scale)


def matmul_nodes(file: Path) -> list[str]:
    """The names of the graph's MatMul nodes with a constant weight, in graph order (what dynamic int8 quantizes)."""
    onnx = import_framework("onnx", package="onnx", extra="onnx", purpose="int8 quantization")
    model = onnx.load(str(file), load_external_data=False)
    weights = {init.name for init in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and any(i in weights for i in n.input)]


def quantize_int8(
    source: Path,
    out: Path,
    *,
    per_channel: bool,
    exclude: Sequence[str] = (),
    reduce_range: bool = False,
    op_types: Sequence[str] = ("MatMul", "Gemm"),
) -> None:
    """Dynamic int8 quantization of a variant folder's ``model.onnx`` into ``out`` (other files copied).

    Weights become int8 (per output channel when ``per_channel``); activations are quantized at run
    time, so no calibration is needed. ``exclude`` keeps those nodes in fp32 (the sensitive ones).
    ``op_types`` may add the fused ``Attention`` of an onnxruntime-optimized graph (it becomes ``QAttention``).
    """
    onnx = import_framework("onnx", package="onnx", extra="onnx", purpose="int8 quantization")
    quantization = import_framework(
        "onnxruntime.quantization", package="onnxruntime", extra="onnx", purpose="int8 quantization"
    )
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("model.onnx"))
    quantization.quantize_dynamic(
        str(source / "model.onnx"),
        str(out / "model.onnx"),
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type=quantization.QuantType.QInt8,
        op_types_to_quantize=list(op_types),
        nodes_to_exclude=list(exclude),
        # Shape inference cannot type the outputs of contrib ops (fused Attention): they are float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
