"""Document Q&A over HTTP on a real uvicorn server: a small index built here with the real MiniLM."""

from __future__ import annotations

import concurrent.futures
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modeldeck.config import Settings
from modeldeck.documents import DocumentIndex, extract_text
from modeldeck.serving import create_app
from modeldeck.serving.documents_routes import MAX_QUESTION_CHARS, MAX_TOP_K
from modeldeck.serving.specs import ModelSpec, load_spec

from ..support import EchoTask, LiveServer, echo_info, echo_settings

pytestmark = pytest.mark.timeout(300)

DOCS = {
    "vacation.md": "# Vacation policy\n\nFull-time employees receive 25 paid vacation days per calendar year.\n\n"
    "Up to five unused vacation days may be carried over into the next year; they expire on March 31.\n",
    "expenses.txt": "Expense reports\n\nSubmit an expense report within 30 days of spending the money. Attach an "
    "itemised receipt for every purchase over 25 dollars.\n",
    "it/laptops.md": "# Laptops\n\nCompany laptops are replaced every three years. To report a broken laptop, open "
    "a ticket with the IT help desk; a loan laptop is available the same day.\n",
    "travel.txt": "Book flights and hotels through the company travel agency. Economy class is the rule for "
    "flights shorter than six hours. Keep boarding passes for your expense report.\n",
}
QUESTIONS = [
    ("How many vacation days do I get?", "vacation.md"),
    ("My laptop is broken, who do I contact?", "it/laptops.md"),
    ("Which class should I fly?", "travel.txt"),
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("sentence_transformers")
    import modeldeck

    return modeldeck.load("embed", settings=Settings.from_env({}, home=tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    root = tmp_path_factory.mktemp("handbook")
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    DocumentIndex.build(root, model=embedder, chunk_chars=120, overlap_chars=20).close()
    return root


@pytest.fixture(scope="module")
def index(folder: Path, embedder: Any) -> Iterator[DocumentIndex]:
    with DocumentIndex.open(folder, model=embedder) as opened:
        yield opened


def serve(tmp_path: Path, loads: list[ModelSpec], embedder: Any, **settings: Any) -> LiveServer:
    echo = EchoTask(echo_info(), batch_size=32, max_text_chars=1000)
    config = echo_settings(tmp_path, **settings)

    def load(spec: ModelSpec) -> Any:
        if spec.alias == "echo":  # the served deck
            return echo
        loads.append(spec)  # what the documents routes load
        return embedder if spec.task == "embed" else load_spec(spec, config)

    return LiveServer(create_app(config, loader=load)).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, folder: Path, embedder: Any) -> Iterator[LiveServer]:
    loads: list[ModelSpec] = []
    live = serve(tmp_path_factory.mktemp("server"), loads, embedder, documents=str(folder))
    live.loads = loads  # type: ignore[attr-defined]
    yield live
    live.stop()


def ask(server: LiveServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/documents/ask", json=body, timeout=60, **kwargs)


@pytest.mark.slow
def test_the_index_is_described(server: LiveServer, index: DocumentIndex) -> None:
    response = httpx.get(f"{server.url}/v1/documents", timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == index.model and body["model"].startswith("all-MiniLM-L6-v2@")
    assert body["chunks"] == len(index) and body["qa_model"] is None and body["folder"].startswith("handbook")
    assert [f["source"] for f in body["files"]] == list(index.files) == sorted(DOCS)
    assert sum(f["chunks"] for f in body["files"]) == len(index)
    assert {f["source"]: f["kind"] for f in body["files"]}["expenses.txt"] == "text"
    assert all(f["chunks"] == len(index.passages(f["source"])) for f in body["files"])


@pytest.mark.slow
@pytest.mark.parametrize(("question", "source"), QUESTIONS)
def test_ask_answers_the_index_passages_with_their_sources(
    server: LiveServer, index: DocumentIndex, folder: Path, question: str, source: str
) -> None:
    response = ask(server, {"question": question, "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = index.ask(question, top_k=3).to_dict()
    assert body["question"] == question and body["answer"] is None  # no reader configured
    assert [{k: v for k, v in p.items() if k != "score"} for p in body["passages"]] == [
        {k: v for k, v in p.items() if k != "score"} for p in expected["passages"]
    ]
    np.testing.assert_allclose([p["score"] for p in body["passages"]], [p["score"] for p in expected["passages"]],
                               atol=1e-6)  # fmt: skip
    top = body["passages"][0]
    assert top["source"] == source  # the real MiniLM ranks the answering file first
    for p in body["passages"]:
        assert (folder / p["source"]).read_text(encoding="utf-8")[p["start"] : p["end"]] == p["text"]


@pytest.mark.slow
def test_top_k_defaults_to_five_and_is_capped_by_the_index(server: LiveServer, index: DocumentIndex) -> None:
    body = ask(server, {"question": "vacation"}).json()
    assert len(body["passages"]) == min(5, len(index))
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)
    everything = ask(server, {"question": "vacation", "top_k": MAX_TOP_K}).json()
    assert len(everything["passages"]) == len(index) < MAX_TOP_K


@pytest.mark.slow
def test_concurrent_questions_each_get_their_own_answer(server: LiveServer) -> None:
    questions = [q for q, _ in QUESTIONS] * 4
    with concurrent.futures.ThreadPoolExecutor(len(questions)) as pool:
        answers = list(pool.map(lambda q: ask(server, {"question": q, "top_k": 1}), questions))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    expected = {q: s for q, s in QUESTIONS}
    assert [a.json()["passages"][0]["source"] for a in answers] == [expected[q] for q in questions]


@pytest.mark.slow
def test_bad_requests_get_a_code_and_a_fix(server: LiveServer) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"question": ""}, 422, "MD101"),
        ({"question": "   "}, 422, "MD101"),
        ({"question": "x", "top_k": 0}, 422, "MD110"),
        ({"question": "x", "top_k": MAX_TOP_K + 1}, 422, "MD110"),
        ({"question": "x", "top_k": "3"}, 422, "MD104"),
        ({"question": "x", "top_k": True}, 422, "MD104"),
        ({"question": 42}, 422, "MD104"),
        ({"top_k": 3}, 422, "MD104"),
        ({"question": "x", "folder": "/etc"}, 422, "MD104"),  # nothing in a request names a path
        (["a question"], 422, "MD104"),
        ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, 413, "MD103"),
    ]
    for body, status, code in cases:
        response = ask(server, body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == code, (body, error)
        assert error["message"] and "Traceback" not in response.text
    schema = httpx.get(f"{server.url}/openapi.json").json()["paths"]["/v1/documents/ask"]["post"]["requestBody"]
    assert schema["content"]["application/json"]["schema"]["required"] == ["question"]
    malformed = httpx.post(f"{server.url}/v1/documents/ask", content=b"{not json", timeout=60)
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "MD104"
    unknown = ask(server, {"question": "x", "folder": "/etc"}).json()["error"]
    assert "'folder'" in unknown["message"] and '"question"' in unknown["message"]  # the bad field and the fix
    assert ask(server, {"question": "How many vacation days?"}).status_code == 200  # still serving


@pytest.mark.slow
def test_the_server_reads_the_index_as_it_is_and_closes_it(
    tmp_path: Path, folder: Path, embedder: Any, index: DocumentIndex
) -> None:
    loads: list[ModelSpec] = []
    live = serve(tmp_path, loads, embedder, documents=str(folder))
    try:
        assert loads == []  # nothing opens before a request needs it
        assert httpx.get(f"{live.url}/v1/documents", timeout=60).json()["chunks"] == len(index)
        assert [s.task for s in loads] == ["embed"]
        (folder / "new.md").write_text("# Parking\n\nVisitors park on level two.\n", encoding="utf-8")
        try:
            body = ask(live, {"question": "Where do visitors park?", "top_k": 10}).json()
            assert "new.md" not in {p["source"] for p in body["passages"]}  # never re-indexed by a request
        finally:
            (folder / "new.md").unlink()
        holder = live.server.config.app.state.documents
        assert holder._index is not None
    finally:
        live.stop()
    assert holder._index is None  # closed on shutdown


def test_no_index_configured_answers_404_with_the_setting_to_use(tmp_path: Path) -> None:
    loads: list[ModelSpec] = []
    live = serve(tmp_path, loads, embedder=None)
    try:
        for response in (httpx.get(f"{live.url}/v1/documents"), ask(live, {"question": "anything?"})):
            assert response.status_code == 404
            error = response.json()["error"]
            assert error["code"] == "MD204" and "MODELDECK_DOCUMENTS=" in error["message"]
        assert ask(live, {"question": ""}).status_code == 422  # bad input is still bad input
        assert [s.task for s in loads] == []
    finally:
        live.stop()


def test_a_folder_without_an_index_answers_404_with_how_to_build_it(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("text", encoding="utf-8")
    live = serve(tmp_path, [], embedder=None, documents=str(tmp_path / "docs"))
    try:
        response = httpx.get(f"{live.url}/v1/documents")
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "MD204" and "modeldeck ask" in error["message"]
        assert not (tmp_path / "docs" / ".modeldeck-index").exists()  # nothing was built
    finally:
        live.stop()


@pytest.mark.slow
def test_a_reader_answer_points_into_its_passage(tmp_path: Path, folder: Path, embedder: Any) -> None:
    pytest.importorskip("transformers")
    from ..tasks.language_models import save_tiny_bert_qa

    (tmp_path / "tiny-qa").mkdir()
    reader = save_tiny_bert_qa(tmp_path / "tiny-qa", max_positions=128)
    live = serve(tmp_path, [], embedder, documents=str(folder), documents_qa=str(reader))
    try:
        assert httpx.get(f"{live.url}/v1/documents", timeout=60).json()["qa_model"] == str(reader)
        body = ask(live, {"question": "When do I submit my expense report?", "top_k": 2}).json()
        answer = body["answer"]
        assert answer is not None and answer["text"].strip()
        assert answer["passage"] in body["passages"]
        inner = answer["passage"]["text"][
            answer["start"] - answer["passage"]["start"] : answer["end"] - answer["passage"]["start"]
        ]
        assert inner == answer["text"]
        assert extract_text(folder / answer["source"]).text[answer["start"] : answer["end"]] == answer["text"]
    finally:
        live.stop()


@pytest.mark.slow
def test_the_docs_show_the_shapes_the_routes_answer(server: LiveServer) -> None:
    page = (Path(__file__).parents[2] / "docs" / "documents.md").read_text(encoding="utf-8")
    section = page.split("## Over HTTP", 1)[1].split("\n## ", 1)[0]
    described, answered = (json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, flags=re.S))
    real = httpx.get(f"{server.url}/v1/documents", timeout=60).json()
    assert set(described) == set(real) and set(described["files"][0]) == set(real["files"][0])
    real = ask(server, {"question": answered["question"], "top_k": len(answered["passages"])}).json()
    assert set(answered) == set(real) and set(answered["passages"][0]) == set(real["passages"][0])
    assert len(real["passages"]) == len(answered["passages"])
