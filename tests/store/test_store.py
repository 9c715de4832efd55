"""Catalog, pip models, Hugging Face pulls, imports, verify and remove, without a network."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modeldeck.config import Settings
from modeldeck.errors import (
    ConfigError,
    ModelNotInstalledError,
    OfflineError,
    UnknownModelError,
    UnknownNameError,
)
from modeldeck.store import HFSource, ModelStore

from .conftest import write_catalog

SHA = "0123456789abcdef0123456789abcdef01234567"


# -- pip models --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "name", "marker", "first_task"),
    [
        ("ner", "en_core_web_sm", "config.cfg", "ner"),
        ("parse", "en_core_web_sm", "config.cfg", "parse"),
        ("embed", "all-MiniLM-L6-v2", "modules.json", "embed"),
    ],
)
def test_default_task_models_resolve_to_pip_packages(
    settings: Settings, ref: str, name: str, marker: str, first_task: str
) -> None:
    info = ModelStore(settings).resolve(ref)
    assert info.name == name
    assert (info.path / marker).is_file()
    assert info.task == first_task
    assert info.source == "pip"


def test_pip_versions_and_card(settings: Settings) -> None:
    store = ModelStore(settings)
    spacy_model = store.resolve("en_core_web_sm")
    assert spacy_model.version == "3.8.0" and (spacy_model.path / "meta.json").is_file()
    minilm = store.resolve("all-MiniLM-L6-v2")
    assert minilm.version == "0.1.0"
    assert minilm.card["dimensions"] == 384
    assert store.resolve("en_core_web_sm@3.8.0").path == spacy_model.path
    with pytest.raises(ModelNotInstalledError, match=r"3\.8\.0"):
        store.resolve("en_core_web_sm@9.9.9")


def test_pip_models_verify_against_record(settings: Settings) -> None:
    report = ModelStore(settings).verify("en_core_web_sm")
    assert report.ok and report.checked > 10 and report.version == "3.8.0"


def test_missing_pip_package_names_the_install_command(home: Path, settings: Settings) -> None:
    source = {"kind": "pip", "modules": ["no_such_model_pkg_xyz"], "marker": "model/x", "pip_name": "no-such-model"}
    write_catalog(home, [{"name": "ghost", "tasks": ["embed"], "runtime": "onnxruntime", "source": source}])
    store = ModelStore(settings)
    with pytest.raises(ModelNotInstalledError, match="pip install no-such-model") as err:
        store.resolve("ghost")
    assert "no_such_model_pkg_xyz" in str(err.value)
    with pytest.raises(ModelNotInstalledError, match="pip install no-such-model"):
        store.pull("ghost")
    assert [s.installed for s in store.list_models() if s.name == "ghost"] == [()]


def test_task_the_model_does_not_serve(settings: Settings) -> None:
    with pytest.raises(UnknownModelError, match="does not serve task 'embed'") as err:
        ModelStore(settings).resolve("en_core_web_sm", task="embed")
    assert "ner, parse" in str(err.value) and "all-MiniLM-L6-v2" in str(err.value)


def test_list_models_shows_builtins_and_defaults(settings: Settings) -> None:
    rows = {s.name: s for s in ModelStore(settings).list_models()}
    assert rows["en_core_web_sm"].default_for == ("ner", "parse")
    assert rows["en_core_web_sm"].installed == ("3.8.0",)
    assert rows["all-MiniLM-L6-v2"].source == "pip"
    assert rows["all-MiniLM-L6-v2"].license == "Apache-2.0"


# -- paths -------------------------------------------------------------------------------


def test_resolve_paths_infers_layout(tmp_path: Path, settings: Settings) -> None:
    store = ModelStore(settings)
    spacy_dir = store.resolve("ner").path
    assert store.resolve(str(spacy_dir)).runtime == "spacy"
    hf = tmp_path / "bert-ner"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"architectures": ["BertForTokenClassification"]}))
    info = store.resolve(str(hf))
    assert (info.runtime, info.tasks, info.path) == ("transformers", ("ner",), hf)
    assert len(info.version) == 12
    plain = tmp_path / "encoder"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(UnknownModelError, match="task"):
        store.resolve(str(plain))
    assert store.resolve(str(plain), task="embed").tasks == ("embed",)


def test_unknown_model_lists_known_names(settings: Settings) -> None:
    with pytest.raises(UnknownModelError) as err:
        ModelStore(settings).resolve("no-such-model")
    message = str(err.value)
    assert "'no-such-model'" in message
    assert "en_core_web_sm" in message and "all-MiniLM-L6-v2" in message and "embed" in message


@pytest.mark.parametrize(
    ("ref", "suggested"),
    [
        ("nerr", "'ner'"),
        ("all-minilm-l6-v2", "'all-MiniLM-L6-v2'"),
        ("face-detct", "'face-detect'"),
        ("chatt", "'chat'"),
    ],
)
def test_a_mistyped_model_or_task_gets_a_suggestion_and_every_task_is_listed(
    settings: Settings, ref: str, suggested: str
) -> None:
    with pytest.raises(UnknownModelError, match=f"did you mean {suggested}") as err:
        ModelStore(settings).resolve(ref)
    tasks = err.value.hint.split("tasks: ")[1].split(";")[0].split(", ")  # type: ignore[union-attr]
    assert {"chat", "classify", "qa", "translate", "detect", "segment", "face-verify", "ner"} <= set(tasks)


# -- user catalog ------------------------------------------------------------------------


def test_catalog_unknown_key_lists_valid_keys(home: Path, settings: Settings) -> None:
    entry = {"name": "x", "tasks": ["ner"], "runtime": "spacy", "source": {"kind": "local", "path": "/x"}, "colour": 1}
    write_catalog(home, [entry])
    with pytest.raises(ConfigError, match="'colour'") as err:
        ModelStore(settings)
    assert "valid keys: name, tasks, runtime, source, license, card, default_for, version" in str(err.value)


def test_catalog_unknown_source_key_and_kind(home: Path, settings: Settings) -> None:
    base = {"name": "x", "tasks": ["ner"], "runtime": "spacy"}
    write_catalog(home, [{**base, "source": {"kind": "local", "path": "/x", "mirror": "y"}}])
    with pytest.raises(ConfigError, match=r"'mirror'.*valid keys: kind, path"):
        ModelStore(settings)
    write_catalog(home, [{**base, "source": {"kind": "ftp", "url": "ftp://x"}}])
    with pytest.raises(UnknownNameError) as err:
        ModelStore(settings)
    assert "'ftp'" in str(err.value) and "hf, local, pip, url" in str(err.value)


def test_user_entry_overrides_builtin_default(home: Path, settings: Settings, tmp_path: Path) -> None:
    model = tmp_path / "st"
    model.mkdir()
    (model / "modules.json").write_text("[]")
    entry = {
        "name": "my-embedder",
        "tasks": ["embed"],
        "runtime": "sentence-transformers",
        "source": {"kind": "local", "path": str(model)},
        "default_for": ["embed"],
    }
    write_catalog(home, [entry])
    info = ModelStore(Settings(home=home, offline=True)).resolve("embed")  # local sources need no network
    assert info.name == "my-embedder" and (info.path / "modules.json").is_file()


# -- Hugging Face --------------------------------------------------------------------------


def test_hf_floating_revision_rejected(home: Path, settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"'main'.*not a commit sha.*pin a 40-hex commit sha"):
        HFSource("org/model", "main")
    source = {"kind": "hf", "repo_id": "org/model", "revision": "v1.0"}
    write_catalog(home, [{"name": "m", "tasks": ["ner"], "runtime": "transformers", "source": source}])
    with pytest.raises(ConfigError, match=r"'v1\.0'"):
        ModelStore(settings)


def test_hf_pull_uses_pinned_revision(home: Path, settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "fake-repo"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"architectures": ["BertForTokenClassification"]}))
    (repo / "model.safetensors").write_bytes(b"\x00" * 1000)
    calls: list[dict[str, Any]] = []

    def fake_download(**kwargs: Any) -> str:
        calls.append(kwargs)
        shutil.copytree(repo, kwargs["local_dir"], dirs_exist_ok=True)
        (Path(kwargs["local_dir"]) / ".cache" / "huggingface").mkdir(parents=True)
        return str(kwargs["local_dir"])

    source = {"kind": "hf", "repo_id": "org/bert-ner", "revision": SHA, "allow_patterns": ["*.json", "*.safetensors"]}
    write_catalog(home, [{"name": "bert-ner", "tasks": ["ner"], "runtime": "transformers", "source": source}])

    with pytest.raises(OfflineError):
        ModelStore(Settings(home=home, offline=True), hub_download=fake_download).resolve("bert-ner")
    assert calls == []

    info = ModelStore(settings, hub_download=fake_download).pull("bert-ner", progress=False)
    assert len(calls) == 1
    assert calls[0]["repo_id"] == "org/bert-ner" and calls[0]["revision"] == SHA
    assert calls[0]["allow_patterns"] == ["*.json", "*.safetensors"]
    assert info.version == SHA[:12]
    assert info.path == home / "models" / "bert-ner" / SHA[:12] / "files"
    assert (info.path / "model.safetensors").read_bytes() == b"\x00" * 1000
    assert not (info.path / ".cache").exists()
    assert ModelStore(settings, hub_download=fake_download).resolve("bert-ner").path == info.path
    assert len(calls) == 1


# -- import, verify, remove ----------------------------------------------------------------


def _spacy_like(path: Path, weights: bytes = b"weights") -> Path:
    (path / "ner").mkdir(parents=True)
    (path / "config.cfg").write_text("[nlp]\nlang = en\n")
    (path / "meta.json").write_text('{"version": "0.0.1"}')
    (path / "ner" / "model").write_bytes(weights)
    return path


def test_import_dir_is_idempotent_and_verifies(tmp_path: Path, settings: Settings) -> None:
    store = ModelStore(settings)
    src = _spacy_like(tmp_path / "pipeline")
    first = store.import_model(src, "my-ner")
    second = store.import_model(src, "my-ner")
    assert first.version == second.version and len(first.version) == 12
    assert (first.runtime, first.tasks) == ("spacy", ("ner", "parse"))
    assert (first.path / "ner" / "model").read_bytes() == b"weights"
    assert store.resolve("my-ner").path == first.path
    assert next(m for m in store.list_models() if m.name == "my-ner").installed == (first.version,)
    report = store.verify("my-ner")
    assert report.ok and report.checked == 3


def test_import_file_with_explicit_task(tmp_path: Path, settings: Settings) -> None:
    model = tmp_path / "detector.onnx"
    model.write_bytes(b"onnx-bytes")
    info = ModelStore(settings).import_model(model, "det", tasks=["detect"], runtime="onnxruntime", version="v1")
    assert info.version == "v1" and info.path.name == "detector.onnx" and info.path.read_bytes() == b"onnx-bytes"
    assert info.tasks == ("detect",)


def test_verify_reports_corrupted_blob(tmp_path: Path, home: Path, settings: Settings) -> None:
    store = ModelStore(settings)
    info = store.import_model(_spacy_like(tmp_path / "p"), "corrupt-me")
    blob = next(p for p in (home / "blobs" / "sha256").iterdir() if p.read_bytes() == b"weights")
    blob.chmod(0o644)
    blob.write_bytes(b"tampered")
    report = store.verify("corrupt-me")
    assert not report.ok
    assert any(p.startswith("corrupted: ner/model") for p in report.problems)
    (info.path / "config.cfg").unlink()
    assert any(p == "missing: config.cfg" for p in store.verify("corrupt-me").problems)


def test_remove_deletes_version_and_gcs_blobs(tmp_path: Path, home: Path, settings: Settings) -> None:
    store = ModelStore(settings)
    v1 = store.import_model(_spacy_like(tmp_path / "a", b"first"), "m")
    shared = store.import_model(_spacy_like(tmp_path / "b", b"first"), "other")  # same blobs as v1
    v2 = store.import_model(_spacy_like(tmp_path / "c", b"second"), "m")
    blobs = home / "blobs" / "sha256"
    assert len(list(blobs.iterdir())) == 4

    assert store.remove("m", v1.version) == [v1.version]
    assert not (home / "models" / "m" / v1.version).exists()
    assert len(list(blobs.iterdir())) == 4  # still used by 'other'
    assert store.resolve("m").version == v2.version

    assert store.remove("m") == [v2.version]
    assert not (home / "models" / "m").exists()
    assert len(list(blobs.iterdir())) == 3  # the 'second' weights are gone
    assert store.remove("other") == [shared.version]
    assert list(blobs.iterdir()) == []
    with pytest.raises(ModelNotInstalledError):
        store.remove("other")


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, modeldeck.store; "
        "print(sorted(m for m in ('httpx', 'huggingface_hub', 'torch', 'spacy', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_name_without_a_version_never_resolves_to_a_variant(tmp_path: Path, settings: Settings) -> None:
    # `modeldeck optimize` stores NAME@onnx and NAME@int8 after the original: newer, but not what NAME means.
    store = ModelStore(settings)
    original = store.import_model(_spacy_like(tmp_path / "p"), "mine", version="1")
    for kind, version in (("fp32", "onnx"), ("int8", "int8")):
        model = tmp_path / f"{version}.onnx"
        model.write_bytes(version.encode())
        card = {"variant": {"of": "mine@1", "kind": kind, "task": "ner"}}
        store.import_model(model, "mine", version=version, tasks=["ner"], runtime="onnxruntime", card=card)
    assert store.resolve("mine").version == original.version == "1"
    assert store.resolve("mine", task="ner").version == "1"
    assert store.resolve("mine@int8").version == "int8"  # named, a variant is served as any version
    store.remove("mine", "1")
    with pytest.raises(ModelNotInstalledError) as info:
        store.resolve("mine")
    assert "only variants" in info.value.message
    assert "mine@int8" in str(info.value.hint) and "mine@onnx" in str(info.value.hint)
