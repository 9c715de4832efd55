"""``Settings.from_env``: defaults, every MODELDECK_* variable, and errors that name the variable and value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from modeldeck.config import Settings
from modeldeck.errors import ConfigError


def test_defaults_from_an_empty_environment():
    settings = Settings.from_env({})
    assert settings.home == Path.home() / ".cache" / "modeldeck"
    assert settings.offline is False
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.models == ("ner", "parse", "embed", "face-detect", "face-verify")
    assert settings.max_batch_size == 32
    assert settings.max_wait_ms == 10.0
    assert settings.max_queue == 1024
    assert settings.request_timeout_s == 30.0
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert settings.max_text_chars == 1_000_000
    assert settings.max_image_pixels == 50_000_000
    assert settings.gallery == ""
    assert settings.documents == settings.documents_qa == ""


def test_unrelated_variables_are_ignored():
    assert Settings.from_env({"PORT": "1", "MODELDECK": "x", "modeldeck_port": "2"}) == Settings.from_env({})


def test_every_variable_is_parsed():
    settings = Settings.from_env(
        {
            "MODELDECK_HOME": "/srv/models",
            "MODELDECK_OFFLINE": "1",
            "MODELDECK_HOST": "0.0.0.0",
            "MODELDECK_PORT": " 9001 ",
            "MODELDECK_MODELS": "ner, embed ,  mine@2 ",
            "MODELDECK_MAX_BATCH_SIZE": "8",
            "MODELDECK_MAX_WAIT_MS": "2.5",
            "MODELDECK_MAX_QUEUE": "16",
            "MODELDECK_REQUEST_TIMEOUT_S": "0.5",
            "MODELDECK_MAX_BODY_BYTES": "2048",
            "MODELDECK_MAX_TEXT_CHARS": "100",
            "MODELDECK_MAX_IMAGE_PIXELS": "4096",
            "MODELDECK_GALLERY": "/srv/team.db",
            "MODELDECK_DOCUMENTS": "/srv/handbook",
            "MODELDECK_DOCUMENTS_QA": "./bert-squad",
        }
    )
    assert settings.home == Path("/srv/models")
    assert settings.offline is True
    assert settings.host == "0.0.0.0"
    assert settings.port == 9001
    assert settings.models == ("ner", "embed", "mine@2")
    assert settings.max_batch_size == 8
    assert settings.max_wait_ms == 2.5
    assert isinstance(settings.max_wait_ms, float)
    assert settings.max_queue == 16
    assert settings.request_timeout_s == 0.5
    assert settings.max_body_bytes == 2048
    assert settings.max_text_chars == 100
    assert settings.max_image_pixels == 4096
    assert settings.gallery == "/srv/team.db"
    assert (settings.documents, settings.documents_qa) == ("/srv/handbook", "./bert-squad")


def test_home_expands_the_user_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.from_env({"MODELDECK_HOME": "~/decks"})
    assert settings.home == tmp_path / "decks"
    assert "~" not in str(settings.home)


def test_blank_home_falls_back_to_the_default():
    assert Settings.from_env({"MODELDECK_HOME": "  "}).home == Settings.from_env({}).home


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("OFF", False),
        ("", False),
    ],
)
def test_offline_booleans(raw, expected):
    assert Settings.from_env({"MODELDECK_OFFLINE": raw}).offline is expected


def test_models_list_drops_empty_items():
    assert Settings.from_env({"MODELDECK_MODELS": ",ner,,parse,"}).models == ("ner", "parse")


@pytest.mark.parametrize(
    ("var", "raw", "expected"),
    [
        ("MODELDECK_PORT", "eighty", "must be an integer"),
        ("MODELDECK_PORT", "80.5", "must be an integer"),
        ("MODELDECK_PORT", "70000", "between 0 and 65535"),
        ("MODELDECK_PORT", "-1", "between 0 and 65535"),
        ("MODELDECK_OFFLINE", "maybe", "must be a boolean"),
        ("MODELDECK_MODELS", "", "at least one model"),
        ("MODELDECK_MODELS", " , ,", "at least one model"),
        ("MODELDECK_MAX_BATCH_SIZE", "0", ">= 1"),
        ("MODELDECK_MAX_WAIT_MS", "soon", "must be a number"),
        ("MODELDECK_MAX_WAIT_MS", "-1", "between 0 and 60000"),
        ("MODELDECK_MAX_WAIT_MS", "60001", "between 0 and 60000"),
        ("MODELDECK_MAX_QUEUE", "0", ">= 1"),
        ("MODELDECK_REQUEST_TIMEOUT_S", "0", ">= 0.001"),
        ("MODELDECK_MAX_BODY_BYTES", "1023", ">= 1024"),
        ("MODELDECK_MAX_TEXT_CHARS", "0", ">= 1"),
        ("MODELDECK_MAX_IMAGE_PIXELS", "63", ">= 64"),
    ],
)
def test_bad_values_name_the_variable_and_the_value(var, raw, expected):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: raw})
    err = info.value
    assert err.code == "MD010"
    assert var in err.message
    assert repr(raw) in err.message
    assert expected in err.message
    assert str(err).startswith("[MD010] ")


def test_bad_boolean_hint_lists_the_accepted_spellings():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MODELDECK_OFFLINE": "maybe"})
    assert info.value.hint is not None
    assert "yes/no" in info.value.hint and "on/off" in info.value.hint


def test_overrides_win_over_the_environment(tmp_path):
    settings = Settings.from_env({"MODELDECK_PORT": "9000", "MODELDECK_OFFLINE": "yes"}, port=9100, home=tmp_path)
    assert settings.port == 9100
    assert settings.home == tmp_path
    assert settings.offline is True  # not overridden, so the environment still counts


def test_none_overrides_are_ignored():
    assert Settings.from_env({"MODELDECK_PORT": "9000"}, port=None).port == 9000


def test_string_home_override_becomes_a_path(tmp_path):
    settings = Settings.from_env({}, home=str(tmp_path))
    assert isinstance(settings.home, Path)
    assert settings.home == tmp_path


@pytest.mark.parametrize(
    ("override", "value", "var"),
    [
        ("max_batch_size", 0, "MODELDECK_MAX_BATCH_SIZE"),
        ("port", 70000, "MODELDECK_PORT"),
        ("max_wait_ms", -0.5, "MODELDECK_MAX_WAIT_MS"),
        ("max_queue", 0, "MODELDECK_MAX_QUEUE"),
        ("offline", "maybe", "MODELDECK_OFFLINE"),
    ],
)
def test_overrides_get_the_same_validation(override, value, var):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({}, **{override: value})
    assert var in info.value.message
    assert override in info.value.message
    assert str(value) in info.value.message


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="MODELDECK_MAX_BATCH_SIZE"):
        Settings(max_batch_size=0)
    with pytest.raises(ConfigError, match="at least one model"):
        Settings(models=())


def test_queue_smaller_than_a_batch_is_rejected():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MODELDECK_MAX_QUEUE": "4", "MODELDECK_MAX_BATCH_SIZE": "8"})
    message = info.value.message
    assert "MODELDECK_MAX_QUEUE (4)" in message
    assert "MODELDECK_MAX_BATCH_SIZE (8)" in message
    # Equal sizes are the boundary that is still allowed.
    assert Settings.from_env({}, max_queue=8, max_batch_size=8).max_queue == 8


def test_unknown_override_lists_the_valid_settings():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({}, max_batchsize=4, colour="red")
    err = info.value
    assert "colour" in err.message and "max_batchsize" in err.message
    assert err.hint is not None
    for f in dataclasses.fields(Settings):
        assert f.name in err.hint


def test_settings_are_frozen():
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(("ms", "seconds"), [(10.0, 0.01), (0.0, 0.0), (2500.0, 2.5)])
def test_max_wait_s(ms, seconds):
    assert Settings.from_env({}, max_wait_ms=ms).max_wait_s == pytest.approx(seconds)


@pytest.mark.parametrize("var", ["MODELDECK_MAX_WAIT_MS", "MODELDECK_REQUEST_TIMEOUT_S"])
def test_nan_is_rejected(var):
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: "nan"})


def test_string_overrides_are_converted_to_their_type():
    settings = Settings.from_env({}, offline="no", port="8080")
    assert settings.offline is False
    assert settings.port == 8080


def test_serving_limits_budgets_and_keys_are_parsed():
    settings = Settings.from_env(
        {
            "MODELDECK_MAX_QUEUE_WAIT_MS": "1000, embed=250",
            "MODELDECK_MAX_REQUEST_CHARS": "ner=50000",
            "MODELDECK_MAX_REQUEST_PIXELS": "2000000",
            "MODELDECK_WORKER_GRACE_S": "2.5",
            "MODELDECK_WORKER_MAX_RSS_MB": "0",
            "MODELDECK_ALLOW_FAILED_MODELS": "yes",
            "MODELDECK_API_KEYS": "k-one-00000000, k-two-00000000",
            "MODELDECK_GALLERY_KEYS": "k-gallery-000000",
            "MODELDECK_AUTH_EXEMPT": "/healthz",
        }
    )
    assert settings.max_queue_wait_s("embed") == 0.25 and settings.max_queue_wait_s("ner") == 1.0
    assert settings.request_chars("ner") == 50_000 and settings.request_chars("embed") is None
    assert settings.request_pixels("face-detect") == 2_000_000
    assert settings.worker_grace_s == 2.5 and settings.worker_max_rss_mb == 0
    assert settings.allow_failed_models is True
    assert settings.api_keys == ("k-one-00000000", "k-two-00000000")
    assert settings.gallery_keys == ("k-gallery-000000",) and settings.auth_exempt == ("/healthz",)
    defaults = Settings.from_env({})
    assert defaults.max_queue_wait_s("anything") == 1.0 and defaults.worker_grace_s == 5.0
    assert defaults.worker_max_rss_mb == 3072 and defaults.api_keys == () and not defaults.allow_failed_models
    with pytest.raises(ConfigError, match="MODELDECK_MAX_QUEUE_WAIT_MS must be a number >= 0"):
        Settings.from_env({"MODELDECK_MAX_QUEUE_WAIT_MS": "embed=soon"})
    assert Settings.from_env({}, max_queue_wait_ms="250").max_queue_wait_s("x") == 0.25  # a CLI flag's string


def test_onnx_session_options_are_read_per_served_model():
    from modeldeck.types import OnnxSessionOptions

    settings = Settings.from_env(
        {"MODELDECK_ONNX_THREADS": "2, embed=1", "MODELDECK_ONNX_GRAPH_LEVEL": "ner=Basic,*=extended"}
    )
    assert settings.onnx_session("embed") == OnnxSessionOptions(threads=1, graph_level="extended")
    assert settings.onnx_session("ner") == OnnxSessionOptions(threads=2, graph_level="basic")
    assert settings.onnx_session("other") == OnnxSessionOptions(threads=2, graph_level="extended")
    # Unset: ONNX Runtime's threads follow the CPUs (None), every optimisation applies.
    assert Settings.from_env({}).onnx_session("embed") == OnnxSessionOptions(threads=None, graph_level="all")
    only_named = Settings.from_env({"MODELDECK_ONNX_THREADS": "embed=3"})
    assert only_named.onnx_session("embed").threads == 3 and only_named.onnx_session("ner").threads is None
    flags = Settings.from_env({}, onnx_threads="4", onnx_graph_level="embed=disable")  # serve's flags: strings
    assert flags.onnx_session("embed") == OnnxSessionOptions(threads=4, graph_level="disable")


@pytest.mark.parametrize(
    ("var", "raw", "expected"),
    [
        ("MODELDECK_ONNX_THREADS", "0", "must be an integer >= 1"),
        ("MODELDECK_ONNX_THREADS", "embed=two", "must be an integer >= 1"),
        ("MODELDECK_ONNX_THREADS", "1.5", "must be an integer >= 1"),
        ("MODELDECK_ONNX_THREADS", "=2", "must be an integer >= 1"),
        ("MODELDECK_ONNX_GRAPH_LEVEL", "fast", "must be one of disable, basic, extended, all"),
        ("MODELDECK_ONNX_GRAPH_LEVEL", "embed=O3", "must be one of disable, basic, extended, all"),
        ("MODELDECK_PREFER_VARIANT", "int8", "must be 'onnx' or empty (off)"),
    ],
)
def test_bad_onnx_and_variant_settings_name_the_variable_and_the_valid_values(var, raw, expected):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: raw})
    assert var in info.value.message and repr(raw) in info.value.message and expected in info.value.message
    assert info.value.hint is not None


def test_prefer_variant_is_off_unless_set():
    assert Settings.from_env({}).prefer_variant == ""
    assert Settings.from_env({"MODELDECK_PREFER_VARIANT": " ONNX "}).prefer_variant == "onnx"
    assert Settings.from_env({"MODELDECK_PREFER_VARIANT": ""}).prefer_variant == ""
    assert Settings.from_env({}, prefer_variant="onnx").prefer_variant == "onnx"
