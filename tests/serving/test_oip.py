"""The Open Inference Protocol v2 surface, driven by Triton's own ``tritonclient.http`` against a live server.

Models: ``echo`` (a text task, in-process so the test can hold its batches), ``every`` (an ONNX
graph of Identity ops, one input per OIP datatype, so every datatype makes the round trip through
a real model) and ``affine`` (an ONNX MatMul + ArgMax, compared with the task API and NumPy).
Malformed requests are sent with httpx, since tritonclient will not build them.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from modeldeck.config import Settings
from modeldeck.serving import create_app
from modeldeck.serving.specs import load_spec

from ..support import LiveServer
from ..tensor.builders import affine_reference, onnx_affine

pytestmark = pytest.mark.timeout(180)

#: OIP datatype -> (ONNX element type name, NumPy dtype) of each input of the ``every`` model.
DATATYPES = {
    "BOOL": ("BOOL", np.bool_),
    "UINT8": ("UINT8", np.uint8),
    "UINT16": ("UINT16", np.uint16),
    "UINT32": ("UINT32", np.uint32),
    "UINT64": ("UINT64", np.uint64),
    "INT8": ("INT8", np.int8),
    "INT16": ("INT16", np.int16),
    "INT32": ("INT32", np.int32),
    "INT64": ("INT64", np.int64),
    "FP16": ("FLOAT16", np.float16),
    "FP32": ("FLOAT", np.float32),
    "FP64": ("DOUBLE", np.float64),
    "BYTES": ("STRING", np.object_),
}


def onnx_every_datatype(path: Path) -> Path:
    """Inputs ``in_<datatype>`` of shape (N, 2), each echoed by an Identity op to ``out_<datatype>``."""
    import onnx
    from onnx import TensorProto, helper

    names = [d.lower() for d in DATATYPES]
    graph = helper.make_graph(
        [helper.make_node("Identity", [f"in_{n}"], [f"out_{n}"]) for n in names],
        "every",
        [helper.make_tensor_value_info(f"in_{n}", getattr(TensorProto, t), ["N", 2]) for n, (t, _) in
         zip(names, DATATYPES.values(), strict=True)],
        [helper.make_tensor_value_info(f"out_{n}", getattr(TensorProto, t), ["N", 2]) for n, (t, _) in
         zip(names, DATATYPES.values(), strict=True)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def sample(datatype: str, rows: int = 3) -> np.ndarray:
    """Values that use each type's range: extremes, negatives, fractions, non-ASCII text."""
    _, dtype = DATATYPES[datatype]
    if datatype == "BOOL":
        return np.array([[True, False], [False, True], [True, True]][:rows])
    if datatype == "BYTES":
        values = [["a", "héllo"], ["", "日本"], ["x y", "z"]][:rows]
        return np.array([[v.encode() for v in row] for row in values], dtype=object)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return np.array([[info.min, info.max], [0, 1], [7, info.max // 3]][:rows], dtype=dtype)
    return np.array([[-1.5, 0.25], [3.0, -0.0], [1e3, 2.5]][:rows], dtype=dtype)


@pytest.fixture(scope="module")
def server(tmp_path_factory, echo_module):
    folder = tmp_path_factory.mktemp("oip")
    models = (
        "echo",
        f"every=tensor:{onnx_every_datatype(folder / 'every.onnx')}",
        f"affine=tensor:{onnx_affine(folder / 'affine.onnx')}",
    )
    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"), models=models)

    def loader(spec):
        return echo_module if spec.alias == "echo" else load_spec(spec, settings)

    live = LiveServer(create_app(settings, loader=loader)).start()
    live.wait_ready()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def echo_module():
    from ..support import EchoTask, echo_info

    return EchoTask(echo_info(), batch_size=32, max_text_chars=1000)


@pytest.fixture(scope="module")
def client(server):
    return triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)


def post(server: LiveServer, path: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None):
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return httpx.post(f"{server.url}{path}", content=content, headers=headers or {}, timeout=60)


def test_health_and_server_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "modeldeck" and {"binary_tensor_data", "model_repository"} <= set(meta["extensions"])


def test_model_metadata_follows_each_signature(client):
    affine = client.get_model_metadata("affine")
    assert affine["platform"] == "onnxruntime_onnx" and affine["versions"]
    assert affine["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
    assert affine["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "argmax", "datatype": "INT64", "shape": [-1]},
    ]
    every = client.get_model_metadata("every")
    assert [(t["name"], t["datatype"]) for t in every["inputs"]] == [(f"in_{d.lower()}", d) for d in DATATYPES]
    echo = client.get_model_metadata("echo")
    assert echo["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert echo["outputs"] == [{"name": "result", "datatype": "BYTES", "shape": [-1]}]
    version = affine["versions"][0]
    assert client.get_model_metadata("affine", model_version=version)["name"] == "affine"
    assert client.is_model_ready("affine") and client.is_model_ready("affine", model_version=version)
    x = np.ones((2, 3), np.float32)
    answer = client.infer("affine", [_input("x", x)], model_version=version)
    assert answer.get_response()["model_version"] == version
    np.testing.assert_allclose(answer.as_numpy("y"), affine_reference(x), rtol=1e-6)


def test_unknown_model_or_version_is_404_with_the_fix(server, client):
    for path in (
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/affine/versions/9",
        "/v2/models/affine/versions/9/ready",
    ):
        response = httpx.get(f"{server.url}{path}", timeout=30)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"].startswith("[MD202]")
    assert "its version is" in httpx.get(f"{server.url}/v2/models/affine/versions/9", timeout=30).json()["error"]
    with pytest.raises(InferenceServerException) as raised:
        client.infer("affine", [_input("x", np.zeros((1, 3), np.float32))], model_version="9")
    assert raised.value.status() == "404" and "no version '9'" in raised.value.message()
    assert not client.is_model_ready("nope")


def _input(name: str, array: np.ndarray, binary: bool = True) -> triton.InferInput:
    datatype = "BYTES" if array.dtype == object else triton.np_to_triton_dtype(array.dtype)
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_every_datatype_round_trips(client, binary):
    arrays = {f"in_{d.lower()}": sample(d) for d in DATATYPES}
    inputs = [_input(name, array, binary) for name, array in arrays.items()]
    outputs = [triton.InferRequestedOutput(f"out_{d.lower()}", binary_data=binary) for d in DATATYPES]
    result = client.infer("every", inputs, outputs=outputs)
    response = result.get_response()
    assert [o["datatype"] for o in response["outputs"]] == list(DATATYPES)
    assert all(("parameters" in o) == binary and ("data" in o) != binary for o in response["outputs"])
    for datatype in DATATYPES:
        got, sent = result.as_numpy(f"out_{datatype.lower()}"), arrays[f"in_{datatype.lower()}"]
        assert got.shape == (3, 2)
        if datatype == "BYTES":  # JSON answers text as str, binary as bytes: both the same UTF-8 text
            assert [v if isinstance(v, bytes) else v.encode() for v in got.reshape(-1)] == list(sent.reshape(-1))
        else:
            assert got.dtype == sent.dtype and np.array_equal(got, sent)


def test_binary_and_json_inputs_mix_in_one_request(client):
    arrays = {f"in_{d.lower()}": sample(d, rows=2) for d in DATATYPES}
    inputs = [_input(name, array, binary=i % 2 == 0) for i, (name, array) in enumerate(arrays.items())]
    result = client.infer("every", inputs)  # no outputs named: every output, in binary (binary_data_output)
    assert len(result.get_response()["outputs"]) == len(DATATYPES)
    assert np.array_equal(result.as_numpy("out_int16"), arrays["in_int16"])
    assert np.array_equal(result.as_numpy("out_fp64"), arrays["in_fp64"])
    assert list(result.as_numpy("out_bytes").reshape(-1)) == list(arrays["in_bytes"].reshape(-1))


def test_affine_equals_the_task_api_and_numpy(server, client):
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    result = client.infer("affine", [_input("x", x)], request_id="r-7")
    assert result.get_response()["id"] == "r-7" and result.get_response()["model_name"] == "affine"
    task_api = httpx.post(
        f"{server.url}/v1/models/affine/predict", json={"inputs": [{"x": row.tolist()} for row in x]}, timeout=60
    ).json()["outputs"]
    expected_y = np.array([o["outputs"][0]["data"] for o in task_api], dtype=np.float32)
    np.testing.assert_array_equal(result.as_numpy("y"), expected_y)
    np.testing.assert_allclose(result.as_numpy("y"), affine_reference(x), rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("argmax"), affine_reference(x).argmax(axis=1))
    only = client.infer("affine", [_input("x", x)], outputs=[triton.InferRequestedOutput("argmax")])
    assert [o["name"] for o in only.get_response()["outputs"]] == ["argmax"]
    # Nested JSON data is the same tensor as flat data.
    nested = {"inputs": [{"name": "x", "shape": [5, 3], "datatype": "FP32", "data": x.tolist()}]}
    answer = post(server, "/v2/models/affine/infer", nested).json()
    np.testing.assert_allclose(np.array(answer["outputs"][0]["data"]).reshape(5, 2), expected_y, rtol=1e-6)


def test_a_text_task_takes_bytes_and_answers_json_per_item(server, client):
    texts = np.array([["hello"], ["wörld"], ["third"]], dtype=object)
    result = client.infer("echo", [_input("text", texts)], parameters={"upper": True})
    answers = [json.loads(v) for v in result.as_numpy("result")]
    task_api = httpx.post(
        f"{server.url}/v1/models/echo/predict",
        json={"inputs": ["hello", "wörld", "third"], "options": {"upper": True}},
        timeout=60,
    ).json()["outputs"]
    assert answers == task_api == [{"text": "HELLO"}, {"text": "WÖRLD"}, {"text": "THIRD"}]
    with pytest.raises(InferenceServerException) as raised:
        client.infer("echo", [_input("text", texts)], parameters={"shout": True})
    assert raised.value.status() == "400" and "shout" in raised.value.message()


def _bad(server: LiveServer, model: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None):
    response = post(server, f"/v2/models/{model}/infer", body, headers)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and error.startswith("[MD"), error
    return response.status_code, error


def _binary_body(header: dict[str, Any], data: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + data, {"Inference-Header-Content-Length": str(len(head))}


def test_bad_requests_get_the_protocols_4xx_and_the_server_keeps_serving(server, client):
    x = {"name": "x", "shape": [1, 3], "datatype": "FP32"}
    assert _bad(server, "affine", {"inputs": [{**x, "data": ["a", "b", "c"]}]}) == (
        400,
        "[MD123] input 'x' is FP32 but element 0 is str 'a' (send numbers for FP32, or declare the datatype "
        "the data has)",
    )
    status, error = _bad(server, "every", {"inputs": [{"name": "in_int32", "shape": [1, 2], "datatype": "INT32",
                                                        "data": [1, 1.5]}]})  # fmt: skip
    assert status == 400 and "element 1 is float 1.5" in error
    status, error = _bad(server, "affine", {"inputs": [{**x, "data": [1.0, 2.0]}]})
    assert status == 400 and "[MD122]" in error and "2 elements" in error and "takes 3" in error
    status, error = _bad(server, "affine", {"inputs": [{**x, "datatype": "FP99", "data": [1, 2, 3]}]})
    assert status == 400 and "'FP99'" in error and "FP32" in error
    twelve = np.zeros(3, np.float32).tobytes()
    body, headers = _binary_body({"inputs": [{**x, "parameters": {"binary_data_size": 16}}]}, twelve)
    status, error = _bad(server, "affine", body, headers)
    assert status == 400 and "goes past the end of the body" in error
    body, headers = _binary_body({"inputs": [{**x, "parameters": {"binary_data_size": 8}}]}, twelve)
    status, error = _bad(server, "affine", body, headers)
    assert status == 400 and "4 bytes of binary data that no input claims" in error
    body, headers = _binary_body({"inputs": [{**x, "parameters": {"binary_data_size": 12}}]}, twelve)
    status, error = _bad(server, "affine", body, {"Inference-Header-Content-Length": str(len(body) + 1)})
    assert status == 400 and "beyond the body" in error
    status, error = _bad(server, "affine", {"inputs": [{**x, "name": "z", "data": [1, 2, 3]}]})
    assert status == 400 and "[MD121]" in error and "unknown 'z'" in error and "x (FP32 [-1, 3])" in error
    status, error = _bad(server, "affine", b"{not json")
    assert status == 400 and "[MD104]" in error
    status, error = _bad(server, "nope", {"inputs": [{**x, "data": [1, 2, 3]}]})
    assert status == 404 and "no model named 'nope'" in error
    strings = struct.pack("<I", 5) + b"abc"  # a BYTES element that says 5 bytes and holds 3
    body, headers = _binary_body(
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 7}}]},
        strings,
    )
    status, error = _bad(server, "echo", body, headers)
    assert status == 400 and "element 0 says 5 bytes but only 3 remain" in error
    # A bad item fails the request, named by its index.
    status, error = _bad(server, "echo", {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES",
                                                       "data": ["fine", "", "also fine"]}]})  # fmt: skip
    assert status == 400 and "item 1" in error and "[MD101]" in error
    result = client.infer("affine", [_input("x", np.ones((1, 3), np.float32))])
    np.testing.assert_allclose(result.as_numpy("y"), affine_reference(np.ones((1, 3))), rtol=1e-6)


