"""OpenAI-compatible routes, driven by the real ``openai`` client against a live server on 127.0.0.1.

Tiny random GPT-2 models serve ``generate`` and ``chat``; the real MiniLM (from its pip package)
serves ``embed``. Served answers are checked against the same tasks called in Python.
"""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest

from modeldeck.config import Settings
from modeldeck.serving import create_app
from modeldeck.serving.specs import load_spec

from ..support import LiveServer
from ..tasks.gpt2_models import CHAT_TEMPLATE, save_tiny_gpt2

pytestmark = pytest.mark.timeout(180)

LONG = 1500  # tokens a disconnected stream asks for; the window below holds them


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("lms")
    return {
        "gen": save_tiny_gpt2(root / "gen", n_positions=2048),
        "chat": save_tiny_gpt2(root / "chat", chat_template=CHAT_TEMPLATE, tasks=("generate", "chat")),
    }


@pytest.fixture(scope="module")
def server(paths, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a busy 2-core machine: intra-op threads only add hand-offs
    specs = (f"gen=generate:{paths['gen']}", f"chat=chat:{paths['chat']}", "embed")
    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"), models=specs)
    live = LiveServer(create_app(settings, loader=lambda spec: load_spec(spec, settings))).start()
    live.wait_ready()
    yield live
    live.stop()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def task(server, name):
    """The task behind a deployment (the loader keeps it in this process)."""
    return server.server.config.app.state.deck.deployments[name].model._task


def test_chat_completion_equals_the_python_api(server, client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    response = client.chat.completions.create(model="chat", messages=messages, max_tokens=8, temperature=0)
    expected = task(server, "chat")(messages, max_new_tokens=8)
    choice = response.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == expected.content
    assert choice.finish_reason == "length" and response.object == "chat.completion" and response.model == "chat"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (expected.prompt_tokens, 8)
    assert response.usage.total_tokens == expected.prompt_tokens + 8


def test_streamed_chat_yields_the_same_text_in_openai_chunks(client):
    messages = [{"role": "user", "content": "Tell me a story"}]
    options = {"model": "chat", "messages": messages, "max_tokens": 12, "temperature": 0.8, "seed": 5}
    whole = client.chat.completions.create(**options)
    chunks = list(client.chat.completions.create(**options, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 1 and "".join(texts) == whole.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"


def test_chat_sse_stream_ends_with_done(server):
    body = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"


def test_completions_plain_streamed_and_for_several_prompts(server, client):
    gen = task(server, "gen")
    prompts = ["Once upon a time", "Hello"]
    response = client.completions.create(model="gen", prompt=prompts, max_tokens=10, temperature=0)
    assert [c.text for c in response.choices] == [gen(p, max_new_tokens=10).text for p in prompts]
    assert [c.index for c in response.choices] == [0, 1] and response.usage.completion_tokens == 20
    stream = client.completions.create(model="gen", prompt=prompts[0], max_tokens=10, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in stream) == response.choices[0].text
    assert client.completions.create(model="gen", prompt="Hi").usage.completion_tokens == 16  # OpenAI's default


def test_seed_and_stop_through_the_api(client):
    def complete(**options):
        return client.completions.create(model="gen", prompt="Once upon a time", **options).choices[0]

    sampled = complete(max_tokens=15, temperature=1.0, seed=3)
    assert complete(max_tokens=15, temperature=1.0, seed=3).text == sampled.text
    full = complete(max_tokens=30, temperature=0).text
    stop = next(full[i : i + 2] for i in range(3, len(full) - 2) if full[i : i + 2].isprintable())
    stopped = complete(max_tokens=30, temperature=0, stop=[stop])
    assert stopped.text == full[: full.index(stop)] and stopped.finish_reason == "stop"
    top_k = client.completions.create(model="gen", prompt="Hi", max_tokens=6, extra_body={"top_k": 1}, seed=1)
    assert (
        top_k.choices[0].text
        == client.completions.create(model="gen", prompt="Hi", max_tokens=6, temperature=0).choices[0].text
    )


def test_embeddings_float_and_base64_match_the_python_api(server, client):
    texts = ["The cat sat on the mat.", "Paris is in France."]
    expected = [e.vector for e in task(server, "embed")(texts)]
    floats = client.embeddings.create(model="embed", input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1] and floats.object == "list"
    for item, vector in zip(floats.data, expected, strict=True):
        np.testing.assert_allclose(np.asarray(item.embedding, dtype=np.float32), vector, atol=1e-6)
    raw = httpx.post(
        f"{server.url}/v1/embeddings", json={"model": "embed", "input": texts[0], "encoding_format": "base64"}
    ).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, expected[0], atol=1e-6)
    # The openai client asks for base64 by default and decodes it itself.
    default = client.embeddings.create(model="embed", input=texts[1])
    np.testing.assert_allclose(np.asarray(default.data[0].embedding, dtype=np.float32), expected[1], atol=1e-6)


def test_embedding_dimensions_are_checked_before_the_model_runs(server, client):
    stats = server.server.config.app.state.deck.deployments["embed"].batcher
    before = stats.stats.items
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="embed", input="hello", dimensions=64)
    assert "dimensions=64 is not supported" in str(refused.value) and "384" in str(refused.value)
    assert stats.stats.items == before  # refused before anything was queued
    same = client.embeddings.create(model="embed", input="hello", dimensions=384, encoding_format="float")
    assert len(same.data[0].embedding) == 384 and stats.stats.items == before + 1


def test_models_are_listed_in_openai_and_modeldeck_shapes(server, client):
    assert {m.id for m in client.models.list()} == {"gen", "chat", "embed"}
    body = httpx.get(f"{server.url}/v1/models").json()
    assert body["object"] == "list" and {m["name"] for m in body["models"]} == {"gen", "chat", "embed"}
    assert all(m["object"] == "model" and m["owned_by"] == "modeldeck" and m["created"] > 0 for m in body["data"])


def test_errors_come_in_openai_shape(server, client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.body["code"] == "model_not_found" and "served models" in missing.value.body["message"]
    cases = [
        ({"model": "gen", "messages": [{"role": "user", "content": "Hi"}]}, "serves the 'generate' task"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "Hi"}]}, "messages[0]['role']"),
        ({"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "n": 2}, "n=2"),
        (
            {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0},
            "max_tokens must be at least 1",
        ),
    ]
    for body, fragment in cases:
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(**body)
        assert fragment in bad.value.body["message"] and bad.value.body["type"] == "invalid_request_error"
        assert "max_new_tokens" not in bad.value.body["message"]  # OpenAI's names only, never the task's
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "word " * 400}])
    assert long.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as streamed:  # an input error comes before any event
        client.completions.create(model="gen", prompt="word " * 3000, stream=True)
    assert streamed.value.body["code"] == "context_length_exceeded"
    garbled = httpx.post(f"{server.url}/v1/completions", content=b"{not json")
    assert garbled.status_code == 400 and set(garbled.json()["error"]) == {"message", "type", "param", "code"}


