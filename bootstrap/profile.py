"""The profile: format version 1, its typed model, TOML load/dump and lookup.

A profile says what a fresh VM needs: one optional table per restore step
(``[gpu]``, ``[drive]``, ``[apt]``, ``[pip]``, ``[env]``, ``[secrets]``,
``[[files]]``, ``[[git]]``, ``[[build]]``, ``[venv]``, ``[[run]]``, ``[workdir]``,
``[variables]``, ``[setup]``) and
per-platform overrides under ``[platforms.NAME]``. Strings may hold
placeholders (``{drive}``, ``{store}``, ``{home}``, ``{python}``, ``{here}``
(the profile's own folder), ``{cpus}``, ``{env:VAR}``, ``{env:VAR:-default}``)
that are expanded at restore time, never at load time. Entries of ``[[run]]``,
``[[files]]``, ``[apt]`` and ``[pip]`` may carry a condition (``when``).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import Problem, ProfileError
from .schema import Validator, to_data

FORMAT_VERSION = 1
MAX_PROFILE_BYTES = 256 * 1024
MAX_DEPTH = 24
#: wall-clock limit for fetching a profile from a URL
PROFILE_DEADLINE_S = 60.0
PLATFORM_NAMES = ("colab", "kaggle", "local")

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER_NAMES = ("drive", "store", "home", "python", "here", "cpus")
PLACEHOLDER_HINT = ("use {drive}, {store}, {home}, {python}, {here}, {cpus}, {env:NAME} or "
                    "{env:NAME:-default}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: ``{env:NAME}`` or ``{env:NAME:-default}`` (the default used when NAME is unset)
_ENV_PLACEHOLDER = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
#: what ``when`` may say: a GPU is there or not, or the platform
CONDITIONS = ("gpu", "no-gpu", "colab", "kaggle", "local")
_DEBIAN_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_DEBIAN_VERSION = re.compile(r"^[A-Za-z0-9.+~:-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PIP_URL_SCHEMES = ("https", "git+https")


# -- rules for single values -------------------------------------------------

def check_placeholders(text: Any) -> tuple[str, str | None] | None:
    if not isinstance(text, str):
        return None
    for match in _PLACEHOLDER.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            return ("has an unmatched brace", "write {{ or }} for a literal brace")
        if name in _PLACEHOLDER_NAMES:
            continue
        if _ENV_PLACEHOLDER.match(name):
            continue
        if name == "":
            return ("has {} (an unknown placeholder)",
                    "write {{}} for literal braces, e.g. find's -exec ... {{}} +")
        return (f"unknown placeholder {{{name}}}", PLACEHOLDER_HINT)
    return None


def check_when(text: str) -> tuple[str, str | None] | None:
    if text not in CONDITIONS:
        return ("is not a condition", f"use one of {', '.join(CONDITIONS)}")
    return None


#: a VCS URL without a name, e.g. git+https://github.com/org/repo@v1#subdirectory=python
_BARE_VCS = re.compile(r"^(?:git|hg|svn|bzr)\+(https?://[^\s;]+)$")


def check_requirement(text: str) -> tuple[str, str | None] | None:
    """A pip entry must be one PEP 508 requirement: no options, no local files."""
    from packaging.requirements import InvalidRequirement, Requirement

    if "\n" in text or "\r" in text:
        return ("contains a line break", "put each requirement in its own list entry")
    stripped = text.strip()
    if stripped.startswith("-") or re.search(r"\s-{1,2}[A-Za-z]", stripped):
        return ("is a pip option, not a requirement",
                "list only requirements; per-package options go in a table entry, e.g. "
                "{ requirement = \"name\", no_deps = true } or { path = \"{drive}/repo\", "
                "editable = true }; use [pip] index_url, find_links, indexes for indexes")
    if stripped.startswith(("/", "./", "../", "~", "{")):
        return ("is a folder, not a requirement",
                "install a folder with a table entry: { path = \"" + stripped + "\" }")
    bare = _BARE_VCS.match(stripped)
    if bare and (bare[1].startswith("https://") or is_loopback_url(bare[1])):
        return None  # a VCS URL as users type it: the name is found when it is resolved
    try:
        req = Requirement(stripped)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        return ("is not a PEP 508 requirement",
                f"write it like 'name', 'name==1.2' or 'name>=1,<2' ({first})")
    if req.url is not None:
        scheme = req.url.split("://", 1)[0].lower() if "://" in req.url else ""
        loopback = scheme in ("http", "git+http") and is_loopback_url(req.url.split("+", 1)[-1])
        if scheme not in PIP_URL_SCHEMES and not loopback:
            return ("direct URL must use https",
                    "use 'name @ https://...' (or git+https://); local files belong in "
                    "find_links or a [[files]] entry")
    return None


def check_requirements_list(text: str) -> tuple[str, str | None] | None:
    return check_requirement(text) if isinstance(text, str) else None


def check_apt_name(text: str) -> tuple[str, str | None] | None:
    name, sep, version = text.partition("=")
    if not _DEBIAN_NAME.match(name) or (sep and not _DEBIAN_VERSION.match(version)):
        return ("is not a Debian package name",
                "names are lowercase letters, digits and + . - (optionally name=version)")
    return None


def check_env_name(text: str) -> tuple[str, str | None] | None:
    if not _ENV_NAME.match(text):
        return ("is not a valid environment variable name",
                "use letters, digits and underscores, not starting with a digit")
    return None


def is_loopback_url(url: str) -> bool:
    """http is allowed only to this machine (a local mirror or test server)."""
    from urllib.parse import urlsplit

    from .fetch import is_loopback

    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return is_loopback(host)


def check_url(text: str) -> tuple[str, str | None] | None:
    lowered = text.lower()
    if lowered.startswith("http://") and not is_loopback_url(text):
        return ("plain http is refused", "use an https:// URL (http only to 127.0.0.1/localhost)")
    if not (lowered.startswith(("https://", "http://")) or lowered.startswith("file://")
            or text.startswith("/") or text.startswith("{")):
        return ("is not an https URL or a path", None)
    return check_placeholders(text)


def check_download_url(text: str) -> tuple[str, str | None] | None:
    """A [[files]] download: https, or http only to this machine."""
    lowered = text.lower()
    if not lowered.startswith(("https://", "http://", "{")):
        return ("downloads need an https URL",
                "use url = \"https://...\", or store = \"path\" to copy a file from the store")
    return check_url(text)


def check_sha256(text: str) -> tuple[str, str | None] | None:
    if not _SHA256.match(text):
        return ("is not a sha256 hex digest", "64 lowercase hex characters (sha256sum FILE)")
    return None


def check_nonempty(text: str) -> tuple[str, str | None] | None:
    if not text.strip():
        return ("must not be empty", None)
    return check_placeholders(text)


_PACKAGE_NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")
_SHELL_OPERATORS = ("&&", "||", "|", ";", ">", ">>", "<", "2>", "2>&1", "&>", "&")
#: guard paths that always exist, so the command would never run
_ALWAYS_THERE = ("/", ".", "..", "~", "{drive}", "{home}", "{store}")


def check_package_name(text: str) -> tuple[str, str | None] | None:
    if not _PACKAGE_NAME.match(text):
        return ("is not a package name", "a distribution name like \"torch\" (no version here)")
    return None


def check_extra(text: str) -> tuple[str, str | None] | None:
    if not _PACKAGE_NAME.match(text):
        return ("is not an extra name", "letters, digits and . _ -, e.g. \"dev\"")
    return None


def check_argv(value: Any) -> tuple[str, str | None] | None:
    """An argv list: non-empty, a program first, no shell syntax in separate words."""
    if not isinstance(value, list):
        return None  # a string is reported by Command.validate, with a suggestion
    if not value:
        return ("must not be empty", "a program and its arguments, e.g. [\"make\", \"-j2\"]")
    if not value[0].strip():
        return ("has an empty program name", "the first item is the program to run")
    for word in value:
        if word in _SHELL_OPERATORS:
            return (f"contains the shell operator {word!r}, but argv runs no shell",
                    "split it into several [[run]] entries, or write the whole line as "
                    "shell = \"...\"")
    if len(value) == 1 and re.search(r"\s", value[0].strip()):
        if _has_shell_syntax(value[0]):
            return ("looks like a shell command line in one string, but argv runs no shell",
                    f"write shell = {value[0]!r} to run it with /bin/sh")
        return ("looks like a whole command line in one string",
                f"split it: {_argv_suggestion(value[0])}, or write shell = {value[0]!r}")
    for word in value:
        verdict = check_placeholders(word)
        if verdict:
            return verdict
    return None


def check_shell(text: str) -> tuple[str, str | None] | None:
    if not text.strip():
        return ("must not be empty", "a /bin/sh script, e.g. shell = \"make -j2 && make install\"")
    verdict = check_placeholders(text)
    if verdict:
        return (verdict[0], "placeholders are expanded in shell scripts too: write $NAME for a "
                            "variable, or ${{NAME}} and {{ }} for literal braces")
    return None


def check_guard_path(text: str) -> tuple[str, str | None] | None:
    stripped = text.strip()
    if not stripped:
        return ("must not be empty", "the file or folder the command makes, e.g. \"build/tool\"")
    if stripped.rstrip("/") in _ALWAYS_THERE or stripped.rstrip("/") == "":
        return ("always exists, so the command would never run",
                "name the file or folder the command makes, e.g. \"{drive}/repo/build/tool\"")
    return check_placeholders(text)


def _rule(fn, *, each: bool = False, key: str | None = None, hint: str | None = None):
    meta: dict[str, Any] = {"check": fn, "each": each}
    if key:
        meta["key"] = key
    if hint:
        meta["hint"] = hint
    return meta


# -- the model -----------------------------------------------------------------

@dataclass
class Gpu:
    required: bool = False
    min_memory_gib: float | None = None
    models: list[str] = field(default_factory=list)
    min_cuda: str | None = None
    accelerator: str | None = None    # "gpu" (an NVIDIA GPU, the default) or "tpu"

    def validate(self):
        if self.accelerator is not None and self.accelerator not in ("gpu", "tpu"):
            yield ("accelerator",), "is not gpu or tpu", self.accelerator, \
                'write accelerator = "tpu" for a TPU runtime, or leave it out for a GPU'
        if self.min_memory_gib is not None and self.min_memory_gib <= 0:
            yield ("min_memory_gib",), "must be positive", self.min_memory_gib, None
        if self.min_cuda is not None and not re.match(r"^\d+(\.\d+)*$", self.min_cuda):
            yield ("min_cuda",), "is not a version", self.min_cuda, "write it like \"12.2\""


@dataclass
class Drive:
    mount: bool = True
    mountpoint: str | None = field(default=None, metadata=_rule(check_nonempty))


def check_apt_entry(value: Any) -> tuple[str, str | None] | None:
    return check_apt_name(value) if isinstance(value, str) else None


@dataclass
class AptPackage:
    """An apt entry written as a table: a package with a condition."""

    name: str = field(metadata=_rule(check_apt_name, hint="name = \"nvidia-cuda-toolkit\""))
    when: str | None = field(default=None, metadata=_rule(check_when))


@dataclass
class Apt:
    packages: list[str | AptPackage] = field(default_factory=list,
                                             metadata=_rule(check_apt_entry, each=True))
    #: packages to remove before the installs (an image's conflicting version)
    remove: list[str] = field(default_factory=list, metadata=_rule(check_apt_name, each=True))

    def validate(self):
        for i, name in enumerate(self.remove):
            if any((entry if isinstance(entry, str) else entry.name).partition("=")[0]
                   == name.partition("=")[0] for entry in self.packages):
                yield ("remove", i), "is also in packages", name, \
                    "a package is either removed or installed: keep it in one list"
            if "=" in name:
                yield ("remove", i), "names a version", name, \
                    "remove takes package names only, e.g. \"" + name.partition("=")[0] + "\""


@dataclass
class PipPackage:
    """A pip entry written as a table: one requirement or one folder, with options."""

    requirement: str | None = field(default=None, metadata=_rule(check_requirement))
    path: str | None = field(default=None, metadata=_rule(check_nonempty))
    editable: bool = False
    no_deps: bool = False
    upgrade: bool = False
    extras: list[str] = field(default_factory=list, metadata=_rule(check_extra, each=True))
    #: install only where the condition holds (gpu, no-gpu or a platform)
    when: str | None = field(default=None, metadata=_rule(check_when))


    #: build it (sdist, URL, VCS) against the target's installed packages, not a fresh env
    no_build_isolation: bool = False

    def validate(self):
        if (self.requirement is None) == (self.path is None):
            yield (), "needs exactly one of requirement or path", None, \
                "requirement = \"name==1.2\" for a package, path = \"{drive}/repo/sub\" " \
                "for a folder"
        if self.path is not None and "://" in self.path:
            yield ("path",), "is a URL, not a folder", self.path, \
                "write requirement = \"name @ https://...\" for a URL"
        if self.editable and self.path is None:
            yield ("editable",), "needs a path", self.editable, \
                "only a folder can be installed editable: path = \"{drive}/repo\""
        if self.extras and self.path is None:
            yield ("extras",), "needs a path", self.extras, \
                "for a requirement write the extras in it: \"name[extra]\""


@dataclass
class PipIndex:
    """An index or find-links location that serves only the named packages."""

    packages: list[str] = field(metadata=_rule(check_package_name, each=True,
                                               hint="packages = [\"torch\", \"torchvision\"]"))
    url: str | None = field(default=None, metadata=_rule(check_url))
    find_links: str | None = field(default=None, metadata=_rule(check_url))

    def validate(self):
        if (self.url is None) == (self.find_links is None):
            yield (), "needs exactly one of url or find_links", None, \
                "url = \"https://download.pytorch.org/whl/cu121\" (an index) or " \
                "find_links = \"{drive}/wheels\" (a folder or page of wheels)"
        if not self.packages:
            yield ("packages",), "must name at least one package", self.packages, \
                "the packages this index serves, e.g. [\"torch\", \"torchvision\"]"


@dataclass
class Pip:
    packages: list[str | PipPackage] = field(default_factory=list,
                                             metadata=_rule(check_requirements_list, each=True))
    no_index: bool = False
    index_url: str | None = field(default=None, metadata=_rule(check_url))
    extra_index_urls: list[str] = field(default_factory=list,
                                        metadata=_rule(check_url, each=True))
    find_links: list[str] = field(default_factory=list, metadata=_rule(check_url, each=True))
    constraints: list[str] = field(default_factory=list,
                                   metadata=_rule(check_requirements_list, each=True))
    #: indexes and find-links that serve only the packages they name
    indexes: list[PipIndex] = field(default_factory=list)
    #: requirements files (one plain requirement a line), read at restore time
    requirements: list[str] = field(default_factory=list, metadata=_rule(check_nonempty,
                                                                          each=True))
    #: keep the resolution in a lock and install exactly it (bootstrap/lock.py)
    lock: bool = True

    def validate(self):
        from packaging.utils import canonicalize_name

        owner: dict[str, int] = {}
        for i, index in enumerate(self.indexes):
            for j, name in enumerate(index.packages):
                key = canonicalize_name(name)
                if key in owner and owner[key] != i:
                    yield ("indexes", i, "packages", j), \
                        f"is already served by indexes[{owner[key]}]", name, \
                        "a package can come from one scoped index only"
                owner.setdefault(key, i)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4,
               "ki": 1024, "mi": 1024 ** 2, "gi": 1024 ** 3, "ti": 1024 ** 4}


def parse_size(value: int | str) -> int | None:
    """``max_size``: bytes as an integer, or a string like "500 MB" or "2 GiB"; None if bad."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = _SIZE.match(value)
    if not match:
        return None
    unit = (match.group(2) or "").lower()
    unit = unit[:-1] if unit.endswith("b") and unit != "b" else unit
    size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    return size if size > 0 else None


