"""Tensor models served like built-ins: each in its own worker process, batched, one error per bad item."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.serving import create_app
from modeldeck.tasks.tensor_results import TensorResult

from ..support import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def server(tmp_path_factory, keras_dir, torch_dir, onnx_dir):
    models = (
        f"churn=tensor:{keras_dir / 'mlp.keras'}",
        f"pair=tensor:{torch_dir / 'two.pt2'}",
        f"ids=tensor:{onnx_dir / 'ids.onnx'}",
    )
    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"), models=models)
    assert settings.isolation == "process"
    live = LiveServer(create_app(settings)).start()
    live.wait_ready(timeout=240)
    yield live
    live.stop()


def predict(server: LiveServer, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}/predict", json=body, timeout=60)


def test_served_keras_equals_load_single_and_batched(server, keras_dir, keras_refs):
    rows = keras_refs["x_mlp"].tolist()
    batched = predict(server, "churn", {"inputs": [{"features": r} for r in rows]})
    assert batched.status_code == 200, batched.text
    served = np.stack([TensorResult.from_dict(o)["probability"] for o in batched.json()["outputs"]])
    local = modeldeck.load(str(keras_dir / "mlp.keras"))([{"features": r} for r in rows])
    np.testing.assert_allclose(served, np.stack([r["probability"] for r in local]), atol=1e-5)
    np.testing.assert_allclose(served, keras_refs["mlp_predict"], atol=1e-5)
    one = predict(server, "churn", {"inputs": {"features": rows[0]}}).json()["outputs"][0]
    assert one["outputs"][0]["dtype"] == "float32" and one["outputs"][0]["shape"] == [1]
    np.testing.assert_allclose(one["outputs"][0]["data"], keras_refs["mlp_predict"][0], atol=1e-5)


def test_concurrent_clients_are_answered_in_order(server, torch_dir):
    rng = np.random.default_rng(5)
    inputs = [{"features": rng.normal(size=4).tolist(), "mask": [1.0, 1.0]} for _ in range(24)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda x: predict(server, "pair", {"inputs": x}).json(), inputs))
    local = modeldeck.load(str(torch_dir / "two.pt2"))(inputs)
    for answer, mine in zip(answers, local, strict=True):
        np.testing.assert_allclose(TensorResult.from_dict(answer["outputs"][0])["logits"], mine["logits"], atol=1e-6)


def test_a_bad_item_fails_alone_and_the_server_keeps_serving(server):
    body = {"inputs": [{"ids": [1, 2, 3]}, {"ids": [1.5, 2, 3]}, {"idz": [1, 2, 3]}, {"ids": [[1, 2], [3]]}]}
    response = predict(server, "ids", body)
    assert response.status_code == 200
    outputs = response.json()["outputs"]
    assert outputs[0]["outputs"][0]["data"] == [6]
    assert [o["error"]["code"] for o in outputs[1:]] == ["MD123", "MD121", "MD124"]
    assert "ids (int64, shape [3])" in outputs[2]["error"]["message"]
    single = predict(server, "ids", {"inputs": {"ids": [1, 2]}})
    assert single.status_code == 422 and single.json()["error"]["code"] == "MD122"
    assert predict(server, "ids", {"inputs": {"ids": [4, 5, 6]}}).json()["outputs"][0]["outputs"][0]["data"] == [15]


def test_model_page_shows_signature_and_backend(server):
    page = httpx.get(f"{server.url}/v1/models/churn", timeout=30).json()
    text = str(page)
    assert "'features'" in text and "'probability'" in text
    assert "'backend': 'torch'" in text