def _wait_for_queue(server: LiveServer, name: str, depth: int) -> None:
    batcher = server.server.config.app.state.deck.deployments[name].batcher
    deadline = time.monotonic() + 30
    while batcher.depth < depth:
        assert time.monotonic() < deadline, f"queue never reached {depth}"
        time.sleep(0.01)


def test_concurrent_aio_clients_batch_with_task_api_clients(server, echo_module):
    """Held behind one running batch, 8 OIP requests of 2 items and a task-API request of 2 queue
    together and run as one batch of 18, each answered with its own texts in order."""
    import threading

    gate = threading.Event()
    echo_module.gate, echo_module.batches = gate, []
    echo_module.entered.clear()

    async def run() -> tuple[list[list[str]], Any]:
        client = triton_aio.InferenceServerClient(server.url.removeprefix("http://"))
        try:
            first = asyncio.create_task(client.infer("echo", [_input("text", np.array([b"first"], dtype=object))]))
            await asyncio.to_thread(echo_module.entered.wait, 30)
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                task_api = asyncio.create_task(http.post("/v1/models/echo/predict", json={"inputs": ["t0", "t1"]}))
                calls = [
                    client.infer(
                        "echo", [_input("text", np.array([f"c{i}a".encode(), f"c{i}b".encode()], dtype=object))]
                    )
                    for i in range(8)
                ]
                pending = asyncio.gather(*calls)
                await asyncio.to_thread(_wait_for_queue, server, "echo", 18)
                gate.set()
                results = await pending
                await first
                return [[json.loads(v)["text"] for v in r.as_numpy("result")] for r in results], (await task_api).json()
        finally:
            await client.close()

    try:
        answers, task_api = asyncio.run(run())
    finally:
        echo_module.gate = None
    assert answers == [[f"c{i}a", f"c{i}b"] for i in range(8)]
    assert task_api["outputs"] == [{"text": "t0"}, {"text": "t1"}]
    assert echo_module.batches == [1, 18]


