"""TensorFlow Serving's REST API against SavedModels built here: the plain calls of TF Serving's own docs.

The SavedModels come from ``build_tfserving_models.py`` (TensorFlow in a subprocess), which also
calls their signatures directly with ``tf.saved_model.load``; ``modeldeck serve`` serves them from
another process. A TF Serving client is plain HTTP (``requests`` here, as TF Serving's examples use
it), so these are the client's own calls.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from ..support import free_port
from . import build_tfserving_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MULTI_X, MULTI_TAG = build_tfserving_models.MULTI_X, build_tfserving_models.MULTI_TAG
EXAMPLES = [{"x": x} for x in build_tfserving_models.EXAMPLES]
BUILD = Path(build_tfserving_models.__file__)
_TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode("ascii")}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tfserving")
    done = subprocess.run(
        [sys.executable, str(BUILD), str(folder)], env=_TF_ENV, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The estimator-style export served twice more, through its classify and its regress signature
    # (modeldeck serves one signature per model).
    for name, signature in (("classifier", "classify"), ("regressor", "regress")):
        shutil.copytree(folder / "estimator", folder / name)
        (folder / name / "modeldeck.json").write_text(json.dumps({"signature": signature}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def refs(built) -> dict[str, Any]:
    return json.loads((built / "refs.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def url(built, tmp_path_factory):
    # `modeldeck serve` in a process of its own, the models on its threads: TensorFlow is imported
    # once, and never into this process (TensorFlow then torch's triton in one process can crash).
    models = ",".join(
        f"{name}=tensor:{built / name}" for name in ("half", "multi", "estimator", "classifier", "regressor")
    )
    port = free_port()
    env = {
        **os.environ,
        **_TF_ENV,
        "MODELDECK_HOME": str(tmp_path_factory.mktemp("home")),
        "MODELDECK_ISOLATION": "thread",
    }
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modeldeck", "serve", "--models", models, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.2)
        yield f"{base}/v1/models"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def post(url: str, body: Any) -> requests.Response:
    return requests.post(url, data=json.dumps(body), timeout=60)


def test_model_status_as_tf_serving_answers_it(url):
    # TF Serving's client reads model_version_status; modeldeck's own detail stays in the same object.
    status = requests.get(f"{url}/half", timeout=30).json()
    expected = [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    assert status["model_version_status"] == expected
    assert status["task"] == "tensor" and status["name"] == "half"
    assert requests.get(f"{url}/half/versions/1", timeout=30).json() == {"model_version_status": expected}
    for missing in ("versions/7", "labels/stable"):
        answer = requests.get(f"{url}/half/{missing}", timeout=30)
        assert answer.status_code == 404 and isinstance(answer.json()["error"], str)


def test_metadata_is_the_saved_models_signature_def(url):
    meta = requests.get(f"{url}/multi/metadata", timeout=30).json()
    assert meta["model_spec"] == {"name": "multi", "signature_name": "", "version": "1"}
    (name, signature), *others = meta["metadata"]["signature_def"]["signature_def"].items()
    assert name == "serving_default" and not others
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["inputs"]["x"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "3", "name": ""}],
        "unknown_rank": False,
    }
    assert signature["inputs"]["tag"]["dtype"] == "DT_STRING"
    assert signature["inputs"]["x"]["name"].startswith("serving_default_x")  # the graph's own tensor name
    assert set(signature["outputs"]) == {"scaled", "total", "tag_len", "tag_bytes"}
    assert requests.get(f"{url}/multi/versions/1/metadata", timeout=30).json() == meta
    regress = requests.get(f"{url}/regressor/metadata", timeout=30).json()["metadata"]["signature_def"]
    assert regress["signature_def"]["regress"]["method_name"] == "tensorflow/serving/regress"


def test_predict_row_and_columnar_as_in_tf_servings_docs(url, refs):
    assert post(f"{url}/half:predict", {"instances": [1.0, 2.0, 5.0]}).json() == {"predictions": refs["half"]}
    assert refs["half"] == [3.5, 4.0, 5.5]
    assert post(f"{url}/half/versions/1:predict", {"inputs": [1.0, 2.0, 5.0]}).json() == {"outputs": refs["half"]}
    named = post(f"{url}/half:predict", {"signature_name": "serving_default", "instances": [{"x": 1.0}]})
    assert named.json() == {"predictions": [3.5]}
    # Non-finite floats are JSON tokens both ways, as TF Serving's docs allow.
    special = requests.post(f"{url}/half:predict", data='{"instances": [NaN, Infinity, -Infinity]}', timeout=30)
    assert special.status_code == 200 and "NaN,Infinity,-Infinity" in special.text


def test_multiple_inputs_and_outputs_with_binary_values_equal_the_signature(url, refs):
    instances = [{"x": x, "tag": b64(tag)} for x, tag in zip(MULTI_X, MULTI_TAG, strict=True)]
    rows = post(f"{url}/multi:predict", {"instances": instances})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    mine = refs["multi"]
    for i, row in enumerate(predictions):
        np.testing.assert_allclose(row["scaled"], mine["scaled"][i], rtol=1e-6)
        np.testing.assert_allclose(row["total"], mine["total"][i], rtol=1e-6)
        assert row["tag_len"] == mine["tag_len"][i]  # the bytes arrived whole: zero byte included
        assert base64.b64decode(row["tag_bytes"]["b64"]) == bytes.fromhex(mine["tag_bytes"][i])
    columns = post(f"{url}/multi:predict", {"inputs": {"x": MULTI_X, "tag": [b64(t) for t in MULTI_TAG]}})
    outputs = columns.json()["outputs"]
    assert set(outputs) == {"scaled", "total", "tag_len", "tag_bytes"}
    assert outputs["scaled"] == [p["scaled"] for p in predictions]
    assert outputs["tag_bytes"] == [p["tag_bytes"] for p in predictions]


def test_predict_equals_the_task_api(url):
    examples = [{"x": x, "tag": tag} for x, tag in zip(MULTI_X, ["cat", "héllo"], strict=True)]
    task_api = requests.post(f"{url}/multi/predict", json={"inputs": examples}, timeout=60).json()["outputs"]
    predictions = post(f"{url}/multi:predict", {"instances": examples}).json()["predictions"]
    for result, row in zip(task_api, predictions, strict=True):
        for entry in result["outputs"]:
            got = row[entry["name"]]
            if entry["dtype"] == "bytes":
                assert [base64.b64decode(got["b64"])] == [base64.b64decode(s) for s in entry["strings"]]
            else:
                np.testing.assert_array_equal(np.ravel(got), entry["data"])


def test_classify_and_regress_on_the_signatures_that_declare_them(url, refs):
    mine = refs["estimator"]
    regress = post(f"{url}/regressor:regress", {"signature_name": "regress", "examples": EXAMPLES})
    assert regress.status_code == 200, regress.text
    np.testing.assert_allclose(regress.json()["results"], mine["regress"], rtol=1e-6)
    # Context features are shared by every example.
    shared = post(f"{url}/regressor:regress", {"context": {"x": [1.0, 2.0]}, "examples": [{}, {}]}).json()
    np.testing.assert_allclose(shared["results"], [mine["regress"][0]] * 2, rtol=1e-6)
    classify = post(f"{url}/classifier:classify", {"examples": EXAMPLES})
    assert classify.status_code == 200, classify.text
    for result, labels, scores in zip(classify.json()["results"], mine["classes"], mine["scores"], strict=True):
        assert [label for label, _ in result] == labels
        np.testing.assert_allclose([score for _, score in result], scores, rtol=1e-5)
    predicted = post(f"{url}/estimator:predict", {"instances": [b64(_example(e["x"])) for e in EXAMPLES]})
    assert predicted.status_code == 200, predicted.text
    np.testing.assert_allclose(predicted.json()["predictions"], mine["score"], rtol=1e-6)
    wrong = post(f"{url}/estimator:classify", {"examples": EXAMPLES})
    assert wrong.status_code == 400 and "not a classify one" in wrong.json()["error"]


def _example(x: list[float]) -> bytes:
    """A serialized tf.train.Example with one float feature, through the server's own encoder."""
    from modeldeck.serving._tfs_json import ExampleEncoder

    return ExampleEncoder()({"x": x}, "example 0")


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("nope:predict", {"instances": [1.0]}, 404, "no model named 'nope'"),
        ("half/versions/3:predict", {"instances": [1.0]}, 404, "no version '3'"),
        ("half:predict", {"signature_name": "double", "instances": [1.0]}, 400, "no signature 'double'"),
        ("multi:predict", {"instances": [{"x": [1.0, 2.0], "tag": "a"}]}, 400, "shape [2]"),
        ("multi:predict", {"instances": [{"x": [[1.0], [2.0, 3.0]], "tag": "a"}]}, 400, "ragged"),
        ("multi:predict", {"instances": [{"y": [1.0, 2.0, 3.0], "tag": "a"}]}, 400, "unknown 'y'"),
        ("multi:predict", {"instances": [[1.0, 2.0, 3.0]]}, 400, "takes 2 inputs"),
        ("multi:predict", {"inputs": {"x": MULTI_X, "tag": ["a"]}}, 400, "different first dimensions"),
        ("half:predict", {"instances": [1.0], "inputs": [1.0]}, 400, "not both"),
        ("half:predict", {"instance": [1.0]}, 400, "unknown key(s) 'instance'"),
        ("multi:predict", {"instances": [{"x": [1.0, 2.0, 3.0], "tag": {"b64": "%%%"}}]}, 400, "not valid base64"),
        ("regressor:regress", {"examples": [{"x": [1.0, 2]}]}, 400, "mixes value types"),
        ("half:classify", {"examples": [{"x": 1.0}]}, 400, "not a classify one"),
    ],
)
def test_bad_requests_answer_tf_servings_error_shape(url, path, body, status, words):
    answer = post(f"{url}/{path}", body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and words in answer.json()["error"]


def test_malformed_json_is_400_and_the_server_keeps_serving(url):
    broken = requests.post(f"{url}/half:predict", data=b'{"instances": [1.0,', timeout=30)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    assert requests.post(f"{url}/half:predict", data=b"[1]", timeout=30).status_code == 400
    assert post(f"{url}/half:predict", {"instances": [1.0]}).json() == {"predictions": [3.5]}
