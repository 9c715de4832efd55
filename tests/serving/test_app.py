"""The HTTP surface over a real uvicorn server: contract, bad input, overload, deadlines, shutdown."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from modeldeck.serving import create_app

from ..support import EchoTask, LiveServer, echo_settings

pytestmark = pytest.mark.timeout(60)


def start(live: list[LiveServer], task: EchoTask, tmp_path: Path, **settings: Any) -> LiveServer:
    app = create_app(echo_settings(tmp_path, **settings), loader=lambda spec: task)
    server = LiveServer(app).start()
    live.append(server)
    server.wait_ready()
    return server


def predict(server: LiveServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/echo/predict", json=body, timeout=30, **kwargs)


def test_single_input_and_list_answer_in_order(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    one = predict(server, {"inputs": "hello"})
    assert one.status_code == 200
    assert one.json() == {"model": "echo", "version": "1.0", "outputs": [{"text": "hello"}]}
    many = predict(server, {"inputs": ["a", "b", "c"], "options": {"upper": True}})
    assert [o["text"] for o in many.json()["outputs"]] == ["A", "B", "C"]


def test_bad_items_get_their_own_errors_and_the_rest_are_answered(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    response = predict(server, {"inputs": ["ok", "", 42, None, "  ", "fine", "x" * 2000]})
    assert response.status_code == 200
    outputs = response.json()["outputs"]
    assert outputs[0] == {"text": "ok"} and outputs[5] == {"text": "fine"}
    assert [o["error"]["code"] for o in outputs if "error" in o] == ["MD101", "MD102", "MD102", "MD101", "MD103"]
    assert "2,000 characters" in outputs[6]["error"]["message"]


def test_forward_failure_is_isolated_to_the_failing_item(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    outputs = predict(server, {"inputs": ["a", "boom", "b"]}).json()["outputs"]
    assert outputs[0] == {"text": "a"} and outputs[2] == {"text": "b"}
    assert outputs[1]["error"]["code"] == "MD500" and "boom is poison" in outputs[1]["error"]["message"]
    single = predict(server, {"inputs": "boom"})
    assert single.status_code == 500 and single.json()["error"]["code"] == "MD500"


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"inputs": ""}, 422, "MD101", "empty"),
        ({"inputs": 3}, 422, "MD102", "string"),
        ({"inputs": []}, 422, "MD100", "empty list"),
        ({"inputs": "a", "options": {"lower": True}}, 422, "MD110", "valid options for echo: upper"),
        ({"inputs": "a", "options": {"upper": "very"}}, 422, "MD110", "upper"),
        ({"inputs": "a", "options": ["upper"]}, 422, "MD104", "options"),
        ({"input": "a"}, 422, "MD104", "unknown field 'input'"),
        ({"inputs": "a", "timeout_ms": -1}, 422, "MD104", "timeout_ms"),
    ],
)
def test_invalid_requests_get_a_clear_4xx(live, echo_task, tmp_path, body, status, code, words):
    server = start(live, echo_task, tmp_path)
    response = predict(server, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]
    assert predict(server, {"inputs": "still alive"}).status_code == 200


def test_malformed_and_non_utf8_bodies_are_400(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    url = f"{server.url}/v1/models/echo/predict"
    headers = {"content-type": "application/json"}
    broken = httpx.post(url, content=b'{"inputs": ["a",', headers=headers)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
    latin1 = httpx.post(url, content='{"inputs": "café"}'.encode("latin-1"), headers=headers)
    assert latin1.status_code == 400 and latin1.json()["error"]["code"] == "MD104"
    assert predict(server, {"inputs": "café"}).json()["outputs"] == [{"text": "café"}]


def test_a_lone_surrogate_in_the_body_is_its_own_input_error(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    url = f"{server.url}/v1/models/echo/predict"
    response = httpx.post(url, content=b'{"inputs": "bad \\ud800 text"}', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "MD105"
    assert "surrogate" in response.json()["error"]["message"]
    paired = httpx.post(url, content=b'{"inputs": "ok \\ud83d\\ude00"}', headers={"content-type": "application/json"})
    assert paired.json()["outputs"] == [{"text": "ok \U0001f600"}]
    truncated = httpx.post(url, content=b'{"inputs": "x', headers={"content-type": "application/json"})
    assert truncated.status_code == 400 and truncated.json()["error"]["code"] == "MD104"  # broken JSON stays MD104


def test_unknown_model_is_404_listing_the_served_ones(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    response = httpx.post(f"{server.url}/v1/models/nope/predict", json={"inputs": "a"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MD202" and "echo" in response.json()["error"]["message"]
    assert httpx.get(f"{server.url}/v1/models/nope").status_code == 404


def test_body_over_the_limit_is_413_by_header_and_by_stream(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path, max_body_bytes=4096)
    big = {"inputs": "x" * 5000}
    assert predict(server, big).status_code == 413

    def chunks():  # no Content-Length: the streamed body is counted
        yield b'{"inputs": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    streamed = httpx.post(
        f"{server.url}/v1/models/echo/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "MD103"
    assert predict(server, {"inputs": "small"}).status_code == 200


def test_five_megabyte_text_is_refused_clearly(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)  # default 8 MiB body, 1000-char task limit
    response = predict(server, {"inputs": "word " * 1_000_000})
    assert response.status_code == 413
    assert "characters" in response.json()["error"]["message"]


def test_models_listing_detail_health_and_openapi(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    listing = httpx.get(f"{server.url}/v1/models").json()["models"]
    assert listing == [
        {
            "name": "echo",
            "task": "echo",
            "model": "echo-model",
            "version": "1.0",
            "runtime": "python",
            "license": "",
            "ready": True,
        }
    ]
    detail = httpx.get(f"{server.url}/v1/models/echo").json()
    assert detail["options"]["properties"]["upper"]["type"] == "boolean"
    assert detail["batching"]["max_batch_size"] == 32
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert "/v1/models/{name}/predict" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    root = httpx.get(f"{server.url}/")  # the playground page, which links the docs
    assert root.status_code == 200 and 'href="/docs"' in root.text


def test_readyz_is_503_until_models_are_loaded(live, echo_task, tmp_path):
    release = threading.Event()

    def slow_loader(spec):
        assert release.wait(20)
        return echo_task

    app = create_app(echo_settings(tmp_path), loader=slow_loader)
    server = LiveServer(app).start()
    live.append(server)
    not_ready = httpx.get(f"{server.url}/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["models"] == {"echo": "loading"}
    early = predict(server, {"inputs": "a"})
    assert early.status_code == 503 and "still loading" in early.json()["error"]["message"]
    release.set()
    server.wait_ready()
    assert predict(server, {"inputs": "a"}).status_code == 200


def test_a_model_that_failed_to_load_is_reported(live, tmp_path):
    def broken_loader(spec):
        raise RuntimeError("weights are corrupt")

    server = LiveServer(create_app(echo_settings(tmp_path), loader=broken_loader)).start()
    live.append(server)
    deadline = time.monotonic() + 20
    while (body := httpx.get(f"{server.url}/readyz").json())["models"]["echo"] == "loading":
        assert time.monotonic() < deadline, "the load never finished"
        time.sleep(0.01)
    assert body == {"status": "failed", "models": {"echo": "failed"}}  # never "loading" forever
    assert "weights are corrupt" in predict(server, {"inputs": "a"}).json()["error"]["message"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_concurrent_requests_are_batched_and_metrics_show_it(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    echo_task.gate = threading.Event()
    with ThreadPoolExecutor(16) as pool:
        first = pool.submit(predict, server, {"inputs": "first"})
        assert echo_task.entered.wait(10)  # batch 1 is now held inside the model
        rest = [pool.submit(predict, server, {"inputs": f"t{i}"}) for i in range(12)]
        _wait_for_queue(server, 12)
        echo_task.gate.set()
        assert first.result().status_code == 200
        assert sorted(f.result().json()["outputs"][0]["text"] for f in rest) == sorted(f"t{i}" for i in range(12))
    assert max(echo_task.batches) == 12
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'modeldeck_batch_size_bucket{le="16.0",model="echo"}' in metrics
    assert 'modeldeck_requests_total{model="echo",status="200",surface="task"} 13.0' in metrics
    assert "process_resident_memory_bytes" in metrics
    assert 'modeldeck_queue_depth{model="echo"} 0.0' in metrics  # everything answered, nothing queued


def _wait_for_queue(server: LiveServer, depth: int) -> None:
    for _ in range(1000):
        if httpx.get(f"{server.url}/v1/models/echo").json()["batching"]["queue_depth"] >= depth:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"queue never reached {depth}")


def test_full_queue_answers_429_with_retry_after(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path, max_queue=4, max_batch_size=2)
    echo_task.gate = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        held = pool.submit(predict, server, {"inputs": "held"})
        assert echo_task.entered.wait(10)
        queued = pool.submit(predict, server, {"inputs": ["q1", "q2", "q3", "q4"]})
        _wait_for_queue(server, 4)
        rejected = predict(server, {"inputs": "one too many"})
        assert rejected.status_code == 429
        assert rejected.json()["error"]["code"] == "MD601"
        assert int(rejected.headers["Retry-After"]) >= 1
        echo_task.gate.set()
        assert held.result().status_code == 200 and queued.result().status_code == 200


def test_missed_deadline_is_504_and_the_server_goes_on(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    echo_task.gate = threading.Event()
    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(predict, server, {"inputs": "held"})
        assert echo_task.entered.wait(10)
        late = predict(server, {"inputs": "late", "timeout_ms": 50})
        assert late.status_code == 504 and late.json()["error"]["code"] == "MD602"
        echo_task.gate.set()
        assert held.result().status_code == 200
    assert echo_task.batches == [1]  # "late" expired in the queue and never reached the model
    assert predict(server, {"inputs": "after"}).status_code == 200


def test_graceful_shutdown_finishes_accepted_requests(echo_task, tmp_path):
    app = create_app(echo_settings(tmp_path), loader=lambda spec: echo_task)
    server = LiveServer(app).start()
    server.wait_ready()
    echo_task.gate = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        accepted = [pool.submit(predict, server, {"inputs": "r0"})]
        assert echo_task.entered.wait(10)  # r0 is inside the model; the next five must queue behind it
        accepted += [pool.submit(predict, server, {"inputs": f"r{i}"}) for i in range(1, 6)]
        _wait_for_queue(server, 5)
        server.server.should_exit = True  # what uvicorn does on SIGTERM
        echo_task.gate.set()
        assert [f.result().status_code for f in accepted] == [200] * 6
    server.thread.join(30)
    assert not server.thread.is_alive()


def _request_counts(server: LiveServer) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    """``modeldeck_requests_total`` by (surface, model, status) and the latency counts by (surface, model)."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[tuple[str, ...], float] = {}
    latency: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text):
        for s in family.samples:
            if s.name == "modeldeck_requests_total":
                counts[(s.labels["surface"], s.labels["model"], s.labels["status"])] = s.value
            elif s.name == "modeldeck_request_seconds_count":
                latency[(s.labels["surface"], s.labels["model"])] = s.value
    return counts, latency


