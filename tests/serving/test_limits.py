"""Every request has a bounded cost: sizes checked before queueing, deadlines that reach the model,
workers held to time and memory budgets, admission by expected wait, and metrics of what clients saw."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from modeldeck.batching import MicroBatcher
from modeldeck.config import Settings
from modeldeck.errors import DeadlineExceededError, WorkerBudgetError
from modeldeck.serving import create_app
from modeldeck.serving.deck import ModelSpec
from modeldeck.serving.models import ProcessModel, run_items
from modeldeck.tasks import _deadline
from modeldeck.tasks._backend import BackendBase
from modeldeck.tasks._spacy import PIECE_CHARS, SpacyText, pipe_pieces, split_for_spacy
from modeldeck.tasks.embed import EmbedTask, _Chunks

from ..support import EchoTask, LiveServer, echo_info, echo_loader, echo_settings

pytestmark = pytest.mark.timeout(90)


def start(live: list[LiveServer], task: EchoTask, tmp_path: Path, **settings: Any) -> LiveServer:
    server = LiveServer(create_app(echo_settings(tmp_path, **settings), loader=lambda spec: task)).start()
    live.append(server)
    server.wait_ready()
    return server


def predict(server: LiveServer, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/echo/predict", json=body, timeout=30)


def _wait_for_queue(server: LiveServer, depth: int) -> None:
    for _ in range(1000):
        if httpx.get(f"{server.url}/v1/models/echo").json()["batching"]["queue_depth"] >= depth:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"queue never reached {depth}")


# -- sizes are checked before queueing -------------------------------------------------------


def test_a_too_long_text_is_413_at_once_while_the_model_is_busy(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path, max_request_chars="echo=100")
    echo_task.gate = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(predict, server, {"inputs": "held"})
        assert echo_task.entered.wait(10)  # the model is busy: anything queued would wait behind it
        refused = predict(server, {"inputs": "x" * 101})
        assert refused.status_code == 413 and refused.json()["error"]["code"] == "MD103"
        assert "101 characters" in refused.text and "MODELDECK_MAX_REQUEST_CHARS=echo=N" in refused.text
        mixed = pool.submit(predict, server, {"inputs": ["ok", "y" * 500]})
        _wait_for_queue(server, 1)  # only the valid item was queued
        echo_task.gate.set()
        assert held.result().status_code == 200
        outputs = mixed.result().json()["outputs"]
    assert outputs[0] == {"text": "ok"} and outputs[1]["error"]["code"] == "MD103"
    assert echo_task.batches == [1, 1]  # the long texts never reached the model


def test_a_request_the_queue_can_never_hold_is_413_naming_the_limit(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path, max_queue=64)
    response = predict(server, {"inputs": ["a"] * 65})
    assert response.status_code == 413, response.text
    message = response.json()["error"]["message"]
    assert "65 inputs" in message and "(64)" in message and "MODELDECK_MAX_QUEUE" in message
    assert echo_task.batches == []


@pytest.mark.parametrize(("inputs", "status", "code"), [("", 422, "MD101"), (3, 422, "MD102"), ("ok", 504, "MD602")])
def test_validation_comes_before_a_tiny_deadline(live, echo_task, tmp_path, inputs, status, code):
    server = start(live, echo_task, tmp_path)
    response = predict(server, {"inputs": inputs, "timeout_ms": 0.001})
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_images_are_checked_from_their_header_before_queueing():
    import base64
    import io

    from PIL import Image

    from modeldeck.errors import InputDecodeError, InputTooLargeError, InputTypeError
    from modeldeck.serving.limits import InputLimits

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buffer, format="PNG")
    png = buffer.getvalue()
    settings = Settings.from_env({}, max_request_pixels="face-verify=60000")
    pair = InputLimits("face-verify", "face-verify", "image-pair", settings)
    pair.check([png, base64.b64encode(png).decode()])
    pair.check({"a": png, "b": png})
    with pytest.raises(InputTooLargeError, match="60,000 pixels"):
        InputLimits(
            "face-verify", "face-verify", "image-pair", Settings.from_env({}, max_request_pixels="59999")
        ).check([png, png])
    with pytest.raises(InputTypeError, match="pair of images"):
        pair.check([png])
    with pytest.raises(InputDecodeError, match="not an image"):
        InputLimits("detect", "detect", "image", settings).check(b"not an image at all")
    assert InputLimits("face-detect", "face-detect", "image", Settings.from_env({})).max_pixels == 8_000_000
    assert InputLimits("embed", "embed", "text", Settings.from_env({})).max_chars == 10_000
    assert InputLimits("ner", "ner", "text", Settings.from_env({})).max_chars == 40_000
    assert InputLimits("ner", "ner", "text", Settings.from_env({}, max_text_chars=500)).max_chars == 500
    assert InputLimits("big", "embed", "text", Settings.from_env({}, max_request_chars="big=50000")).max_chars == 50_000


# -- deadlines reach the model ---------------------------------------------------------------


def test_an_expired_item_is_never_started(echo_task):
    now = time.monotonic()
    outputs = run_items(echo_task, [("late", {}, None, now - 1), ("fresh", {}, None, now + 60), ("free", {})])
    assert isinstance(outputs[0], DeadlineExceededError)
    assert [json.loads(o) for o in outputs[1:]] == [{"text": "fresh"}, {"text": "free"}]
    assert echo_task.batches == [2]


class _FakeTime:
    """Stands in for ``time`` in the deadline module: each model call below moves it one second on."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def test_spacy_pieces_stop_between_pieces_once_the_deadline_passed(monkeypatch):
    clock = _FakeTime()
    monkeypatch.setattr(_deadline, "time", clock)
    calls: list[int] = []

    def pipe(texts: list[str], *, batch_size: int) -> list[str]:
        calls.append(len(texts))
        clock.now += 1.0
        return list(texts)

    runtime = SimpleNamespace(max_length=1_000_000, pipe=pipe)
    text = ("word " * (PIECE_CHARS // 5)) * 3
    item = split_for_spacy(text, runtime)  # type: ignore[arg-type]
    assert len(item.pieces) == 3  # long texts go to spaCy in bounded pieces, whatever nlp.max_length is
    with _deadline.deadline_scope(1.5), pytest.raises(DeadlineExceededError):
        pipe_pieces(runtime, [item], batch_size=1)  # type: ignore[arg-type]
    assert calls == [1, 1]  # the third piece never started
    assert len(pipe_pieces(runtime, [SpacyText(text, item.pieces)], batch_size=1)) == 1  # no scope: no deadline


def test_embedding_windows_stop_once_the_deadline_passed(monkeypatch):
    clock = _FakeTime()
    monkeypatch.setattr(_deadline, "time", clock)
    calls: list[int] = []

    class Runtime:
        def encode(self, texts: list[str], *, batch_size: int) -> np.ndarray:
            calls.append(len(texts))
            clock.now += 1.0
            return np.ones((len(texts), 4), dtype=np.float32)

    task = EmbedTask(echo_info(), BackendBase(Runtime()), batch_size=2)  # type: ignore[arg-type]
    long = _Chunks(tuple(f"w{i}" for i in range(7)), (1,) * 7)
    with _deadline.deadline_scope(2.5), pytest.raises(DeadlineExceededError):
        task.forward([long])
    assert calls == [2, 2, 2]  # the fourth window never started
    calls.clear()
    assert task.forward([long])[0][1] == 7 and calls == [2, 2, 2, 1]


# -- worker budgets --------------------------------------------------------------------------


def _worker(tmp_path: Path, **overrides: Any) -> ProcessModel:
    settings = Settings.from_env({}, home=tmp_path, models=("echo",), **overrides)
    model = ProcessModel(ModelSpec("echo", None, "echo"), settings, loader=echo_loader)
    model.start()
    return model


async def _through_batcher(model: ProcessModel, inputs: list[str], timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    async with MicroBatcher(model.run_batch, name="echo", max_batch_size=8, max_wait_s=0.2) as batcher:
        jobs = [batcher.submit((raw, {}, None, deadline), deadline=deadline) for raw in inputs]
        return await asyncio.gather(*jobs, return_exceptions=True)


@pytest.mark.slow
def test_a_worker_over_its_memory_budget_is_replaced_and_only_the_culprit_fails(tmp_path):
    model = _worker(tmp_path, worker_max_rss_mb=300)
    try:
        outputs = asyncio.run(_through_batcher(model, ["a", "hog", "b"], timeout=60))
        assert [json.loads(o) for o in (outputs[0], outputs[2])] == [{"text": "a"}, {"text": "b"}]
        assert isinstance(outputs[1], WorkerBudgetError) and outputs[1].code == "MD106"
        assert "memory budget of 300 MiB" in outputs[1].message and "MODELDECK_WORKER_MAX_RSS_MB" in str(outputs[1])
        assert model.restarts >= 2  # the batch, then the half with the culprit, then the culprit alone
        assert json.loads(model.run_batch([("after", {})])[0]) == {"text": "after"}
    finally:
        model.close()


def test_a_worker_busy_past_the_deadline_is_replaced(tmp_path):
    model = _worker(tmp_path, worker_grace_s=0.2)
    first = model.pid
    try:
        started = time.monotonic()
        outputs = asyncio.run(_through_batcher(model, ["hang", "b"], timeout=0.5))
        assert time.monotonic() - started < 30  # not the 60 s the model would have hung for
        assert all(isinstance(o, (DeadlineExceededError, WorkerBudgetError)) for o in outputs), outputs
        assert model.restarts == 1 and model.pid != first
        assert json.loads(model.run_batch([("after", {})])[0]) == {"text": "after"}
    finally:
        model.close()


# -- admission by expected wait --------------------------------------------------------------


def _learn_a_slow_batch(server: LiveServer, echo_task: EchoTask, pool: ThreadPoolExecutor) -> None:
    """One batch held for at least 0.3 s, so the cost model knows a batch takes that long."""
    echo_task.gate = threading.Event()
    first = pool.submit(predict, server, {"inputs": "measured"})
    assert echo_task.entered.wait(10)
    threading.Event().wait(0.3)
    echo_task.gate.set()
    assert first.result().status_code == 200
    echo_task.gate = threading.Event()
    echo_task.entered.clear()


def _queue_until_refused(server: LiveServer, pool: ThreadPoolExecutor, body: dict[str, Any]) -> tuple[int, Any]:
    """Send one-input requests while the model is held, until one is refused; (queued, refusal)."""
    waiting = []
    for queued in range(30):
        started = time.perf_counter()
        job = pool.submit(predict, server, body)
        while not job.done():
            if httpx.get(f"{server.url}/v1/models/echo").json()["batching"]["queue_depth"] > queued:
                waiting.append(job)
                break
            threading.Event().wait(0.005)
        else:
            return queued, (job.result(), time.perf_counter() - started, waiting)
    raise AssertionError("30 requests queued behind a held model and none was refused")


def test_admission_refuses_at_once_what_the_backlog_cannot_serve_in_time(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path, max_batch_size=1, max_queue_wait_ms="echo=1000")
    with ThreadPoolExecutor(40) as pool:
        _learn_a_slow_batch(server, echo_task, pool)
        held = pool.submit(predict, server, {"inputs": "held"})
        assert echo_task.entered.wait(10)
        queued, (refused, seconds, waiting) = _queue_until_refused(server, pool, {"inputs": "more"})
        # Each queued input adds a batch of >= 0.3 s: at most about 1 s / 0.3 s of them are admitted.
        assert 1 <= queued <= 4, queued
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "MD601"
        assert "would wait about" in refused.text and "limit of 1.00s" in refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert seconds < 2.0  # refused at once, not after waiting in the queue
        echo_task.gate.set()
        assert held.result().status_code == 200 and all(job.result().status_code == 200 for job in waiting)


def test_a_deadline_the_backlog_cannot_meet_is_refused_at_once(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path, max_batch_size=1, max_queue_wait_ms="60000")
    with ThreadPoolExecutor(8) as pool:
        _learn_a_slow_batch(server, echo_task, pool)
        held = pool.submit(predict, server, {"inputs": "held"})
        assert echo_task.entered.wait(10)
        waiting = [pool.submit(predict, server, {"inputs": f"q{i}"}) for i in range(3)]
        _wait_for_queue(server, 3)  # three batches of >= 0.3 s ahead: about 0.9 s or more
        refused = predict(server, {"inputs": "hurry", "timeout_ms": 500})
        assert refused.status_code == 429 and "past its deadline" in refused.text, refused.text
        echo_task.gate.set()
        assert held.result().status_code == 200 and all(job.result().status_code == 200 for job in waiting)


# -- metrics ---------------------------------------------------------------------------------


def test_requests_are_counted_under_the_status_the_client_saw(live, echo_task, tmp_path):
    server = start(live, echo_task, tmp_path)
    url = f"{server.url}/v1/models/echo/predict"
    assert httpx.post(url, content=b'{"inputs": [', headers={"content-type": "application/json"}).status_code == 400
    assert httpx.post(url, json={"options": {}}).status_code == 422
    assert predict(server, {"inputs": ""}).status_code == 422
    assert predict(server, {"inputs": "fine"}).status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'modeldeck_requests_total{model="echo",status="400",surface="task"} 1.0' in metrics
    assert 'modeldeck_requests_total{model="echo",status="422",surface="task"} 2.0' in metrics
    assert 'modeldeck_requests_total{model="echo",status="200",surface="task"} 1.0' in metrics
    assert 'status="500"' not in metrics


def test_gallery_images_over_the_pixel_limit_are_413_before_any_face_work(live, echo_task, tmp_path):
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    gallery = tmp_path / "team.db"
    server = start(live, echo_task, tmp_path, gallery=str(gallery), max_request_pixels="gallery=100")
    enrol = httpx.post(f"{server.url}/v1/gallery/people/ada/images", json={"images": [image]}, timeout=30)
    assert enrol.status_code == 413 and "400 pixels" in enrol.text, enrol.text
    identify = httpx.post(f"{server.url}/v1/gallery/identify", json={"image": image}, timeout=30)
    assert identify.status_code == 413
    assert not gallery.exists()  # refused before the gallery (and its face model) was opened


def test_long_runs_without_spaces_reach_spacy_in_short_pieces():
    from modeldeck.tasks._spacy import RUN_CHARS

    runtime = SimpleNamespace(max_length=1_000_000)
    text = "Tim Cook visited Paris. " + ".," * 2000 + " Then he left."
    item = split_for_spacy(text, runtime)  # type: ignore[arg-type]
    assert "".join(piece for _, piece in item.pieces) == text
    assert all(text[offset : offset + len(piece)] == piece for offset, piece in item.pieces)
    assert max(len(piece) for _, piece in item.pieces) <= RUN_CHARS  # spaCy's tokenizer is quadratic in a run
    plain = "word " * 1000
    assert split_for_spacy(plain, runtime).pieces == ((0, plain),)  # ordinary text stays whole  # type: ignore[arg-type]


def test_an_item_stopped_by_an_earlier_deadline_in_its_batch_is_run_again(monkeypatch):
    from modeldeck.serving import models
    from modeldeck.tasks._deadline import check_deadline

    clock = _FakeTime()
    monkeypatch.setattr(models, "time", clock)
    monkeypatch.setattr(_deadline, "time", clock)

    class Chunked(EchoTask):
        def forward(self, batch):  # each call is one chunk of work that takes 2 s
            clock.now += 2.0
            check_deadline()
            return super().forward(batch)

    task = Chunked(echo_info())
    outputs = run_items(task, [("hurried", {}, None, 1.0), ("patient", {}, None, 100.0)])
    assert isinstance(outputs[0], DeadlineExceededError)
    assert json.loads(outputs[1]) == {"text": "patient"}  # stopped with the batch, then run under its own deadline
    assert task.batches == [1]  # only the rerun got through its chunk
