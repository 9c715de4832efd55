"""Worker processes by artifact: models that share one share a worker, and workers start from a fork server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import ConfigError, InferenceError
from modeldeck.runtimes import preload_modules
from modeldeck.runtimes._shared import load_shared, shared_artifacts
from modeldeck.serving import create_app
from modeldeck.serving.models import ProcessModel, WorkerProcess, worker_context
from modeldeck.serving.specs import ModelSpec, group_specs
from modeldeck.types import ModelInfo

from ..support import EchoTask, LiveServer, echo_loader

pytestmark = pytest.mark.timeout(180)

TEXTS = ["Tim Cook visited Paris on Monday.", "Angela Merkel met Emmanuel Macron in Berlin."]


def shared_echo_loader(spec: ModelSpec, settings: Settings) -> EchoTask:
    """An echo model whose "artifact" (an id) is loaded through ``load_shared``; the card shows which."""
    artifact = load_shared("echo", "the-one", lambda: uuid.uuid4().hex)
    info = ModelInfo(
        name="echo-model",
        version="1.0",
        tasks=("echo",),
        runtime="python",
        path=Path("."),
        card={
            "artifact": artifact,
            "preloaded_wave": "wave" in sys.modules,
            "parent": os.getppid(),
            "mark": os.environ.get("MODELDECK_TEST_MARK"),
        },
    )
    return EchoTask(info, batch_size=settings.max_batch_size, max_text_chars=settings.max_text_chars)


def torch_threads_loader(spec: ModelSpec, settings: Settings) -> EchoTask:
    """An echo model that reports the size of torch's thread pool after one operation in the worker."""
    import torch

    torch.ones(64, 64).matmul(torch.ones(64, 64))
    info = ModelInfo(
        name="echo-model",
        version="1.0",
        tasks=("echo",),
        runtime="python",
        path=Path("."),
        card={"threads": torch.get_num_threads(), "preloaded": "torch" in sys.modules},
    )
    return EchoTask(info, batch_size=settings.max_batch_size, max_text_chars=settings.max_text_chars)


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings.from_env({}, home=tmp_path, models=("a",), **overrides)


def test_models_of_one_artifact_share_a_worker_and_its_loaded_artifact(tmp_path):
    settings = _settings(tmp_path)
    specs = [ModelSpec("a", None, "echo"), ModelSpec("b", None, "echo")]
    worker = WorkerProcess(specs, settings, loader=shared_echo_loader)
    a, b = (ProcessModel(spec, settings, worker=worker) for spec in specs)
    a.start()
    b.start()
    try:
        assert a.pid == b.pid != os.getpid()
        assert a.info.card["artifact"] == b.info.card["artifact"]  # loaded once for both
        assert a.describe()["worker_shared_with"] == ["b"]
        assert json.loads(a.run_batch([("x", {})])[0]) == {"text": "x"}
        assert json.loads(b.run_batch([("y", {"upper": True})])[0]) == {"text": "Y"}
        with pytest.raises(InferenceError, match=r"died \(exit code 3\)"):
            a.run_batch([("crash", {})])
        assert a.restarts == b.restarts == 1 and a.pid == b.pid
        assert json.loads(b.run_batch([("after", {})])[0]) == {"text": "after"}  # the other model came back too
        a.close()
        assert worker.pid is not None and worker._process.is_alive()  # b still uses it
        assert json.loads(b.run_batch([("still", {})])[0]) == {"text": "still"}
    finally:
        a.close()
        b.close()
    assert not worker._process.is_alive()  # the last model stops it


def test_outside_a_shared_scope_each_load_is_its_own():
    made = []
    assert load_shared("k", "x", lambda: made.append(1) or len(made)) == 1
    assert load_shared("k", "x", lambda: made.append(1) or len(made)) == 2
    with shared_artifacts():
        assert load_shared("k", "x", lambda: made.append(1) or len(made)) == 3
        assert load_shared("k", "x", lambda: made.append(1) or len(made)) == 3
        assert load_shared("k", "y", lambda: made.append(1) or len(made)) == 4


