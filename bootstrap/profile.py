"""The profile: format version 1, its typed model, TOML load/dump and lookup.

A profile says what a fresh VM needs: one optional table per restore step
(``[gpu]``, ``[drive]``, ``[apt]``, ``[pip]``, ``[env]``, ``[secrets]``,
``[[files]]``, ``[[git]]``, ``[[run]]``, ``[workdir]``, ``[setup]``) and
per-platform overrides under ``[platforms.NAME]``. Strings may hold
placeholders (``{drive}``, ``{store}``, ``{home}``, ``{python}``,
``{env:VAR}``) that are expanded at restore time, never at load time.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import Problem, ProfileError
from .schema import Validator, to_data

FORMAT_VERSION = 1
MAX_PROFILE_BYTES = 256 * 1024
MAX_DEPTH = 24
PLATFORM_NAMES = ("colab", "kaggle", "local")

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER_NAMES = ("drive", "store", "home", "python")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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
        if name.startswith("env:") and _ENV_NAME.match(name[4:]):
            continue
        return (f"unknown placeholder {{{name}}}",
                "use {drive}, {store}, {home}, {python} or {env:NAME}")
    return None


def check_requirement(text: str) -> tuple[str, str | None] | None:
    """A pip entry must be one PEP 508 requirement: no options, no local files."""
    from packaging.requirements import InvalidRequirement, Requirement

    if "\n" in text or "\r" in text:
        return ("contains a line break", "put each requirement in its own list entry")
    stripped = text.strip()
    if stripped.startswith("-") or re.search(r"\s-{1,2}[A-Za-z]", stripped):
        return ("is a pip option, not a requirement",
                "list only requirements; use the pip table's index_url, extra_index_urls, "
                "find_links and constraints keys for options")
    try:
        req = Requirement(stripped)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        return ("is not a PEP 508 requirement",
                f"write it like 'name', 'name==1.2' or 'name>=1,<2' ({first})")
    if req.url is not None:
        scheme = req.url.split("://", 1)[0].lower() if "://" in req.url else ""
        if scheme not in PIP_URL_SCHEMES:
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


def check_url(text: str) -> tuple[str, str | None] | None:
    lowered = text.lower()
    if lowered.startswith("http://"):
        return ("plain http is refused", "use an https:// URL")
    if not (lowered.startswith("https://") or lowered.startswith("file://")
            or text.startswith("/") or text.startswith("{")):
        return ("is not an https URL or a path", None)
    return check_placeholders(text)


def check_sha256(text: str) -> tuple[str, str | None] | None:
    if not _SHA256.match(text):
        return ("is not a sha256 hex digest", "64 lowercase hex characters (sha256sum FILE)")
    return None


def check_nonempty(text: str) -> tuple[str, str | None] | None:
    if not text.strip():
        return ("must not be empty", None)
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

    def validate(self):
        if self.min_memory_gib is not None and self.min_memory_gib <= 0:
            yield ("min_memory_gib",), "must be positive", self.min_memory_gib, None
        if self.min_cuda is not None and not re.match(r"^\d+(\.\d+)*$", self.min_cuda):
            yield ("min_cuda",), "is not a version", self.min_cuda, "write it like \"12.2\""


@dataclass
class Drive:
    mount: bool = True
    mountpoint: str | None = field(default=None, metadata=_rule(check_nonempty))


@dataclass
class Apt:
    packages: list[str] = field(default_factory=list, metadata=_rule(check_apt_name, each=True))


@dataclass
class Pip:
    packages: list[str] = field(default_factory=list,
                                metadata=_rule(check_requirements_list, each=True))
    no_index: bool = False
    index_url: str | None = field(default=None, metadata=_rule(check_url))
    extra_index_urls: list[str] = field(default_factory=list,
                                        metadata=_rule(check_url, each=True))
    find_links: list[str] = field(default_factory=list, metadata=_rule(check_url, each=True))
    constraints: list[str] = field(default_factory=list,
                                   metadata=_rule(check_requirements_list, each=True))
    #: install through the pinned lock and the store's wheels (bootstrap/locked.py)
    lock: bool = True


@dataclass
class FileEntry:
    dest: str = field(metadata=_rule(check_nonempty, hint="where the file goes, e.g. "
                                     "\"/content/weights/model.pt\""))
    url: str | None = field(default=None, metadata=_rule(check_url))
    sha256: str | None = field(default=None, metadata=_rule(check_sha256))
    store: str | None = field(default=None, metadata=_rule(check_nonempty))
    unpack: bool = False

    def validate(self):
        if (self.url is None) == (self.store is None):
            yield (), "needs exactly one of url or store", None, \
                "url = \"https://...\" with sha256, or store = \"path/in/store\""
        if self.url is not None and self.sha256 is None:
            yield ("sha256",), "missing required key", None, \
                "downloads are verified: add sha256 = \"...\" (sha256sum FILE)"


@dataclass
class GitRepo:
    url: str = field(metadata=_rule(check_nonempty))
    dest: str = field(metadata=_rule(check_nonempty))
    ref: str | None = None
    install: bool = False
    editable: bool = True


@dataclass
class Command:
    argv: list[str] | None = None
    shell: str | None = None
    name: str | None = None
    cwd: str | None = field(default=None, metadata=_rule(check_nonempty))
    env: dict[str, str] = field(default_factory=dict,
                                metadata=_rule(check_placeholders, each=True))
    timeout: float | None = None
    creates: str | None = field(default=None, metadata=_rule(check_nonempty))
    unless: list[str] | None = None

    def validate(self):
        if (self.argv is None) == (self.shell is None):
            yield (), "needs exactly one of argv or shell", None, \
                "argv = [\"make\", \"-j2\"] runs a program; shell = \"...\" runs /bin/sh"
        if self.argv is not None and not self.argv:
            yield ("argv",), "must not be empty", self.argv, None
        if self.timeout is not None and self.timeout <= 0:
            yield ("timeout",), "must be positive", self.timeout, None


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
    run: list[Command] = field(default_factory=list)
    workdir: Workdir | None = None
    setup: Setup | None = None
    platforms: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: where it came from (a path, URL or "builtin:NAME"); not part of the file
    origin: str | None = field(default=None, compare=False, metadata={"internal": True})

    def validate(self):
        if self.version != FORMAT_VERSION:
            yield ("version",), f"unsupported format version (this release reads {FORMAT_VERSION})", \
                self.version, "upgrade notebook-bootstrap or write version = 1"
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
        for name in self.platforms:
            if name not in PLATFORM_NAMES:
                yield ("platforms", name), "unknown platform", name, \
                    f"use one of {', '.join(PLATFORM_NAMES)}"

    def sections(self) -> list[str]:
        """Names of the step sections this profile fills in."""
        data = to_data(self)
        return [key for key in data if key not in ("version", "name", "description", "platforms")]

    def for_platform(self, platform: str) -> Profile:
        """This profile with ``[platforms.<platform>]`` merged over it."""
        overlay = self.platforms.get(platform)
        if not overlay:
            return self
        base = to_data(self)
        base.pop("platforms", None)
        merged = _deep_merge(base, overlay)
        result = from_data(merged, source=self.origin or "profile")
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

def _depth_problem(data: Any, source: str) -> Problem | None:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return Problem(source, f"is nested deeper than {MAX_DEPTH} levels", has_value=False,
                           hint="a profile is a few flat tables; check for runaway brackets")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
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
                           hint="see the profile format in README.md")
    return profile


def parse(text: str | bytes, *, source: str = "profile") -> Profile:
    """Parse TOML text into a validated Profile."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib

    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(Problem(source, f"is {size} bytes, over the {MAX_PROFILE_BYTES} byte "
                                   "limit for a profile", has_value=False,
                                   hint="keep data in [[files]] entries, not in the profile"),
                           source=source)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileError(Problem(f"{source}: byte {exc.start}", "is not UTF-8 text",
                                       has_value=False, hint="save the profile as UTF-8"),
                               source=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        where = f"{source}: line {found.group(1)}, column {found.group(2)}" if found else source
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", message).splitlines()[0]
        raise ProfileError(Problem(where, f"is not valid TOML: {what}", has_value=False,
                                   hint="check quotes, brackets and '=' on that line"),
                           source=source) from None
    except RecursionError:
        raise ProfileError(Problem(source, f"is nested deeper than {MAX_DEPTH} levels",
                                   has_value=False, hint="check for runaway brackets"),
                           source=source) from None
    return from_data(data, source=source)


def dump(profile: Profile) -> str:
    """Render a Profile as TOML text; ``parse(dump(p)) == p``."""
    import tomlkit

    return tomlkit.dumps(to_data(profile))


# -- placeholders ----------------------------------------------------------------

def expand(text: str, values: Mapping[str, str], environ: Mapping[str, str] | None = None,
           *, where: str = "profile") -> str:
    """Replace ``{name}`` and ``{env:VAR}`` placeholders; ``{{``/``}}`` are literal braces."""
    environ = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name is None:
            raise ProfileError(Problem(where, "has an unmatched brace", text,
                                       "write {{ or }} for a literal brace"))
        if name.startswith("env:"):
            var = name[4:]
            if var not in environ:
                raise ProfileError(Problem(where, f"uses {{env:{var}}} but {var} is not set", text,
                                           f"set {var} first (e.g. in [env] or [secrets])"))
            return environ[var]
        if name not in values:
            raise ProfileError(Problem(where, f"unknown placeholder {{{name}}}", text,
                                       "use {drive}, {store}, {home}, {python} or {env:NAME}"))
        return values[name]

    return _PLACEHOLDER.sub(replace, text)


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
                                    f"'bootstrap save {spec}' or %save_env {spec}"))


def fetch_url(spec: str, *, timeout: float = 30.0, max_bytes: int = MAX_PROFILE_BYTES) -> bytes:
    """Fetch a profile over https; ``#sha256=HEX`` pins its content."""
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

    try:
        with requests.get(url, timeout=(10, timeout), stream=True) as resp:
            if resp.url.lower().startswith("http://"):
                raise ProfileError(Problem(url, "redirected to plain http", has_value=False,
                                           hint="use a URL that stays on https"))
            if resp.status_code != 200:
                raise ProfileError(Problem(url, f"server answered HTTP {resp.status_code}",
                                           has_value=False, hint="check the URL"))
            body = b""
            for chunk in resp.iter_content(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise ProfileError(Problem(url, f"is over the {max_bytes} byte limit for a "
                                               "profile", has_value=False,
                                               hint="check that the URL points at a profile"))
    except requests.RequestException as exc:
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
        body = path.read_bytes()
    except OSError as exc:
        raise ProfileError(Problem(str(path), f"cannot be read: {exc.strerror}", has_value=False,
                                   hint="check the file's permissions")) from None
    profile = parse(body, source=path.name)
    profile.origin = str(path)
    if profile.name is None:
        profile.name = path.stem
    return profile
