"""The pinned lock of a profile: exactly which distributions its ``[pip]`` section installs.

The first restore resolves the profile once (``uv pip compile --format
pylock.toml``) and records the result; later restores install exactly that set
without asking an index again. The file is a PEP 751 lock
(``pylock.<profile>.toml``) for one environment, read, validated and selected
with ``packaging.pylock`` and written with tomlkit. Each package has its
version and where its files are: the wheels of an index or a find-links
folder, an sdist, a direct URL (``archive``), a VCS commit (``vcs``), or a
folder of the profile (``directory``, installed from the folder itself). What
only notebook-bootstrap needs lives under ``[tool.notebook-bootstrap]``: the
hash of the profile's pip inputs (a changed profile is resolved again), the
Python it was made for, which packages were already installed when it was made
(``base``: the platform's own, left alone) and the sha256 of each wheel built
here from an sdist, a direct URL or a VCS commit (so the store's copy can be
checked and a fresh VM builds nothing).

This module reads and writes the file, decides whether a lock still fits the
target interpreter, selects what to install, and resolves a new one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .fileio import hash_file, sha256_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context
    from .interpreter import Interpreter

TOOL = "notebook-bootstrap"
#: bumped when what notebook-bootstrap keeps under [tool.notebook-bootstrap] changes meaning
FORMAT = 2


@dataclass
class Artifact:
    """One file of a package: a wheel, an sdist or a direct URL's file."""

    filename: str
    sha256: str
    url: str | None = None
    size: int | None = None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass
class Vcs:
    url: str
    commit: str
    subdirectory: str | None = None
    type: str = "git"


@dataclass
class Package:
    name: str                      # canonical name
    version: str
    wheels: list[Artifact] = field(default_factory=list)  # an index's or find-links' wheels
    sdist: Artifact | None = None  # an index's sdist
    archive: Artifact | None = None  # a direct URL's file (a wheel or an sdist)
    vcs: Vcs | None = None         # a VCS URL, pinned to the commit it resolved to
    directory: str | None = None   # a folder of the profile: installed from it, not locked
    built: Artifact | None = None  # the wheel built here from the sdist, archive or commit
    base: bool = False             # installed already when locked, and left alone

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def source(self) -> str:
        """Where a build starts (for the store's key and the report)."""
        if self.vcs is not None:
            sub = f"#subdirectory={self.vcs.subdirectory}" if self.vcs.subdirectory else ""
            return f"{self.vcs.type}+{self.vcs.url}@{self.vcs.commit}{sub}"
        art = self.archive or self.sdist
        return art.url or art.filename if art is not None else self.pin


@dataclass
class Lock:
    packages: list[Package]
    inputs: str                    # hash of the profile's pip inputs it was resolved from
    requirements: list[str] = field(default_factory=list)
    python: str = ""               # full version of the interpreter it was made for
    implementation: str = ""
    sys_platform: str = ""
    machine: str = ""
    #: the profile entry (its key, e.g. pip.packages[2]) -> the name its URL resolved to
    named: dict[str, str] = field(default_factory=dict)

    def by_name(self) -> dict[str, Package]:
        return {p.name: p for p in self.packages}

    def for_entry(self, key: str, url: str) -> Package | None:
        """The package of the profile's URL entry ``key`` (None: not locked)."""
        name = self.named.get(key)
        return self.by_name().get(name) if name else self.for_url(url)

    def for_url(self, url: str) -> Package | None:
        """The package a direct or VCS URL of the profile resolved to (None: not locked)."""
        want = url_key(url)
        for pkg in self.packages:
            if pkg.vcs is not None and url_key(pkg.source) == want:
                return pkg
            if pkg.vcs is not None and want[2] is None and url_key(pkg.source)[:2] == want[:2] \
                    and "@" not in urlsplit(url.split("+", 1)[-1]).path:
                return pkg  # a URL without @ref: whatever commit it resolved to
            if pkg.archive is not None and url_key(pkg.archive.url or "") == want:
                return pkg
        return None


