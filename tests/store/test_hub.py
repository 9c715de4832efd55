"""Any Hugging Face repo id loads: resolved to a commit at pull time, pinned in the lock, offline-safe.

The hub is a local server on 127.0.0.1 (``hub_server.py``) speaking the revision, tree and file
routes; the real ``huggingface_hub`` client talks to it through ``Settings.hf_endpoint``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import modeldeck
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.errors import ChecksumError, DownloadError, OfflineError, UnknownModelError
from modeldeck.store import ModelStore
from modeldeck.store._hub import parse_hub_ref

from ..support import save_tiny_bert_ner
from .hub_server import Hub, serve_hub

pytest.importorskip("huggingface_hub")
pytest.importorskip("transformers")

REPO = "dslim/bert-base-NER"


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert_ner(tmp_path_factory.mktemp("tiny-bert-ner"))


@pytest.fixture
def hub(bert_dir: Path) -> Iterator[Hub]:
    with serve_hub() as server:
        server.publish(REPO, bert_dir)
        yield server


@pytest.fixture
def settings(home: Path, hub: Hub) -> Settings:
    return Settings(home=home, hf_endpoint=hub.url)


def _lock(home: Path) -> dict[str, dict[str, str]]:
    return json.loads((home / "hub-lock.json").read_text())  # type: ignore[no-any-return]


def _second_commit(hub: Hub, bert_dir: Path, tmp_path: Path, *, branch: str = "main") -> str:
    changed = tmp_path / f"changed-{branch}"
    changed.mkdir()
    for path in bert_dir.iterdir():
        (changed / path.name).write_bytes(path.read_bytes())
    config = json.loads((changed / "config.json").read_text())
    config["note"] = f"a later commit on {branch}"
    (changed / "config.json").write_text(json.dumps(config))
    return hub.publish(REPO, changed, branch=branch)


def test_parse_hub_ref() -> None:
    ref = parse_hub_ref("dslim/bert-base-NER@v1.0")
    assert ref is not None and (ref.repo_id, ref.revision, ref.store_name) == (REPO, "v1.0", "dslim--bert-base-NER")
    assert parse_hub_ref(REPO).revision is None  # type: ignore[union-attr]
    for not_a_repo in ("ner", "a/b/c", "../x", "./x", "/abs/path", "a/b@", "owner/..", "a/b@bad rev"):
        assert parse_hub_ref(not_a_repo) is None, not_a_repo


def test_a_repo_id_loads_pins_its_commit_and_stays_pinned_when_the_branch_moves(
    hub: Hub, settings: Settings, home: Path, bert_dir: Path, tmp_path: Path
) -> None:
    first = hub.refs[REPO]["main"]
    ner = modeldeck.load("ner", model=REPO, settings=settings)
    assert ner.info.name == REPO and ner.info.version == first[:12] and ner.info.runtime == "transformers"
    assert ner("Alice visited Paris.").entities is not None  # the real loading code ran on the pulled files
    assert _lock(home)[REPO]["commit"] == first
    manifest = json.loads((home / "models" / "dslim--bert-base-NER" / first[:12] / "manifest.json").read_text())
    assert manifest["source"] == {
        "kind": "hf",
        "repo_id": REPO,
        "revision": first,
        "allow_patterns": None,
        "requested": "",
    }
    assert not (home / "models" / "dslim--bert-base-NER" / first[:12] / "files" / ".cache").exists()
    assert hub.paths("GET")[0] == f"/api/models/{REPO}"  # the revision resolved first, then that commit fetched
    assert all(first in p for p in hub.paths()[1:])

    _second_commit(hub, bert_dir, tmp_path)
    seen = len(hub.requests)
    again = modeldeck.load("ner", model=REPO, settings=settings)
    assert again.info.version == first[:12]  # pinned: the moved branch is not followed by a load
    assert len(hub.requests) == seen  # and the hub was not asked


def test_models_pull_follows_the_branch_and_records_the_new_commit(
    hub: Hub,
    settings: Settings,
    home: Path,
    bert_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert main(["models", "pull", REPO, "--quiet"]) == 0
    out = capsys.readouterr()
    assert f"pulled {REPO}@" in out.out and "%|" not in out.err and "Fetching" not in out.err  # no hub bars
    first = hub.refs[REPO]["main"]
    second = _second_commit(hub, bert_dir, tmp_path)
    assert main(["models", "pull", REPO, "--quiet"]) == 0
    assert _lock(home)[REPO]["commit"] == second
    info = ModelStore(settings).resolve(REPO, task="ner")
    assert info.version == second[:12]
    assert json.loads((info.path / "config.json").read_text())["note"] == "a later commit on main"
    assert ModelStore(settings).resolve(f"{REPO}@{first}").version == first[:12]  # a commit is its own pin
    listed = {m.name: m.installed for m in ModelStore(settings).list_models()}
    assert set(listed[REPO]) == {first[:12], second[:12]}
    assert ModelStore(settings).verify(REPO).ok
    assert ModelStore(settings).remove(REPO, first[:12]) == [first[:12]]


def test_a_tag_or_branch_revision_is_resolved_and_pinned_under_its_own_name(
    hub: Hub, settings: Settings, home: Path, bert_dir: Path, tmp_path: Path
) -> None:
    tagged = _second_commit(hub, bert_dir, tmp_path, branch="v1.0")
    info = ModelStore(settings).resolve(f"{REPO}@v1.0", task="ner")
    assert info.version == tagged[:12]
    assert _lock(home)[f"{REPO}@v1.0"]["commit"] == tagged
    with pytest.raises(UnknownModelError, match="no revision 'v9'"):
        ModelStore(settings).resolve(f"{REPO}@v9", task="ner")
    with pytest.raises(UnknownModelError, match="no model repository 'nobody/nothing'"):
        ModelStore(settings).resolve("nobody/nothing", task="ner")


def test_a_changed_file_of_a_hub_model_names_the_pull_that_repairs_it(hub: Hub, settings: Settings) -> None:
    info = ModelStore(settings).resolve(REPO, task="ner")
    (info.path / "config.json").chmod(0o644)
    (info.path / "config.json").write_text("{}")
    with pytest.raises(ChecksumError, match=f"modeldeck models pull {REPO} --force"):
        ModelStore(settings).resolve(REPO, task="ner")
    assert ModelStore(settings).pull(REPO, progress=False, force=True).version == hub.refs[REPO]["main"][:12]
    assert ModelStore(settings).resolve(REPO, task="ner").path == info.path


def test_offline_fails_at_once_naming_the_setting(hub: Hub, home: Path) -> None:
    offline = Settings(home=home, hf_endpoint=hub.url, offline=True)
    with pytest.raises(OfflineError, match="MODELDECK_OFFLINE") as caught:
        modeldeck.load("ner", model=REPO, settings=offline)
    assert f"modeldeck models pull {REPO}" in str(caught.value)
    assert hub.requests == []


@pytest.fixture
def dead_end() -> Iterator[tuple[str, list[int]]]:
    """A port on 127.0.0.1 that accepts connections and closes them unanswered, counting them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        listener.close()


def test_without_a_network_one_quick_attempt_and_an_error_naming_modeldeck_offline(
    home: Path, dead_end: tuple[str, list[int]]
) -> None:
    url, accepted = dead_end
    started = time.perf_counter()
    with pytest.raises(DownloadError, match="MODELDECK_OFFLINE=1") as caught:
        modeldeck.load("ner", model=REPO, settings=Settings(home=home, hf_endpoint=url))
    assert time.perf_counter() - started < 5  # not five retries with back-off
    assert len(accepted) == 1 and f"could not reach {url}" in str(caught.value)


def test_a_catalog_hub_model_without_a_network_also_makes_one_quick_attempt(
    home: Path, dead_end: tuple[str, list[int]]
) -> None:
    # A pinned catalog entry (a commit, so nothing to resolve) used to go straight to
    # snapshot_download, which retried the dead network 5 times over 24 s.
    url, accepted = dead_end
    started = time.perf_counter()
    with pytest.raises(DownloadError, match="MODELDECK_OFFLINE=1"):
        ModelStore(Settings(home=home, hf_endpoint=url)).resolve("distilbert-sst2")
    assert time.perf_counter() - started < 5
    assert len(accepted) == 1
