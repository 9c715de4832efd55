"""The runtime registry, the Protocol, lazy framework imports and component selection."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from modeldeck.errors import ConfigError, DependencyError, UnknownNameError
from modeldeck.runtimes import RUNTIMES, Runtime, import_framework
from modeldeck.runtimes.spacy import components_to_keep


def test_registry_names() -> None:
    assert {"spacy", "sentence-transformers", "transformers"} <= set(RUNTIMES.names())
    with pytest.raises(UnknownNameError, match="valid runtimes"):
        RUNTIMES.get("tensorflow-lite")


def test_registered_classes_follow_the_protocol() -> None:
    for name in ("spacy", "sentence-transformers", "transformers"):
        cls = RUNTIMES.get(name)
        assert cls.name == name
        assert callable(cls.memory_bytes) and callable(cls.load)


def test_missing_framework_names_the_install_command() -> None:
    with pytest.raises(DependencyError) as info:
        import_framework("surely_not_installed_fw", package="surely-not-installed-fw", extra="torch")
    assert 'pip install "modeldeck[torch]"' in str(info.value)


def test_importing_tasks_loads_no_framework() -> None:
    code = textwrap.dedent(
        """
        import sys
        import modeldeck.tasks.ner, modeldeck.tasks.parse, modeldeck.tasks.embed
        import modeldeck._similarity, modeldeck.runtimes, modeldeck.runtimes.base
        import modeldeck.runtimes.spacy, modeldeck.runtimes.transformers
        import modeldeck.runtimes.sentence_transformers
        heavy = {"torch", "transformers", "sentence_transformers", "spacy", "thinc"}
        print(sorted(heavy & set(sys.modules)))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_components_to_keep_follows_listeners() -> None:
    pipeline = ["tok2vec", "tagger", "parser", "ner", "lemmatizer"]
    components = {
        "tok2vec": {"factory": "tok2vec"},
        "tagger": {"factory": "tagger", "model": {"tok2vec": {"upstream": "tok2vec"}}},
        "parser": {"factory": "parser", "model": {"tok2vec": {"upstream": "*"}}},
        "ner": {"factory": "ner", "model": {"tok2vec": {"width": 96}}},
        "lemmatizer": {"factory": "lemmatizer"},
    }
    assert components_to_keep(pipeline, components, {"ner"}) == ["ner"]
    assert components_to_keep(pipeline, components, {"tagger"}) == ["tok2vec", "tagger"]
    assert components_to_keep(pipeline, components, {"parser"}) == ["tok2vec", "parser"]


def test_spacy_runtime(spacy_info) -> None:
    from modeldeck.runtimes.spacy import SpacyRuntime

    runtime = SpacyRuntime.load(spacy_info.path, factories={"ner"})
    assert isinstance(runtime, Runtime)
    assert runtime.pipe_names == ["ner"] and runtime.device == "cpu" and runtime.memory_bytes() is None
    assert [d.text for d in runtime.pipe(["a b", "c"], batch_size=2)] == ["a b", "c"]
    with pytest.raises(ConfigError, match="cpu"):
        SpacyRuntime.load(spacy_info.path, device="cuda")


def test_spacy_runtime_without_the_component(spacy_info) -> None:
    from modeldeck.errors import NotFoundError
    from modeldeck.runtimes.spacy import SpacyRuntime

    with pytest.raises(NotFoundError, match="textcat"):
        SpacyRuntime.load(spacy_info.path, factories={"textcat"})


def test_sentence_transformers_runtime(embedder) -> None:
    runtime = embedder.runtime
    assert isinstance(runtime, Runtime)
    assert runtime.name == "sentence-transformers" and runtime.device == "cpu"
    assert runtime.max_content_tokens == 254 and runtime.dim == 384
    assert runtime.memory_bytes() > 10_000_000


def test_transformers_runtime_rejects_bad_device_and_missing_path(tmp_path) -> None:
    pytest.importorskip("torch")
    from modeldeck.errors import UnknownModelError
    from modeldeck.runtimes.transformers import TransformersRuntime, resolve_device

    with pytest.raises(ConfigError, match="device"):
        resolve_device("not-a-device")
    with pytest.raises(UnknownModelError):
        TransformersRuntime.load(tmp_path / "missing")
    with pytest.raises(UnknownNameError, match="head"):
        TransformersRuntime.load(tmp_path, head="pizza")


def test_a_cuda_device_this_machine_lacks_is_a_clear_config_error() -> None:
    torch = pytest.importorskip("torch")
    import modeldeck
    from modeldeck.errors import ConfigError
    from modeldeck.runtimes.transformers import resolve_device

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ConfigError, match=f"cuda:{count}") as caught:
        resolve_device(f"cuda:{count}")  # one past the last device, whatever the machine has
    assert caught.value.code == "MD010"
    if count == 0:
        with pytest.raises(ConfigError, match="no usable CUDA device") as caught:
            modeldeck.load("embed", device="cuda")
        assert "device='cpu'" in str(caught.value)