def test_a_crash_in_one_worker_leaves_the_others_running(tmp_path):
    settings = _settings(tmp_path)
    context = worker_context("forkserver", [])
    one, two = (
        ProcessModel(ModelSpec(name, None, "echo"), settings, worker=WorkerProcess(
            [ModelSpec(name, None, "echo")], settings, loader=echo_loader, context=context))
        for name in ("one", "two")
    )  # fmt: skip
    one.start()
    two.start()
    try:
        assert len({one.pid, two.pid, os.getpid()}) == 3
        before = two.pid
        with pytest.raises(InferenceError, match="died"):
            one.run_batch([("crash", {})])
        assert two.pid == before and two.restarts == 0
        assert json.loads(two.run_batch([("fine", {})])[0]) == {"text": "fine"}
        assert json.loads(one.run_batch([("back", {})])[0]) == {"text": "back"}
    finally:
        one.close()
        two.close()


def test_the_artifact_decides_the_groups(tmp_path):
    settings = _settings(tmp_path)
    specs = [ModelSpec.parse(text) for text in ("ner", "parse", "embed", "other=ner", "nope=no-such-model")]
    groups = group_specs(specs, settings)
    assert [[spec.alias for spec in group.specs] for group in groups] == [
        ["ner", "parse", "other"],
        ["embed"],
        ["nope"],
    ]
    assert [group.runtime for group in groups] == ["spacy", "sentence-transformers", None]
    assert preload_modules(["spacy", "sentence-transformers", "no-such-runtime"]) == [
        "numpy",
        "spacy",
        "torch",
        "transformers",
    ]


def test_the_start_method_is_a_checked_setting(tmp_path):
    assert _settings(tmp_path).worker_start == "forkserver"
    assert Settings.from_env({"MODELDECK_WORKER_START": "Spawn"}).worker_start == "spawn"
    with pytest.raises(ConfigError, match="MODELDECK_WORKER_START must be 'forkserver' or 'spawn', got 'fork'"):
        Settings.from_env({"MODELDECK_WORKER_START": "fork"})


_START_METHODS = textwrap.dedent(
    """
    import json, os, sys
    from modeldeck.config import Settings
    from modeldeck.serving.models import ProcessModel, WorkerProcess, worker_context
    from modeldeck.serving.specs import ModelSpec
    from tests.serving.test_workers import shared_echo_loader

    settings = Settings.from_env({}, home=sys.argv[1], models=("a",))
    out = {}
    for start in ("spawn", "forkserver"):
        spec = ModelSpec(start, None, "echo")
        context = worker_context(start, ["wave"])
        model = ProcessModel(spec, settings, worker=WorkerProcess([spec], settings, loader=shared_echo_loader,
                                                                  context=context))
        model.start()
        out[start] = {**model.info.card, "pid": model.pid, "answer": model.run_batch([("hi", {})])[0].decode()}
        model.close()
    print(json.dumps({"server": os.getpid(), **out, "server_has_wave": "wave" in sys.modules}))
    """
)