def url_key(url: str) -> tuple[str, str, str | None]:
    """(address, subdirectory, ref) of a direct or VCS URL, for matching the lock's sources."""
    base = url.split("+", 1)[1] if url.split("://", 1)[0].count("+") else url
    parts = urlsplit(base)
    fragment = dict(p.partition("=")[::2] for p in parts.fragment.split("&") if p)
    path, ref = parts.path, None
    if "@" in path.rsplit("/", 1)[-1]:
        path, _, ref = path.rpartition("@")
    # without userinfo: the lock keeps a URL without its credential (``_public``)
    address = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{path}".rstrip("/")
    if address.endswith(".git"):
        address = address[:-4]
    return address, fragment.get("subdirectory", ""), ref


# -- inputs and location ------------------------------------------------------------

def inputs_digest(pip: Any, requirement_lines: list[str] | None = None) -> str:
    """A hash of what the resolution depends on: the profile's [pip] section with its
    placeholders unexpanded (a VM's own paths do not matter), all but ``lock``, and the
    lines of its requirements files (read at restore time)."""
    data = {k: v for k, v in dataclasses.asdict(pip).items() if k != "lock"}
    if requirement_lines:
        data["requirements-lines"] = list(requirement_lines)
    return sha256_bytes(json.dumps({"format": FORMAT, **data}, sort_keys=True, default=str))


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
    from .profile import builtin_dir, is_url

    origin = profile.origin
    if origin and not is_url(origin):
        source = Path(origin).absolute()
        if source.parent in (builtin_dir().absolute(), store_profiles.absolute()):
            return store_profiles / "locks" / lock_name(source.stem)
        digest = sha256_bytes(str(source))[:8]
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


@dataclass
class Selected:
    """One locked package to install on this target, and the wheel that installs it."""

    package: Package
    wheel: Artifact | None         # the index's (or the direct URL's) wheel, else the built one
    build: bool                    # no wheel yet: build it from the sdist, archive or commit


def select(lock: Lock, interp: Interpreter) -> list[Selected]:
    """What the lock installs on ``interp`` (``packaging.pylock`` selection); folders are left
    out (they are installed from the folder). Raises ValueError when the lock does not fit."""
    from packaging.pylock import PackageWheel, PylockSelectError

    tags = target_tags(interp)
    pylock = to_pylock(lock)
    by_name = lock.by_name()
    out = []
    try:
        chosen = list(pylock.select(environment=interp.markers(),  # type: ignore[arg-type]
                                    tags=sorted(tags, key=tags.__getitem__)))
    except PylockSelectError as exc:
        raise ValueError(str(exc)) from None
    for entry, source in chosen:
        pkg = by_name[entry.name]
        if pkg.directory is not None:
            continue
        if isinstance(source, PackageWheel):
            wheel = next(w for w in pkg.wheels if w.filename == source.filename)
            out.append(Selected(pkg, wheel, False))
        elif pkg.archive is not None and pkg.archive.is_wheel:
            if wheel_rank(pkg.archive.filename, tags) is None:
                raise ValueError(f"{pkg.archive.filename} does not fit this platform")
            out.append(Selected(pkg, pkg.archive, False))
        else:
            built = pkg.built if pkg.built is not None and wheel_rank(
                pkg.built.filename, tags) is not None else None
            out.append(Selected(pkg, built, built is None))
    return out


def misfit(lock: Lock, inputs: str, interp: Interpreter,
           installed: Mapping[str, str]) -> str | None:
    """Why ``lock`` does not fit the target any more (None when it does)."""
    if lock.inputs != inputs:
        return "the profile's [pip] section changed since it was made"
    minor = ".".join(str(n) for n in interp.version[:2])
    if ".".join(lock.python.split(".")[:2]) != minor:
        return f"it was made for Python {lock.python}, this is Python {minor}"
    try:
        select(lock, interp)
    except ValueError as exc:
        return str(exc)
    for pkg in lock.packages:
        have = installed.get(pkg.name)
        if pkg.base and have is not None and have != pkg.version:
            return (f"it was made with the platform's {pkg.name} {pkg.version}, "
                    f"this machine has {have}")
    return None


# -- PEP 751 through packaging.pylock ---------------------------------------------------

