"""The pinned lock of a profile: exactly which distributions its ``[pip]`` section installs.

The first restore resolves the profile once (``uv pip compile``) and records
the result; later restores install exactly that set without asking an index
again. The file is a PEP 751 lock (``pylock.<profile>.toml``) for one
environment: each package has its version and the one wheel (name, URL, size,
sha256) this platform installs, or its sdist when no wheel fits. What only
notebook-bootstrap needs lives under ``[tool.notebook-bootstrap]``: the hash
of the profile's pip inputs (a changed profile is resolved again), the
Python it was made for, which packages were already installed when it was
made (``base``: the platform's own, left alone) and the sha256 of each wheel
built here from an sdist (so the store's copy can be checked).

Why PEP 751 rather than a requirements file with hashes: it carries each
file's URL and size, so a wheel can be fetched straight into the store with
no resolver, and other tools (uv, pip) read the format.

This module reads and writes the file, decides whether a lock still fits the
target interpreter, and resolves a new one. Installing from it is
``bootstrap.locked``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context
    from .interpreter import Interpreter

LOCK_VERSION = "1.0"
TOOL = "notebook-bootstrap"
#: bumped when what notebook-bootstrap keeps under [tool.notebook-bootstrap] changes meaning
FORMAT = 1


@dataclass
class Artifact:
    """One file of a package: a wheel or an sdist."""

    filename: str
    sha256: str
    url: str | None = None
    size: int | None = None


@dataclass
class Package:
    name: str                      # canonical name
    version: str
    wheel: Artifact | None = None  # the index's wheel this platform installs
    sdist: Artifact | None = None  # the sdist, built here when no wheel fits
    built: Artifact | None = None  # the wheel built from ``sdist`` (kept in the store)
    base: bool = False             # installed already when locked, and left alone

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass
class Lock:
    packages: list[Package]
    inputs: str                    # hash of the profile's pip inputs it was resolved from
    requirements: list[str] = field(default_factory=list)
    python: str = ""               # full version of the interpreter it was made for
    implementation: str = ""
    sys_platform: str = ""
    machine: str = ""

    def by_name(self) -> dict[str, Package]:
        return {p.name: p for p in self.packages}


# -- inputs and location ------------------------------------------------------------

def inputs_digest(pip: Any) -> str:
    """A hash of what the resolution depends on in the profile (placeholders unexpanded)."""
    data = {
        "format": FORMAT,
        "packages": list(pip.packages),
        "constraints": list(getattr(pip, "constraints", []) or []),
        "index_url": getattr(pip, "index_url", None),
        "extra_index_urls": list(getattr(pip, "extra_index_urls", []) or []),
        "find_links": list(getattr(pip, "find_links", []) or []),
        "no_index": bool(getattr(pip, "no_index", False)),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def lock_name(profile_name: str) -> str:
    # PEP 751: pylock.<name>.toml with no dots in <name>
    return f"pylock.{profile_name.replace('.', '-') or 'profile'}.toml"


def path_for(profile: Any, store_profiles: Path) -> Path:
    """Where the lock of ``profile`` lives: always in the store's ``profiles/locks/``.

    The store outlives the VM and is the one place restores write to; a profile's
    own folder may be a repository checkout, a read-only dataset or Drive shared
    with others. Profiles of the store and shipped ones are locked by name; a
    profile file elsewhere by its name and a digest of its path, so two files
    named alike do not share a lock.
    """
    import hashlib

    from .profile import builtin_dir, is_url

    origin = profile.origin
    if origin and not is_url(origin):
        source = Path(origin).absolute()
        if source.parent in (builtin_dir().absolute(), store_profiles.absolute()):
            return store_profiles / "locks" / lock_name(source.stem)
        digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
        return store_profiles / "locks" / lock_name(f"{source.stem}-{digest}")
    return store_profiles / "locks" / lock_name(profile.name or "profile")


# -- the target -----------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _tags(version: tuple[int, int], implementation: str, same: bool) -> tuple[Any, ...]:
    from packaging import tags

    if same:
        return tuple(tags.sys_tags())
    if implementation == "cpython":
        found = list(tags.cpython_tags(version)) + list(
            tags.compatible_tags(version, f"cp{version[0]}{version[1]}"))
    else:
        found = list(tags.compatible_tags(version))
    return tuple(found)


def target_tags(interp: Interpreter) -> dict[Any, int]:
    """Wheel tags the target accepts, best first, as tag -> rank."""
    markers = interp.markers()
    impl = markers.get("implementation_name", "cpython")
    same = (tuple(interp.version[:2]) == tuple(sys.version_info[:2])
            and impl == sys.implementation.name)
    return {tag: i for i, tag in enumerate(_tags(tuple(interp.version[:2]), impl, same))}


def wheel_rank(filename: str, tags: Mapping[Any, int]) -> int | None:
    """The rank of the best tag of a wheel file name (None: it does not fit)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    ranks = [tags[t] for t in wheel_tags if t in tags]
    return min(ranks) if ranks else None


