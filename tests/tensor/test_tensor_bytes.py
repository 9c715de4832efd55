"""Binary strings in tensors: bytes into a string input, and ``*_bytes`` outputs kept whole (as TF Serving does)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modeldeck.errors import TensorDtypeError
from modeldeck.runtimes.tensors import TensorSpec
from modeldeck.tasks.tensor import check_example
from modeldeck.tasks.tensor_results import TensorResult

BINARY = b"\x89PNG\x00\xff\x00"  # not UTF-8, with zero bytes inside and at the end


def test_a_string_input_takes_bytes_as_they_are():
    spec = TensorSpec(name="blob", shape=(None, 2), dtype="string")
    values = np.array([BINARY, "text"], dtype=object)
    example = check_example({"blob": values}, [spec])
    assert example["blob"].tolist() == [BINARY, "text"]
    with pytest.raises(TensorDtypeError, match="mixes types"):
        check_example({"x": np.array([BINARY], dtype=object)}, [TensorSpec(name="x", shape=(None, 1), dtype="float32")])


def test_a_bytes_output_round_trips_through_the_wire_form():
    result = TensorResult(outputs={"image_bytes": np.array([BINARY, b"ok"], dtype=object), "caption": np.array(b"hi")})
    assert result["image_bytes"].tolist() == [BINARY, b"ok"]
    assert result["caption"].item() == "hi"  # other text outputs are str, as before
    wire = json.loads(json.dumps(result.to_dict()))
    entry = wire["outputs"][0]
    assert entry["dtype"] == "bytes" and entry["shape"] == [2]
    assert TensorResult.from_dict(wire) == result


def test_bytes_outputs_of_any_rank_and_numeric_outputs_named_bytes():
    outputs = {
        "one_bytes": np.array(BINARY, dtype=object),
        "grid_bytes": np.array([[b"\xff", b""], [b"a", "text"]], dtype=object),
        "count_bytes": np.array([1, 2]),  # numbers stay numbers whatever the name
    }
    result = TensorResult(outputs=outputs)
    wire = result.to_dict()["outputs"]
    assert [e["dtype"] for e in wire] == ["bytes", "bytes", "int64"]
    assert wire[0]["shape"] == [] and wire[1]["shape"] == [2, 2]
    assert result["grid_bytes"].tolist() == [[b"\xff", b""], [b"a", b"text"]]
    assert TensorResult.from_dict(result.to_dict()) == result
