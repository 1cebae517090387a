"""Typed task parameters: each declares its type and, where it applies, its choices, so that a bad ``--param`` is
one line before any checkpoint is loaded, not a traceback minutes into a run.

A task declares ``params={"split": "val", "templates": Param("openai", choices=("openai", "simple"))}``: a plain
value is a parameter of that value's type; :class:`Param` adds choices, a type for a ``None`` default, and help.
This module imports nothing heavy (``--tasks list`` and ``describe`` use it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coca_bench.errors import CocaBenchError

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}
_TYPE_PHRASES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a JSON list",
                 dict: "a JSON object"}  # fmt: skip


class ParamError(CocaBenchError, ValueError):
    """A parameter value, name or declaration that is not allowed; the message names the task and the parameter."""


@dataclass(frozen=True)
class Param:
    """A task parameter: its default, its type (from the default unless given) and its allowed values.

    ``type=None`` with a ``None`` default accepts any JSON value. A ``None`` default with a type means "unset":
    ``None`` is then allowed besides values of the type.
    """

    default: Any
    type: type | None = None
    choices: tuple[Any, ...] = ()
    help: str = ""
    minimum: float | None = None  # inclusive bounds of a number, checked before any work
    maximum: float | None = None

    @property
    def value_type(self) -> type | None:
        if self.type is not None:
            return self.type
        if self.default is None:
            return None
        return list if isinstance(self.default, tuple) else type(self.default)

    def describe(self) -> str:
        """``int = 16``, ``str = "openai" (one of: "openai", "simple")``: for ``describe TASK``."""
        kind = _TYPE_NAMES.get(self.value_type, "any") if self.value_type is not None else "any"
        if self.default is None and self.value_type is not None:
            kind += " or null"
        text = f"{kind} = {json.dumps(_plain(self.default))}"
        if self.choices:
            text += f" (one of: {', '.join(json.dumps(c) for c in self.choices)})"
        if self.minimum is not None or self.maximum is not None:
            text += f" ({self._range()})"
        return text + (f"  # {self.help}" if self.help else "")

    def _range(self) -> str:
        if self.maximum is None:
            return f"at least {self.minimum:g}"
        if self.minimum is None:
            return f"at most {self.maximum:g}"
        return f"from {self.minimum:g} to {self.maximum:g}"

    def check(self, task: str, name: str, value: Any) -> Any:
        """``value`` converted to the declared type (an int where a float is declared), or :class:`ParamError`."""
        expected = self.value_type
        value = _plain(value)
        if value is None and (self.default is None or expected is None):
            return None
        if expected is not None:
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                allowed = f"one of {list(self.choices)}" if self.choices else _TYPE_PHRASES.get(expected, str(expected))
                raise ParamError(
                    f"Task {task!r}: parameter {name}={json.dumps(value)} is not allowed; it takes {allowed} "
                    f"(default {json.dumps(_plain(self.default))})."
                )
        if self.choices and value not in self.choices:
            raise ParamError(
                f"Task {task!r}: parameter {name}={json.dumps(value)} is not allowed; it takes one of "
                f"{list(self.choices)}."
            )
        outside = (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        )
        if isinstance(value, (int, float)) and not isinstance(value, bool) and outside:
            raise ParamError(
                f"Task {task!r}: parameter {name}={json.dumps(value)} is not allowed; it takes a number "
                f"{self._range()} (default {json.dumps(_plain(self.default))})."
            )
        return value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def declare_params(task: str, params: Mapping[str, Any] | None) -> dict[str, Param]:
    """Every parameter as a :class:`Param` (plain values become parameters of their own type); defaults checked."""
    declared: dict[str, Param] = {}
    for name, value in (params or {}).items():
        param = value if isinstance(value, Param) else Param(value)
        if param.choices and param.default is not None and param.default not in param.choices:
            raise ParamError(f"Task {task!r}: the default of parameter {name!r} is not one of its choices.")
        if param.default is not None and (param.minimum is not None or param.maximum is not None):
            param.check(task, name, param.default)  # a default outside its own range is a declaration error
        declared[name] = param
    return declared


def resolve_params(task: str, declared: Mapping[str, Param], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults with the overrides applied, each checked: an unknown name or a bad value is a ParamError."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ParamError(
            f"Task {task!r} has no parameter {', '.join(map(repr, unknown))}; its parameters are {sorted(declared)} "
            f"(run `run_suite.py describe {task}`)."
        )
    values = {name: _plain(param.default) for name, param in declared.items()}
    values.update({name: declared[name].check(task, name, value) for name, value in overrides.items()})
    return values


def describe_params(declared: Mapping[str, Param]) -> list[str]:
    return [f"{name}: {param.describe()}" for name, param in declared.items()]


__all__ = ["Param", "ParamError", "declare_params", "describe_params", "resolve_params"]