def test_concurrent_requests_are_batched(server, client):
    gen = task(server, "gen")
    prompts = [f"Client {i} says" for i in range(12)]
    before = httpx.get(f"{server.url}/v1/models/gen").json()["batching"]["stats"]
    with ThreadPoolExecutor(12) as pool:
        texts = list(
            pool.map(
                lambda p: client.completions.create(model="gen", prompt=p, max_tokens=8, temperature=0).choices[0].text,
                prompts,
            )
        )
    assert texts == [gen(p, max_new_tokens=8).text for p in prompts]
    after = httpx.get(f"{server.url}/v1/models/gen").json()["batching"]["stats"]
    assert after["items"] - before["items"] == 12 and after["batches"] - before["batches"] < 12


def wait_for_cancel(url, name, count):
    deadline = time.monotonic() + 60
    while True:
        streams = httpx.get(f"{url}/v1/models/{name}").json()["streams"]
        if streams["cancelled"] >= count and streams["cancelled_tokens"] > 0:
            return streams
        assert time.monotonic() < deadline, f"the stream was never cancelled: {streams}"
        time.sleep(0.05)


def read_one_chunk_and_leave(url, body):
    with httpx.Client(timeout=60) as http, http.stream("POST", f"{url}/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                return line


def test_a_client_that_disconnects_stops_its_generation(server, client):
    gen = task(server, "gen")
    before = gen.generated_tokens
    body = {"model": "gen", "prompt": "Once upon a time", "max_tokens": LONG, "temperature": 0, "stream": True}
    assert read_one_chunk_and_leave(server.url, body)
    streams = wait_for_cancel(server.url, "gen", 1)
    assert streams["cancelled_tokens"] < LONG // 3
    assert gen.generated_tokens - before < LONG // 3
    # The slot is free: the next request is answered in full.
    assert client.completions.create(model="gen", prompt="Hi", max_tokens=5).usage.completion_tokens == 5


@pytest.mark.slow
def test_streaming_and_disconnects_through_a_worker_process(paths, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # read by torch in the spawned worker
    settings = Settings.from_env({}, home=tmp_path, models=(f"gen=generate:{paths['gen']}",), isolation="process")
    live = LiveServer(create_app(settings)).start()
    try:
        live.wait_ready()
        detail = httpx.get(f"{live.url}/v1/models/gen").json()
        assert detail["isolation"] == "process" and detail["worker_pid"] is not None
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        options = {"model": "gen", "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}
        whole = client.completions.create(**options).choices[0].text
        pieces = [c.choices[0].text for c in client.completions.create(**options, stream=True)]
        assert len(pieces) > 2 and "".join(pieces) == whole
        body = {**options, "max_tokens": LONG, "stream": True}
        assert read_one_chunk_and_leave(live.url, body)
        streams = wait_for_cancel(live.url, "gen", 1)
        assert streams["cancelled_tokens"] < LONG // 3
        assert client.completions.create(**options).choices[0].text == whole
    finally:
        live.stop()


def test_openai_requests_count_in_the_server_metrics(server, client):
    from prometheus_client.parser import text_string_to_metric_families

    def count(model, status):
        families = {f.name: f for f in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)}
        return sum(
            s.value
            for s in families["modeldeck_requests"].samples
            if s.name.endswith("_total") and s.labels == {"model": model, "status": status, "surface": "openai"}
        )

    ok, bad = count("gen", "200"), count("gen", "400")
    client.completions.create(model="gen", prompt="Hi", max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="gen", prompt="Hi", max_tokens=100_000)
    assert (count("gen", "200"), count("gen", "400")) == (ok + 1, bad + 1)
