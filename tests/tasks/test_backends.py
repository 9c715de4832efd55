"""The task x runtime plug point: every pair is looked up in BACKENDS, and other distributions add pairs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

from modeldeck.errors import UnknownNameError
from modeldeck.runtimes import RUNTIMES
from modeldeck.tasks import BACKENDS, TASKS
from modeldeck.tasks._backend import BackendBase, BackendRegistry
from modeldeck.types import ModelInfo


def test_every_registered_pair_names_a_task_and_a_runtime_and_imports_a_backend():
    pairs = BACKENDS.pairs()
    assert ("ner", "spacy") in pairs and ("detect", "torchvision") in pairs and ("face-embed", "torch") in pairs
    for task, runtime in pairs:
        assert task in TASKS, task
        assert runtime in RUNTIMES, (task, runtime)
        cls = BACKENDS.get(task, runtime)
        assert callable(getattr(cls, "load", None)) and hasattr(cls, "option_defaults"), cls
        assert "close" in dir(cls), cls


def test_an_unknown_pair_lists_what_the_task_runs_on():
    with pytest.raises(UnknownNameError) as err:
        BACKENDS.get("ner", "tensorflow-nope")
    assert "spacy, transformers" in str(err.value) and "ner runtime" in str(err.value)


def test_a_model_on_a_runtime_without_backend_is_refused_before_loading(tmp_path):
    from modeldeck.tasks.parse import ParseTask

    info = ModelInfo("m", "1", ("parse",), "transformers", tmp_path)
    with pytest.raises(UnknownNameError, match="the parse task does not support") as err:
        ParseTask.from_model(info)
    assert "valid parse runtimes: spacy" in str(err.value)


def test_registry_targets_load_lazily_and_reregistering_replaces(tmp_path, monkeypatch):
    reg = BackendRegistry(entry_point_group=None)
    reg.register("ner", "custom", "json:JSONDecoder")
    assert reg.runtimes("ner") == ["custom"] and reg.runtimes("parse") == []
    assert reg.get("ner", "custom") is json.JSONDecoder
    reg.register("ner", "custom", "json:JSONEncoder")
    assert reg.get("ner", "custom") is json.JSONEncoder
    with pytest.raises(ValueError, match="module:Class"):
        reg.register("ner", "x", "json.JSONEncoder")


# A third-party distribution: a regex "NER" backend and its runtime, registered only through entry points.
_PLUGIN = '''
"""A rule-based entity finder, shipped as a modeldeck plug-in."""
import json
import re
from pathlib import Path

from modeldeck.tasks._backend import BackendBase


class RulesRuntime:
    name = "mdext-rules"
    device = "cpu"

    def __init__(self, rules):
        self.rules = [(label, re.compile(pattern)) for label, pattern in rules.items()]

    def memory_bytes(self):
        return None


class RulesNER(BackendBase):
    @classmethod
    def load(cls, info, *, device):
        return cls(RulesRuntime(json.loads((Path(info.path) / "rules.json").read_text())))

    @property
    def labels(self):
        return tuple(sorted(label for label, _ in self.runtime.rules))

    def encode(self, text):
        return text

    def forward(self, batch, batch_size):
        return [
            [(label, m.start(), m.end(), 1.0) for label, rx in self.runtime.rules for m in rx.finditer(text)]
            for text in batch
        ]

    def decode(self, raw, encoded):
        return sorted(raw, key=lambda span: span[1])
'''

_SCRIPT = """
import json, sys
import modeldeck
ner = modeldeck.load("ner", model=sys.argv[1])
result = ner("Order AB-1234 shipped to 221B Baker Street on 2024-05-01.")
print(json.dumps({"entities": result.to_dict()["entities"], "backend": type(ner.backend).__name__,
                  "runtime": ner.describe()["runtime"]["name"], "labels": list(ner.labels)}))
"""


def _install_plugin(site: Path) -> None:
    (site / "mdext").mkdir(parents=True)
    (site / "mdext" / "__init__.py").write_text(textwrap.dedent(_PLUGIN), encoding="utf-8")
    dist = site / "mdext-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mdext\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[modeldeck.runtimes]\nmdext-rules = mdext:RulesRuntime\n\n"
        "[modeldeck.backends]\nner/mdext-rules = mdext:RulesNER\n",
        encoding="utf-8",
    )


def test_a_backend_from_another_distribution_serves_modeldeck_load(tmp_path):
    site = tmp_path / "site"
    _install_plugin(site)
    model = tmp_path / "order-rules"
    model.mkdir()
    (model / "rules.json").write_text(json.dumps({"ORDER": r"[A-Z]{2}-\d{4}", "DATE": r"\d{4}-\d{2}-\d{2}"}))
    (model / "modeldeck.json").write_text(json.dumps({"runtime": "mdext-rules", "tasks": ["ner"]}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "MODELDECK_HOME": str(tmp_path / "h")}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(model)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "RulesNER" and out["runtime"] == "mdext-rules" and out["labels"] == ["DATE", "ORDER"]
    spans = [(e["text"], e["label"], e["start"], e["end"]) for e in out["entities"]]
    assert spans == [("AB-1234", "ORDER", 6, 13), ("2024-05-01", "DATE", 46, 56)]


class _Recorder(BackendBase):
    """A backend that records being closed."""

    closed: ClassVar[list[object]] = []
    labels = ("X",)

    @classmethod
    def load(cls, info, *, device):
        return cls(SimpleNamespace(name="recorder", device=device, memory_bytes=lambda: None))

    def close(self) -> None:
        _Recorder.closed.append(self)


def test_a_loaded_backend_is_closed_when_the_task_refuses_its_options(monkeypatch, tmp_path):
    from modeldeck.errors import OptionError
    from modeldeck.tasks.ner import NERTask

    monkeypatch.setitem(BACKENDS._targets, ("ner", "recorder"), f"{__name__}:_Recorder")
    monkeypatch.setitem(RUNTIMES._targets, "recorder", f"{__name__}:_Recorder")
    info = ModelInfo("m", "1", ("ner",), "recorder", tmp_path)
    with pytest.raises(OptionError, match="colour"):
        NERTask.from_model(info, colour="red")
    assert len(_Recorder.closed) == 1
    task = NERTask.from_model(info)
    assert task.backend is not _Recorder.closed[0] and len(_Recorder.closed) == 1