def misfit(lock: Lock, inputs: str, interp: Interpreter, installed: Mapping[str, str]) -> str | None:
    """Why ``lock`` does not fit the target any more (None when it does)."""
    if lock.inputs != inputs:
        return "the profile's [pip] section changed since it was made"
    markers = interp.markers()
    minor = ".".join(str(n) for n in interp.version[:2])
    if ".".join(lock.python.split(".")[:2]) != minor:
        return f"it was made for Python {lock.python}, this is Python {minor}"
    if lock.implementation and lock.implementation != markers.get("implementation_name"):
        return f"it was made for {lock.implementation}, this is {markers.get('implementation_name')}"
    if (lock.sys_platform, lock.machine) != (markers.get("sys_platform"),
                                             markers.get("platform_machine")):
        return (f"it was made on {lock.sys_platform}/{lock.machine}, this is "
                f"{markers.get('sys_platform')}/{markers.get('platform_machine')}")
    tags = target_tags(interp)
    for pkg in lock.packages:
        wheel = pkg.wheel or pkg.built
        if wheel is not None and wheel_rank(wheel.filename, tags) is None:
            if pkg.wheel is None and pkg.sdist is not None:
                continue  # a wheel built elsewhere: build it again here
            return f"{wheel.filename} does not fit this platform"
        have = installed.get(pkg.name)
        if pkg.base and have is not None and have != pkg.version:
            return (f"it was made with the platform's {pkg.name} {pkg.version}, "
                    f"this machine has {have}")
    return None


# -- reading and writing ------------------------------------------------------------------

def _artifact(data: Any, where: str) -> Artifact | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a table")
    url = data.get("url") or data.get("path")
    name = data.get("name") or (unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if url else None)
    sha = (data.get("hashes") or {}).get("sha256")
    if not name or not isinstance(sha, str):
        raise ValueError(f"{where} needs a name and a sha256")
    size = data.get("size")
    return Artifact(name, sha.lower(), url, size if isinstance(size, int) else None)


def parse(text: str) -> Lock:
    """Read a lock written by :func:`dump`; raises ValueError when it is not one."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML ({exc})") from None
    if str(data.get("lock-version", "")).split(".")[0] != "1":
        raise ValueError(f"lock-version {data.get('lock-version')!r} is not 1.x")
    tool = (data.get("tool") or {}).get(TOOL)
    if not isinstance(tool, dict) or tool.get("format") != FORMAT:
        raise ValueError(f"it has no [tool.{TOOL}] table of format {FORMAT}")
    packages = []
    for i, entry in enumerate(data.get("packages") or []):
        where = f"packages[{i}]"
        extra = (entry.get("tool") or {}).get(TOOL) or {}
        wheels = entry.get("wheels") or []
        packages.append(Package(
            name=str(entry["name"]), version=str(entry["version"]),
            wheel=_artifact(wheels[0], f"{where}.wheels[0]") if wheels else None,
            sdist=_artifact(entry.get("sdist"), f"{where}.sdist"),
            built=_artifact(extra.get("built-wheel"), f"{where}.built-wheel"),
            base=bool(extra.get("base", False))))
    return Lock(packages, str(tool.get("inputs", "")), list(tool.get("requirements", [])),
                str(tool.get("python", "")), str(tool.get("implementation", "")),
                str(tool.get("sys-platform", "")), str(tool.get("machine", "")))


def read(path: Path) -> Lock | None:
    """The lock at ``path``; None when there is none. ValueError when it is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from None
    try:
        return parse(text)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"is not a lock of this format ({exc!r})") from None


