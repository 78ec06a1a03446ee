"""``save(name)``: write what this session changed into ``profiles/NAME.toml`` in the store.

The captured changes are merged into the existing profile with tomlkit, so the
user's hand edits (keys, order and comments) stay. Merge rules, one line each:

- pip packages and constraints are matched by name: the user's entry stays
  while the installed version still satisfies it (``timm>=1.0`` is not turned
  into ``timm==1.0.3``); otherwise the captured pin replaces it; new ones are
  appended. A distribution the user lists as a package is never also added as
  a constraint.
- apt packages, find_links and ``[secrets]`` are unions; ``[[git]]`` entries
  are matched by URL and get the captured commit unless their ref is (a prefix of) it.
- an ``[env]`` value or the ``[workdir]`` path stays when, expanded, it equals
  what the session has; otherwise the captured value wins.
- ``[captured]`` (the machine it was saved on) is replaced.
- nothing is ever removed: delete entries by hand.

Writing: the previous file is kept in ``profiles/history/`` first, then the new
one replaces it atomically (``fileio.write_atomic``), so an interrupted or
failed save leaves the old profile as it was. When another session wrote the
profile since this save read it (its content hash changed), nothing is
replaced: both versions go to history and the error says how to merge. Temp
files left by interrupted saves are removed.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .capture import Capture, capture
from .errors import OptionError, ProfileError, StoreError
from .fileio import ConcurrentWrite, clean_temp, write_atomic
from .platform import Platform, detect
from .profile import _PROFILE_NAME, DamagedProfileWarning, damage, expand, parse
from .store import Store, history_copies, history_path, prune_history

DIFF_LINES = 60


@dataclass
class SaveResult:
    name: str
    path: Path
    toml: str                       # the profile as saved (or as it would be)
    previous: str | None            # the text it replaced; None for a new profile
    diff: str                       # unified diff previous -> toml (shortened)
    written: bool
    dry_run: bool
    history: Path | None = None     # where the previous version was kept
    notes: list[str] = field(default_factory=list)
    capture: Capture | None = None

    @property
    def changed(self) -> bool:
        return self.previous != self.toml

    def text(self) -> str:
        if self.dry_run:
            lines = [f"# dry run: nothing written; this would be saved to {self.path}", self.toml]
        elif not self.changed:
            lines = [f"profile {self.name} is unchanged ({self.path})"]
        else:
            lines = [f"saved profile {self.name} to {self.path}"]
            if self.history is not None:
                lines.append(f"previous version kept as {self.history}")
        if self.diff and not self.dry_run:
            lines.append(self.diff.rstrip("\n"))
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    __str__ = text


def save(name: str, *, dry_run: bool = False, store: str | os.PathLike[str] | None = None,
         since: Any = None, python: str | None = None, env_start: str = "process",
         captured: Capture | None = None) -> SaveResult:
    """Capture what this session changed and save it as profile ``name`` in the store.

    ``since``: when the session started (default: BOOTSTRAP_SESSION_START or the
    container's start). ``python``: the interpreter whose packages count (default:
    this one). ``env_start``: "process" compares the environment with this
    process's start, "baseline" with the snapshot taken at ``%load_ext``.
    Raises StoreError when the store cannot be written; the old profile is then untouched.
    """
    if not isinstance(name, str) or not _PROFILE_NAME.match(name):
        raise OptionError(f"{name!r} is not a profile name", where="save NAME",
                          hint="use letters, digits, '.', '_' and '-', e.g. vision")
    platform = detect(store=store)
    the_store = Store(platform.store_root)
    path = the_store.profile_path(name)
    clean_temp(path.parent, re.escape(path.name))
    clean_temp(the_store.history, re.escape(name) + r"-\d{8}T\d{6}Z(?:-\d+)?\.toml")
    previous_bytes = _read(path)
    cap = captured if captured is not None else capture(
        since=since, python=python, platform=platform, env_start=env_start,
        keep=listed_packages(previous_bytes))
    previous = previous_bytes.decode("utf-8", "replace") if previous_bytes is not None else None
    base = _merge_base(path, previous_bytes)
    text = render(base, cap, name=name, platform=platform, store=the_store)
    try:
        parse(text, source=path.name)
    except ProfileError as error:
        error.hint = (f"the merged profile does not validate; fix {path} by hand (or save "
                      "under a new name) and save again")
        raise
    diff = short_diff(previous, text, name)
    result = SaveResult(name, path, text, previous, diff, written=False, dry_run=dry_run,
                        notes=list(cap.notes), capture=cap)
    if dry_run or (previous_bytes is not None and previous_bytes == text.encode()):
        return result
    if previous_bytes is not None:
        # the old version goes to history first: if anything after fails, both copies exist
        result.history = history_path(path)
        write_atomic(result.history, previous_bytes)
    try:
        write_atomic(path, text.encode(), expected=previous_bytes)
    except ConcurrentWrite as conflict:
        raise _conflict(name, path, conflict, text) from None
    result.written = True
    prune_history(path)
    return result


def listed_packages(previous: bytes | None) -> set[str]:
    """The names a profile's [pip] packages and constraints list (none when unreadable)."""
    from packaging.requirements import InvalidRequirement, Requirement

    from .profile import toml_reader

    try:
        pip = toml_reader().loads((previous or b"").decode("utf-8")).get("pip", {})
    except (ValueError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    if not isinstance(pip, dict):
        return names
    for entry in [*pip.get("packages", []), *pip.get("constraints", [])]:
        try:
            names.add(Requirement(entry).name)
        except (InvalidRequirement, TypeError):
            continue
    return names


def _conflict(name: str, path: Path, conflict: ConcurrentWrite, text: str) -> StoreError:
    """Another session wrote the profile since it was read: keep both versions in history."""
    theirs = None
    if conflict.current is not None:
        theirs = history_path(path)
        write_atomic(theirs, conflict.current)
    ours = history_path(path)
    write_atomic(ours, text.encode())
    kept = f"this session's version is kept as {ours}"
    if theirs is not None:
        kept = f"the other version (now the profile) as {theirs}, " + kept
    return StoreError(
        f"profile {name} was changed by another session since this save read it; "
        "nothing was overwritten", where=str(path),
        hint=f"{kept}. To merge, save again: this session's changes are merged into the new "
             f"version (or compare the two files and edit {path.name} by hand)")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path.name}: {exc.strerror}", where=str(path),
                         hint="check the store folder and its permissions") from None