def _public(url: str) -> str:
    """``url`` as the lock keeps it (in the store, on Drive, in a pack): without a password,
    token or signature (a signed link expires anyway; the store keeps the file)."""
    from .redact import clean_url

    return clean_url(url)[0] if "://" in url else url


def _file(art: Artifact, kind: Any, *, with_name: bool = True) -> Any:
    location: dict[str, Any] = {}
    if art.url:
        location["url" if "://" in art.url else "path"] = _public(art.url)
    if with_name:
        location["name"] = art.filename
    return kind(size=art.size, hashes={"sha256": art.sha256}, **location)


def _artifact(data: Any, filename: str | None = None) -> Artifact:
    url = data.url or data.path
    name = filename or getattr(data, "name", None) or (
        unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if url else "")
    return Artifact(name, str(data.hashes.get("sha256", "")).lower(), url, data.size)


def _tool_file(art: Artifact) -> dict[str, Any]:
    out: dict[str, Any] = {"name": art.filename}
    if art.size is not None:
        out["size"] = art.size
    out["hashes"] = {"sha256": art.sha256}
    return out


def to_pylock(lock: Lock) -> Any:
    """``lock`` as a validated ``packaging.pylock.Pylock``."""
    from packaging.markers import Marker
    from packaging.pylock import (
        Package as PyPackage,
        PackageArchive,
        PackageDirectory,
        PackageSdist,
        PackageVcs,
        PackageWheel,
        Pylock,
    )
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    minor = ".".join(lock.python.split(".")[:2])
    env = (f"implementation_name == '{lock.implementation}' and python_version == '{minor}' "
           f"and sys_platform == '{lock.sys_platform}' and platform_machine == '{lock.machine}'")
    packages = []
    for pkg in sorted(lock.packages, key=lambda p: p.name):
        extra: dict[str, Any] = {}
        if pkg.base:
            extra["base"] = True
        if pkg.built is not None:
            extra["built-wheel"] = _tool_file(pkg.built)
        kind: dict[str, Any] = {}
        if pkg.vcs is not None:
            kind["vcs"] = PackageVcs(type=pkg.vcs.type, url=_public(pkg.vcs.url),
                                     commit_id=pkg.vcs.commit,
                                     subdirectory=pkg.vcs.subdirectory)
        elif pkg.directory is not None:
            kind["directory"] = PackageDirectory(path=pkg.directory)
        elif pkg.archive is not None:
            kind["archive"] = _file(pkg.archive, PackageArchive, with_name=False)
        else:
            if pkg.wheels:
                kind["wheels"] = [_file(w, PackageWheel) for w in pkg.wheels]
            if pkg.sdist is not None:
                kind["sdist"] = _file(pkg.sdist, PackageSdist)
        packages.append(PyPackage(name=canonicalize_name(pkg.name),
                                  version=Version(pkg.version) if pkg.version else None,
                                  tool={TOOL: extra} if extra else None, **kind))
    tool = {"format": FORMAT, "inputs": lock.inputs, "requirements": lock.requirements,
            "python": lock.python, "implementation": lock.implementation,
            "sys-platform": lock.sys_platform, "machine": lock.machine}
    if lock.named:
        tool["named"] = dict(sorted(lock.named.items()))
    pylock = Pylock(lock_version=Version("1.0"), environments=[Marker(env)],
                    requires_python=SpecifierSet(f"=={minor}.*") if minor else None,
                    created_by=TOOL, packages=packages, tool={TOOL: tool})
    pylock.validate()
    return pylock


def packages_of(pylock: Any) -> list[Package]:
    """The packages of a ``packaging.pylock.Pylock`` (all wheels kept: ``select`` chooses)."""
    out = []
    for entry in pylock.packages:
        extra = (entry.tool or {}).get(TOOL) or {}
        built = extra.get("built-wheel")
        pkg = Package(
            name=str(entry.name), version=str(entry.version) if entry.version else "",
            wheels=[_artifact(w, w.filename) for w in entry.wheels or ()],
            sdist=_artifact(entry.sdist) if entry.sdist else None,
            archive=_artifact(entry.archive) if entry.archive else None,
            vcs=Vcs(str(entry.vcs.url or entry.vcs.path), entry.vcs.commit_id,
                    entry.vcs.subdirectory, entry.vcs.type) if entry.vcs else None,
            directory=entry.directory.path if entry.directory else None,
            built=Artifact(built["name"], str(built["hashes"]["sha256"]).lower(), None,
                           built.get("size")) if built else None,
            base=bool(extra.get("base", False)))
        out.append(pkg)
    return out


