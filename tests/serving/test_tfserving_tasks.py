"""TF Serving's REST API over a task model (texts in, JSON results out), on a real uvicorn server.

A task model looks to a TF Serving client like a SavedModel with one string input: ``instances``
of texts (or ``{"b64": ...}`` UTF-8 bytes) in, one JSON result per instance out. These requests
go through the same batcher as the task API's.
"""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from modeldeck.serving import create_app

from ..support import EchoTask, LiveServer, echo_settings

pytestmark = pytest.mark.timeout(60)


def start(live: list[LiveServer], task: EchoTask, tmp_path: Path, **settings: Any) -> str:
    server = LiveServer(create_app(echo_settings(tmp_path, **settings), loader=lambda spec: task)).start()
    live.append(server)
    server.wait_ready()
    return f"{server.url}/v1/models"


def post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, json=body, timeout=30)


def test_status_is_additive_on_modeldecks_route_and_alone_on_a_version(live, echo_task, tmp_path):
    url = start(live, echo_task, tmp_path)
    expected = [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    detail = httpx.get(f"{url}/echo").json()
    assert detail["model_version_status"] == expected
    assert detail["name"] == "echo" and detail["version"] == "1.0" and "batching" in detail
    # TF Serving numbers the version (1 where modeldeck's is not a whole number); both spellings work.
    for version in ("1", "1.0"):
        assert httpx.get(f"{url}/echo/versions/{version}").json() == {"model_version_status": expected}
    missing = httpx.get(f"{url}/missing/versions/1")
    assert missing.status_code == 404 and "no model named 'missing'" in missing.json()["error"]


def test_metadata_describes_a_string_input_and_output(live, echo_task, tmp_path):
    url = start(live, echo_task, tmp_path)
    meta = httpx.get(f"{url}/echo/metadata").json()
    assert meta["model_spec"] == {"name": "echo", "signature_name": "", "version": "1"}
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    shape = {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert signature["inputs"] == {"inputs": {"dtype": "DT_STRING", "tensor_shape": shape, "name": "inputs"}}
    assert signature["outputs"]["outputs"]["dtype"] == "DT_STRING"


def test_predict_equals_the_task_api_row_and_columnar(live, echo_task, tmp_path):
    url = start(live, echo_task, tmp_path)
    texts = ["hello", "héllo wörld"]
    task_api = post(f"{url}/echo/predict", {"inputs": texts, "options": {"upper": True}}).json()["outputs"]
    rows = post(f"{url}/echo:predict", {"instances": texts, "options": {"upper": True}})
    assert rows.json() == {"predictions": task_api} and task_api[1] == {"text": "HÉLLO WÖRLD"}
    columns = post(f"{url}/echo:predict", {"inputs": texts, "options": {"upper": True}, "timeout_ms": 5000})
    assert columns.json() == {"outputs": task_api}
    binary = post(f"{url}/echo/versions/1:predict", {"instances": [{"b64": base64.b64encode(b"bytes").decode()}]})
    assert binary.json() == {"predictions": [{"text": "bytes"}]}


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("echo:predict", {"instances": ["ok", "  "]}, 400, "instance 1: input is empty"),
        ("echo:predict", {"instances": "text"}, 400, "must be a list"),
        ("echo:predict", {"instances": ["a"], "options": {"shout": True}}, 400, "unknown option 'shout'"),
        ("echo:predict", {"instances": ["a"], "timeout_ms": -1}, 400, "timeout_ms must be a number > 0"),
        ("echo:predict", {"instances": []}, 400, "no instances"),
        ("echo:predict", {"instances": ["boom"]}, 500, "boom is poison"),
        ("echo:classify", {"examples": [{"x": 1.0}]}, 400, "not a classify one"),
        ("echo/labels/stable:predict", {"instances": ["a"]}, 404, "no version label 'stable'"),
        ("nope:predict", {"instances": ["a"]}, 404, "no model named 'nope'"),
        ("echo:explain", {"instances": ["a"]}, 404, "no TF Serving method in 'echo:explain'"),
        ("echo", {"instances": ["a"]}, 404, "no TF Serving method in 'echo'"),
    ],
)
def test_bad_requests_answer_tf_servings_error_shape(live, echo_task, tmp_path, path, body, status, words):
    url = start(live, echo_task, tmp_path)
    answer = post(f"{url}/{path}", body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and words in answer.json()["error"]
    assert post(f"{url}/echo:predict", {"instances": ["still here"]}).json() == {
        "predictions": [{"text": "still here"}]
    }


def test_malformed_json_is_400(live, echo_task, tmp_path):
    url = start(live, echo_task, tmp_path)
    for body in (b"{", b"[1, 2]", b"\xff\xfe"):
        answer = httpx.post(f"{url}/echo:predict", content=body, timeout=30)
        assert answer.status_code == 400 and isinstance(answer.json()["error"], str)


def test_tf_serving_requests_are_batched_with_task_api_requests(live, echo_task, tmp_path):
    url = start(live, echo_task, tmp_path)
    echo_task.gate = threading.Event()
    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(post, f"{url}/echo/predict", {"inputs": "held"})
        assert echo_task.entered.wait(10)  # batch 1 is now inside the model
        tf_serving = pool.submit(post, f"{url}/echo:predict", {"instances": ["t1", "t2"]})
        task_api = pool.submit(post, f"{url}/echo/predict", {"inputs": ["a1", "a2", "a3"]})
        for _ in range(1000):
            if httpx.get(f"{url}/echo").json()["batching"]["queue_depth"] >= 5:
                break
            threading.Event().wait(0.01)
        echo_task.gate.set()
        assert held.result().status_code == 200
        assert tf_serving.result().json() == {"predictions": [{"text": "t1"}, {"text": "t2"}]}
        assert [o["text"] for o in task_api.result().json()["outputs"]] == ["a1", "a2", "a3"]
    assert echo_task.batches == [1, 5]  # both surfaces' inputs in one batch


def test_the_verb_routes_share_the_paths_of_the_get_routes_and_allow_says_so(live, echo_task, tmp_path):
    # Starlette reads /v1/models/echo:predict as GET /v1/models/{name} too: the verbs are POSTs to
    # that same path, so a 405 names both methods and modeldeck's own routes answer as before.
    url = start(live, echo_task, tmp_path)
    for path in ("echo:predict", "echo/versions/1:predict", "echo/labels/x:predict"):
        answer = httpx.request("PUT", f"{url}/{path}")
        assert answer.status_code == 405 and answer.headers["Allow"] == "GET, POST", path
    assert httpx.post(f"{url}/echo/predict", json={"inputs": "own"}).json()["outputs"] == [{"text": "own"}]


def test_an_image_task_takes_b64_images_as_instances(live, tmp_path):
    import io

    from PIL import Image

    import modeldeck
    from modeldeck.config import Settings

    from ..vision.classifier_graphs import colour_model

    model = colour_model(tmp_path / "colour")
    task = modeldeck.load("classify-image", model=str(model))
    settings = Settings.from_env({}, home=tmp_path / "home", models=(f"colours=classify-image:{model}",))
    server = LiveServer(create_app(settings, loader=lambda spec: task)).start()
    live.append(server)
    server.wait_ready()
    images = []
    for rgb in ((230, 20, 30), (20, 30, 240)):
        buffer = io.BytesIO()
        Image.new("RGB", (48, 40), rgb).save(buffer, "PNG")
        images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    url = f"{server.url}/v1/models/colours"
    rows = post(f"{url}:predict", {"instances": [{"b64": i} for i in images], "options": {"top_k": 2}})
    task_api = post(f"{url}/predict", {"inputs": images, "options": {"top_k": 2}}).json()["outputs"]
    assert rows.json() == {"predictions": task_api}
    assert [p["labels"][0]["label"] for p in rows.json()["predictions"]] == ["red", "blue"]
    not_an_image = post(f"{url}:predict", {"instances": [{"b64": base64.b64encode(b"not an image").decode()}]})
    assert not_an_image.status_code == 400 and isinstance(not_an_image.json()["error"], str)


def test_an_onnx_tensor_model_has_metadata_from_its_signature(live, tmp_path):
    import modeldeck
    from modeldeck.config import Settings

    from ..tensor.builders import onnx_affine

    model = onnx_affine(tmp_path / "affine.onnx")
    task = modeldeck.load(str(model))
    settings = Settings.from_env({}, home=tmp_path / "home", models=(f"affine=tensor:{model}",))
    server = LiveServer(create_app(settings, loader=lambda spec: task)).start()
    live.append(server)
    server.wait_ready()
    url = f"{server.url}/v1/models/affine"
    signature = httpx.get(f"{url}/metadata").json()["metadata"]["signature_def"]["signature_def"]["serving_default"]
    dims = [{"size": "-1", "name": ""}, {"size": "3", "name": ""}]
    assert signature["inputs"] == {
        "x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": "x"}
    }
    assert {name: info["dtype"] for name, info in signature["outputs"].items()} == {
        "y": "DT_FLOAT",
        "argmax": "DT_INT64",
    }
    rows = [[0.5, -1.0, 2.0], [1.0, 0.0, 0.25]]
    predictions = post(f"{url}:predict", {"instances": rows}).json()["predictions"]  # one input: bare values
    mine = task([{"x": r} for r in rows])
    assert [p["argmax"] for p in predictions] == [int(r["argmax"]) for r in mine]
    assert [p["y"] for p in predictions] == [r["y"].tolist() for r in mine]
    only_y = post(f"{url}:predict", {"inputs": {"x": rows}, "options": {"outputs": ["y"]}}).json()
    assert only_y == {"outputs": [r["y"].tolist() for r in mine]}  # one output left: its batch bare