def check_size(value: Any) -> tuple[str, str | None] | None:
    if parse_size(value) is None:
        return ("is not a size", "write bytes as a number, or a string like \"500 MB\" or "
                                 "\"2 GiB\"")
    return None


@dataclass
class FileEntry:
    dest: str = field(metadata=_rule(check_nonempty, hint="where the file goes, e.g. "
                                     "\"/content/weights/model.pt\""))
    url: str | None = field(default=None, metadata=_rule(check_download_url))
    sha256: str | None = field(default=None, metadata=_rule(check_sha256))
    store: str | None = field(default=None, metadata=_rule(check_nonempty))
    #: a file on Drive (or any path on this machine): ``{drive}/data/project.zip``
    source: str | None = field(default=None, metadata=_rule(check_nonempty))
    #: the whole text of the file (placeholders expanded)
    content: str | None = field(default=None, metadata=_rule(check_placeholders))
    #: one line the file must hold (added at the end when it is missing)
    append: str | None = field(default=None, metadata=_rule(check_placeholders))
    unpack: bool = False
    #: the file's permissions, in octal: 0o755 (chmod +x), 0o600 (a private token)
    mode: int | None = None
    #: the most a download may bring: bytes, or "500 MB", "2 GiB"
    max_size: int | str | None = field(default=None, metadata=_rule(check_size))
    when: str | None = field(default=None, metadata=_rule(check_when))

    SOURCES = ("url", "store", "source", "content", "append")

    def validate(self):
        given = [key for key in self.SOURCES if getattr(self, key) is not None]
        if len(given) != 1:
            yield (), (f"has {' and '.join(given)}: needs exactly one" if given
                       else "needs one of url, store, source, content or append"), None, \
                "url = \"https://...\" (a download), store = \"path/in/store\", source = " \
                "\"{drive}/data/file.zip\" (a copy), content = \"...\" (the whole text) or " \
                "append = \"a line\" (one line kept in the file)"
        if self.source is not None and "://" in self.source:
            yield ("source",), "is a URL, not a path", self.source, \
                "write url = \"...\" for a download"
        if self.unpack and (self.content is not None or self.append is not None):
            yield ("unpack",), "only an archive can be unpacked", self.unpack, \
                "unpack = true goes with url, store or source"
        if self.sha256 is not None and (self.content is not None or self.append is not None):
            yield ("sha256",), "is for downloaded or copied files", self.sha256, \
                "leave it out: the text is in the profile"
        if self.mode is not None:
            digits = str(self.mode)
            if self.mode > 0o777 and len(digits) in (3, 4) and set(digits) <= set("01234567"):
                yield ("mode",), "looks like an octal mode written as a decimal number", \
                    self.mode, f"write mode = 0o{digits} (TOML's octal)"
            elif not 0 <= self.mode <= 0o7777:
                yield ("mode",), "is not a file mode", self.mode, "write it in octal: mode = 0o755"
            if self.unpack:
                yield ("mode",), "goes with a file, not an unpacked folder", self.mode, \
                    "leave it out, or add a [[run]] entry that changes the files inside"
        if self.append is not None and ("\n" in self.append.strip("\n")
                                        or not self.append.strip()):
            yield ("append",), "must be one non-empty line", self.append, \
                "write one [[files]] entry per line, or use content = \"...\" for a whole file"


