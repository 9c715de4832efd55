"""The Python examples of docs/vision.md's classify-image section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "vision.md"


def section_blocks() -> list[str]:
    text = DOC.read_text()
    section = text[text.index("## Image classification (`classify-image`)") :]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.mark.slow
def test_torchvision_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    namespace: dict[str, object] = {}
    exec(compile(section_blocks()[0], str(DOC), "exec"), namespace)
    assert (tmp_path / "my-resnet18" / "modeldeck.json").is_file()
    assert (tmp_path / "chelsea.png").is_file()
    result = namespace["r"]
    assert len(result.labels) == 3  # type: ignore[attr-defined]


@pytest.mark.slow
def test_keras_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELDECK_HOME", str(tmp_path / "home"))
    from modeldeck.runtimes.keras import import_keras

    import_keras()  # on modeldeck's backend unless Keras is already imported; the example's import keeps it
    block = section_blocks()[1]
    namespace: dict[str, object] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    clf = namespace["clf"]
    assert (clf.preprocessing.channel_order, clf.preprocessing.mean) == ("BGR", (103.939, 116.779, 123.68))  # type: ignore[attr-defined]
