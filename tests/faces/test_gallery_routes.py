"""The gallery over HTTP on a real uvicorn server: enroll (multipart, base64), identify, list, delete, errors."""

from __future__ import annotations

import base64
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

import modeldeck.gallery._gallery as gallery_module
from modeldeck.serving import create_app

from ..support import LiveServer, echo_settings
from .gallery_support import FakeEmbedder, FakeEmbedTask, fake_photo, png_bytes

pytestmark = pytest.mark.timeout(60)

ALICE, BOB = 11, 22


def b64(pixels: np.ndarray) -> str:
    return base64.b64encode(png_bytes(pixels)).decode()


def rows(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (
            conn.execute("SELECT count(*) FROM people").fetchone()[0],
            conn.execute("SELECT count(*) FROM vectors").fetchone()[0],
        )


@pytest.fixture
def server(live, tmp_path, echo_task, monkeypatch):
    loads: list[str] = []
    embed_task = FakeEmbedTask(max_pixels=500_000)

    def load(spec):
        if spec.task != "face-embed":
            return echo_task
        loads.append(spec.model or spec.task)
        return embed_task

    db = tmp_path / "team.db"
    app = create_app(echo_settings(tmp_path, gallery=str(db), max_image_pixels=500_000), loader=load)
    srv = LiveServer(app).start()
    live.append(srv)
    srv.db = db  # type: ignore[attr-defined]
    srv.loads = loads  # type: ignore[attr-defined]
    srv.embed_task = embed_task  # type: ignore[attr-defined]
    return srv


def test_round_trip_over_http(server):
    url = f"{server.url}/v1/gallery"
    assert httpx.get(f"{url}/people").status_code == 404  # nothing enrolled yet, and no file was created
    assert not server.db.exists()

    files = [
        ("files", ("a1.png", png_bytes(fake_photo((ALICE, 1))), "image/png")),
        ("files", ("a2.png", png_bytes(fake_photo((ALICE, 2))), "image/png")),
        ("files", ("blank.png", png_bytes(fake_photo()), "image/png")),
    ]
    added = httpx.post(f"{url}/people/alice/images", files=files)
    assert added.status_code == 201, added.text
    report = added.json()
    assert [a["source"] for a in report["added"]] == ["a1.png", "a2.png"]
    assert report["skipped"] == [{"source": "blank.png", "code": "MD150", "message": report["skipped"][0]["message"]}]
    bob = httpx.post(f"{url}/people/bob/images", json={"images": [b64(fake_photo((BOB, 1)))], "sources": ["b.png"]})
    assert bob.status_code == 201 and bob.json()["images"] == 1
    assert server.loads == ["face-embed"]  # one model load, on first use

    listing = httpx.get(f"{url}/people").json()
    assert listing["model"] == "fake-faces@1" and listing["threshold"] == 0.6
    assert listing["people"] == [{"name": "alice", "images": 2}, {"name": "bob", "images": 1}]

    found = httpx.post(f"{url}/identify", files={"file": ("p.png", png_bytes(fake_photo((ALICE, 5))))}).json()
    assert [f["name"] for f in found["faces"]] == ["alice"]
    assert [c["name"] for c in found["faces"][0]["candidates"]] == ["alice", "bob"]
    one = httpx.post(f"{url}/identify", json={"image": b64(fake_photo((ALICE, 5))), "top_k": 1}).json()
    assert len(one["faces"][0]["candidates"]) == 1

    removed = httpx.delete(f"{url}/people/alice")
    assert removed.status_code == 200 and removed.json() == {"name": "alice", "removed": 2}
    again = httpx.post(f"{url}/identify", json={"image": b64(fake_photo((ALICE, 5)))}).json()
    assert again["faces"][0]["name"] is None and again["faces"][0]["candidates"][0]["name"] == "bob"

    image_id = httpx.get(f"{url}/people/bob").json()["images"][0]["image_id"]
    assert httpx.delete(f"{url}/images/{image_id}").json() == {"image_id": image_id, "name": "bob"}
    assert httpx.get(f"{url}/people").json()["people"] == [] and rows(server.db) == (0, 0)


def test_bad_requests_get_our_error_shape_and_change_nothing(server, tmp_path):
    url = f"{server.url}/v1/gallery"
    assert httpx.post(f"{url}/people/bob/images", json={"images": [b64(fake_photo((BOB, 1)))]}).status_code == 201
    before = rows(server.db)
    huge = np.zeros((800, 800, 3), dtype=np.uint8)  # over this server's 500,000 pixels
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(fake_photo((ALICE, 1))))
    cases = [
        ("post", "people/alice/images", {"json": {"images": [b64(fake_photo())]}}, 422, "MD150"),
        ("post", "people/alice/images", {"json": {"images": [b64(fake_photo((1, 1), (2, 1)))]}}, 422, "MD151"),
        ("post", "people/alice/images", {"json": {"images": [b64(huge)]}}, 413, "MD103"),
        ("post", "people/alice/images", {"json": {"images": [base64.b64encode(b"junk").decode()]}}, 422, "MD104"),
        ("post", "people/alice/images", {"json": {"images": [str(secret)]}}, 422, "MD104"),  # never a path
        ("post", "people/alice/images", {"json": {"images": []}}, 422, "MD101"),
        ("post", "people/alice/images", {"json": {"image": b64(fake_photo((1, 1))), "colour": 1}}, 422, "MD110"),
        ("post", "people/alice/images", {"content": b"not json", "headers": {"content-type": "text/plain"}}, 422,
         "MD104"),
        ("post", "identify", {"json": {"image": b64(fake_photo())}}, 422, "MD150"),
        ("post", "identify", {"json": {"image": b64(np.zeros((4, 4, 3), np.uint8))}}, 422, "MD104"),
        ("post", "identify", {"json": {"image": b64(fake_photo((1, 1))), "top_k": 0}}, 422, "MD110"),
        ("post", "identify", {"json": {"image": b64(fake_photo((1, 1))), "top_k": "many"}}, 422, "MD110"),
        ("post", "identify", {"json": {}}, 422, "MD101"),
        ("delete", "people/nobody", {}, 404, "MD200"),
        ("delete", "images/999", {}, 404, "MD200"),
        ("get", "people/nobody", {}, 404, "MD200"),
    ]  # fmt: skip
    for method, path, kwargs, status, code in cases:
        response = httpx.request(method.upper(), f"{url}/{path}", **kwargs)
        assert response.status_code == status, (path, kwargs.keys(), response.text)
        assert response.json()["error"]["code"] == code, (path, response.text)
    assert rows(server.db) == before


