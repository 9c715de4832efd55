"""The exception tree: codes, the docstring drawing kept true, and how errors print themselves."""

from __future__ import annotations

import re

import pytest

import modeldeck.errors as errors_module
from modeldeck.errors import (
    ConfigError,
    DependencyError,
    InputError,
    ModelDeckError,
    NotFoundError,
    OptionError,
    OverloadedError,
    ServiceError,
    UnknownNameError,
)

_TREE_LINE = re.compile(r"^(?P<lead>[\s│├└─]*)(?P<name>[A-Z]\w*Error)\s+(?P<code>MD\d{3})\b")


def _docstring_tree() -> dict[str, tuple[str | None, str]]:
    """``{class name: (parent name, code)}`` as drawn in the module docstring."""
    tree: dict[str, tuple[str | None, str]] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name)
    for line in (errors_module.__doc__ or "").splitlines():
        match = _TREE_LINE.match(line)
        if match is None:
            continue
        column = len(match.group("lead"))
        while stack and stack[-1][0] >= column:
            stack.pop()
        tree[match.group("name")] = (stack[-1][1] if stack else None, match.group("code"))
        stack.append((column, match.group("name")))
    return tree


TREE = _docstring_tree()
EXPORTED = [getattr(errors_module, name) for name in errors_module.__all__]


def test_the_docstring_tree_parses_to_the_whole_hierarchy():
    assert TREE["ModelDeckError"] == (None, "MD000")
    assert TREE["OptionError"] == ("InputError", "MD110")
    assert TREE["BatchContractError"] == ("InferenceError", "MD501")
    assert len(TREE) == len(errors_module.__all__)


def test_all_exports_only_error_classes_rooted_at_modeldeck_error():
    for cls in EXPORTED:
        assert isinstance(cls, type) and issubclass(cls, ModelDeckError), cls


def test_every_error_has_a_unique_code_of_the_form_mdnnn():
    codes = [cls.code for cls in EXPORTED]
    for cls in EXPORTED:
        assert re.fullmatch(r"MD\d{3}", cls.code), (cls.__name__, cls.code)
        assert "code" in vars(cls), f"{cls.__name__} inherits its code instead of declaring its own"
    assert len(set(codes)) == len(codes), sorted(codes)


def _family(cls: type[ModelDeckError]) -> type[ModelDeckError]:
    """The direct child of ModelDeckError that ``cls`` derives from (``cls`` itself for a family root)."""
    return next(
        base for base in reversed(cls.__mro__) if base is not ModelDeckError and issubclass(base, ModelDeckError)
    )


@pytest.mark.parametrize("cls", [c for c in EXPORTED if c is not ModelDeckError], ids=lambda c: c.__name__)
def test_each_code_lies_in_the_hundred_of_its_family(cls):
    family = _family(cls)
    assert cls.code[2] == family.code[2], (
        f"{cls.__name__} ({cls.code}) derives from {family.__name__} ({family.code}) "
        f"but its code is outside MD{family.code[2]}00-MD{family.code[2]}99"
    )


def test_family_roots_take_distinct_hundreds():
    roots = [c for c in EXPORTED if c is not ModelDeckError and _family(c) is c]
    assert len({c.code[2] for c in roots}) == len(roots), sorted(c.code for c in roots)


def test_every_module_error_class_is_exported():
    defined = {
        name
        for name, value in vars(errors_module).items()
        if isinstance(value, type) and issubclass(value, ModelDeckError) and value.__module__ == errors_module.__name__
    }
    assert defined == set(errors_module.__all__)


@pytest.mark.parametrize("name", errors_module.__all__)
def test_each_exported_class_matches_its_place_in_the_docstring_tree(name):
    assert name in TREE, f"{name} is exported but missing from the docstring tree"
    parent, code = TREE[name]
    cls = getattr(errors_module, name)
    assert cls.code == code
    if parent is None:
        assert cls is ModelDeckError
    else:
        assert cls.__bases__ == (getattr(errors_module, parent),)


def test_a_few_subclass_relations_spelled_out():
    assert issubclass(OptionError, InputError)
    assert issubclass(errors_module.UnknownModelError, NotFoundError)
    assert issubclass(errors_module.OfflineError, errors_module.StoreError)
    assert issubclass(OverloadedError, ServiceError)
    assert not issubclass(ConfigError, InputError)


def test_str_is_code_message_and_hint():
    err = ConfigError("max_batch_size must be >= 1, got 0", hint="use a positive size")
    assert str(err) == "[MD010] max_batch_size must be >= 1, got 0 (use a positive size)"
    assert err.message == "max_batch_size must be >= 1, got 0"
    assert err.hint == "use a positive size"


def test_str_without_a_hint_has_no_parentheses():
    assert str(InputError("bad input")) == "[MD100] bad input"
    assert str(InputError("bad input", hint="")) == "[MD100] bad input"


def test_to_dict_carries_the_code_and_the_message_with_its_hint():
    assert OptionError("unknown option 'x'", hint="valid: a, b").to_dict() == {
        "code": "MD110",
        "message": "unknown option 'x' (valid: a, b)",
    }
    assert ModelDeckError("plain").to_dict() == {"code": "MD000", "message": "plain"}


def test_errors_are_exceptions_that_can_be_raised_and_caught_by_base():
    with pytest.raises(InputError) as info:
        raise OptionError("nope")
    assert info.value.args == ("nope",)


def test_unknown_name_error_lists_valid_names_sorted():
    err = UnknownNameError("task", "nerr", ["parse", "embed", "ner"])
    assert err.code == "MD201"
    assert err.kind == "task" and err.name == "nerr"
    assert err.valid == ["embed", "ner", "parse"]
    assert err.message == "unknown task 'nerr' (did you mean 'ner'?)"
    assert err.hint == "valid tasks: embed, ner, parse"
    assert str(err) == "[MD201] unknown task 'nerr' (did you mean 'ner'?) (valid tasks: embed, ner, parse)"
    assert UnknownNameError("task", "zzz", ["ner"]).message == "unknown task 'zzz'"  # nothing close: no guess


def test_unknown_name_error_with_nothing_registered():
    err = UnknownNameError("source", "s3", [])
    assert err.valid == []
    assert "(none registered)" in str(err)


def test_dependency_error_prints_the_pip_command_for_the_extra():
    err = DependencyError("torch", extra="torch", purpose="transformers models")
    assert err.code == "MD400"
    assert err.package == "torch"
    assert err.hint == 'run: pip install "modeldeck[torch]"'
    assert "'torch'" in err.message and "needed for transformers models" in err.message
    assert str(err).endswith('(run: pip install "modeldeck[torch]")')


def test_dependency_error_without_an_extra_names_the_package():
    err = DependencyError("onnxruntime")
    assert err.hint == "run: pip install onnxruntime"
    assert "needed for" not in err.message


def test_overloaded_error_carries_retry_after():
    err = OverloadedError("queue for 'ner' is full", retry_after=2.04)
    assert err.retry_after == 2.04
    assert err.code == "MD601"
    assert str(err) == "[MD601] queue for 'ner' is full (retry in 2.0s)"
    assert isinstance(err, ServiceError)