def _str(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)  # a JSON string is a TOML basic string


def _inline(artifact: Artifact, *, url: bool = True) -> str:
    parts = [f"name = {_str(artifact.filename)}"]
    if url and artifact.url:
        from .redact import clean_url

        key = "url" if "://" in artifact.url else "path"
        # the lock is kept in the store (on Drive, in a pack): an index's signed link or
        # credential is left out (a signed link expires anyway; the store keeps the wheel)
        shown = clean_url(artifact.url)[0] if key == "url" else artifact.url
        parts.append(f"{key} = {_str(shown)}")
    if artifact.size is not None:
        parts.append(f"size = {artifact.size}")
    parts.append(f"hashes = {{ sha256 = {_str(artifact.sha256)} }}")
    return "{ " + ", ".join(parts) + " }"


def dump(lock: Lock, *, profile: str = "") -> str:
    minor = ".".join(lock.python.split(".")[:2])
    env = (f"implementation_name == '{lock.implementation}' and python_version == '{minor}' "
           f"and sys_platform == '{lock.sys_platform}' and platform_machine == '{lock.machine}'")
    out = [f"# The pinned set of Python distributions for the [pip] section of {profile or 'a profile'},",
           "# written by notebook-bootstrap. A restore installs exactly this set; run",
           "# `bootstrap lock PROFILE --upgrade` to resolve it again on purpose.",
           f"lock-version = {_str(LOCK_VERSION)}",
           f"environments = [{_str(env)}]",
           f"requires-python = {_str(f'=={minor}.*')}",
           f"created-by = {_str(TOOL)}", ""]
    for pkg in sorted(lock.packages, key=lambda p: p.name):
        out += ["[[packages]]", f"name = {_str(pkg.name)}", f"version = {_str(pkg.version)}"]
        if pkg.wheel:
            out.append(f"wheels = [{_inline(pkg.wheel)}]")
        if pkg.sdist:
            out.append(f"sdist = {_inline(pkg.sdist)}")
        extra = []
        if pkg.base:
            extra.append("base = true")
        if pkg.built:
            extra.append(f"built-wheel = {_inline(pkg.built, url=False)}")
        if extra:
            out.append(f"tool.{TOOL} = {{ {', '.join(extra)} }}")
        out.append("")
    out += [f"[tool.{TOOL}]", f"format = {FORMAT}", f"inputs = {_str(lock.inputs)}",
            "requirements = [" + ", ".join(_str(r) for r in lock.requirements) + "]",
            f"python = {_str(lock.python)}", f"implementation = {_str(lock.implementation)}",
            f"sys-platform = {_str(lock.sys_platform)}", f"machine = {_str(lock.machine)}", ""]
    return "\n".join(out)


# -- resolving ------------------------------------------------------------------------------

def preferences(installed: Mapping[str, str], old: Lock | None) -> str:
    """An output file uv reads as preferred versions: what is installed, then the old pins."""
    prefer = dict(installed)
    for pkg in old.packages if old else ():
        prefer.setdefault(pkg.name, pkg.version)
    return "".join(f"{name}=={version}\n" for name, version in sorted(prefer.items()))


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def parse_pins(text: str) -> list[tuple[str, str]]:
    """``name==version`` lines of uv's requirements.txt output, as (canonical name, version)."""
    from packaging.utils import canonicalize_name

    pins = []
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins.append((canonicalize_name(match.group(1)), match.group(2)))
    return pins


