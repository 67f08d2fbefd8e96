"""The public contract is fully type-hinted, and every hint resolves (a misspelt name in one fails here)."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

import tfstate

# Every public function and class defined in these modules is checked; for tfstate.native, the contract's three.
# The TF1-mirroring namespaces (seq2seq, legacy_seq2seq, contrib, cudnn_rnn) are left as TF1 wrote them.
ANNOTATED = {
    "tfstate.cells": None,
    "tfstate.state": None,
    "tfstate.rnn": None,
    "tfstate.session": None,
    "tfstate.trace": None,
    "tfstate.generation": None,
    "tfstate.layout": None,
    "tfstate.layers": None,
    "tfstate.keyed": None,
    "tfstate.keyed_rnn": None,
    "tfstate.serving": None,
    "tfstate.checkpoint": None,
    "tfstate.hooks": None,
    "tfstate.cluster": None,
    "tfstate.native": ("status", "variants", "variant"),
}
_UNHINTED_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def missing_hints(function):
    """The parameters (and 'return') of `function` without a hint; resolving the hints raises on a bad name."""
    hints = typing.get_type_hints(function)  # evaluated in the globals of the function's module
    parameters = inspect.signature(function).parameters.values()
    wanted = [p.name for p in parameters if p.name != "self" and p.kind not in _UNHINTED_KINDS] + ["return"]
    return [name for name in wanted if name not in hints]


def public_callables(module_name):
    """`{qualified name: function}` for the public functions, and the `__init__`, `__call__`, public methods and
    property accessors of the public classes, that `module_name` defines (not those it imports)."""
    module = importlib.import_module(module_name)
    names = ANNOTATED[module_name] or [name for name in vars(module) if not name.startswith("_")]
    found = {}
    for name in names:
        value = getattr(module, name)
        if getattr(value, "__module__", None) != module_name:
            continue
        if inspect.isfunction(value):
            found[name] = value
        elif inspect.isclass(value):
            for member_name, member in vars(value).items():
                if member_name.startswith("_") and member_name not in ("__init__", "__call__"):
                    continue
                if isinstance(member, property):
                    accessors = {"": member.fget, ".setter": member.fset}
                    found.update({f"{name}.{member_name}{kind}": f for kind, f in accessors.items() if f is not None})
                elif inspect.isfunction(member):
                    found[f"{name}.{member_name}"] = member
    return found


@pytest.mark.parametrize("module_name", list(ANNOTATED))
def test_every_public_signature_is_fully_hinted_and_resolves(module_name):
    callables = public_callables(module_name)
    assert callables, f"{module_name} defines no public function or class"
    problems = {}
    for name, function in callables.items():
        try:
            missing = missing_hints(function)
        except Exception as error:  # NameError (a misspelt name), TypeError (a hint that is not a type)
            problems[name] = f"{type(error).__name__}: {error}"
            continue
        if missing:
            problems[name] = f"no hint for {missing}"
    assert not problems, f"{module_name}: {problems}"


def test_every_top_level_function_and_class_is_in_an_annotated_module():
    for name in tfstate.__all__:
        if name in tfstate._SUBMODULES:
            continue
        value = getattr(tfstate, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ in ANNOTATED, f"tfstate.{name} comes from {value.__module__}"
            assert any(key.split(".")[0] == name for key in public_callables(value.__module__)), name


def test_the_check_reports_a_missing_hint_and_a_misspelt_one():
    def partly_hinted(self, x, y: int, *args, **kwargs) -> int:
        return y

    def unhinted_return(x: int):
        return x

    def misspelt(x: Tensr) -> None:  # noqa: F821 (the point: the name does not exist)
        pass

    assert missing_hints(partly_hinted) == ["x"]
    assert missing_hints(unhinted_return) == ["return"]
    with pytest.raises(NameError, match="Tensr"):
        missing_hints(misspelt)