def _merge_base(path: Path, previous: bytes | None) -> str:
    """The text to merge into: the existing profile, or its newest readable history copy."""
    if previous is None:
        return ""
    reason = damage(previous)
    if reason is None:
        return previous.decode("utf-8")
    for copy in history_copies(path):
        try:
            body = copy.read_bytes()
        except OSError:
            continue
        if damage(body) is None:
            warnings.warn(f"profile {path.name} {reason}; merging into the newest readable copy "
                          f"from its history ({copy.name}); the damaged file is kept in history",
                          DamagedProfileWarning, stacklevel=3)
            return body.decode("utf-8")
    warnings.warn(f"profile {path.name} {reason} and has no readable history copy; saving a new "
                  "profile (the damaged file is kept in history)", DamagedProfileWarning,
                  stacklevel=3)
    return ""


def short_diff(before: str | None, after: str, name: str, limit: int = DIFF_LINES) -> str:
    lines = list(difflib.unified_diff((before or "").splitlines(keepends=True),
                                      after.splitlines(keepends=True),
                                      fromfile=f"{name}.toml (before)",
                                      tofile=f"{name}.toml (saved)"))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more diff lines\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# -- merging into the TOML document ------------------------------------------------------

def render(base: str, cap: Capture, *, name: str, platform: Platform, store: Store) -> str:
    """``base`` (TOML text, may be empty) with ``cap`` merged in, as TOML text."""
    import tomlkit

    if base.strip():
        doc = tomlkit.parse(base)
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment(f"Saved by notebook-bootstrap on "
                                f"{time.strftime('%Y-%m-%d %H:%M')} from a {platform.label} "
                                "session."))
        doc.add(tomlkit.comment("Edit freely: saving again keeps your keys and comments."))
    if "version" not in doc:
        doc["version"] = 1
    if "name" not in doc:
        doc["name"] = name
    values = {"drive": str(platform.drive_root), "store": str(store.root),
              "home": str(Path.home()), "python": sys.executable}
    merge_apt(doc, cap.apt)
    merge_pip(doc, cap)
    merge_git(doc, cap.git)
    merge_env(doc, cap.env, values)
    if cap.secrets:
        secrets = _table(doc, "secrets")
        for key, secret in cap.secrets.items():
            if key not in secrets:
                secrets[key] = secret
    merge_workdir(doc, cap.workdir, values, platform.drive_root)
    if cap.info:
        captured = tomlkit.table()
        captured.add(tomlkit.comment("the machine this was saved on; a restore says what differs"))
        for key, value in cap.info.items():
            captured[key] = value
        doc["captured"] = captured
    return tomlkit.dumps(doc)


