"""ONNX Runtime session options: set by ``OnnxSessionOptions``, read back from the session, refused when bad."""

from __future__ import annotations

from pathlib import Path

import pytest

import modeldeck
from modeldeck.config import Settings
from modeldeck.errors import OptionError
from modeldeck.runtimes.onnx import OnnxRuntime, default_threads
from modeldeck.types import OnnxSessionOptions

from ..tensor.builders import onnx_affine


@pytest.fixture(scope="module")
def affine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_affine(tmp_path_factory.mktemp("affine") / "affine.onnx")


def test_the_session_runs_with_the_options_it_was_given(affine: Path) -> None:
    runtime = OnnxRuntime.load(affine, session=OnnxSessionOptions(threads=1, graph_level="basic"))
    assert runtime.session_options() == {"intra_op_threads": 1, "inter_op_threads": 1, "graph_level": "basic"}
    default = OnnxRuntime.load(affine)
    assert default.session_options() == {
        "intra_op_threads": default_threads(),
        "inter_op_threads": 1,
        "graph_level": "all",
    }
    disabled = OnnxRuntime.load(affine, session=OnnxSessionOptions(graph_level="disable"))
    assert disabled.session_options()["graph_level"] == "disable"


def test_load_takes_the_settings_entry_of_the_name_it_was_given(affine: Path, tmp_path: Path) -> None:
    settings = Settings.from_env(
        {}, home=tmp_path / "home", onnx_threads="2,tensor=1", onnx_graph_level="tensor=extended"
    )
    task = modeldeck.load("tensor", model=str(affine), settings=settings)
    assert task.describe()["runtime"]["session"] == {
        "intra_op_threads": 1,
        "inter_op_threads": 1,
        "graph_level": "extended",
    }
    explicit = OnnxSessionOptions(threads=2, graph_level="basic")  # given in code, it wins over the settings
    task = modeldeck.load("tensor", model=str(affine), settings=settings, onnx_session=explicit)
    assert task.describe()["runtime"]["session"]["intra_op_threads"] == 2
    assert task.describe()["runtime"]["session"]["graph_level"] == "basic"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"threads": 0}, "threads must be an integer >= 1, got 0"),
        ({"threads": True}, "threads must be an integer >= 1, got True"),
        ({"threads": 2.0}, "threads must be an integer >= 1, got 2.0"),
        ({"graph_level": "fast"}, "graph level must be one of disable, basic, extended, all, got 'fast'"),
    ],
)
def test_bad_session_options_are_refused_with_the_valid_values(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(OptionError) as info:
        OnnxSessionOptions(**kwargs)  # type: ignore[arg-type]
    assert expected in info.value.message and info.value.hint