@dataclass
class GitRepo:
    url: str = field(metadata=_rule(check_nonempty))
    dest: str = field(metadata=_rule(check_nonempty))
    ref: str | None = None
    install: bool = False
    editable: bool = True


@dataclass
class Command:
    """One ``[[run]]`` entry: a program (argv, no shell) or an explicit shell script."""

    argv: list[str] | str | None = field(default=None, metadata=_rule(check_argv))
    shell: str | None = field(default=None, metadata=_rule(check_shell))
    #: several programs run in order under one guard, stopping at the first failure
    commands: list[list[str]] | None = field(default=None, metadata=_rule(check_argv, each=True))
    name: str | None = field(default=None, metadata=_rule(check_nonempty))
    cwd: str | None = field(default=None, metadata=_rule(check_nonempty))
    env: dict[str, str] = field(default_factory=dict,
                                metadata=_rule(check_placeholders, each=True))
    timeout: float | None = None
    creates: str | None = field(default=None, metadata=_rule(check_guard_path))
    unless: list[str] | str | None = field(default=None, metadata=_rule(check_argv))
    #: run once per VM; a marker on local disk, keyed by the entry's content, records it
    once: bool = False
    #: run on every restore and show the output; a failure fails the restore
    check: bool = False
    when: str | None = field(default=None, metadata=_rule(check_when))

    def validate(self):
        programs = [key for key in ("argv", "shell", "commands") if getattr(self, key) is not None]
        if len(programs) > 1 and not isinstance(self.argv, str):
            yield (), f"has {'both ' if len(programs) == 2 else ''}{' and '.join(programs)}", \
                None, \
                "argv runs one program, commands several in order, shell a /bin/sh script: " \
                "keep one"
        if self.commands is not None and not self.commands:
            yield ("commands",), "must not be empty", self.commands, \
                "commands = [[\"./configure\"], [\"make\"], [\"make\", \"install\"]]"
        if self.check and (self.once or self.creates is not None or self.unless is not None):
            yield ("check",), "a check runs on every restore, so it takes no guard", None, \
                "leave out once, creates and unless, or drop check = true"
        if self.once and self.unless is not None:
            yield ("once",), "has unless too", None, \
                "once = true runs it once per VM; unless decides by a probe: keep one"
        if isinstance(self.argv, str):
            yield ("argv",), "must be a list of strings (no shell runs it)", self.argv, \
                (f"write shell = {self.argv!r} to run it with /bin/sh"
                 if _has_shell_syntax(self.argv) else
                 f"write argv = {_argv_suggestion(self.argv)}, or shell = {self.argv!r} "
                 "to run it with /bin/sh")
        elif not programs:
            yield (), "needs argv, commands or shell", None, \
                "argv = [\"make\", \"-j2\"] runs a program; commands = [[\"make\"], " \
                "[\"make\", \"install\"]] several; shell = \"...\" runs /bin/sh"
        if isinstance(self.unless, str):
            yield ("unless",), "must be a list of strings (no shell runs it)", self.unless, \
                f"write unless = {_argv_suggestion(self.unless)}, or unless = " \
                f"[\"/bin/sh\", \"-c\", {self.unless!r}] for a shell test"
        if self.timeout is not None and self.timeout <= 0:
            yield ("timeout",), "must be positive", self.timeout, "seconds, e.g. timeout = 600"
        for key in self.env:
            verdict = check_env_name(key)
            if verdict:
                yield ("env", key), verdict[0], key, verdict[1]


