"""Handing values from a setup notebook back to the kernel that ran it: ``bootstrap.export``.

This module runs inside the setup notebook's kernel, so it imports nothing
heavy (json, os, keyword). The protocol:

- papermill runs: the caller sets ``BOOTSTRAP_EXPORT_FILE`` to a JSON file on
  local disk before the setup kernel starts (the kernel inherits the caller's
  environment); every ``export()`` merges its values into that file, replacing
  it atomically. The caller reads it after the run.
- inline runs: the notebook's cells run in the caller's own kernel, where
  ``collecting()`` gathers the values in memory.
- neither (the notebook run by hand): the values become variables of the
  running IPython session, so the notebook behaves the same as when it is run
  by ``%run_setup``.

Values travel as JSON: None, bool, int, float, str, lists and dicts with string
keys. Tuples come back as lists and ``os.PathLike`` values as strings. Anything
else is refused at the ``export()`` call, in the setup notebook, with a hint:
save it to a file and export the path, or run the notebook inline.
"""

from __future__ import annotations

import contextlib
import json
import keyword
import os
import sys
from typing import Any, Iterator

from .errors import OptionError, StepError
from .fileio import replace_bytes

EXPORT_FILE_ENV = "BOOTSTRAP_EXPORT_FILE"
#: an export file larger than this is refused when read back (values, not data sets)
MAX_EXPORT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

_collector: dict[str, Any] | None = None

_JSON_HINT = ("export JSON values (str, int, float, bool, None, lists, dicts with str keys); "
              "save other objects to a file and export its path, or run the notebook with "
              "--inline so they stay in your kernel")


def export(**values: Any) -> dict[str, Any]:
    """Hand ``name=value`` pairs back to the kernel that runs this setup notebook.

    Returns the values as they will arrive (tuples as lists, paths as strings).
    """
    checked = {name: to_json(value, name) for name, value in values.items()}
    for name in checked:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise OptionError(f"cannot export {name!r}: not a Python variable name",
                              where=f"bootstrap.export({name}=...)",
                              hint="use names that could be assigned to, like data_dir")
    if _collector is not None:
        _collector.update(checked)
    elif os.environ.get(EXPORT_FILE_ENV):
        _merge_into(os.environ[EXPORT_FILE_ENV], checked)
    else:
        _push_interactive(checked)
    return checked


def to_json(value: Any, name: str, path: str = "", depth: int = 0) -> Any:
    """``value`` as plain JSON data, or OptionError naming the part that is not."""
    if depth > MAX_DEPTH:
        raise OptionError(f"cannot export {name}: nested deeper than {MAX_DEPTH} levels",
                          where=f"bootstrap.export({name}=...){path}", hint=_JSON_HINT)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [to_json(item, name, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise OptionError(f"cannot export {name}: dict key {key!r} is not a string",
                                  where=f"bootstrap.export({name}=...){path}",
                                  hint="JSON objects have string keys; convert the keys")
            out[key] = to_json(item, name, f"{path}[{key!r}]", depth + 1)
        return out
    kind = type(value).__module__ + "." + type(value).__qualname__
    raise OptionError(f"cannot export {name}: a {kind.removeprefix('builtins.')} is not JSON",
                      where=f"bootstrap.export({name}=...){path}", hint=_JSON_HINT)


def _merge_into(path: str, values: dict[str, Any]) -> None:
    current = read(path)
    current.update(values)
    data = json.dumps(current, ensure_ascii=False, allow_nan=True).encode()
    replace_bytes(path, data)


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The values exported into ``path`` so far ({} when nothing was exported)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_EXPORT_BYTES:
            raise StepError(f"the exported values are {size} bytes, over the "
                            f"{MAX_EXPORT_BYTES} byte limit", where=os.fspath(path),
                            hint="export paths to files, not the data itself")
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StepError(f"the exported values cannot be read: {exc}", where=os.fspath(path),
                        hint="something other than bootstrap.export wrote this file") from None
    if not isinstance(data, dict):
        raise StepError("the exported values are not a JSON object", where=os.fspath(path),
                        hint="something other than bootstrap.export wrote this file")
    return data


def _push_interactive(values: dict[str, Any]) -> None:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.push(values)


@contextlib.contextmanager
def collecting() -> Iterator[dict[str, Any]]:
    """Gather ``export()`` calls made in this process (inline runs) into the yielded dict."""
    global _collector
    previous, _collector = _collector, {}
    try:
        yield _collector
    finally:
        _collector = previous
