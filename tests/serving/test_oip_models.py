"""The Open Inference Protocol with real models: MiniLM ``embed`` and spaCy ``ner`` from their pip packages.

``embed`` answers FP32 ``[N, dim]`` equal to the task API's vectors; ``ner`` a BYTES tensor of the
task API's JSON results. Unloading a model served in a worker process ends that process and
gives its memory back (measured with psutil), and loading it again serves it again.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import psutil
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio

from modeldeck.config import Settings
from modeldeck.serving import create_app
from modeldeck.serving.specs import load_spec

from ..support import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TEXTS = ["Ada Lovelace wrote programs in London.", "The cat sat.", "Berlin is in Germany, said Angela Merkel."]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"), models=("embed", "ner"))
    live = LiveServer(create_app(settings, loader=lambda spec: load_spec(spec, settings))).start()
    live.wait_ready()
    yield live
    live.stop()


def _texts(texts: list[str], binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=binary)
    return tensor


def _task_api(server: LiveServer, model: str, texts: list[str], **options: object) -> list[dict]:
    body = {"inputs": texts, "options": options}
    return httpx.post(f"{server.url}/v1/models/{model}/predict", json=body, timeout=60).json()["outputs"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_embed_answers_fp32_vectors_equal_to_the_task_api(server, binary):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)
    meta = client.get_model_metadata("embed")
    assert meta["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, -1]}]
    output = triton.InferRequestedOutput("embedding", binary_data=binary)
    result = client.infer("embed", [_texts(TEXTS, binary)], outputs=[output], parameters={"normalize": True})
    vectors = result.as_numpy("embedding")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    expected = np.array([o["vector"] for o in _task_api(server, "embed", TEXTS, normalize=True)], dtype=np.float32)
    np.testing.assert_array_equal(vectors, expected)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_ner_answers_the_task_apis_json_per_text(server):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)
    result = client.infer("ner", [_texts(TEXTS)])
    answers = [json.loads(v) for v in result.as_numpy("result")]
    assert answers == _task_api(server, "ner", TEXTS)
    assert {"text": "Ada Lovelace", "label": "PERSON"}.items() <= answers[0]["entities"][0].items()


def test_concurrent_aio_embed_requests_are_each_answered_with_their_own_vectors(server):
    texts = [f"sentence number {i} about topic {i % 5}" for i in range(24)]
    expected = np.array([o["vector"] for o in _task_api(server, "embed", texts)], dtype=np.float32)

    async def run() -> list[np.ndarray]:
        client = triton_aio.InferenceServerClient(server.url.removeprefix("http://"))
        try:
            results = await asyncio.gather(*(client.infer("embed", [_texts([t])]) for t in texts))
        finally:
            await client.close()
        return [r.as_numpy("embedding")[0] for r in results]

    np.testing.assert_allclose(np.stack(asyncio.run(run())), expected, atol=1e-6)


def _rss(pid: int | None) -> int:
    return psutil.Process(pid).memory_info().rss if pid is not None else 0


def test_unload_ends_the_worker_process_and_load_starts_a_new_one(tmp_path):
    settings = Settings.from_env({}, home=tmp_path / "home", models=("ner",))
    assert settings.isolation == "process"
    live = LiveServer(create_app(settings)).start()
    try:
        live.wait_ready(timeout=240)
        client = triton.InferenceServerClient(live.url.removeprefix("http://"), network_timeout=120)
        deck = live.server.config.app.state.deck
        pid = deck.deployments["ner"].model.pid
        before = _rss(pid)
        assert before > 20 * 2**20 and client.infer("ner", [_texts(TEXTS[:1])]).as_numpy("result").shape == (1,)
        client.unload_model("ner")
        assert "ner" not in deck.deployments and not psutil.pid_exists(pid)
        assert not client.is_model_ready("ner") and client.is_server_ready()
        client.load_model("ner")
        new_pid = deck.deployments["ner"].model.pid
        assert new_pid != pid and _rss(new_pid) > 20 * 2**20
        answers = [json.loads(v) for v in client.infer("ner", [_texts(TEXTS[:1])]).as_numpy("result")]
        assert answers[0]["entities"][0]["text"] == "Ada Lovelace"
    finally:
        live.stop()


def test_the_docs_examples_run_against_a_live_server(server):
    """docs/protocols.md's Python blocks, run as written against this server: the client example,
    then the repository example (unload and load ner, load MiniLM from its pip package by name)."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "protocols.md"
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
    assert len(blocks) == 2
    scope: dict[str, object] = {}
    exec(blocks[0].replace("127.0.0.1:8000", server.url.removeprefix("http://")), scope)
    assert scope["vectors"].shape == (2, 384) and scope["entities"][0]["entities"][0]["text"] == "Ada Lovelace"
    exec(blocks[1], scope)
    client = scope["client"]
    assert client.is_model_ready("ner") and client.is_model_ready("all-MiniLM-L6-v2")
    texts = scope["texts"]
    again = client.infer("all-MiniLM-L6-v2", [texts], parameters={"normalize": True}).as_numpy("embedding")
    np.testing.assert_allclose(again, scope["vectors"], atol=1e-6)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json-base64"])
def test_image_tasks_take_encoded_images_and_pairs(tmp_path, binary):
    """face-detect takes BYTES [N] of encoded images (binary, or base64 strings in JSON), face-verify
    BYTES [N, 2] of pairs; each answer equals the task API's for the same images."""
    import base64

    from ..faces.face_builders import astronaut, coffee, png

    settings = Settings.from_env({}, home=tmp_path / "home", models=("face-detect", "face-verify"))
    live = LiveServer(create_app(settings, loader=lambda spec: load_spec(spec, settings))).start()
    try:
        live.wait_ready()
        client = triton.InferenceServerClient(live.url.removeprefix("http://"), network_timeout=120)
        astro, cup = png(astronaut()), png(coffee())
        flipped = png(np.ascontiguousarray(astronaut()[:, ::-1]))
        encode = (lambda b: b) if binary else (lambda b: base64.b64encode(b))

        def tensor(name: str, images: list[list[bytes]] | list[bytes]) -> triton.InferInput:
            array = np.array(images, dtype=object)
            array = np.vectorize(encode, otypes=[object])(array)
            return _named(name, array, binary)

        meta = client.get_model_metadata("face-verify")
        assert meta["inputs"] == [{"name": "images", "datatype": "BYTES", "shape": [-1, 2]}]
        detected = client.infer("face-detect", [tensor("image", [astro, cup])]).as_numpy("result")
        b64 = [base64.b64encode(x).decode() for x in (astro, cup, flipped)]
        task_api = httpx.post(
            f"{live.url}/v1/models/face-detect/predict", json={"inputs": b64[:2]}, timeout=120
        ).json()["outputs"]
        assert [json.loads(v) for v in detected] == task_api and task_api[0]["faces"]
        verified = client.infer("face-verify", [tensor("images", [[astro, flipped]])]).as_numpy("result")
        expected = httpx.post(
            f"{live.url}/v1/models/face-verify/predict", json={"inputs": [[b64[0], b64[2]]]}, timeout=120
        ).json()["outputs"]
        assert [json.loads(v) for v in verified] == expected and expected[0]["match"] is True
    finally:
        live.stop()


def _named(name: str, array: np.ndarray, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor
