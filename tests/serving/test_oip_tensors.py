"""The OIP tensor codec on its own: datatypes, JSON data, binary data and the body split, with their errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from modeldeck.errors import InputDecodeError, RaggedTensorError, TensorDtypeError, TensorShapeError
from modeldeck.serving._tensors import (
    DATATYPES,
    datatype_of,
    decode_bytes,
    decode_tensor,
    encode_bytes,
    encode_tensor,
    split_body,
)


@pytest.mark.parametrize("datatype", [d for d in DATATYPES if d != "BYTES"])
def test_numeric_binary_and_json_decode_to_the_same_array(datatype):
    dtype = DATATYPES[datatype]
    array = (np.arange(6) % 2 == 0) if datatype == "BOOL" else np.arange(6).astype(dtype)
    array = array.reshape(2, 3)
    head, raw = encode_tensor("t", array, True)
    assert head == {"name": "t", "datatype": datatype, "shape": [2, 3], "parameters": {"binary_data_size": len(raw)}}
    from_binary = decode_tensor("t", datatype, [2, 3], None, memoryview(raw))
    from_json = decode_tensor("t", datatype, [2, 3], encode_tensor("t", array, False)[0]["data"], None)
    nested = decode_tensor("t", datatype, [2, 3], array.tolist(), None)
    for got in (from_binary, from_json, nested):
        assert got.dtype == dtype and np.array_equal(got, array)
    assert datatype_of(dtype) == datatype


def test_bytes_elements_carry_a_little_endian_length():
    values = [b"", b"abc", "日本".encode()]
    raw = encode_bytes(values)
    assert raw[:4] == struct.pack("<I", 0) and raw[4:8] == struct.pack("<I", 3)
    assert decode_bytes(raw, 3, "s") == values
    with pytest.raises(InputDecodeError, match="2 bytes are left after its 3 BYTES elements"):
        decode_bytes(raw + b"zz", 3, "s")
    with pytest.raises(InputDecodeError, match="ends before element 3"):
        decode_bytes(raw, 4, "s")
    head, out = encode_tensor("s", np.array(["a", "日本"], dtype=object), True)
    assert head["datatype"] == "BYTES" and decode_bytes(out, 2, "s") == [b"a", "日本".encode()]


def test_json_data_errors_name_the_input_the_element_and_the_fix():
    with pytest.raises(TensorDtypeError, match=r"input 'x' is INT8 but element 1 is bool True"):
        decode_tensor("x", "INT8", [2], [1, True], None)
    with pytest.raises(TensorDtypeError, match=r"values from -1 to 300, outside UINT8's range \[0, 255\]"):
        decode_tensor("x", "UINT8", [2], [-1, 300], None)
    with pytest.raises(TensorDtypeError, match="element 0 is int 5"):
        decode_tensor("x", "BYTES", [1], [5], None)
    with pytest.raises(TensorDtypeError, match="element 0 is int 1"):
        decode_tensor("x", "BOOL", [1], [1], None)
    with pytest.raises(RaggedTensorError, match="ragged"):
        decode_tensor("x", "FP32", [2, 2], [[1.0, 2.0], [3.0]], None)
    with pytest.raises(TensorShapeError, match="dimensions must be >= 0"):
        decode_tensor("x", "FP32", [-1, 2], [1.0, 2.0], None)
    with pytest.raises(InputDecodeError, match="neither data nor binary_data_size"):
        decode_tensor("x", "FP32", [1], None, None)
    with pytest.raises(TensorDtypeError, match="'BF16', which is not supported here"):
        decode_tensor("x", "BF16", [1], [1.0], None)


def test_binary_data_errors():
    with pytest.raises(TensorShapeError, match="7 bytes of binary data; shape \\[2\\] of FP32 takes 8"):
        decode_tensor("x", "FP32", [2], None, memoryview(b"\0" * 7))
    with pytest.raises(TensorDtypeError, match="bytes other than 0 and 1"):
        decode_tensor("x", "BOOL", [2], None, memoryview(b"\x01\x02"))


def test_the_body_split_by_the_header_length():
    assert split_body(b'{"a":1}tail', None) == (b'{"a":1}tail', memoryview(b""))
    head, rest = split_body(b'{"a":1}tail', "7")
    assert head == b'{"a":1}' and bytes(rest) == b"tail"
    for bad, message in (("x", "whole number"), ("-3", "whole number"), ("0", "raw binary"), ("99", "beyond the body")):
        with pytest.raises(InputDecodeError, match=message):
            split_body(b'{"a":1}tail', bad)