def local_dirs(options: list[str]) -> list[Path]:
    """The ``--find-links`` folders on this machine, from uv options."""
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    out = []
    for flag, value in zip(options, options[1:]):
        if flag != "--find-links":
            continue
        path = Path(url2pathname(urlsplit(value).path)) if value.startswith("file:") \
            else Path(value) if "://" not in value else None
        if path is not None and path.is_dir():
            out.append(path)
    return out


def without_local_dirs(options: list[str], dirs: list[Path]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, value in enumerate(options):
        if skip:
            skip = False
            continue
        if value == "--find-links" and i + 1 < len(options) and any(
                str(d) in options[i + 1] for d in dirs):
            skip = True
            continue
        out.append(value)
    return out


def find_local(pins: list[tuple[str, str]], dirs: list[Path],
               tags: Mapping[Any, int]) -> dict[str, Package]:
    """Packages whose file is in a local find-links folder: the best wheel, else the sdist.

    Hashing these files ourselves is much quicker than asking uv for hashes of
    a local folder, which it computes slowly.
    """
    from concurrent.futures import ThreadPoolExecutor

    from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename,
                                 parse_wheel_filename)
    from packaging.version import InvalidVersion, Version

    wanted = {}
    for name, version in pins:
        try:
            wanted[name] = Version(version)
        except InvalidVersion:
            continue
    wheels: dict[str, tuple[int, Path]] = {}
    sdists: dict[str, Path] = {}
    for folder in dirs:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for filename in names:
            try:
                if filename.endswith(".whl"):
                    name, version, _, _ = parse_wheel_filename(filename)
                    rank = wheel_rank(filename, tags)
                    if rank is not None and wanted.get(name) == version and (
                            name not in wheels or rank < wheels[name][0]):
                        wheels[name] = (rank, folder / filename)
                elif filename.endswith((".tar.gz", ".zip")):
                    name, version = parse_sdist_filename(filename)
                    if wanted.get(name) == version and name not in sdists:
                        sdists[name] = folder / filename
            except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
                continue
    files = {name: path for name, (_, path) in wheels.items()}
    files.update({name: path for name, path in sdists.items() if name not in files})

    def describe(path: Path) -> Artifact:
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
                size += len(block)
        return Artifact(path.name, digest.hexdigest(), path.resolve().as_uri(), size)

    with ThreadPoolExecutor(max_workers=4) as pool:
        described = dict(zip(files, pool.map(describe, files.values())))
    versions = dict(pins)
    out = {}
    for name, artifact in described.items():
        is_wheel = name in wheels
        out[name] = Package(name, versions[name], artifact if is_wheel else None,
                            None if is_wheel else artifact)
    return out


def from_uv(data: Mapping[str, Any], tags: Mapping[Any, int]) -> dict[str, Package]:
    """Packages from ``uv pip compile --format pylock.toml`` output, one file each."""
    from packaging.utils import canonicalize_name

    out = {}
    for i, entry in enumerate(data.get("packages") or []):
        name = canonicalize_name(str(entry["name"]))
        version = str(entry["version"])
        best: tuple[int, Artifact] | None = None
        for j, raw in enumerate(entry.get("wheels") or []):
            artifact = _artifact(raw, f"packages[{i}].wheels[{j}]")
            assert artifact is not None
            rank = wheel_rank(artifact.filename, tags)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, artifact)
        sdist = _artifact(entry.get("sdist"), f"packages[{i}].sdist")
        if best is None and sdist is None:
            raise ValueError(f"{name} {version} has neither a wheel for this platform nor an sdist")
        out[name] = Package(name, version, best[1] if best else None,
                            sdist if best is None else None)
    return out


