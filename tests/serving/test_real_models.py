"""The default deck (real spaCy, MiniLM and dlib weights) served over HTTP, checked against the Python API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.serving import create_app

from ..support import LiveServer, free_port

pytestmark = pytest.mark.timeout(180)

TEXTS = ["Tim Cook visited Paris on Monday.", "Angela Merkel met Emmanuel Macron in Berlin.", "Nothing here."]


@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"))  # the deck `make serve` serves
    assert settings.models == ("ner", "parse", "embed", "face-detect", "face-verify")
    server = LiveServer(create_app(settings)).start()
    server.wait_ready()
    yield server
    server.stop()


def predict(server, model, body):
    response = httpx.post(f"{server.url}/v1/models/{model}/predict", json=body, timeout=60)
    return response


def test_served_ner_equals_the_python_api(deck):
    body = predict(deck, "ner", {"inputs": TEXTS}).json()
    assert body["model"] == "ner" and body["version"] == "3.8.0"
    assert body["outputs"] == [r.to_dict() for r in modeldeck.load("ner")(TEXTS)]
    assert {"text": "Paris", "label": "GPE", "start": 17, "end": 22, "score": None} in body["outputs"][0]["entities"]


def test_served_embed_equals_the_python_api(deck):
    outputs = predict(deck, "embed", {"inputs": TEXTS, "options": {"normalize": True}}).json()["outputs"]
    local = modeldeck.load("embed", normalize=True)(TEXTS)
    for served, mine in zip(outputs, local, strict=True):
        assert served["dim"] == 384
        np.testing.assert_allclose(np.asarray(served["vector"], dtype=np.float32), mine.vector, atol=1e-5)


def test_served_faces_equal_the_python_api(deck):
    import io

    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "PNG")
    photo = buffer.getvalue()
    upload = [("image", ("astronaut.png", photo, "image/png"))]
    found = httpx.post(f"{deck.url}/v1/models/face-detect/predict", files=upload, timeout=60).json()["outputs"][0]
    assert found == modeldeck.load("face-detect")(photo).to_dict()
    best = max(found["faces"], key=lambda f: f["score"])
    x1, y1, x2, y2 = best["box"]
    assert 150 < x1 < x2 < 290 and 50 < y1 < y2 < 190  # the astronaut's face
    pair = [("image", ("a.png", photo, "image/png")), ("image", ("b.png", photo, "image/png"))]
    verdict = httpx.post(f"{deck.url}/v1/models/face-verify/predict", files=pair, data={"options": '{"largest": true}'},
                         timeout=60).json()["outputs"][0]  # fmt: skip
    assert verdict["match"] is True and verdict["distance"] < 1e-6 and verdict["threshold"] == 0.6


def test_served_parse_offsets_index_the_input(deck):
    text = "Héllo  there. How are   you?"
    output = predict(deck, "parse", {"inputs": text}).json()["outputs"][0]
    for token in output["tokens"]:
        assert text[token["start"] : token["end"]] == token["text"]
    assert [s["text"] for s in output["sentences"]] == ["Héllo  there.", "How are   you?"]


def test_real_models_keep_bad_items_separate(deck):
    outputs = predict(deck, "ner", {"inputs": ["Tim Cook visited Paris.", "", {"text": 1}]}).json()["outputs"]
    assert outputs[0]["entities"][0]["text"] == "Tim Cook"
    assert outputs[1]["error"]["code"] == "MD101" and outputs[2]["error"]["code"] == "MD102"
    bad_label = predict(deck, "ner", {"inputs": "a", "options": {"labels": ["PLANET"]}})
    assert bad_label.status_code == 422 and "PERSON" in bad_label.json()["error"]["message"]


def test_models_listing_shows_the_default_deck(deck):
    models = {m["name"]: m for m in httpx.get(f"{deck.url}/v1/models").json()["models"]}
    assert models["ner"]["model"] == "en_core_web_sm" and models["embed"]["model"] == "all-MiniLM-L6-v2"
    assert all(m["ready"] for m in models.values())


def test_concurrent_clients_are_batched_on_real_models(deck):
    texts = [f"Client {i} wrote to Maria in Madrid." for i in range(64)]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda t: predict(deck, "embed", {"inputs": t}).json()["outputs"][0], texts))
    assert all(a["dim"] == 384 for a in answers)
    stats = httpx.get(f"{deck.url}/v1/models/embed").json()["batching"]["stats"]
    assert stats["items"] >= 64 and stats["batches"] < stats["items"]  # some batches held several requests


def test_tf_serving_predict_equals_the_task_api_on_real_models(deck):
    # docs/serving.md: a task model on TF Serving's surface; embed answers the vectors themselves.
    url = f"{deck.url}/v1/models"
    vectors = httpx.post(f"{url}/embed:predict", json={"instances": TEXTS}, timeout=60).json()["predictions"]
    task_api = predict(deck, "embed", {"inputs": TEXTS}).json()["outputs"]
    assert vectors == [o["vector"] for o in task_api] and len(vectors[0]) == 384
    columns = httpx.post(f"{url}/ner:predict", json={"inputs": TEXTS[:2]}, timeout=60).json()["outputs"]
    assert columns == predict(deck, "ner", {"inputs": TEXTS[:2]}).json()["outputs"]


@pytest.mark.slow
def test_modeldeck_serve_starts_answers_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "MODELDECK_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modeldeck", "serve", "--models", "ner", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/v1/models/ner/predict", json={"inputs": "Tim Cook visited Paris."})
        assert answer.json()["outputs"][0]["entities"][0]["label"] == "PERSON"
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it
        assert proc.wait(30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (proc.stdout.read() if proc.stdout else "")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_modeldeck_serve_refuses_bad_settings(tmp_path):
    env = {**os.environ, "MODELDECK_HOME": str(tmp_path), "MODELDECK_PORT": "eighty"}
    out = subprocess.run(
        [sys.executable, "-m", "modeldeck", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "MODELDECK_PORT must be an integer, got 'eighty'" in out.stderr


def test_metrics_report_each_worker_process_memory(deck):
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{deck.url}/metrics").text)}
    rss = {s.labels["model"]: s.value for s in families["modeldeck_worker_resident_memory_bytes"].samples}
    assert set(rss) == {"ner", "parse", "embed", "face-detect", "face-verify"}
    assert all(value > 10 * 2**20 for value in rss.values())  # a loaded model is tens of MiB at least
    pids = {name: httpx.get(f"{deck.url}/v1/models/{name}").json()["worker_pid"] for name in rss}
    assert pids["ner"] == pids["parse"]  # one artifact (en_core_web_sm), one worker
    assert len(set(pids.values())) == 4 and os.getpid() not in pids.values()  # none of them the server
