"""The ``tensor`` task: named tensors in, named tensors out, from the signature of a model you bring.

One input is one example (no batch dimension): ``{"features": [0.3, 1.2, 5.0, 0.0]}``. Each
example is checked against the signature before the model runs (names, shape, safe casts only),
``forward`` stacks a batch along dimension 0 into one framework call and splits the outputs back,
and a model exported with a fixed batch size runs that many examples per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from pydantic import Field

from ..errors import (
    ConfigError,
    InferenceError,
    InputTypeError,
    OptionError,
    RaggedTensorError,
    TensorDtypeError,
    TensorNameError,
    TensorShapeError,
)
from ..runtimes.tensors import STRING, TensorModel, TensorSpec, fixed_batch_size, signature_dict
from ..types import ModelInfo, OnnxSessionOptions
from ._backend import BackendBase
from .base import InputKind, Options, Task
from .tensor_results import TensorResult

if TYPE_CHECKING:
    from ..runtimes.onnx import OnnxTensorModel

__all__ = [
    "KerasTensorBackend",
    "OnnxTensorBackend",
    "SavedModelTensorBackend",
    "TensorBackend",
    "TensorOptions",
    "TensorTask",
    "TorchExportTensorBackend",
    "TorchScriptTensorBackend",
    "check_example",
]

Example = dict[str, np.ndarray]


class TensorOptions(Options):
    outputs: tuple[str, ...] | None = Field(
        default=None, description="the outputs to return, by name (default: every output of the signature)"
    )


# -- backends: one per runtime, all the same shape ---------------------------------------------


def check_load_args(info: ModelInfo, *, safe_mode: bool, signature: str | None) -> None:
    """``safe_mode=False`` means something for Keras only, ``signature`` for SavedModels only."""
    if not safe_mode and info.runtime != "keras":
        raise OptionError(f"safe_mode applies to Keras models only, not to runtime {info.runtime!r}")
    if signature is not None and info.runtime != "tensorflow":
        raise OptionError(f"signature applies to TensorFlow SavedModels only, not to runtime {info.runtime!r}")


class TensorBackend(BackendBase):
    """A tensor model of one runtime, with the signature the task checks inputs against.

    ``info.card`` (from a ``modeldeck.json`` beside the model) may declare ``inputs`` / ``outputs``
    (name, dtype, shape) where the framework does not say, as TorchScript does not.
    """

    runtime: TensorModel

    def __init__(self, runtime: TensorModel, card: Mapping[str, Any] | None = None) -> None:
        super().__init__(runtime)
        card = card or {}
        self.inputs = _declared(runtime.inputs, card.get("inputs"), "inputs")
        self.outputs = _declared(runtime.outputs, card.get("outputs"), "outputs")

    @classmethod
    def load(cls, info: ModelInfo, *, device: str, safe_mode: bool = True, signature: str | None = None) -> Self:
        check_load_args(info, safe_mode=safe_mode, signature=signature)
        return cls(cls.open(info, device=device, safe_mode=safe_mode, signature=signature), info.card)

    @classmethod
    def open(cls, info: ModelInfo, *, device: str, safe_mode: bool, signature: str | None) -> TensorModel:
        raise NotImplementedError

    @property
    def batch_limit(self) -> int | None:
        return fixed_batch_size(self.inputs)


def _declared(found: tuple[TensorSpec, ...], declared: Any, key: str) -> tuple[TensorSpec, ...]:
    """The runtime's specs, with what the card declares filling in (or naming) what it left unknown."""
    if not declared:
        return found
    specs = tuple(TensorSpec.from_dict(d) for d in declared)
    if found and [s.name for s in specs] != [s.name for s in found]:
        raise ConfigError(
            f"modeldeck.json declares {key} {[s.name for s in specs]}, but the model's are {[s.name for s in found]}",
            hint=f"list the {key} in the model's own order and names",
        )
    return specs


class KerasTensorBackend(TensorBackend):
    @classmethod
    def open(cls, info: ModelInfo, *, device: str, safe_mode: bool, signature: str | None) -> TensorModel:
        from ..runtimes.keras import KerasRuntime

        return KerasRuntime.load(info.path, device=device, safe_mode=safe_mode)


class SavedModelTensorBackend(TensorBackend):
    @classmethod
    def open(cls, info: ModelInfo, *, device: str, safe_mode: bool, signature: str | None) -> TensorModel:
        from ..runtimes.tensorflow import DEFAULT_SIGNATURE, SavedModelRuntime

        name = signature or str(info.card.get("signature") or DEFAULT_SIGNATURE)
        return SavedModelRuntime.load(info.path, device=device, signature=name)


class TorchScriptTensorBackend(TensorBackend):
    @classmethod
    def open(cls, info: ModelInfo, *, device: str, safe_mode: bool, signature: str | None) -> TensorModel:
        from ..runtimes.torchscript import TorchScriptRuntime

        return TorchScriptRuntime.load(info.path, device=device)


class TorchExportTensorBackend(TensorBackend):
    @classmethod
    def open(cls, info: ModelInfo, *, device: str, safe_mode: bool, signature: str | None) -> TensorModel:
        from ..runtimes.torch_export import TorchExportRuntime

        return TorchExportRuntime.load(info.path, device=device)


class OnnxTensorBackend(TensorBackend):
    runtime: OnnxTensorModel

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
        return cls(cls.open_session(info, device=device, session=session), info.card)

    @classmethod
    def open(cls, info: ModelInfo, *, device: str, safe_mode: bool, signature: str | None) -> TensorModel:
        return cls.open_session(info, device=device, session=None)

    @staticmethod
    def open_session(info: ModelInfo, *, device: str, session: OnnxSessionOptions | None) -> OnnxTensorModel:
        from ..runtimes.onnx import OnnxTensorModel

        return OnnxTensorModel.load(info.path, device=device, session=session)

    def runtime_details(self) -> Mapping[str, Any]:
        return {"session": self.runtime.session_options()}


# -- checking one example against the signature ------------------------------------------------


def _describe(specs: Sequence[TensorSpec]) -> str:
    parts = []
    for s in specs:
        shape = "?" if s.example_shape is None else list(s.example_shape)
        parts.append(f"{s.name} ({s.dtype or 'any dtype'}, shape {shape})".replace("None", "any"))
    return ", ".join(parts)


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except ValueError:  # NumPy refuses lists of uneven lengths ("inhomogeneous shape")
        raise RaggedTensorError(
            f"input {name!r} is a ragged nested list (rows of different lengths)",
            hint="every row at the same depth must have the same length; pad the shorter ones",
        ) from None


def _cast(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """``array`` as ``spec.dtype`` where no value can change; otherwise a ``TensorDtypeError``."""
    target, name, kind = spec.dtype, spec.name, array.dtype.kind
    # Bytes (TensorFlow Serving's {"b64": ...} values) are strings too, for a string input only.
    text_types = (str, bytes) if target == STRING else str
    if kind == "O" and array.size and not all(isinstance(v, text_types) for v in array.reshape(-1)):
        bad = next(v for v in array.reshape(-1) if not isinstance(v, text_types))
        raise TensorDtypeError(
            f"input {name!r} mixes types ({type(bad).__name__} {bad!r} among its values)",
            hint=f"send only {target or 'numbers'}",
        )
    is_text = kind in "OUS"
    if target == STRING:
        if not is_text and array.size:
            raise TensorDtypeError(
                f"input {name!r} takes text, got {array.dtype.name} values", hint="send the values as strings"
            )
        flat = [v if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape)
    if is_text and array.size:
        sample = array.reshape(-1)[0]
        raise TensorDtypeError(
            f"input {name!r} takes {target or 'numbers'}, got a string ({str(sample)[:40]!r})",
            hint="send numbers, not strings",
        )
    if target is None:  # the model does not say (TorchScript): torch's defaults
        target = "float32" if kind == "f" else "bool" if kind == "b" else "int64"
    dtype = np.dtype(target)
    if dtype.kind == "f" or dtype.kind == "c":
        if kind not in "biufc" and array.size:
            raise TensorDtypeError(f"input {name!r} takes {target}, got {array.dtype.name}")
        return array.astype(dtype, copy=False)
    if dtype.kind in "iu":
        if kind == "f" and array.size:
            problem = "NaN" if np.isnan(array).any() else "fractional or float values"
            raise TensorDtypeError(
                f"input {name!r} takes {target}, got {problem} ({array.dtype.name}); floats are never cast to ints",
                hint=f"send whole numbers without a decimal point; the model takes {target}",
            )
        if kind not in "biu" and array.size:
            raise TensorDtypeError(f"input {name!r} takes {target}, got {array.dtype.name}")
        if array.size and kind != "b":
            info = np.iinfo(dtype)
            low, high = int(array.min()), int(array.max())
            if low < info.min or high > info.max:
                raise TensorDtypeError(
                    f"input {name!r} has values from {low} to {high}, outside {target}'s range "
                    f"[{info.min}, {info.max}]",
                    hint=f"send values the model's {target} can hold",
                )
        return array.astype(dtype, copy=False)
    if dtype.kind == "b":
        if kind != "b" and array.size:
            raise TensorDtypeError(f"input {name!r} takes booleans, got {array.dtype.name}", hint="send true/false")
        return array.astype(dtype, copy=False)
    raise TensorDtypeError(f"input {name!r} has dtype {target}, which modeldeck cannot build from JSON values")


def _check_shape(array: np.ndarray, spec: TensorSpec) -> None:
    expected = spec.example_shape
    if expected is None:
        return
    fits = array.ndim == len(expected) and all(
        e is None or e == got for e, got in zip(expected, array.shape, strict=True)
    )
    if not fits:
        shown = "[" + ", ".join("any" if e is None else str(e) for e in expected) + "]"
        raise TensorShapeError(
            f"input {spec.name!r} has shape {list(array.shape)}, the model takes {shown} per example",
            hint="send one example without the batch dimension; 'any' marks a dimension of any size",
        )


def check_example(raw: Any, inputs: Sequence[TensorSpec]) -> Example:
    """One example (``{name: nested list or array}``) checked and cast to the signature, in its order."""
    if not isinstance(raw, Mapping):
        raise InputTypeError(
            f"a tensor input is an object of input name -> values, got {type(raw).__name__}",
            hint=f"send {{name: values}} for: {_describe(inputs)}",
        )
    expected = [s.name for s in inputs]
    missing = [n for n in expected if n not in raw]
    unknown = sorted(str(n) for n in raw if n not in expected)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(map(repr, missing))}")
        if unknown:
            problems.append(f"unknown {', '.join(map(repr, unknown))}")
        raise TensorNameError(f"input names: {'; '.join(problems)}", hint=f"the model takes: {_describe(inputs)}")
    example: Example = {}
    for spec in inputs:
        if raw[spec.name] is None:
            raise TensorDtypeError(f"input {spec.name!r} is null", hint=f"send values for: {_describe([spec])}")
        array = _as_array(raw[spec.name], spec.name)
        array = _cast(array, spec)
        _check_shape(array, spec)
        example[spec.name] = array
    return example


