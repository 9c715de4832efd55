"""A tiny QA model behind the real server: question/context objects in, answers out, per-item errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.serving import create_app

from ..support import LiveServer
from ..tasks.language_models import save_tiny_bert_qa

pytestmark = pytest.mark.timeout(120)

CONTEXT = "Tim Cook founded the company in Paris in 1999. José  went to London 😀 and Berlin."


@pytest.fixture(scope="module")
def qa_task(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("transformers")
    path = save_tiny_bert_qa(tmp_path_factory.mktemp("tiny-qa"))
    return modeldeck.load("qa", model=str(path), settings=Settings.from_env({}, home=tmp_path_factory.mktemp("h")))


@pytest.fixture
def server(live: list[LiveServer], qa_task, tmp_path: Path) -> LiveServer:
    settings = Settings.from_env({}, home=tmp_path / "home", models=("tiny-qa",))
    app = create_app(settings, loader=lambda spec: qa_task)
    srv = LiveServer(app).start()
    live.append(srv)
    srv.wait_ready()
    return srv


def predict(server: LiveServer, body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/tiny-qa/predict", json=body, timeout=60)


def test_one_question_object_gets_answers(server: LiveServer, qa_task) -> None:
    body = {"inputs": {"question": "Who founded it?", "context": CONTEXT}, "options": {"top_k": 2}}
    response = predict(server, body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"] == "tiny-qa" and len(data["outputs"]) == 1
    output = data["outputs"][0]
    assert output == qa_task(question="Who founded it?", context=CONTEXT, top_k=2).to_dict()
    assert len(output["answers"]) == 2
    for answer in output["answers"]:
        assert answer["text"] == CONTEXT[answer["start"] : answer["end"]]


def test_a_list_is_a_batch_and_a_bad_item_gets_its_own_error(server: LiveServer) -> None:
    inputs = [
        {"question": "Who founded it?", "context": CONTEXT},
        {"question": "Who founded it?"},
        {"question": "", "context": CONTEXT},
        "just a string",
        {"question": "Where?", "context": CONTEXT},
    ]
    response = predict(server, {"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert "answers" in outputs[0] and "answers" in outputs[4]
    assert outputs[1]["error"]["code"] == "MD102" and "'context'" in outputs[1]["error"]["message"]
    assert outputs[2]["error"]["code"] == "MD101" and "question" in outputs[2]["error"]["message"]
    assert outputs[3]["error"]["code"] == "MD102"


def test_single_bad_item_and_bad_option_are_4xx(server: LiveServer) -> None:
    missing = predict(server, {"inputs": {"context": CONTEXT}})
    assert missing.status_code == 422 and "'question'" in missing.json()["error"]["message"]
    option = predict(server, {"inputs": {"question": "a", "context": "b"}, "options": {"top_k": 0}})
    assert option.status_code == 422 and option.json()["error"]["code"] == "MD110"
    described = httpx.get(f"{server.url}/v1/models/tiny-qa").json()
    assert "handle_impossible_answer" in str(described)