def test_every_request_is_counted_once_under_the_surface_whose_router_answered(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    calls = [
        ("GET", "/healthz", None, 200),
        ("GET", "/v1/models", None, 200),
        ("POST", "/v1/models/echo/predict", {"inputs": "a"}, 200),
        ("POST", "/v1/models/echo/predict", {"inputs": ""}, 422),
        ("POST", "/v1/embeddings", {"model": "echo", "input": "a"}, 400),  # echo is no embed model
        ("GET", "/v1/gallery/people", None, 404),  # this server has no gallery
        ("GET", "/v1/documents", None, 404),
        ("GET", "/no/such/route", None, 404),
        ("GET", "/v2/health/live", None, 200),
        ("POST", "/v2/models/echo/infer", {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                                       "data": ["a"]}]}, 200),
        ("POST", "/v1/models/echo:predict", {"instances": ["a"]}, 200),
    ]  # fmt: skip
    before, _ = _request_counts(server)
    for method, path, body, status in calls:
        assert httpx.request(method, f"{server.url}{path}", json=body).status_code == status, path
    after, latency = _request_counts(server)
    added = {key: value - before.get(key, 0.0) for key, value in after.items() if value != before.get(key, 0.0)}
    assert added == {
        ("ops", "", "200"): 2.0,  # /healthz, and the first /metrics scrape (counted once it had answered)
        ("task", "", "200"): 1.0,
        ("task", "echo", "200"): 1.0,
        ("task", "echo", "422"): 1.0,
        ("openai", "echo", "400"): 1.0,
        ("gallery", "", "404"): 1.0,
        ("documents", "", "404"): 1.0,
        ("other", "", "404"): 1.0,
        ("oip", "", "200"): 1.0,
        ("oip", "echo", "200"): 1.0,
        ("tfserving", "echo", "200"): 1.0,
    }
    assert latency[("task", "echo")] == 2.0 and latency[("openai", "echo")] == 1.0