def _inline(value: Any) -> Any:
    import tomlkit

    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update({k: _inline(v) for k, v in value.items()})
        return table
    if isinstance(value, list):
        items = tomlkit.array()
        items.extend(_inline(v) for v in value)
        if len(value) > 1 and all(isinstance(v, dict) for v in value):
            items.multiline(True)
        return items
    return value


def dump(lock: Lock, *, profile: str = "") -> str:
    import tomlkit

    data = to_pylock(lock).to_dict()
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"The pinned set of Python distributions for the [pip] section of "
                            f"{profile or 'a profile'},"))
    doc.add(tomlkit.comment("written by notebook-bootstrap. A restore installs exactly this "
                            "set; run"))
    doc.add(tomlkit.comment("`bootstrap lock PROFILE --upgrade` to resolve it again on purpose."))
    for key, value in data.items():
        if key in ("packages", "tool"):
            continue
        doc.add(key, _inline(value))
    packages = tomlkit.aot()
    for entry in data.get("packages", []):
        table = tomlkit.table()
        for key, value in entry.items():
            table.add(key, _inline(value))
        packages.append(table)
    doc.add("packages", packages)
    tool = tomlkit.table(is_super_table=True)
    tool.add(TOOL, data["tool"][TOOL])
    doc.add("tool", tool)
    return tomlkit.dumps(doc)


def parse(text: str) -> Lock:
    """Read a lock written by :func:`dump`; raises ValueError when it is not one."""
    from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML ({exc})") from None
    tool = (data.get("tool") or {}).get(TOOL)
    if not isinstance(tool, dict) or tool.get("format") != FORMAT:
        raise ValueError(f"it has no [tool.{TOOL}] table of format {FORMAT}")
    try:
        pylock = Pylock.from_dict(data)
    except (PylockValidationError, PylockUnsupportedVersionError) as exc:
        raise ValueError(f"is not a valid PEP 751 lock ({exc})") from None
    return Lock(packages_of(pylock), str(tool.get("inputs", "")),
                list(tool.get("requirements", [])), str(tool.get("python", "")),
                str(tool.get("implementation", "")), str(tool.get("sys-platform", "")),
                str(tool.get("machine", "")),
                {str(k): str(v) for k, v in (tool.get("named") or {}).items()})


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


# -- resolving ------------------------------------------------------------------------------

@dataclass
class Request:
    """What the profile's [pip] section asks, expanded for this machine."""

    requirements: list[str]        # lines resolved with their dependencies
    no_deps: list[str]             # lines pinned without their dependencies
    scoped: dict[str, dict[str, Any]]  # canonical name -> its [[tool.uv.index]] table
    options: list[str]             # index options for uv
    constraints: list[str]
    upgrade: list[str]             # names taken at their newest when the lock is made
    no_build_isolation: list[str]  # names built without build isolation
    digest: str
    urls: dict[str, str] = field(default_factory=dict)  # entry key -> its direct or VCS URL


def preferences(installed: Mapping[str, str], old: Lock | None) -> str:
    """A minimal PEP 751 file that uv reads as preferred versions (an existing output file):
    what is installed, then the old pins."""
    import tomlkit

    prefer = dict(installed)
    for pkg in old.packages if old else ():
        prefer.setdefault(pkg.name, pkg.version)
    doc = tomlkit.document()
    doc.add("lock-version", "1.0")
    doc.add("created-by", TOOL)
    packages = tomlkit.aot()
    for name, version in sorted(prefer.items()):
        packages.append({"name": name, "version": version})
    doc.add("packages", packages)
    return tomlkit.dumps(doc)