def test_model_repository_unloads_and_loads_a_served_model(server, client):
    index = {row["name"]: row for row in client.get_model_repository_index()}
    assert index["echo"]["state"] == "READY" and index["affine"]["state"] == "READY"
    client.unload_model("affine")
    assert not client.is_model_ready("affine")
    assert client.is_server_ready()  # an unloaded model is not waited for
    with pytest.raises(InferenceServerException) as raised:
        client.infer("affine", [_input("x", np.ones((1, 3), np.float32))])
    assert raised.value.status() == "404" and "repository/models/affine/load" in raised.value.message()
    states = {row["name"]: row["state"] for row in client.get_model_repository_index()}
    assert states["affine"] == "UNAVAILABLE"
    assert [row["name"] for row in client.get_model_repository_index(query_params=None)] and "affine" not in [
        row["name"] for row in post(server, "/v2/repository/index", {"ready": True}).json()
    ]
    client.load_model("affine")
    assert client.is_model_ready("affine")
    result = client.infer("affine", [_input("x", np.ones((1, 3), np.float32))])
    np.testing.assert_allclose(result.as_numpy("y"), affine_reference(np.ones((1, 3))), rtol=1e-6)
    for name in ("not-a-model", "tests"):  # a folder beside the server is no store model either
        response = post(server, f"/v2/repository/models/{name}/load", b"")
        assert response.status_code == 404 and response.json()["error"].startswith("[MD202]"), response.text