def _has_shell_syntax(text: str) -> bool:
    return bool(re.search(r"&&|\|\||[|;<>`]|\$\(", text))


def _argv_suggestion(text: str) -> str:
    import json
    import shlex

    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return json.dumps(words)


@dataclass
class Venv:
    """A virtual environment the profile's ``[pip]`` packages go into."""

    path: str = field(metadata=_rule(check_nonempty, hint="e.g. path = \"/content/venv\""))
    #: the interpreter it is made from (default: the one the restore runs in)
    python: str | None = field(default=None, metadata=_rule(check_nonempty))
    system_site_packages: bool = False

    def validate(self):
        # a venv is made in a folder of its own: these folders hold other things
        if self.path.rstrip("/") in ("", "~", "{home}", "{drive}", "{store}",
                                     "/content", "/kaggle/working", "/usr", "/usr/local"):
            yield ("path",), "is a folder that holds other things, not one for a venv", \
                self.path, "give a folder of its own, e.g. path = \"/content/venv\""


@dataclass
class Workdir:
    path: str = field(metadata=_rule(check_nonempty, hint="e.g. path = \"projects/vision\""))
    create: bool = False


@dataclass
class Setup:
    notebook: str = field(metadata=_rule(check_nonempty))
    parameters: dict[str, Any] = field(default_factory=dict)
    inline: bool = False
    timeout: float | None = None
    start_timeout: float | None = None
    kernel: str | None = None
    cwd: str | None = field(default=None, metadata=_rule(check_nonempty))

    def validate(self):
        import keyword

        for name in self.parameters:
            if not name.isidentifier() or keyword.iskeyword(name):
                yield ("parameters", name), "is not a Python variable name", name, \
                    "papermill assigns each parameter in a cell: use names like epochs"
        for key in ("timeout", "start_timeout"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                yield (key,), "must be a positive number of seconds", value, None


@dataclass
class Captured:
    """What the saving session ran on; informational, so a restore can say what moved."""

    python: str | None = None            # "3.12"
    platform: str | None = None          # "colab", "kaggle" or "local"
    gpu: str | None = None               # "Tesla T4"
    gpu_memory_gib: float | None = None  # 15

    def validate(self):
        if self.python is not None and not re.match(r"^\d+\.\d+$", self.python):
            yield ("python",), "is not a Python version", self.python, "write it like \"3.12\""
        if self.platform is not None and self.platform not in PLATFORM_NAMES:
            yield ("platform",), "unknown platform", self.platform, \
                f"use one of {', '.join(PLATFORM_NAMES)}"
        if self.gpu_memory_gib is not None and self.gpu_memory_gib <= 0:
            yield ("gpu_memory_gib",), "must be positive", self.gpu_memory_gib, None


@dataclass
class Profile:
    version: int = field(default=FORMAT_VERSION, metadata={"always": True})
    name: str | None = None
    description: str | None = None
    gpu: Gpu | None = None
    drive: Drive | None = None
    apt: Apt | None = None
    pip: Pip | None = None
    env: dict[str, str] = field(default_factory=dict,
                                metadata=_rule(check_placeholders, each=True))
    secrets: dict[str, str] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)
    git: list[GitRepo] = field(default_factory=list)
    #: commands that build what [venv] and [pip] need (same keys as [[run]])
    build: list[Command] = field(default_factory=list)
    run: list[Command] = field(default_factory=list)
    venv: Venv | None = None
    #: names a later cell uses, pushed into the notebook by %restore_env
    variables: dict[str, str] = field(default_factory=dict,
                                      metadata=_rule(check_placeholders, each=True))
    workdir: Workdir | None = None
    setup: Setup | None = None
    captured: Captured | None = None
    platforms: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: where it came from (a path, URL or "builtin:NAME"); not part of the file
    origin: str | None = field(default=None, compare=False, metadata={"internal": True})
    #: the label used in messages, e.g. "vision.toml"; not part of the file
    source: str = field(default="profile", compare=False, metadata={"internal": True})

    def validate(self):
        if self.version != FORMAT_VERSION:
            yield (("version",),
                   f"unsupported format version (this release reads {FORMAT_VERSION})",
                   self.version, "upgrade notebook-bootstrap or write version = 1")
        for key in self.env:
            verdict = check_env_name(key)
            if verdict:
                yield ("env", key), verdict[0], key, verdict[1]
        for key, secret in self.secrets.items():
            verdict = check_env_name(key)
            if verdict:
                yield ("secrets", key), verdict[0], key, verdict[1]
            if not secret.strip():
                yield ("secrets", key), "must name a secret", secret, \
                    "write ENV_NAME = \"SECRET_NAME\" (the name in the secret store, never a value)"
        import builtins
        import keyword

        for name in self.variables:
            if not name.isidentifier() or keyword.iskeyword(name):
                yield ("variables", name), "is not a Python variable name", name, \
                    "the notebook gets it as a variable: use names like PROJECT_ROOT"
            elif hasattr(builtins, name) or name.startswith("__"):
                yield ("variables", name), "would hide Python's own name in the notebook", \
                    name, "the notebook gets it as a variable: use names like PROJECT_ROOT"
        for name in self.platforms:
            if name not in PLATFORM_NAMES:
                yield ("platforms", name), "unknown platform", name, \
                    f"use one of {', '.join(PLATFORM_NAMES)}"

    def sections(self) -> list[str]:
        """Names of the step sections this profile fills in."""
        data = to_data(self)
        return [key for key in data
                if key not in ("version", "name", "description", "platforms", "captured")]

    def for_platform(self, platform: str) -> Profile:
        """This profile with ``[platforms.<platform>]`` merged over it."""
        overlay = self.platforms.get(platform)
        if not overlay:
            return self
        base = to_data(self)
        base.pop("platforms", None)
        merged = _deep_merge(base, overlay)
        result = from_data(merged, source=self.source)
        result.origin = self.origin
        return result


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# -- parsing and dumping -------------------------------------------------------

