"""`import modeldeck` and `modeldeck --help` load no framework (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "spacy",
    "fastapi",
    "starlette",
    "uvicorn",
    "pyspark",
    "pydantic",
    "numpy",
    "httpx",
    "rich",
    "prometheus_client",
    "keras",
    "tensorflow",
    "jax",
    "onnxruntime",
)


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_import_modeldeck_loads_no_framework():
    loaded = _loaded_after("import modeldeck; modeldeck.load; modeldeck.Settings")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_cli_help_loads_no_framework():
    loaded = _loaded_after(
        "from modeldeck.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("module", ["modeldeck.errors", "modeldeck.config", "modeldeck.batching", "modeldeck.store"])
def test_light_modules_stay_light(module):
    loaded = _loaded_after(f"import {module}")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_lazy_attributes_resolve():
    import modeldeck

    assert callable(modeldeck.similarity)
    assert modeldeck.ModelStore.__name__ == "ModelStore"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        modeldeck.nope  # noqa: B018