def scoped_project(folder: Path, lines: list[str], scoped: Mapping[str, dict[str, Any]]) -> Path:
    """A throwaway project whose ``[tool.uv.sources]`` pin each of ``lines`` to its scoped
    index, marked ``explicit`` so uv asks that index for no other package."""
    import tomlkit
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    folder.mkdir(parents=True, exist_ok=True)
    sources: dict[str, Any] = {}
    indexes: dict[str, dict[str, Any]] = {}
    for line in lines:
        name = Requirement(line).name
        table = scoped[canonicalize_name(name)]
        sources[name] = {"index": table["name"]}
        indexes[table["name"]] = table
    doc = {"project": {"name": "bootstrap-scoped-requirements", "version": "0",
                       "dependencies": lines},
           "tool": {"uv": {"sources": sources, "index": list(indexes.values())}}}
    path = folder / "pyproject.toml"
    path.write_text(tomlkit.dumps(doc))
    return path


def is_scoped(line: str, scoped: Mapping[str, Any]) -> bool:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        req = Requirement(line)
    except InvalidRequirement:
        return False
    return req.url is None and canonicalize_name(req.name) in scoped


def _compile(ctx: Context, tmp: Path, name: str, lines: list[str], request: Request,
             prefer: str | None, *, no_deps: bool, upgrade: bool, quiet: bool,
             pylock: bool = True) -> list[Package]:
    """One ``uv pip compile`` of ``lines``: a PEP 751 result, or (``pylock=False``) the
    requirements-file result, whose pins come back as packages without files."""
    from packaging.pylock import Pylock

    from . import uv
    from .errors import StepError

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    plain = [line for line in lines if not is_scoped(line, request.scoped)]
    pinned = [line for line in lines if is_scoped(line, request.scoped)]
    inputs = []
    if plain:
        source = tmp / f"{name}.in"
        source.write_text("\n".join(plain) + "\n")
        inputs.append(str(source))
    if pinned:
        inputs.append(str(scoped_project(tmp / f"{name}-scoped", pinned, request.scoped)))
    options = list(request.options)
    if pinned and "--no-index" in options:
        # --no-index would drop the scoped indexes too: an empty default index stands in
        empty = tmp / "no-index"
        empty.mkdir(exist_ok=True)
        options[options.index("--no-index"):options.index("--no-index") + 1] = \
            ["--default-index", str(empty)]
    for package in request.no_build_isolation:
        options += ["--no-build-isolation-package", package]
    out = tmp / (f"pylock.{name}.toml" if pylock else f"{name}.txt")
    if prefer is not None:
        out.write_text(prefer)
    constraints = None
    if request.constraints:
        constraints = tmp / "constraints.txt"
        constraints.write_text("\n".join(request.constraints) + "\n")
    env, _ = uv.environment(ctx.environ)
    ctx.run(uv.compile_lock(ctx.python, str(out), inputs, options, no_deps=no_deps,
                            upgrade=upgrade, upgrade_packages=request.upgrade,
                            constraints=str(constraints) if constraints else None,
                            pylock=pylock),
            env=env, cwd=str(tmp), on_line=None if quiet else ctx.say,
            hint="uv could not resolve the requirements; its message is above")
    if not pylock:
        return [Package(n, v) for n, v in parse_pins(out.read_text())] + [
            Package("", "", directory=line) for line in out.read_text().splitlines()
            if line.strip() and not line.startswith(("#", "-")) and not _PIN.match(line.strip())]
    try:
        return packages_of(Pylock.from_dict(tomllib.loads(out.read_text())))
    except Exception as exc:  # uv's output is not ours to trust blindly
        raise StepError(f"cannot use uv's resolution: {exc}", step="pip",
                        where="uv pip compile --format pylock.toml",
                        hint="check the requirements; set lock = false under [pip] "
                             "to resolve afresh on every restore") from None


# -- files in local find-links folders, hashed here -------------------------------------

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
    for flag, value in zip(options, options[1:], strict=False):
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

    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )
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
        digest, size = hash_file(path)
        return Artifact(path.name, digest, path.resolve().as_uri(), size)

    with ThreadPoolExecutor(max_workers=4) as pool:
        described = dict(zip(files, pool.map(describe, files.values()), strict=True))
    versions = dict(pins)
    out = {}
    for name, artifact in described.items():
        is_wheel = name in wheels
        out[name] = Package(name, versions[name], wheels=[artifact] if is_wheel else [],
                            sdist=None if is_wheel else artifact)
    return out