def toml_reader() -> Any:
    """The standard library's TOML reader (tomli, its backport, on Python 3.10)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    return tomllib


def _depth_problem(data: Any, source: str) -> Problem | None:
    from .schema import key_path

    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            return Problem(source, f"is nested deeper than {MAX_DEPTH} levels", has_value=False,
                           hint="a profile is a few flat tables; check for runaway brackets")
        where = f"{source}: {key_path(path)}" if path else source
        if isinstance(value, dict):
            for key, item in value.items():
                if "\0" in key:
                    return Problem(source, "has a key holding a NUL character (\\u0000)",
                                   has_value=False, hint="no path, name or command can hold "
                                                         "one: remove it")
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            return Problem(where, "holds a number that is nan or inf", has_value=False,
                           hint="write finite numbers only")
        elif isinstance(value, str) and "\0" in value:
            return Problem(where, "holds a NUL character (\\u0000)", has_value=False,
                           hint="no path, name or command can hold one: remove it")
    return None


def from_data(data: dict[str, Any], *, source: str = "profile") -> Profile:
    """Validate parsed TOML data and build a Profile, or raise ProfileError listing all problems."""
    problem = _depth_problem(data, source)
    if problem:
        raise ProfileError(problem, source=source)
    validator = Validator(source)
    profile = validator.table(Profile, data, ())
    if profile is not None:
        for name, overlay in profile.platforms.items():
            if not isinstance(overlay, dict) or name not in PLATFORM_NAMES:
                continue
            for key in ("version", "name", "platforms"):
                if key in overlay:
                    validator.problem(("platforms", name, key), "cannot be overridden per platform",
                                      has_value=False)
            validator.table(Profile, {k: v for k, v in overlay.items()
                                      if k not in ("version", "name", "platforms")},
                            ("platforms", name))
    if validator.problems or profile is None:
        raise ProfileError(validator.problems, source=source,
                           hint="see the profile format: `bootstrap help profile`")
    profile.source = source
    return profile


class _NotToml(ProfileError):
    """Profile text that is not even TOML (cut off, binary...); ``reason`` for ``damage``."""

    def __init__(self, problem: Problem, reason: str, source: str) -> None:
        super().__init__(problem, source=source)
        self.reason = reason


#: a chain of more dotted key parts than a profile nests (``a.b.c... = 1``); the TOML
#: reader's memory grows with the square of its length, so it is refused before reading
_LONG_DOTTED_KEY = re.compile(
    # every part starts and ends at a key boundary, so a long run of key characters
    # costs linear time, not quadratic backtracking
    r"(?<![A-Za-z0-9_-])(?:(?:[A-Za-z0-9_-]+(?![A-Za-z0-9_-])|\"[^\"\n]{0,200}\""
    r"|'[^'\n]{0,200}')[ \t]*\.[ \t]*){%d,}" % MAX_DEPTH)


def read_toml(text: str | bytes, *, source: str = "profile") -> dict[str, Any]:
    """TOML text (at most MAX_PROFILE_BYTES) as data; ProfileError for anything else.

    Bounded in time and memory whatever the input: the size is checked first,
    dotted keys longer than a profile can nest are refused before the reader
    sees them, and every error the reader can raise becomes a ProfileError.
    """
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(Problem(source, f"is {size} bytes, over the {MAX_PROFILE_BYTES} byte "
                                   "limit for a profile", has_value=False,
                                   hint="keep data in [[files]] entries, not in the profile"),
                           source=source)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _NotToml(Problem(f"{source}: byte {exc.start}", "is not UTF-8 text",
                                   has_value=False, hint="save the profile as UTF-8"),
                           "is not UTF-8 text", source) from None
    if _LONG_DOTTED_KEY.search(text):
        raise ProfileError(Problem(source, f"has a dotted key nested deeper than {MAX_DEPTH} "
                                   "levels", has_value=False,
                                   hint="a profile is a few flat tables; check the keys"),
                           source=source)
    tomllib = toml_reader()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        where = f"{source}: line {found.group(1)}, column {found.group(2)}" if found else source
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", message).splitlines()[0]
        raise _NotToml(Problem(where, f"is not valid TOML: {what}", has_value=False,
                               hint="check quotes, brackets and '=' on that line"),
                       f"is not valid TOML ({message.splitlines()[0]})", source) from None
    except RecursionError:
        raise _NotToml(Problem(source, f"is nested deeper than {MAX_DEPTH} levels",
                               has_value=False, hint="check for runaway brackets"),
                       "is nested too deeply", source) from None
    except (ValueError, OverflowError, MemoryError) as exc:
        # e.g. an integer of thousands of digits (Python's int size limit)
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise _NotToml(Problem(source, f"cannot be read: {first[:200]}", has_value=False,
                               hint="check for an absurdly long number or value"),
                       f"cannot be read ({first[:200]})", source) from None
    return data


def parse(text: str | bytes, *, source: str = "profile") -> Profile:
    """Parse TOML text into a validated Profile."""
    return from_data(read_toml(text, source=source), source=source)


def dump(profile: Profile) -> str:
    """Render a Profile as TOML text; ``parse(dump(p)) == p``."""
    import tomlkit

    return tomlkit.dumps(to_data(profile))


# -- placeholders ----------------------------------------------------------------

def expand(text: str, values: Mapping[str, str], environ: Mapping[str, str] | None = None,
           *, where: str = "profile") -> str:
    """Replace ``{name}`` and ``{env:VAR}`` placeholders; ``{{``/``}}`` are literal braces."""
    environ = os.environ if environ is None else environ
    # "vision.toml: run[0].argv[1]" names the file, for the error's heading
    source = where.partition(": ")[0] if ": " in where else None

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name is None:
            raise ProfileError(Problem(where, "has an unmatched brace", text,
                                       "write {{ or }} for a literal brace"), source=source)
        env = _ENV_PLACEHOLDER.match(name)
        if env:
            var, default = env.group(1), env.group(2)
            if var in environ:
                return environ[var]
            if default is not None:
                return default
            raise ProfileError(Problem(where, f"uses {{env:{var}}} but {var} is not set", text,
                                       f"set {var} first (e.g. in [env] or [secrets]), or give "
                                       f"a default: {{env:{var}:-value}}"), source=source)
        if name == "here" and name not in values:
            raise ProfileError(Problem(where, "{here} needs a profile loaded from a file", text,
                                       "use {drive} or {store} in a profile fetched by URL"),
                               source=source)
        if name not in values:
            raise ProfileError(Problem(where, f"unknown placeholder {{{name}}}", text,
                                       PLACEHOLDER_HINT), source=source)
        return values[name]

    return _PLACEHOLDER.sub(replace, text)


def check_expanded(key: str, text: str, expanded: str, *, where: str) -> None:
    """Check ``expanded`` (``text`` with its placeholders filled in) again with the rule of
    ``key`` (``pip.constraints[0]``): a value from the environment must not turn a valid
    entry into an option, a second line or a plain-http URL. Raises ProfileError."""
    if expanded == text:
        return
    from .schema import rule_at

    rule = rule_at(Profile, key)
    if rule is None:
        return
    # braces an expanded value brings are literal, not placeholders
    verdict = rule(expanded.replace("{", "{{").replace("}", "}}"))
    if verdict:
        raise ProfileError(Problem(where, f"{verdict[0]} once its placeholders are expanded",
                                   expanded, verdict[1] or "check the values it uses"))


# -- finding a profile -------------------------------------------------------------

def builtin_dir() -> Path:
    """The folder of profiles shipped with the package (top-level ``profiles/``)."""
    packaged = Path(__file__).resolve().parent / "_profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "profiles"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def is_url(spec: str) -> bool:
    return "://" in spec


def is_path(spec: str) -> bool:
    return os.sep in spec or spec.endswith(".toml") or spec.startswith(".") or spec.startswith("~")


def locate(spec: str, profiles_dir: Path | None) -> Path:
    """Find the file for a profile name or path (no URL)."""
    if is_path(spec):
        path = Path(spec).expanduser()
        if path.is_dir():
            found = sorted(p.name for p in path.glob("*.toml"))
            raise ProfileError(Problem(str(path), "is a folder, not a profile file",
                                       has_value=False,
                                       hint=f"give a .toml file in it ({', '.join(found)})"
                                       if found else "give the path of a .toml profile file"))
        if not path.is_file():
            raise ProfileError(Problem(str(path), "no such profile file", has_value=False,
                                       hint="check the path, or give a profile name"))
        return path
    if not _PROFILE_NAME.match(spec):
        raise ProfileError(Problem(spec, "is not a profile name, path or https URL",
                                   has_value=False,
                                   hint="names use letters, digits, '.', '_' and '-'"))
    searched = []
    for folder in (profiles_dir, builtin_dir()):
        if folder is None:
            continue
        candidate = folder / f"{spec}.toml"
        searched.append(str(folder))
        if candidate.is_file():
            return candidate
    known = builtin_names()
    if profiles_dir is not None and profiles_dir.is_dir():
        known = sorted({*known, *(p.stem for p in profiles_dir.glob("*.toml"))})
    raise ProfileError(Problem(spec, "no profile with this name", has_value=False,
                               hint=f"searched {', '.join(searched)}; known: "
                                    f"{', '.join(known) or 'none'}; save one with "
                                    f"'bootstrap save {spec}' or %save_env {spec} "
                                    "(`bootstrap help profile`)"))


def fetch_url(spec: str, *, timeout: float = 30.0, max_bytes: int = MAX_PROFILE_BYTES,
              deadline: float = PROFILE_DEADLINE_S) -> bytes:
    """Fetch a profile over https; ``#sha256=HEX`` pins its content.

    ``timeout`` bounds each network wait, ``deadline`` the whole fetch.
    """
    url, _, fragment = spec.partition("#")
    if not url.lower().startswith("https://"):
        raise ProfileError(Problem(url, "profiles are fetched over https only", has_value=False,
                                   hint="use an https:// URL"))
    pin = None
    if fragment:
        if not fragment.startswith("sha256=") or not _SHA256.match(fragment[7:].lower()):
            raise ProfileError(Problem(spec, "has a bad pin", has_value=False,
                                       hint="write URL#sha256=<64 hex digits>"))
        pin = fragment[7:].lower()
    import requests
    import urllib3

    end = time.monotonic() + deadline
    try:
        with requests.get(url, timeout=(10, min(timeout, deadline)), stream=True) as resp:
            if resp.url.lower().startswith("http://"):
                raise ProfileError(Problem(url, "redirected to plain http", has_value=False,
                                           hint="use a URL that stays on https"))
            if resp.status_code != 200:
                raise ProfileError(Problem(url, f"server answered HTTP {resp.status_code}",
                                           has_value=False, hint="check the URL"))
            body = b""
            # read1 returns what one socket read brings, so a server that trickles
            # a byte at a time still lets the deadline be checked
            read1 = getattr(resp.raw, "read1", None)
            while True:
                if time.monotonic() >= end:
                    raise ProfileError(Problem(url, f"did not arrive within {deadline:g} s",
                                               has_value=False,
                                               hint="the server is too slow or stalled; retry, "
                                                    "or copy the profile into the store"))
                chunk = (read1(65536, decode_content=True) if read1 is not None
                         else resp.raw.read(65536, decode_content=True))
                if not chunk:
                    break
                body += chunk
                if len(body) > max_bytes:
                    raise ProfileError(Problem(url, f"is over the {max_bytes} byte limit for a "
                                               "profile", has_value=False,
                                               hint="check that the URL points at a profile"))
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise ProfileError(Problem(url, f"could not be fetched: {exc.__class__.__name__}",
                                   has_value=False, hint="check the URL and the network"),
                           ) from None
    if pin is not None:
        digest = hashlib.sha256(body).hexdigest()
        if digest != pin:
            raise ProfileError(Problem(url, f"content has sha256 {digest}, not the pinned {pin}",
                                       has_value=False,
                                       hint="the file changed: check it and update the pin"))
    return body


def load(spec: str | os.PathLike[str], *, profiles_dir: Path | None = None) -> Profile:
    """Load a profile given as a name, a path or an https URL."""
    text = os.fspath(spec)
    if is_url(text):
        body = fetch_url(text)
        label = text.partition("#")[0].rsplit("/", 1)[-1] or text
        profile = parse(body, source=label)
        profile.origin = text
        return profile
    path = locate(text, profiles_dir)
    try:
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            raise ProfileError(Problem(path.name, f"is {size} bytes, over the {MAX_PROFILE_BYTES} "
                                       "byte limit for a profile", has_value=False,
                                       hint="keep data in [[files]] entries, not in the profile"),
                               source=path.name)
        with open(path, "rb") as handle:  # bounded, should the file grow meanwhile
            body = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(Problem(str(path), f"cannot be read: {exc.strerror}", has_value=False,
                                   hint="check the file's permissions")) from None
    # read once: damage (empty, cut off, not TOML) falls back to history
    try:
        if not body.strip():
            raise _NotToml(Problem(path.name, "is empty", has_value=False,
                                   hint="write a profile into it (`bootstrap help "
                                        "profile`) or save one with %save_env NAME"),
                           "is empty", path.name)
        data = read_toml(body, source=path.name)
    except _NotToml as damaged:
        profile = recover(path, damaged.reason)
        if profile is None:
            raise
    else:
        profile = from_data(data, source=path.name)
        profile.origin = str(path)
    if profile.name is None:
        profile.name = path.stem
    return profile


class DamagedProfileWarning(UserWarning):
    """A profile file was unreadable and the newest readable copy from its history was used."""


def damage(body: bytes) -> str | None:
    """Why ``body`` is not even TOML (empty, cut off, binary), or None when it parses.

    Only such damage falls back to history; a profile that parses but does not
    validate is the user's edit and is reported, never silently replaced.
    """
    if not body.strip():
        return "is empty"
    try:
        read_toml(body)
    except _NotToml as damaged:
        return damaged.reason
    except ProfileError:
        return None  # TOML, but refused for its size or shape: reported, not recovered
    return None


def recover(path: Path, reason: str) -> Profile | None:
    """The newest valid copy of ``path`` in its ``history/`` folder, with a warning; or None."""
    import warnings

    from .store import history_copies

    for copy in history_copies(path):
        try:
            body = copy.read_bytes()
            if damage(body) is not None:
                continue
            profile = parse(body, source=copy.name)
        except (OSError, ProfileError):
            continue
        profile.origin = str(copy)
        warnings.warn(f"profile {path.name} {reason}; using the newest readable copy from its "
                      f"history instead: {copy}. Fix {path.name} or save the profile again.",
                      DamagedProfileWarning, stacklevel=3)
        return profile
    return None
