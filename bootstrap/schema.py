"""A small declarative validator that turns parsed TOML into typed dataclasses.

Each profile section is a dataclass; its type hints say what a key may hold and
``field(metadata={"check": fn})`` adds a rule of its own. Validation walks the
whole document and collects *every* problem (with its key path) instead of
stopping at the first, so a user fixes a profile in one go.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from typing import Any, Callable, Union

from .errors import Problem

#: A rule for one value: returns None when fine, else (what, hint).
Rule = Callable[[Any], "tuple[str, str | None] | None"]

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def key_path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp in _TYPE_NAMES:
        return _TYPE_NAMES[tp]
    if origin is list:
        return f"a list of {_plural(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_plural(typing.get_args(tp)[1])}"
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return "a table"
    if tp is Any:
        return "a value"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    names = {str: "strings", int: "integers", float: "numbers", bool: "booleans"}
    if tp in names:
        return names[tp]
    if dataclasses.is_dataclass(tp):
        return "tables"
    return describe(tp)


class Validator:
    """Collects problems while converting raw TOML data into dataclasses."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, path: tuple[str | int, ...], what: str, value: Any = None,
                hint: str | None = None, *, has_value: bool = True) -> None:
        self.problems.append(Problem(f"{self.source}: {key_path(path)}", what, value, hint,
                                     has_value))

    def convert(self, tp: Any, value: Any, path: tuple[str | int, ...]) -> Any:
        """Return ``value`` converted to ``tp``; on a problem record it and return None."""
        origin = typing.get_origin(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            return self._union(tp, value, path)
        if dataclasses.is_dataclass(tp):
            return self.table(tp, value, path)
        if origin is list:
            if not isinstance(value, list):
                self.problem(path, f"expected {describe(tp)}", value)
                return None
            (item_tp,) = typing.get_args(tp)
            items = [self.convert(item_tp, item, path + (i,)) for i, item in enumerate(value)]
            return [item for item in items if item is not None]
        if origin is dict:
            if not isinstance(value, dict):
                self.problem(path, f"expected {describe(tp)}", value)
                return None
            key_tp, item_tp = typing.get_args(tp)
            out = {}
            for key, item in value.items():
                converted = self.convert(item_tp, item, path + (key,))
                if converted is not None:
                    out[key] = converted
            return out
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(path, "must be a finite number", value,
                         "nan and inf are not numbers a setting can hold")
            return None
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if tp in (int, float) and isinstance(value, bool):
            self.problem(path, f"expected {describe(tp)}", value)
            return None
        if isinstance(value, tp):
            return value
        self.problem(path, f"expected {describe(tp)}", value)
        return None

    def _union(self, tp: Any, value: Any, path: tuple[str | int, ...]) -> Any:
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for option in options:
            if _shape_matches(option, value):
                return self.convert(option, value, path)
        self.problem(path, f"expected {describe(tp)}", value)
        return None

    def table(self, cls: Any, value: Any, path: tuple[str | int, ...]) -> Any:
        if not isinstance(value, dict):
            self.problem(path, "expected a table", value)
            return None
        hints = _hints(cls)
        fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls)
                  if not f.metadata.get("internal")}
        kwargs: dict[str, Any] = {}
        for key, raw in value.items():
            field = fields.get(key)
            if field is None:
                close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
                hint = (f"did you mean '{close[0]}'?" if close
                        else f"known keys: {', '.join(sorted(fields))}")
                self.problem(path + (key,), "unknown key", has_value=False, hint=hint)
                continue
            before = len(self.problems)
            converted = self.convert(hints[field.name], raw, path + (key,))
            failed = len(self.problems) > before
            rule: Rule | None = field.metadata.get("check")
            each = field.metadata.get("each", False)
            if rule is not None and (not failed or each):
                # When some items of a list failed, the plain strings among the raw
                # items are still checked, so every problem shows at once.
                for sub_path, item in _rule_targets(raw if failed else converted,
                                                    path + (key,), each):
                    if failed and not isinstance(item, str):
                        continue
                    verdict = rule(item)
                    if verdict:
                        self.problem(sub_path, verdict[0], item, verdict[1])
            if failed:
                continue
            kwargs[field.name] = converted
        for name, field in fields.items():
            required = (field.default is dataclasses.MISSING
                        and field.default_factory is dataclasses.MISSING)
            if required and field.name not in kwargs and name not in value:
                self.problem(path + (name,), "missing required key", has_value=False,
                             hint=field.metadata.get("hint"))
        try:
            obj = cls(**kwargs)
        except TypeError:
            return None  # a required key was missing or invalid: already reported
        check = getattr(obj, "validate", None)
        if check is not None:
            for sub_path, what, bad, hint in check():
                self.problem(path + tuple(sub_path), what, bad, hint)
        return obj


def rule_at(cls: Any, key: str) -> Rule | None:
    """The rule that checks the value at ``key`` (``pip.packages[2]``, ``files[0].url``) of
    the dataclass ``cls``, or None where there is none."""
    parts = re.findall(r"\[\d+\]|[^.\[\]]+", key)
    tp, rule, each = cls, None, False
    for part in parts:
        if part.startswith("["):
            if typing.get_origin(tp) is list:
                tp = typing.get_args(tp)[0]
            if not each:
                rule = None
            each = False
            continue
        options = (typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType)
                   else (tp,))
        table = next((o for o in options if dataclasses.is_dataclass(o)), None)
        if table is None:
            return None
        hints = _hints(table)
        field = next((f for f in dataclasses.fields(table)
                      if f.metadata.get("key", f.name) == part), None)
        if field is None:
            return None
        tp, rule = hints[field.name], field.metadata.get("check")
        each = field.metadata.get("each", False)
    return None if each else rule


@functools.lru_cache(maxsize=None)
def _hints(cls: Any) -> dict[str, Any]:
    # evaluating the annotations is slow; a profile of many entries asks thousands of times
    return typing.get_type_hints(cls)


def _rule_targets(value: Any, path: tuple[str | int, ...], each: bool):
    if each and isinstance(value, list):
        return [(path + (i,), item) for i, item in enumerate(value)]
    if each and isinstance(value, dict):
        return [(path + (k,), item) for k, item in value.items()]
    return [(path, value)]


def _shape_matches(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) or origin is dict:
        return isinstance(value, dict)
    if origin is list:
        return isinstance(value, list)
    if tp is Any:
        return True
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def to_data(obj: Any) -> Any:
    """Turn a dataclass tree back into TOML-able data, leaving out default values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(obj):
            if field.metadata.get("internal"):
                continue
            value = getattr(obj, field.name)
            default = (field.default if field.default is not dataclasses.MISSING
                       else field.default_factory()
                       if field.default_factory is not dataclasses.MISSING
                       else dataclasses.MISSING)
            if value is None or (default is not dataclasses.MISSING and value == default
                                 and not field.metadata.get("always")):
                continue
            out[field.metadata.get("key", field.name)] = to_data(value)
        return out
    if isinstance(obj, list):
        return [to_data(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_data(value) for key, value in obj.items()}
    return obj