def _compile_local_first(ctx: Context, tmp: Path, name: str, lines: list[str], request: Request,
                         dirs: list[Path], installed: Mapping[str, str], old: Lock | None, *,
                         no_deps: bool, upgrade: bool, quiet: bool) -> list[Package]:
    """Resolve where local find-links folders are among the sources: ``uv pip compile``
    pins the versions (quick), the pinned files found in the folders are hashed here
    (uv hashes every file of a local folder, which takes seconds for a big one), and
    only the rest is looked up by uv (``--no-deps``, PEP 751, without the folders)."""
    prefer = None if upgrade else "".join(
        f"{n}=={v}\n" for n, v in sorted({**{p.name: p.version for p in (old.packages if old
                                                                       else ())},
                                          **installed}.items()) if n)
    pinned = _compile(ctx, tmp, name, lines, request, prefer, no_deps=no_deps, upgrade=upgrade,
                      quiet=quiet, pylock=False)
    pins = [(p.name, p.version) for p in pinned if p.name]
    from .interpreter import inspect

    found = find_local(pins, dirs, target_tags(inspect(ctx.python)))
    rest = [f"{n}=={v}" for n, v in pins if n not in found]
    rest += [p.directory for p in pinned if not p.name and p.directory]
    if rest:
        others = dataclasses.replace(request,
                                     options=without_local_dirs(request.options, dirs))
        found.update((p.name, p) for p in _compile(ctx, tmp, f"{name}-files", rest, others, None,
                                                   no_deps=True, upgrade=False, quiet=quiet))
    return list(found.values())


def resolve(ctx: Context, request: Request, *, installed: Mapping[str, str], old: Lock | None,
            upgrade: bool = False, quiet: bool = False) -> Lock:
    """Resolve the request for the target with uv, preferring what is installed and the old
    pins (unless ``upgrade``): one resolution, plus a pinning run for ``no_deps`` entries."""
    import tempfile

    from .interpreter import inspect

    interp = inspect(ctx.python)
    dirs = local_dirs(request.options)
    found: dict[str, Package] = {}
    with tempfile.TemporaryDirectory(prefix="bootstrap-lock-") as tmp:
        for name, lines, no_deps in (("deps", request.requirements, False),
                                     ("nodeps", request.no_deps, True)):
            if not lines:
                continue
            if dirs:
                packages = _compile_local_first(ctx, Path(tmp), name, lines, request, dirs,
                                                installed, old, no_deps=no_deps,
                                                upgrade=upgrade, quiet=quiet)
            else:
                prefer = None if upgrade else preferences(installed, old)
                packages = _compile(ctx, Path(tmp), name, lines, request, prefer,
                                    no_deps=no_deps, upgrade=upgrade, quiet=quiet)
            found.update((pkg.name, pkg) for pkg in packages)
    previous = old.by_name() if old else {}
    for pkg in found.values():
        was = previous.get(pkg.name)
        if was is not None and was.version == pkg.version and was.built is not None \
                and was.source == pkg.source and _same_file(was, pkg):
            pkg.built = was.built
        pkg.base = installed.get(pkg.name) == pkg.version and (was is None or was.base) \
            and pkg.directory is None and pkg.vcs is None and pkg.archive is None
    markers = interp.markers()
    lock = Lock(sorted(found.values(), key=lambda p: p.name), request.digest,
                request.requirements + request.no_deps,
                ".".join(str(n) for n in interp.version), markers.get("implementation_name", ""),
                markers.get("sys_platform", ""), markers.get("platform_machine", ""))
    for key, url in request.urls.items():
        pkg = lock.for_url(url)
        if pkg is not None:
            lock.named[key] = pkg.name
    return lock


def _same_file(a: Package, b: Package) -> bool:
    fa, fb = a.archive or a.sdist, b.archive or b.sdist
    return (fa is None) == (fb is None) and (fa is None or fa.sha256 == fb.sha256)  # type: ignore[union-attr]
