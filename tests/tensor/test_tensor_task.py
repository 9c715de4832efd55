"""The tensor task through ``modeldeck.load``: equal to the framework's own call, batched, and strict on input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modeldeck
from modeldeck.errors import (
    InputTypeError,
    ModelFileError,
    OptionError,
    RaggedTensorError,
    TensorDtypeError,
    TensorNameError,
    TensorShapeError,
    UnknownNameError,
    UnsafeModelFileError,
)
from modeldeck.tasks.tensor_results import TensorResult

from .builders import affine_reference

pytestmark = pytest.mark.timeout(300)


def _counting(task):
    """Wrap the runtime's ``run`` to record the batch size of every framework call."""
    calls: list[int] = []
    run = task.backend.runtime.run

    def counted(feeds):
        calls.append(len(next(iter(feeds.values()))))
        return run(feeds)

    task.backend.runtime.run = counted
    return calls


# -- Keras, in this process (torch backend unless the process already chose another) ----------


@pytest.mark.slow
def test_keras_mlp_equals_model_predict_single_and_batched(keras_dir, keras_refs):
    from modeldeck.runtimes.keras import import_keras

    task = modeldeck.load(str(keras_dir / "mlp.keras"))
    keras = import_keras()
    assert task.name == "tensor" and task.info.runtime == "keras"
    assert task.describe()["runtime"]["backend"] == keras.backend.backend()
    assert task.signature()["inputs"] == [{"name": "features", "dtype": "float32", "shape": [None, 4]}]
    x = keras_refs["x_mlp"]
    direct = keras.saving.load_model(str(keras_dir / "mlp.keras")).predict(x, verbose=0)
    calls = _counting(task)
    batched = task([{"features": row.tolist()} for row in x])
    assert calls == [len(x)]  # one framework call for the whole batch
    single = task({"features": x[0].tolist()})
    assert single.names == ("probability",)
    np.testing.assert_allclose(single["probability"], direct[0], atol=1e-5)
    np.testing.assert_allclose(np.stack([r["probability"] for r in batched]), direct, atol=1e-5)
    # The same file on the TensorFlow backend (built in another process) agrees too.
    np.testing.assert_allclose(np.stack([r["probability"] for r in batched]), keras_refs["mlp_predict"], atol=1e-5)


@pytest.mark.slow
def test_keras_cnn_sequential_names_its_output_after_the_last_layer(keras_dir, keras_refs):
    task = modeldeck.load(str(keras_dir / "cnn.keras"))
    x = keras_refs["x_cnn"]
    results = task([{"image": img} for img in x])
    assert [s["name"] for s in task.signature()["outputs"]] == ["scores"]
    np.testing.assert_allclose(np.stack([r["scores"] for r in results]), keras_refs["cnn_predict"], atol=1e-5)


@pytest.mark.slow
def test_keras_text_model_takes_raw_strings_on_the_tensorflow_backend(keras_dir, keras_refs):
    # Keras runs string tensors only on TensorFlow: a fresh process picks that backend for this file.
    code = (
        "import json, sys, modeldeck\n"
        f"m = modeldeck.load({str(keras_dir / 'text.keras')!r})\n"
        "texts = json.loads(sys.argv[1])\n"
        "out = [r.to_dict() for r in m([{'text': t} for t in texts])]\n"
        "print(json.dumps({'backend': m.describe()['runtime']['backend'], 'one': m({'text': texts[0]}).to_dict(),"
        " 'all': out}))\n"
    )
    texts = keras_refs["texts"].tolist()
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(modeldeck.__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["backend"] == "tensorflow"
    logits = np.stack([TensorResult.from_dict(r)["logits"] for r in answer["all"]])
    np.testing.assert_allclose(logits, keras_refs["text_predict"], atol=1e-5)
    one = TensorResult.from_dict(answer["one"])["logits"]
    np.testing.assert_allclose(one, keras_refs["text_predict"][0], atol=1e-5)


@pytest.mark.slow
def test_a_lambda_layer_is_refused_by_name_unless_the_caller_opts_in(keras_dir):
    with pytest.raises(UnsafeModelFileError, match=r"'doubler'.*safe_mode=False"):
        modeldeck.load(str(keras_dir / "lambda.keras"))
    from modeldeck.runtimes.keras import import_keras

    trusted = modeldeck.load(str(keras_dir / "lambda.keras"), safe_mode=False)
    (out,) = trusted({"x": [1, 2, 3, 4]}).outputs.values()
    direct = import_keras().saving.load_model(str(keras_dir / "lambda.keras"), safe_mode=False)
    np.testing.assert_allclose(out, direct.predict(np.array([[1, 2, 3, 4]], dtype=np.float32), verbose=0)[0], atol=1e-5)


def test_a_corrupt_keras_file_is_a_model_file_error(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFileError, match=r"not a readable \.keras file") as caught:
        modeldeck.load(str(bad))
    assert caught.value.code == "MD306" and "model.save" in str(caught.value)


# -- TensorFlow SavedModel (model.export output) --------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("name", "key", "inputs"), [("mlp", "features", "x_mlp"), ("text", "text", "texts")])
def test_saved_model_equals_its_signature_called_directly(keras_dir, keras_refs, name, key, inputs):
    task = modeldeck.load(str(keras_dir / f"{name}_sm"))
    assert task.info.runtime == "tensorflow"
    assert task.describe()["runtime"]["signature"] == "serving_default"
    values = keras_refs[inputs].tolist()
    results = task([{key: v} for v in values])
    out = np.stack([r["output_0"] for r in results])
    np.testing.assert_allclose(out, keras_refs[f"{name}_signature"], atol=1e-5)
    np.testing.assert_allclose(task({key: values[1]})["output_0"], keras_refs[f"{name}_signature"][1], atol=1e-5)


@pytest.mark.slow
def test_a_missing_signature_lists_the_ones_there(keras_dir):
    with pytest.raises(UnknownNameError, match="no signature 'classify'") as caught:
        modeldeck.load(str(keras_dir / "mlp_sm"), signature="classify")
    assert "serving_default" in str(caught.value)


# -- TorchScript and torch.export ------------------------------------------------------------------


def test_torchscript_names_dict_outputs_and_equals_the_module(torch_dir):
    import torch

    task = modeldeck.load(str(torch_dir / "two.ts"))
    assert task.info.runtime == "torchscript"
    assert [s.name for s in task.inputs] == ["features", "mask"]
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    m = np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float32)
    module = torch.jit.load(str(torch_dir / "two.ts"))
    direct = module(torch.from_numpy(x), torch.from_numpy(m))
    results = task([{"features": a.tolist(), "mask": b.tolist()} for a, b in zip(x, m, strict=True)])
    np.testing.assert_allclose(np.stack([r["logits"] for r in results]), direct["logits"].detach().numpy(), atol=1e-6)
    np.testing.assert_allclose([float(r["total"]) for r in results], direct["total"].numpy(), atol=1e-6)