def resolve(ctx: Context, requirements: list[str], *, inputs: str, options: list[str],
            constraints: list[str], installed: Mapping[str, str], old: Lock | None,
            upgrade: bool = False, quiet: bool = False, background: bool = False) -> Lock:
    """Resolve ``requirements`` for the target with uv, preferring what is installed.

    Two steps: ``uv pip compile`` pins the versions; then each pinned file is
    found, in a local find-links folder (hashed here) or through the indexes
    (``uv pip compile --no-deps --format pylock.toml`` of the pins, whose
    hashes come from the index). ``background``: this runs beside an install
    the user waits for, so uv runs at a lower CPU priority (``nice``).
    """
    import shutil
    import tempfile

    from .errors import StepError
    from .interpreter import inspect
    from .steps.pip import uv_binary, uv_environment

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    env, _ = uv_environment(ctx.environ)
    nice = shutil.which("nice") if background else None
    prefix = [nice, "-n", "10"] if nice else []
    on_line = None if quiet else ctx.say
    interp = inspect(ctx.python)
    tags = target_tags(interp)
    with tempfile.TemporaryDirectory(prefix="bootstrap-lock-") as tmp:
        source = Path(tmp, "requirements.in")
        source.write_text("\n".join(requirements) + "\n")
        out = Path(tmp, "requirements.txt")
        argv = [*prefix, uv_binary(), "pip", "compile", "--quiet", "--python", ctx.python,
                "--no-header", "--no-annotate", "--output-file", str(out), *options]
        if upgrade:
            argv.append("--upgrade")
        else:
            # uv keeps the versions of an existing output file where it can
            out.write_text(preferences(installed, old))
        if constraints:
            cfile = Path(tmp, "constraints.txt")
            cfile.write_text("\n".join(constraints) + "\n")
            argv += ["--constraint", str(cfile)]
        argv.append(str(source))
        ctx.run(argv, env=env, cwd=tmp, on_line=on_line,
                hint="uv could not resolve the requirements; its message is above")
        pins = parse_pins(out.read_text())
        dirs = local_dirs(options)
        found = find_local(pins, dirs, tags) if dirs else {}
        rest = [(name, version) for name, version in pins if name not in found]
        if rest:
            pinned = Path(tmp, "pinned.in")
            pinned.write_text("".join(f"{n}=={v}\n" for n, v in rest))
            lock_out = Path(tmp, "pylock.toml")
            ctx.run([*prefix, uv_binary(), "pip", "compile", "--quiet", "--python", ctx.python,
                     "--no-deps", "--format", "pylock.toml", "--output-file", str(lock_out),
                     *without_local_dirs(options, dirs), str(pinned)],
                    env=env, cwd=tmp, on_line=on_line,
                    hint="uv could not find the pinned files; its message is above")
            try:
                found.update(from_uv(tomllib.loads(lock_out.read_text()), tags))
            except (ValueError, KeyError, TypeError) as exc:
                raise StepError(f"cannot use uv's resolution: {exc}", step="pip",
                                where="uv pip compile --format pylock.toml",
                                hint="check the requirements; set lock = false under [pip] "
                                     "to install without a lock") from None
    previous = old.by_name() if old else {}
    packages = []
    for name, version in pins:
        pkg = found.get(name)
        if pkg is None or pkg.version != version:
            raise StepError(f"no file found for {name}=={version}", step="pip",
                            hint="check the indexes and find-links folders of the profile")
        was = previous.get(name)
        if was is not None and was.version == version and was.sdist and pkg.sdist \
                and was.sdist.sha256 == pkg.sdist.sha256:
            pkg.built = was.built
        pkg.base = installed.get(name) == version and (was is None or was.base)
        packages.append(pkg)
    markers = interp.markers()
    return Lock(packages, inputs, list(requirements),
                ".".join(str(n) for n in interp.version), markers.get("implementation_name", ""),
                markers.get("sys_platform", ""), markers.get("platform_machine", ""))
