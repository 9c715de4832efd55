"""Where models run: the shared batch runner, and worker processes that survive a crashing model."""

from __future__ import annotations

import json
import os

import pytest

from modeldeck.config import Settings
from modeldeck.errors import EmptyInputError, InferenceError, OptionError
from modeldeck.serving.models import LocalModel, ProcessModel, run_items
from modeldeck.serving.specs import ModelSpec

from ..support import echo_loader

pytestmark = pytest.mark.timeout(120)


def test_run_items_answers_each_item_with_its_own_options(echo_task):
    outputs = run_items(echo_task, [("a", {}), ("b", {"upper": True}), ("", {}), ("c", {"nope": 1}), ("boom", {})])
    assert json.loads(outputs[0]) == {"text": "a"}
    assert json.loads(outputs[1]) == {"text": "B"}
    assert isinstance(outputs[2], EmptyInputError)
    assert isinstance(outputs[3], OptionError) and "nope" in outputs[3].message
    assert isinstance(outputs[4], InferenceError) and "boom is poison" in outputs[4].message
    # one forward for the good items, then one per item to isolate the poisoned one
    assert echo_task.batches == [3, 1, 1, 1]


def test_local_model_checks_options_fully(echo_task):
    model = LocalModel(echo_task)
    with pytest.raises(OptionError, match="valid options for echo: upper"):
        model.check_options({"colour": "red"})
    assert model.describe()["isolation"] == "thread"


@pytest.fixture
def worker(tmp_path):
    settings = Settings.from_env({}, home=tmp_path, models=("echo",))
    model = ProcessModel(ModelSpec("echo", None, "echo"), settings, loader=echo_loader)
    model.start()
    yield model
    model.close()


def test_worker_process_answers_batches(worker):
    assert worker.task == "echo" and worker.info.name == "echo-model"
    assert worker.pid is not None and worker.pid != os.getpid()
    outputs = worker.run_batch([("x", {}), ("y", {"upper": True}), (" ", {})])
    assert [json.loads(o) for o in outputs[:2]] == [{"text": "x"}, {"text": "Y"}]
    assert isinstance(outputs[2], EmptyInputError) and outputs[2].code == "MD101"  # rebuilt from the wire
    with pytest.raises(OptionError, match="upper"):
        worker.check_options({"upper": "not a bool"})


def test_a_crashing_worker_fails_its_batch_and_is_restarted(worker):
    first_pid = worker.pid
    with pytest.raises(InferenceError, match=r"died \(exit code 3\)"):
        worker.run_batch([("fine", {}), ("crash", {})])
    assert worker.restarts == 1 and worker.pid != first_pid
    assert json.loads(worker.run_batch([("after", {})])[0]) == {"text": "after"}
    assert worker.describe()["worker_restarts"] == 1


def test_close_stops_the_worker(worker):
    process = worker.worker._process
    worker.close()
    assert not process.is_alive()
    worker.close()  # idempotent


def test_a_worker_whose_model_fails_to_load_reports_why(tmp_path):
    settings = Settings.from_env({}, home=tmp_path, models=("nope",))
    model = ProcessModel(ModelSpec("nope", None, "no-such-model"), settings)
    with pytest.raises(InferenceError, match=r"failed to load: \[MD202\] no model"):
        model.start()