def test_routes_answer_404_with_a_hint_when_no_gallery_is_configured(live, tmp_path, echo_task):
    app = create_app(echo_settings(tmp_path), loader=lambda spec: echo_task)
    srv = LiveServer(app).start()
    live.append(srv)
    for method, path in [("GET", "people"), ("POST", "identify"), ("DELETE", "people/x"), ("DELETE", "images/1")]:
        kwargs = {"json": {"image": b64(fake_photo((1, 1)))}} if method == "POST" else {}
        response = httpx.request(method, f"{srv.url}/v1/gallery/{path}", **kwargs)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "MD205"
        assert "MODELDECK_GALLERY" in response.json()["error"]["message"]


def test_a_gallery_built_with_another_model_is_refused(live, tmp_path, echo_task, monkeypatch):
    db = tmp_path / "other.db"
    with gallery_module.Gallery(db, FakeEmbedder("other@9")) as g:
        g.enroll("bob", fake_photo((BOB, 1)))
    app = create_app(
        echo_settings(tmp_path, gallery=str(db)),
        loader=lambda spec: FakeEmbedTask() if spec.task == "face-embed" else echo_task,
    )
    srv = LiveServer(app).start()
    live.append(srv)
    assert httpx.get(f"{srv.url}/v1/gallery/people").json()["people"] == [{"name": "bob", "images": 1}]
    response = httpx.post(f"{srv.url}/v1/gallery/identify", json={"image": b64(fake_photo((BOB, 1)))})
    assert response.status_code == 500 and response.json()["error"]["code"] == "MD012"
    assert rows(db) == (1, 1)


