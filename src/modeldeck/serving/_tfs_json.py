"""TF Serving's JSON mapping: ``{"b64": ...}`` binary values, and JSON examples as ``tf.train.Example`` bytes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ..errors import DependencyError, InputDecodeError, InputError

__all__ = ["ExampleEncoder", "decoded", "is_b64"]


def is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decoded(value: Any) -> Any:
    """``value`` with every ``{"b64": ...}`` object in it replaced by its bytes."""
    if is_b64(value):
        if not isinstance(value["b64"], str):
            raise InputDecodeError(f"a b64 value must be a string, got {type(value['b64']).__name__}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputDecodeError(
                f"a b64 value is not valid base64 ({exc})", hint="encode binary values with standard base64"
            ) from None
    if isinstance(value, list):
        return [decoded(v) for v in value]
    return value


class ExampleEncoder:
    """Writes one JSON example (feature name -> value or flat list) as a serialized ``tf.train.Example``.

    The message types are declared to protobuf here, as TensorFlow's ``example.proto`` declares
    them (``Example``, ``Features``, ``Feature`` and its three lists), so the server process builds
    examples without importing TensorFlow; the model parses them with ``tf.io.parse_example``.
    """

    def __init__(self) -> None:
        try:
            from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        except ImportError:
            raise DependencyError("protobuf", extra="tensorflow", purpose="classify and regress") from None
        field = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(name="modeldeck_example.proto", package="tensorflow")
        proto.syntax = "proto3"

        def message(name: str, *fields: tuple[str, int, int, str]) -> Any:
            out = proto.message_type.add(name=name)
            for field_name, number, kind, type_name in fields:
                # The lists' values and the feature map repeat; a Feature's kinds and Example's features do not.
                label = (
                    field.LABEL_REPEATED if kind != field.TYPE_MESSAGE or name == "Features" else field.LABEL_OPTIONAL
                )
                added = out.field.add(name=field_name, number=number, type=kind, label=label)
                if type_name:
                    added.type_name = type_name
            return out

        message("BytesList", ("value", 1, field.TYPE_BYTES, ""))
        message("FloatList", ("value", 1, field.TYPE_FLOAT, ""))
        message("Int64List", ("value", 1, field.TYPE_INT64, ""))
        feature = message(
            "Feature",
            ("bytes_list", 1, field.TYPE_MESSAGE, ".tensorflow.BytesList"),
            ("float_list", 2, field.TYPE_MESSAGE, ".tensorflow.FloatList"),
            ("int64_list", 3, field.TYPE_MESSAGE, ".tensorflow.Int64List"),
        )
        feature.oneof_decl.add(name="kind")
        for one in feature.field:
            one.oneof_index = 0
        features = message("Features", ("feature", 1, field.TYPE_MESSAGE, ".tensorflow.Features.FeatureEntry"))
        entry = features.nested_type.add(name="FeatureEntry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
        entry.field.add(
            name="value", number=2, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL, type_name=".tensorflow.Feature"
        )
        message("Example", ("features", 1, field.TYPE_MESSAGE, ".tensorflow.Features"))
        pool = descriptor_pool.DescriptorPool()  # a pool of its own: TensorFlow's, if loaded, holds these names
        pool.Add(proto)
        self._example = message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))

    def __call__(self, features: Mapping[str, Any], where: str) -> bytes:
        example = self._example()
        for name, content in features.items():
            kind, values = _feature_values(content, f"{where}, feature {name!r}")
            getattr(example.features.feature[name], kind).value.extend(values)
        return bytes(example.SerializeToString(deterministic=True))


def _feature_values(content: Any, where: str) -> tuple[str, list[Any]]:
    """A feature's JSON value or flat list as (kind of list, values), by TF Serving's rules: a string or
    b64 object is bytes, a number with a decimal point or exponent a float, a whole number or a boolean
    an int64; one feature holds one kind."""
    values = content if isinstance(content, list) else [content]
    kinds = set()
    out: list[Any] = []
    for value in values:
        if isinstance(value, str):
            kinds.add("bytes_list")
            out.append(value.encode("utf-8"))
        elif is_b64(value):
            kinds.add("bytes_list")
            out.append(decoded(value))
        elif isinstance(value, int):  # bool too: true is 1, as in TF Serving
            if not -(2**63) <= int(value) < 2**63:
                raise InputError(f"{where}: {value} is outside int64", hint="send int64 values")
            kinds.add("int64_list")
            out.append(int(value))
        elif isinstance(value, float):
            kinds.add("float_list")
            out.append(value)
        else:
            raise InputDecodeError(
                f"{where} has a value of unexpected JSON type ({type(value).__name__})",
                hint='a feature is a number, a string, {"b64": ...}, or a flat list of one of them',
            )
    if len(kinds) > 1:
        raise InputDecodeError(
            f"{where} mixes value types ({', '.join(sorted(k.removesuffix('_list') for k in kinds))})",
            hint="write every value of a float feature with a decimal point, e.g. 1.0",
        )
    return (kinds.pop() if kinds else "float_list"), out
