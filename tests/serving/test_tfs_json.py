"""TF Serving's JSON mapping without TensorFlow: b64 values, and the feature kinds of a JSON example.

That the examples are ``tf.train.Example``s TensorFlow reads is checked in ``test_tfserving.py``,
where a SavedModel parses them with ``tf.io.parse_example``.
"""

from __future__ import annotations

import pytest

from modeldeck.errors import InputDecodeError
from modeldeck.serving._tfs_json import ExampleEncoder, _feature_values, decoded


def test_b64_objects_are_decoded_wherever_they_are():
    assert decoded([{"b64": "AP8="}, ["a", {"b64": ""}], {"b64x": 1}]) == [b"\x00\xff", ["a", b""], {"b64x": 1}]
    for bad in ({"b64": "%%"}, {"b64": 5}):
        with pytest.raises(InputDecodeError, match="b64 value"):
            decoded(bad)


@pytest.mark.parametrize(
    ("content", "kind", "values"),
    [
        (1.5, "float_list", [1.5]),
        ([1.0, 2.0], "float_list", [1.0, 2.0]),
        ([1, 2], "int64_list", [1, 2]),
        (True, "int64_list", [1]),
        ("seaside", "bytes_list", [b"seaside"]),
        ([{"b64": "aW1hZ2U="}, "caption"], "bytes_list", [b"image", b"caption"]),
    ],
)
def test_feature_kinds_follow_tf_servings_rules(content, kind, values):
    assert _feature_values(content, "f") == (kind, values)


@pytest.mark.parametrize(("content", "words"), [([1.0, 2], "mixes value types"), ([[1.0]], "unexpected JSON type")])
def test_a_feature_of_mixed_or_nested_values_is_refused(content, words):
    with pytest.raises(InputDecodeError, match=words):
        _feature_values(content, "example 0, feature 'x'")


def test_examples_serialize_deterministically_with_every_feature():
    encode = ExampleEncoder()
    one = encode({"x": [1.0, 2.0], "tag": "a", "n": 3}, "example 0")
    assert one == encode({"n": 3, "tag": "a", "x": [1.0, 2.0]}, "example 0")  # map order does not matter
    assert b"tag" in one and b"\x00\x00\x80?" in one  # the name, and 1.0 as a little-endian float32