def test_a_model_that_failed_to_load_stays_failed_until_a_load_succeeds(live, echo_task, tmp_path):
    import threading

    fixed = threading.Event()

    def loader(spec):
        if spec.alias == "flaky" and not fixed.is_set():
            raise RuntimeError("weights missing")
        return echo_task

    settings = Settings.from_env({}, home=tmp_path / "home", models=("echo", "flaky=echo"), allow_failed_models=True)
    server = LiveServer(create_app(settings, loader=loader)).start()
    live.append(server)
    server.wait_ready()
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    states = {row["name"]: row for row in client.get_model_repository_index()}
    assert states["flaky"]["state"] == "UNAVAILABLE" and "weights missing" in states["flaky"]["reason"]
    assert not client.is_server_ready() and not client.is_model_ready("flaky")
    with pytest.raises(InferenceServerException) as raised:
        client.load_model("flaky")
    assert raised.value.status() == "503" and "weights missing" in raised.value.message()
    assert httpx.get(f"{server.url}/readyz").json()["models"] == {"echo": "ready", "flaky": "failed"}
    fixed.set()
    client.load_model("flaky")
    assert client.is_model_ready("flaky") and client.is_server_ready()
    client.unload_model("flaky")
    assert httpx.get(f"{server.url}/readyz").json() == {
        "status": "ready",
        "models": {"echo": "ready", "flaky": "unloaded"},
    }


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_from_tritonclient(client, algorithm):
    x = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    result = client.infer(
        "affine", [_input("x", x)], request_compression_algorithm=algorithm, response_compression_algorithm=algorithm
    )
    np.testing.assert_allclose(result.as_numpy("y"), affine_reference(x), rtol=1e-6)