def _table(parent: Any, key: str) -> Any:
    import tomlkit

    if key not in parent:
        parent[key] = tomlkit.table()
    return parent[key]


def _array(table: Any, key: str) -> Any:
    import tomlkit

    if key not in table:
        array = tomlkit.array()
        array.multiline(True)
        table[key] = array
    return table[key]


def _req(text: Any) -> Any:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(str(text))
    except InvalidRequirement:
        return None  # e.g. a placeholder the user wrote: never matched, never touched


def _key(text: Any) -> str | None:
    from packaging.utils import canonicalize_name

    req = _req(text)
    return canonicalize_name(req.name) if req is not None else None


def holds(existing: Any, captured: str) -> bool:
    """Whether the user's requirement ``existing`` already describes the ``captured`` install."""
    old, new = _req(existing), _req(captured)
    if old is None or new is None:
        return False
    if new.url or old.url:
        return old.url == new.url
    version = next(iter(new.specifier)).version
    return old.specifier.contains(version, prereleases=True)


def _merge_list(array: Any, entries: list[str]) -> None:
    for entry in entries:
        key = _key(entry)
        index = next((i for i, item in enumerate(array) if _key(item) == key), None)
        if index is None:
            array.append(entry)
        elif not holds(array[index], entry):
            array[index] = entry


def merge_pip(doc: Any, cap: Capture) -> None:
    if not (cap.packages or cap.constraints or cap.find_links):
        return
    pip = _table(doc, "pip")
    listed = {_key(item) for item in pip.get("packages", [])}
    asks = list(cap.packages)
    deps = []
    for entry in cap.constraints:
        (asks if _key(entry) in listed else deps).append(entry)
    if asks:
        _merge_list(_array(pip, "packages"), asks)
    if "constraints" in pip:
        # a constraint the session moved past would fight the new pin: update it too
        constraints = pip["constraints"]
        for entry in asks:
            for i, item in enumerate(constraints):
                if _key(item) == _key(entry) and not holds(item, entry):
                    constraints[i] = entry
    if deps:
        _merge_list(_array(pip, "constraints"), deps)
    if cap.find_links:
        links = _array(pip, "find_links")
        for link in cap.find_links:
            if link not in links:
                links.append(link)


def merge_apt(doc: Any, packages: list[str]) -> None:
    if not packages:
        return
    array = _array(_table(doc, "apt"), "packages")
    names = {str(item.get("name", "") if isinstance(item, dict) else item).partition("=")[0]
             for item in array}   # a table entry: { name = "nvtop", when = "gpu" }
    for entry in packages:
        if entry.partition("=")[0] not in names:
            array.append(entry)


def _same_repo(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        url = url.strip().rstrip("/").lower()
        return url[:-4] if url.endswith(".git") else url

    return norm(a) == norm(b)


def merge_git(doc: Any, entries: list[dict[str, Any]]) -> None:
    import tomlkit

    if not entries:
        return
    if "git" not in doc:
        doc["git"] = tomlkit.aot()
    repos = doc["git"]
    for entry in entries:
        found = next((r for r in repos if _same_repo(str(r.get("url", "")), entry["url"])), None)
        if found is None:
            table = tomlkit.table()
            for key, value in entry.items():
                table[key] = value
            repos.append(table)
        elif not str(entry["ref"]).startswith(str(found.get("ref", "\0"))):
            found["ref"] = entry["ref"]


def merge_env(doc: Any, env: Mapping[str, str], values: Mapping[str, str]) -> None:
    secrets = doc.get("secrets", {})
    # a name the user made a secret must not get its value into [env]
    env = {key: value for key, value in env.items() if key not in secrets}
    if not env:
        return
    table = _table(doc, "env")
    for key, value in env.items():
        if key in table:
            try:
                same = (expand(str(table[key]), values, os.environ, where=f"env.{key}")
                        == expand(value, values, os.environ, where=f"env.{key}"))
            except ProfileError:
                same = False
            if same:
                continue
        table[key] = value


def merge_workdir(doc: Any, workdir: str | None, values: Mapping[str, str],
                  drive_root: Path) -> None:
    if workdir is None:
        return
    table = _table(doc, "workdir")
    if "path" in table:
        try:
            old = Path(expand(str(table["path"]), values, os.environ, where="workdir.path"))
            old = old if old.is_absolute() else drive_root / old
            new = Path(workdir) if Path(workdir).is_absolute() else drive_root / workdir
            if os.path.normpath(old) == os.path.normpath(new):
                return
        except ProfileError:
            pass
    table["path"] = workdir

