"""``Registry``: lazy ``module:attr`` targets, errors that list valid names, and entry points."""

from __future__ import annotations

import json
import sys
import uuid
from types import SimpleNamespace

import pytest

import modeldeck._registry as registry_module
from modeldeck._registry import Registry
from modeldeck.errors import UnknownNameError


@pytest.fixture
def fresh_module(tmp_path, monkeypatch) -> str:
    """A module nobody has imported yet, on ``sys.path`` for this test only."""
    name = f"md_plugin_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("VALUE = object()\nIMPORTS = []\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace ``entry_points`` with a table keyed by group; records which groups were asked for."""
    table: dict[str, list[SimpleNamespace]] = {}
    asked: list[str] = []

    def entry_points(*, group: str) -> list[SimpleNamespace]:
        asked.append(group)
        return table.get(group, [])

    monkeypatch.setattr(registry_module, "entry_points", entry_points)
    return SimpleNamespace(table=table, asked=asked)


def test_get_imports_a_stdlib_target():
    reg: Registry[object] = Registry("codec")
    reg.register("dumps", "json:dumps")
    assert reg.get("dumps") is json.dumps


def test_register_does_not_import_until_get(fresh_module):
    reg: Registry[object] = Registry("thing")
    reg.register("plugin", f"{fresh_module}:VALUE")
    assert fresh_module not in sys.modules
    assert "plugin" in reg and reg.names() == ["plugin"]
    assert fresh_module not in sys.modules  # listing names imports nothing either
    value = reg.get("plugin")
    assert fresh_module in sys.modules
    assert value is sys.modules[fresh_module].VALUE
    assert reg.get("plugin") is value


def test_reregistering_replaces_the_loaded_object():
    reg: Registry[object] = Registry("codec")
    reg.register("x", "json:dumps")
    assert reg.get("x") is json.dumps
    reg.register("x", "json:loads")
    assert reg.get("x") is json.loads


def test_unknown_name_lists_the_valid_names():
    reg: Registry[object] = Registry("codec")
    reg.register("loads", "json:loads")
    reg.register("dumps", "json:dumps")
    with pytest.raises(UnknownNameError) as info:
        reg.get("dump")
    err = info.value
    assert err.code == "MD201"
    assert err.kind == "codec" and err.name == "dump"
    assert err.valid == ["dumps", "loads"]
    assert "valid codecs: dumps, loads" in str(err)


def test_unknown_name_in_an_empty_registry():
    with pytest.raises(UnknownNameError, match="none registered"):
        Registry("codec").get("anything")


@pytest.mark.parametrize("target", ["json.dumps", "json", ""])
def test_a_target_without_a_colon_is_rejected(target):
    reg: Registry[object] = Registry("codec")
    with pytest.raises(ValueError, match="module:attribute"):
        reg.register("bad", target)
    assert "bad" not in reg


def test_iteration_and_contains():
    reg: Registry[object] = Registry("codec")
    reg.register("b", "json:dumps")
    reg.register("a", "json:loads")
    assert list(reg) == ["a", "b"]
    assert "a" in reg and "c" not in reg and 3 not in reg


def test_entry_points_are_picked_up_lazily(fake_entry_points, fresh_module):
    fake_entry_points.table["modeldeck.things"] = [SimpleNamespace(name="plug", value=f"{fresh_module}:VALUE")]
    reg: Registry[object] = Registry("thing", entry_point_group="modeldeck.things")
    assert fake_entry_points.asked == []  # nothing scanned at construction
    assert reg.names() == ["plug"]
    assert fake_entry_points.asked == ["modeldeck.things"]
    assert fresh_module not in sys.modules
    assert reg.get("plug") is sys.modules[fresh_module].VALUE
    reg.names()
    assert fake_entry_points.asked == ["modeldeck.things"]  # scanned once


def test_get_finds_entry_points_without_listing_first(fake_entry_points):
    fake_entry_points.table["g"] = [SimpleNamespace(name="dumps", value="json:dumps")]
    assert Registry("codec", entry_point_group="g").get("dumps") is json.dumps


def test_entry_points_do_not_override_explicit_registrations(fake_entry_points):
    fake_entry_points.table["g"] = [
        SimpleNamespace(name="codec", value="json:loads"),
        SimpleNamespace(name="extra", value="json:loads"),
    ]
    reg: Registry[object] = Registry("codec", entry_point_group="g")
    reg.register("codec", "json:dumps")
    assert reg.get("codec") is json.dumps
    assert reg.names() == ["codec", "extra"]


def test_explicit_registration_after_the_scan_still_wins(fake_entry_points):
    fake_entry_points.table["g"] = [SimpleNamespace(name="codec", value="json:loads")]
    reg: Registry[object] = Registry("codec", entry_point_group="g")
    assert reg.get("codec") is json.loads
    reg.register("codec", "json:dumps")
    assert reg.get("codec") is json.dumps


def test_entry_point_names_appear_in_unknown_name_errors(fake_entry_points):
    fake_entry_points.table["g"] = [SimpleNamespace(name="from-plugin", value="json:dumps")]
    reg: Registry[object] = Registry("codec", entry_point_group="g")
    reg.register("builtin", "json:loads")
    with pytest.raises(UnknownNameError) as info:
        reg.get("nope")
    assert info.value.valid == ["builtin", "from-plugin"]


def test_a_registry_without_a_group_never_scans(fake_entry_points):
    reg: Registry[object] = Registry("codec")
    reg.register("a", "json:dumps")
    assert reg.names() == ["a"]
    assert fake_entry_points.asked == []


def test_the_real_task_registry():
    from modeldeck.tasks import TASKS

    assert {"ner", "parse", "embed"} <= set(TASKS.names())
    assert TASKS.kind == "task"
    with pytest.raises(UnknownNameError) as info:
        TASKS.get("summarize")
    assert {"ner", "parse", "embed"} <= set(info.value.valid)


def test_an_unknown_name_suggests_the_closest_one() -> None:
    from modeldeck.tasks import TASKS

    with pytest.raises(UnknownNameError, match=r"unknown task 'transalte' \(did you mean 'translate'\?\)"):
        TASKS.get("transalte")
    with pytest.raises(UnknownNameError) as caught:
        TASKS.get("zzzz")
    assert "did you mean" not in str(caught.value) and "translate" in str(caught.value)