def test_an_unknown_or_oversized_encoding_is_refused(server):
    import gzip

    body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    status, error = _bad(server, "affine", json.dumps(body).encode(), {"Content-Encoding": "br"})
    assert status == 400 and "Content-Encoding 'br'" in error
    limit = server.server.config.app.state.settings.max_body_bytes
    bomb = gzip.compress(b" " * (limit + 10))  # a few KiB on the wire, past the limit unpacked
    status, error = _bad(server, "affine", bomb, {"Content-Encoding": "gzip"})
    assert status == 413 and "unpacks to more than" in error


def test_a_json_input_carries_one_json_document_per_item(server, client):
    documents = np.array([json.dumps("first").encode(), json.dumps("second").encode()], dtype=object)
    result = client.infer("echo", [_input("json", documents)])
    assert [json.loads(v) for v in result.as_numpy("result")] == [{"text": "first"}, {"text": "second"}]
    status, error = _bad(server, "echo", {"inputs": [{"name": "json", "shape": [1], "datatype": "BYTES",
                                                       "data": ["{not json"]}]})  # fmt: skip
    assert status == 400 and "not a JSON document" in error


def test_with_api_keys_the_probes_are_open_and_the_rest_needs_the_key(live, echo_task, tmp_path):
    settings = Settings.from_env({}, home=tmp_path / "home", models=("echo",), api_keys=("k-oip-test-0123",))
    server = LiveServer(create_app(settings, loader=lambda spec: echo_task)).start()
    live.append(server)
    server.wait_ready()
    anonymous = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert anonymous.is_server_live() and anonymous.is_server_ready()
    with pytest.raises(InferenceServerException) as raised:
        anonymous.get_server_metadata()
    assert raised.value.status() == "401"
    keyed = triton.InferenceServerClient(server.url.removeprefix("http://"))
    texts = _input("text", np.array([b"hi"], dtype=object))
    result = keyed.infer("echo", [texts], headers={"Authorization": "Bearer k-oip-test-0123"})
    assert json.loads(result.as_numpy("result")[0]) == {"text": "hi"}


def test_loading_a_model_still_loading_at_start_up_is_refused(live, echo_task, tmp_path):
    import threading

    release = threading.Event()

    def loader(spec):
        assert release.wait(30), "test never released the loader"
        return echo_task

    settings = Settings.from_env({}, home=tmp_path / "home", models=("echo",))
    server = LiveServer(create_app(settings, loader=loader)).start()
    live.append(server)
    try:
        response = post(server, "/v2/repository/models/echo/load", b"")
        assert response.status_code == 503 and "still loading" in response.json()["error"]
        assert httpx.get(f"{server.url}/v2/models/echo/ready").status_code == 503
    finally:
        release.set()
    server.wait_ready()
    assert httpx.get(f"{server.url}/v2/models/echo/ready").json() == {"name": "echo", "ready": True}