# -- the task ----------------------------------------------------------------------------------


class TensorTask(Task[Example, dict[str, np.ndarray], TensorResult, TensorOptions]):
    name = "tensor"
    options_type = TensorOptions
    result_type: ClassVar[type] = TensorResult
    input_kind: ClassVar[InputKind] = "tensor"
    load_args: ClassVar[frozenset[str]] = frozenset({"safe_mode", "signature"})
    backend: TensorBackend

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.backend.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.backend.outputs

    def check_options(self, options: TensorOptions) -> TensorOptions:
        known = [s.name for s in self.outputs]
        if options.outputs is not None and known:
            unknown = [n for n in options.outputs if n not in known]
            if unknown:
                raise OptionError(
                    f"tensor: unknown output(s) {', '.join(map(repr, unknown))}",
                    hint=f"the model's outputs: {', '.join(known)}",
                )
        return options

    def preprocess(self, raw: Any, options: TensorOptions) -> Example:
        return check_example(raw, self.inputs)

    def forward(self, batch: Sequence[Example]) -> list[dict[str, np.ndarray]]:
        limit = self.backend.batch_limit
        if limit is None:
            return self._run(list(batch))
        raws: list[dict[str, np.ndarray]] = []
        for start in range(0, len(batch), limit):
            chunk = list(batch[start : start + limit])
            # A fixed batch size N > 1 takes exactly N: pad with copies of the last example, drop their outputs.
            padded = chunk + [chunk[-1]] * (limit - len(chunk))
            raws.extend(self._run(padded)[: len(chunk)])
        return raws

    def _run(self, batch: list[Example]) -> list[dict[str, np.ndarray]]:
        feeds = {spec.name: np.stack([example[spec.name] for example in batch]) for spec in self.inputs}
        outputs = self.backend.runtime.run(feeds)
        n = len(batch)
        for name, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != n:
                raise InferenceError(
                    f"output {name!r} has shape {list(array.shape)} for a batch of {n}: "
                    "it does not keep the batch dimension first, so it cannot be split per example",
                )
        return [{name: array[i] for name, array in outputs.items()} for i in range(n)]

    def postprocess(self, raw: dict[str, np.ndarray], encoded: Example, options: TensorOptions) -> TensorResult:
        if options.outputs is None:
            return TensorResult(outputs=raw)
        missing = [name for name in options.outputs if name not in raw]
        if missing:
            raise OptionError(
                f"tensor: the model gave no output {', '.join(map(repr, missing))}",
                hint=f"its outputs: {', '.join(raw)}",
            )
        return TensorResult(outputs={name: raw[name] for name in options.outputs})

    def signature(self) -> dict[str, Any]:
        """The inputs and outputs (name, dtype, shape with the batch dimension first)."""
        return signature_dict(self.inputs, self.outputs)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["signature"] = self.signature()
        out.setdefault("runtime", {}).update(self.backend.runtime.describe())
        return out