def test_workers_fork_from_a_server_that_preloaded_the_modules(tmp_path):
    # A fresh interpreter: Python keeps one fork server per process, and this one's may be running.
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    done = subprocess.run(
        [sys.executable, "-c", _START_METHODS, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    spawned, forked = out["spawn"], out["forkserver"]
    assert out["server_has_wave"] is False  # the server itself imports nothing for its workers
    assert spawned["preloaded_wave"] is False and spawned["parent"] == out["server"]
    assert forked["preloaded_wave"] is True  # imported once by the fork server, before the fork
    assert forked["parent"] not in (out["server"], forked["pid"])  # the fork server's child, not the server's
    assert json.loads(spawned["answer"]) == json.loads(forked["answer"]) == {"text": "hi"}


def test_a_forked_worker_takes_the_servers_environment_of_now(tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    context = worker_context("forkserver", [])
    first = WorkerProcess([ModelSpec("first", None, "echo")], settings, loader=shared_echo_loader, context=context)
    first.start()  # the fork server runs from here on, with the environment of now
    try:
        monkeypatch.setenv("MODELDECK_TEST_MARK", "set later")
        later = ProcessModel(ModelSpec("later", None, "echo"), settings, worker=WorkerProcess(
            [ModelSpec("later", None, "echo")], settings, loader=shared_echo_loader, context=context))  # fmt: skip
        later.start()
        assert later.info.card["mark"] == "set later"
        later.close()
    finally:
        first.release("first")


_THREADS = textwrap.dedent(
    """
    import json, os, sys
    from modeldeck.config import Settings
    from modeldeck.serving.models import ProcessModel, WorkerProcess, worker_context
    from modeldeck.serving.specs import ModelSpec
    from tests.serving.test_workers import torch_threads_loader

    settings = Settings.from_env({}, home=sys.argv[1], models=("a",))
    out = {}
    for start, omp in (("spawn", None), ("forkserver", None), ("forkserver", "1")):
        if omp is not None:
            os.environ["OMP_NUM_THREADS"] = omp  # after the fork server started: the worker must still see it
        spec = ModelSpec(start, None, "echo")
        worker = WorkerProcess([spec], settings, loader=torch_threads_loader, context=worker_context(start, ["torch"]))
        model = ProcessModel(spec, settings, worker=worker)
        model.start()
        out[f"{start} {omp}"] = dict(model.info.card)
        model.close()
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_a_forked_worker_sizes_its_own_torch_threads(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(
        [sys.executable, "-c", _THREADS, str(tmp_path)], env=env, capture_output=True, text=True, timeout=150
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["forkserver None"]["threads"] == out["spawn None"]["threads"]  # preloaded torch: the same pool
    assert out["forkserver 1"]["threads"] == 1


@pytest.fixture(scope="module")
def language_deck(tmp_path_factory):
    settings = Settings.from_env({}, home=tmp_path_factory.mktemp("home"), models=("ner", "parse"))
    server = LiveServer(create_app(settings)).start()
    server.wait_ready()
    yield server
    server.stop()


def _detail(server: LiveServer, name: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/v1/models/{name}", timeout=30).json()  # type: ignore[no-any-return]


def _predict(server: LiveServer, name: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{name}/predict", json={"inputs": TEXTS}, timeout=60)


@pytest.mark.slow
def test_ner_and_parse_share_one_worker_and_one_pipeline(language_deck):
    ner, parse = _detail(language_deck, "ner"), _detail(language_deck, "parse")
    assert ner["worker_pid"] == parse["worker_pid"] not in (None, os.getpid())
    assert ner["worker_shared_with"] == ["parse"] and parse["worker_shared_with"] == ["ner"]
    assert _predict(language_deck, "ner").json()["outputs"] == [r.to_dict() for r in modeldeck.load("ner")(TEXTS)]
    assert _predict(language_deck, "parse").json()["outputs"] == [r.to_dict() for r in modeldeck.load("parse")(TEXTS)]


@pytest.mark.slow
def test_the_shared_worker_killed_comes_back_for_both_models(language_deck):
    first = _detail(language_deck, "ner")["worker_pid"]
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while "error" in (answer := _predict(language_deck, "ner")).text or answer.status_code != 200:
        assert time.monotonic() < deadline, "ner did not come back"  # the batch the kill met fails; the next runs
    ner, parse = _detail(language_deck, "ner"), _detail(language_deck, "parse")
    assert ner["worker_pid"] == parse["worker_pid"] != first
    assert ner["worker_restarts"] == parse["worker_restarts"] == 1
    assert _predict(language_deck, "ner").json()["outputs"] == [r.to_dict() for r in modeldeck.load("ner")(TEXTS)]
    assert _predict(language_deck, "parse").json()["outputs"] == [r.to_dict() for r in modeldeck.load("parse")(TEXTS)]


def test_spacy_tasks_in_a_shared_scope_run_one_pipeline_with_their_own_components():
    with shared_artifacts():
        ner, parse = modeldeck.load("ner"), modeldeck.load("parse")
    assert ner.runtime.nlp is parse.runtime.nlp
    assert "ner" in ner.runtime.pipe_names and "parser" not in ner.runtime.pipe_names
    assert "parser" in parse.runtime.pipe_names and "ner" not in parse.runtime.pipe_names
    alone_ner, alone_parse = modeldeck.load("ner"), modeldeck.load("parse")
    assert alone_ner.runtime.nlp is not alone_parse.runtime.nlp
    assert [r.to_dict() for r in ner(TEXTS)] == [r.to_dict() for r in alone_ner(TEXTS)]
    assert [r.to_dict() for r in parse(TEXTS)] == [r.to_dict() for r in alone_parse(TEXTS)]
    docs = ner.runtime.pipe(TEXTS)
    assert docs[0].ents and not docs[0].has_annotation("DEP")  # the parser was skipped for ner
