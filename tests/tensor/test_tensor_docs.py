"""The Python example of docs/models.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


@pytest.mark.slow
def test_models_doc_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)[0]
    namespace: dict[str, object] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    assert (tmp_path / "churn.keras").is_file()
    assert namespace["churn"].signature()["inputs"] == [  # type: ignore[attr-defined]
        {"name": "features", "dtype": "float32", "shape": [None, 4]}
    ]