@pytest.mark.slow
def test_real_dlib_over_http(live, tmp_path, echo_task, embedder, astro, monkeypatch):
    db = tmp_path / "real.db"
    app = create_app(
        echo_settings(tmp_path, gallery=str(db)),
        loader=lambda spec: embedder if spec.task == "face-embed" else echo_task,
    )
    srv = LiveServer(app).start()
    live.append(srv)
    url = f"{srv.url}/v1/gallery"
    files = {"files": ("eileen.png", png_bytes(astro), "image/png")}
    assert httpx.post(f"{url}/people/eileen/images", files=files, timeout=30).status_code == 201
    probe = b64(np.ascontiguousarray(astro[:, ::-1]))
    found = httpx.post(f"{url}/identify", json={"image": probe}, timeout=30).json()
    assert found["faces"][0]["name"] == "eileen" and found["model"] == embedder.model_id
    assert found["faces"][0]["distance"] < found["threshold"]
    assert httpx.delete(f"{url}/people/eileen").json()["removed"] == 1
    assert httpx.post(f"{url}/identify", json={"image": probe}, timeout=30).json()["faces"][0]["name"] is None


def test_the_server_closes_its_gallery_on_shutdown(server):
    url = f"{server.url}/v1/gallery"
    enrolled = httpx.post(f"{url}/people/alice/images", json={"images": [b64(fake_photo((ALICE, 1)))]})
    assert enrolled.status_code == 201
    holder = server.server.config.app.state.gallery
    assert holder._gallery is not None  # opened by the first request
    server.stop()
    assert holder._gallery is None


def test_faces_are_embedded_by_the_gallery_deployment_and_batched(server):
    url = f"{server.url}/v1/gallery"
    enrolled = httpx.post(f"{url}/people/alice/images", json={"images": [b64(fake_photo((ALICE, i))) for i in (1, 2)]})
    assert enrolled.status_code == 201, enrolled.text
    deployment = server.server.config.app.state.gallery.deployment
    assert deployment.name == "_gallery" and deployment.batcher.stats.items == 2  # through its batcher
    assert sum(server.embed_task.batches) == 2

    # Concurrent identifications wait in the deployment's queue and run as one batch.
    server.embed_task.gate = threading.Event()
    server.embed_task.entered.clear()
    probe = {"image": b64(fake_photo((ALICE, 7)))}
    with ThreadPoolExecutor(6) as pool:
        held = pool.submit(httpx.post, f"{url}/identify", json=probe, timeout=30)
        assert server.embed_task.entered.wait(10)
        rest = [pool.submit(httpx.post, f"{url}/identify", json=probe, timeout=30) for _ in range(5)]
        for _ in range(1000):
            if deployment.batcher.depth == 5:
                break
            threading.Event().wait(0.01)
        server.embed_task.gate.set()
        answers = [held.result(), *(job.result() for job in rest)]
    assert [a.json()["faces"][0]["name"] for a in answers] == ["alice"] * 6
    assert server.embed_task.batches[-2:] == [1, 5]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'modeldeck_batch_size_count{model="_gallery"} 4.0' in metrics
    assert "_gallery" not in httpx.get(f"{server.url}/v1/models").text  # internal: not a served model


@pytest.mark.slow
def test_the_gallery_embeds_in_a_worker_process_of_its_own(live, tmp_path, astro):
    pytest.importorskip("dlib")
    import os

    from modeldeck.config import Settings
    from modeldeck.serving.models import ProcessModel

    settings = Settings.from_env({}, home=tmp_path / "home", models=("face-detect",), gallery=str(tmp_path / "team.db"))
    srv = LiveServer(create_app(settings)).start()  # no test loader: the default process isolation
    live.append(srv)
    url = f"{srv.url}/v1/gallery"
    files = {"files": ("eileen.png", png_bytes(astro), "image/png")}
    assert httpx.post(f"{url}/people/eileen/images", files=files, timeout=60).status_code == 201
    found = httpx.post(f"{url}/identify", json={"image": b64(astro)}, timeout=60).json()
    assert found["faces"][0]["name"] == "eileen"
    deployment = srv.server.config.app.state.gallery.deployment
    assert isinstance(deployment.model, ProcessModel) and deployment.model.pid not in (None, os.getpid())
    assert deployment.batcher.stats.items == 2
    srv.stop()
    assert srv.server.config.app.state.gallery.deployment is None  # its worker was stopped with the server