def test_torch_export_reads_its_signature_and_equals_the_program(torch_dir):
    import torch

    task = modeldeck.load(str(torch_dir / "two.pt2"))
    assert task.info.runtime == "torch-export"
    sig = task.signature()
    assert sig["inputs"] == [
        {"name": "features", "dtype": "float32", "shape": [None, 4]},
        {"name": "mask", "dtype": "float32", "shape": [None, 2]},
    ]
    assert [o["name"] for o in sig["outputs"]] == ["logits", "total"]
    x = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    m = np.ones((4, 2), dtype=np.float32)
    direct = torch.export.load(str(torch_dir / "two.pt2")).module()(torch.from_numpy(x), torch.from_numpy(m))
    calls = _counting(task)
    results = task([{"features": a, "mask": b} for a, b in zip(x, m, strict=True)])
    assert calls == [4]
    np.testing.assert_allclose(np.stack([r["logits"] for r in results]), direct["logits"].detach().numpy(), atol=1e-6)


def test_a_program_exported_with_batch_one_runs_one_by_one(torch_dir):
    import torch

    task = modeldeck.load(str(torch_dir / "one.pt2"))
    assert task.signature()["inputs"][0]["shape"] == [1, 3, 16, 16]
    images = np.random.default_rng(1).random((3, 3, 16, 16)).astype(np.float32)
    calls = _counting(task)
    results = task([{task.inputs[0].name: img} for img in images])
    assert calls == [1, 1, 1]
    module = torch.export.load(str(torch_dir / "one.pt2")).module()
    for img, result in zip(images, results, strict=True):
        (name,) = result.names
        np.testing.assert_allclose(result[name], module(torch.from_numpy(img[None]))[0].detach().numpy(), atol=1e-6)


