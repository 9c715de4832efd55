"""Pulls against a real local HTTP server: install, checksum, resume, retry, offline, kill."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from modeldeck.config import Settings
from modeldeck.errors import (
    ChecksumError,
    DownloadError,
    ModelNotInstalledError,
    OfflineError,
    StoreError,
)
from modeldeck.store import ModelStore
from modeldeck.store.artifacts import ArtifactStore

from .conftest import FileServer, url_entry, write_catalog


def _installed_versions(home: Path, name: str) -> list[str]:
    base = home / "models" / name
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def test_pull_installs_url_model(server: FileServer, home: Path, settings: Settings, payload: bytes) -> None:
    url, sha = server.add("/tiny.onnx", payload)
    write_catalog(home, [url_entry("tiny", url, sha)])
    store = ModelStore(settings)

    info = store.pull("tiny", progress=False)

    assert info.version == sha[:12]
    assert info.path == home / "models" / "tiny" / sha[:12] / "files" / "tiny.onnx"
    assert info.path.read_bytes() == payload
    manifest = json.loads((home / "models" / "tiny" / sha[:12] / "manifest.json").read_text())
    assert manifest["name"] == "tiny"
    assert manifest["tasks"] == ["embed"]
    assert manifest["runtime"] == "onnxruntime"
    assert manifest["license"] == "MIT"
    assert manifest["card"] == {"dimensions": 8}
    assert manifest["source"]["kind"] == "url" and manifest["source"]["sha256"] == sha
    assert manifest["files"] == {"tiny.onnx": {"sha256": sha, "size": len(payload)}}
    assert hashlib.sha256((home / "blobs" / "sha256" / sha).read_bytes()).hexdigest() == sha
    assert server.ranges() == [None]
    assert not any((home / "partial").iterdir())
    assert not any((home / "tmp").iterdir())

    resolved = store.resolve("tiny", auto_pull=False)
    assert resolved.path == info.path
    assert store.resolve(f"tiny@{sha[:12]}").path == info.path
    assert [s.installed for s in store.list_models() if s.name == "tiny"] == [(sha[:12],)]
    assert len(server.requests) == 1  # resolving an installed model does not touch the network


def test_resolve_auto_pulls(server: FileServer, home: Path, settings: Settings, payload: bytes) -> None:
    url, sha = server.add("/auto.bin", payload)
    write_catalog(home, [url_entry("auto", url, sha)])
    store = ModelStore(settings)
    with pytest.raises(ModelNotInstalledError, match="modeldeck models pull auto"):
        store.resolve("auto", auto_pull=False)
    assert store.resolve("auto").path.read_bytes() == payload


def test_checksum_mismatch_installs_nothing(server: FileServer, home: Path, settings: Settings, payload: bytes) -> None:
    url, sha = server.add("/bad.bin", payload)
    wrong = hashlib.sha256(b"something else").hexdigest()
    write_catalog(home, [url_entry("bad", url, wrong)])

    with pytest.raises(ChecksumError) as err:
        ModelStore(settings).pull("bad", progress=False)

    message = str(err.value)
    assert wrong in message and sha in message and url in message
    assert _installed_versions(home, "bad") == []
    assert not (home / "partial" / f"{wrong}.part").exists()


def test_resume_after_dropped_connection(server: FileServer, home: Path, settings: Settings, payload: bytes) -> None:
    url, sha = server.add("/drop.bin", payload)
    server.drop = "first"
    write_catalog(home, [url_entry("drop", url, sha)])

    info = ModelStore(settings).pull("drop", progress=False)

    assert server.ranges() == [None, f"bytes={len(payload) // 2}-"]
    assert info.path.read_bytes() == payload


def test_always_dropping_server_keeps_part_then_resumes(
    server: FileServer, home: Path, settings: Settings, payload: bytes
) -> None:
    url, sha = server.add("/flaky.bin", payload)
    server.drop = "always"
    write_catalog(home, [url_entry("flaky", url, sha)])

    with pytest.raises(DownloadError, match="after 3 attempts") as err:
        ModelStore(settings).pull("flaky", progress=False)
    assert "pull again to resume" in str(err.value)
    assert len(server.requests) == 3
    part = home / "partial" / f"{sha}.part"
    kept = part.stat().st_size
    assert 0 < kept < len(payload)
    assert _installed_versions(home, "flaky") == []

    server.drop = "none"
    server.requests.clear()
    info = ModelStore(settings).pull("flaky", progress=False)
    assert server.ranges() == [f"bytes={kept}-"]
    assert info.path.read_bytes() == payload
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(
    server: FileServer, home: Path, settings: Settings, payload: bytes
) -> None:
    url, sha = server.add("/norange.bin", payload)
    server.ignore_range = True
    (home / "partial").mkdir()
    (home / "partial" / f"{sha}.part").write_bytes(payload[:1000])
    write_catalog(home, [url_entry("norange", url, sha)])

    info = ModelStore(settings).pull("norange", progress=False)

    assert server.ranges() == ["bytes=1000-"]
    assert info.path.read_bytes() == payload


def test_complete_part_answered_416_is_used(server: FileServer, home: Path, settings: Settings, payload: bytes) -> None:
    url, sha = server.add("/whole.bin", payload)
    (home / "partial").mkdir()
    (home / "partial" / f"{sha}.part").write_bytes(payload)
    write_catalog(home, [url_entry("whole", url, sha)])

    info = ModelStore(settings).pull("whole", progress=False)

    assert server.ranges() == [f"bytes={len(payload)}-"]
    assert info.path.read_bytes() == payload


def test_offline_fails_before_any_request(server: FileServer, home: Path, payload: bytes) -> None:
    url, sha = server.add("/off.bin", payload)
    write_catalog(home, [url_entry("off", url, sha)])
    store = ModelStore(Settings(home=home, offline=True))

    with pytest.raises(OfflineError) as err:
        store.resolve("off")
    assert "'off'" in str(err.value) and "modeldeck models pull off" in str(err.value)
    with pytest.raises(OfflineError):
        store.pull("off", progress=False)
    assert server.requests == []


def test_progress_bar_goes_to_stderr_only_when_asked(
    server: FileServer, home: Path, settings: Settings, payload: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    url, sha = server.add("/quiet.bin", payload)
    write_catalog(home, [url_entry("quiet", url, sha)])
    ModelStore(settings).pull("quiet", progress=False)
    assert capsys.readouterr() == ("", "")
    url2, sha2 = server.add("/loud.bin", payload[::-1])
    write_catalog(home, [url_entry("quiet", url, sha), url_entry("loud", url2, sha2)])
    ModelStore(settings).pull("loud", progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "loud" in captured.err


def test_failure_before_rename_leaves_no_half_model(
    server: FileServer, home: Path, settings: Settings, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, sha = server.add("/half.bin", payload)
    write_catalog(home, [url_entry("half", url, sha)])

    def killed(self: ArtifactStore, staged: Path, target: Path) -> None:
        raise KeyboardInterrupt("killed between staging and rename")

    monkeypatch.setattr(ArtifactStore, "_commit", killed)
    store = ModelStore(settings)
    with pytest.raises(KeyboardInterrupt):
        store.pull("half", progress=False)

    assert _installed_versions(home, "half") == []
    assert [s.installed for s in store.list_models() if s.name == "half"] == [()]
    with pytest.raises(ModelNotInstalledError):
        store.resolve("half", auto_pull=False)

    monkeypatch.undo()
    assert ModelStore(settings).pull("half", progress=False).path.read_bytes() == payload


def test_killed_process_leaves_no_half_model_and_next_pull_resumes(
    server: FileServer, home: Path, settings: Settings, payload: bytes
) -> None:
    url, sha = server.add("/killed.bin", payload)
    server.drop = "stall"
    write_catalog(home, [url_entry("killed", url, sha)])
    script = (
        "from modeldeck.config import Settings; from modeldeck.store import ModelStore;"
        "ModelStore(Settings.from_env()).pull('killed', progress=False)"
    )
    env = {**os.environ, "MODELDECK_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    part = home / "partial" / f"{sha}.part"
    try:
        assert server.half_sent.wait(20)
        deadline = time.monotonic() + 10
        while (not part.exists() or part.stat().st_size < len(payload) // 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert part.stat().st_size == len(payload) // 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    assert any((home / "tmp").iterdir())  # the dead pull's staging dir is still there...
    store = ModelStore(settings)
    assert [s.installed for s in store.list_models() if s.name == "killed"] == [()]  # ...but invisible
    with pytest.raises(ModelNotInstalledError):
        store.resolve("killed", auto_pull=False)

    server.release.set()
    info = store.pull("killed", progress=False)
    assert server.ranges()[-1] == f"bytes={len(payload) // 2}-"
    assert info.path.read_bytes() == payload
    assert not any((home / "tmp").iterdir())  # the next pull cleaned it


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_unpacks_tar_gz_archive(server: FileServer, home: Path, settings: Settings) -> None:
    archive = _tar_gz({"model/config.json": b'{"architectures": ["BertForTokenClassification"]}', "model/w.bin": b"w"})
    url, sha = server.add("/model.tar.gz", archive)
    write_catalog(home, [{**url_entry("packed", url, sha, unpack=True), "tasks": ["ner"], "runtime": "transformers"}])

    info = ModelStore(settings).pull("packed", progress=False)

    assert info.path.is_dir()
    assert (info.path / "model" / "w.bin").read_bytes() == b"w"
    assert not (home / "partial" / f"{sha}.part").exists()


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_archive_with_traversal_member_is_rejected(
    server: FileServer, home: Path, settings: Settings, fmt: str
) -> None:
    members = {"ok.txt": b"ok", "../../escape.txt": b"evil"}
    if fmt == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        archive = buf.getvalue()
    else:
        archive = _tar_gz(members)
    url, sha = server.add(f"/evil.{fmt}", archive)
    write_catalog(home, [url_entry("evil", url, sha, unpack=True)])

    with pytest.raises(StoreError, match=r"'\.\./\.\./escape\.txt'.*escapes the model directory"):
        ModelStore(settings).pull("evil", progress=False)

    assert _installed_versions(home, "evil") == []
    assert not (home.parent / "escape.txt").exists() and not (home / "escape.txt").exists()