def test_a_pt2_from_a_newer_torch_is_refused_with_the_fix(torch_dir, tmp_path):
    import zipfile

    newer = tmp_path / "newer.pt2"
    with zipfile.ZipFile(torch_dir / "two.pt2") as src, zipfile.ZipFile(newer, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("models/model.json"):
                doc = json.loads(data)
                doc["schema_version"]["major"] = 99
                data = json.dumps(doc).encode()
            out.writestr(item, data)
    with pytest.raises(ModelFileError, match="schema 99") as caught:
        modeldeck.load(str(newer))
    assert "export it again" in str(caught.value)


def test_a_pickled_module_is_refused_and_never_unpickled(torch_dir, tmp_path, monkeypatch):
    import pickle

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the pickle was opened")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    with pytest.raises(UnsafeModelFileError, match="pickled torch object") as caught:
        modeldeck.load(str(torch_dir / "pickled.pt"))
    assert "torch.jit.script" in str(caught.value)
    renamed = tmp_path / "model.pt2"
    shutil.copy(torch_dir / "pickled.pt", renamed)
    with pytest.raises((UnsafeModelFileError, ModelFileError)):
        modeldeck.load(str(renamed))


# -- ONNX ----------------------------------------------------------------------------------------


def test_onnx_graph_as_a_tensor_model(onnx_dir):
    task = modeldeck.load(str(onnx_dir / "affine.onnx"))
    assert task.info.runtime == "onnxruntime" and task.name == "tensor"
    x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    calls = _counting(task)
    results = task([{"x": row} for row in x])
    assert calls == [5]
    np.testing.assert_allclose(np.stack([r["y"] for r in results]), affine_reference(x), atol=1e-5)
    assert results[0]["argmax"].dtype == np.int64 and results[0]["argmax"].shape == ()
    only_y = task({"x": x[0]}, outputs=["y"])
    assert only_y.names == ("y",)
    with pytest.raises(OptionError, match="'z'"):
        task({"x": x[0]}, outputs=["z"])


def test_onnx_with_a_fixed_batch_of_one(onnx_dir):
    task = modeldeck.load(str(onnx_dir / "affine1.onnx"))
    x = np.eye(3, dtype=np.float32)
    calls = _counting(task)
    results = task([{"x": row} for row in x])
    assert calls == [1, 1, 1]
    np.testing.assert_allclose(np.stack([r["y"] for r in results]), affine_reference(x), atol=1e-5)


# -- bad input: each a clear error with its code; in a list only that item fails ------------------


@pytest.fixture(scope="module")
def ids_task(onnx_dir):
    return modeldeck.load(str(onnx_dir / "ids.onnx"))


@pytest.fixture(scope="module")
def affine(onnx_dir):
    return modeldeck.load(str(onnx_dir / "affine.onnx"))


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        ({"idz": [1, 2, 3]}, TensorNameError, ["missing 'ids'", "unknown 'idz'", "ids (int64, shape [3])"]),
        ({"ids": [1, 2, 3], "extra": 1}, TensorNameError, ["unknown 'extra'"]),
        ({"ids": [1, 2]}, TensorShapeError, ["shape [2]", "takes [3]"]),
        ({"ids": [[1, 2, 3]]}, TensorShapeError, ["shape [1, 3]"]),
        ({"ids": [1.5, 2, 3]}, TensorDtypeError, ["takes int64", "floats are never cast to ints"]),
        ({"ids": [float("nan"), 2, 3]}, TensorDtypeError, ["NaN"]),
        ({"ids": ["1", "2", "3"]}, TensorDtypeError, ["got a string", "'1'"]),
        ({"ids": [1, "two", 3]}, TensorDtypeError, ["string"]),
        ({"ids": [[1, 2], [3]]}, RaggedTensorError, ["ragged"]),
        ({"ids": None}, TensorDtypeError, ["null"]),
        ({"ids": np.array([2**63, 1, 1], dtype=np.uint64)}, TensorDtypeError, ["outside int64's range"]),
        ([1, 2, 3], InputTypeError, ["object of input name -> values"]),
    ],
)
def test_bad_tensor_inputs_are_named_with_the_fix(ids_task, raw, error, words):
    with pytest.raises(error) as caught:
        ids_task(raw)
    text = str(caught.value)
    for word in words:
        assert word in text, text
    assert caught.value.code.startswith("MD1")


def test_safe_casts_only(ids_task, affine):
    assert int(ids_task({"ids": [1, 2, 3]})["total"]) == 6
    assert int(ids_task({"ids": [True, False, True]})["total"]) == 2  # bool -> int is exact
    ints = affine({"x": [1, 2, 3]})  # int -> float32 is safe
    np.testing.assert_allclose(ints["y"], affine_reference(np.array([[1, 2, 3]]))[0], atol=1e-5)


def test_in_a_list_only_the_bad_item_fails(ids_task):
    out = ids_task.predict_each([{"ids": [1, 2, 3]}, {"ids": [1.5, 2, 3]}, {"ids": [4, 5, 6]}, {"nope": 1}])
    assert int(out[0]["total"]) == 6 and int(out[2]["total"]) == 15
    assert isinstance(out[1], TensorDtypeError) and isinstance(out[3], TensorNameError)


# -- results -----------------------------------------------------------------------------------------


def test_tensor_result_round_trips_dict_json_and_arrow():
    import pyarrow as pa

    from modeldeck.tasks.results import to_arrow

    result = TensorResult(
        outputs={
            "probs": np.array([[0.1, 0.9]], dtype=np.float32),
            "ids": np.array([2**40, -3], dtype=np.int64),
            "flag": np.array(True),
            "tokens": np.array([["a", "b"], ["c", "é"]], dtype=object),
        }
    )
    plain = result.to_dict()
    probs = np.array([0.1, 0.9], dtype=np.float32).tolist()
    assert plain["outputs"][0] == {"name": "probs", "dtype": "float32", "shape": [1, 2], "data": probs}
    tokens = {"name": "tokens", "dtype": "string", "shape": [2, 2], "strings": ["a", "b", "c", "é"]}
    assert plain["outputs"][3] == tokens
    back = TensorResult.from_dict(json.loads(json.dumps(plain)))
    assert back == result
    assert back["probs"].dtype == np.float32 and back["tokens"].tolist() == [["a", "b"], ["c", "é"]]
    assert not back["probs"].flags.writeable
    column = to_arrow([result, None], TensorResult)
    assert column.type == TensorResult.arrow_type() and column.null_count == 1
    assert TensorResult.from_dict(column.to_pylist()[0]) == result
    assert isinstance(column, pa.StructArray)
