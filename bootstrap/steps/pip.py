"""The ``pip`` step: Python packages, installed with uv into the target interpreter.

Reads: ``[pip]``, the target interpreter's installed distributions, the
folders of ``path`` entries. Changes: the target's site-packages (through
``uv pip install`` only).
``check`` decides in-process, from distribution metadata and ``packaging``
specifiers, whether every requirement already holds, so a restore where
nothing is missing starts no uv process at all. A ``path`` entry holds when an
installed distribution's ``direct_url.json`` points at its folder (editable or
not, as asked). An ``upgrade`` entry asks the index on every restore.

Entries with ``no_deps`` go to a second uv run after the others, so nothing a
later resolution does moves them. Packages named by a scoped index
(``[[pip.indexes]]``) are written into a throwaway ``pyproject.toml`` whose
``[tool.uv.sources]`` pins each to its index, marked ``explicit`` so uv asks
it for no other package; uv reads it with ``-r`` in the same run, so the whole
set still resolves together.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from ..context import Context
from ..errors import StepError
from ..interpreter import inspect, repair
from ..profile import Profile
from . import Check

#: uv settings read from the environment that silently change what gets
#: installed; Colab's image presets the first two to a file that does not exist.
UV_OVERRIDES = ("UV_CONSTRAINT", "UV_BUILD_CONSTRAINT", "UV_OVERRIDE", "UV_EXCLUDE_NEWER",
                "UV_RESOLUTION", "UV_PRERELEASE", "UV_NO_BUILD_ISOLATION", "UV_PYTHON",
                "UV_SYSTEM_PYTHON", "UV_BREAK_SYSTEM_PACKAGES", "UV_TORCH_BACKEND",
                "UV_NO_VERIFY_HASHES")


def wanted(profile: Profile) -> bool:
    return profile.pip is not None and bool(profile.pip.packages)


@dataclass
class Entry:
    """One ``[pip] packages`` entry, placeholders expanded: a requirement or a folder."""

    index: int
    requirement: Any = None            # packaging Requirement
    path: Path | None = None
    editable: bool = False
    no_deps: bool = False
    upgrade: bool = False
    extras: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"pip.packages[{self.index}]"

    @property
    def spec(self) -> str:
        """What uv is given for it: the requirement, or the folder with its extras."""
        if self.requirement is not None:
            return str(self.requirement)
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.path}{extras}"

    @property
    def label(self) -> str:
        return ("-e " if self.editable else "") + self.spec


@dataclass
class Missing:
    requirement: str
    reason: str
    entry: Entry | None = None


def entries(ctx: Context) -> list[Entry]:
    """The profile's entries (placeholders expanded) that apply to the target."""
    from packaging.requirements import Requirement

    assert ctx.profile.pip is not None
    markers = inspect(ctx.python).markers()
    out = []
    for i, raw in enumerate(ctx.profile.pip.packages):
        key = f"pip.packages[{i}]"
        if isinstance(raw, str):
            out.append(Entry(i, requirement=Requirement(ctx.expand(raw, key))))
            continue
        options = dict(editable=raw.editable, no_deps=raw.no_deps, upgrade=raw.upgrade,
                       extras=tuple(raw.extras))
        if raw.path is not None:
            out.append(Entry(i, path=ctx.path(raw.path, f"{key}.path"), **options))
        else:
            assert raw.requirement is not None
            out.append(Entry(i, requirement=Requirement(
                ctx.expand(raw.requirement, f"{key}.requirement")), **options))
    return [e for e in out if e.requirement is None or e.requirement.marker is None
            or e.requirement.marker.evaluate(markers)]


def requirements(ctx: Context) -> list[Any]:
    """The profile's requirements (placeholders expanded) that apply to the target."""
    return [e.requirement for e in entries(ctx) if e.requirement is not None]


def unmet(req: Any, dists: Mapping[str, metadata.Distribution], markers: dict[str, str],
          seen: set[str] | None = None) -> str | None:
    """Why ``req`` does not hold in ``dists`` (None when it does), following extras."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen = set() if seen is None else seen
    key = canonicalize_name(req.name)
    dist = dists.get(key)
    if dist is None:
        return "not installed"
    if dist.read_text("RECORD") is None and dist.read_text("INSTALLER") is not None:
        return f"{dist.version} is incompletely installed (no RECORD)"
    if req.url:
        direct = direct_url(dist)
        if direct != req.url:
            return f"{dist.version} installed from {direct or 'an index'}, not {req.url}"
    elif not req.specifier.contains(dist.version, prereleases=True):
        return f"{dist.version} installed, {req.specifier} wanted"
    for extra in sorted(req.extras):
        if (key, extra) in seen:
            continue
        seen.add((key, extra))
        for line in dist.requires or ():
            dep = Requirement(line)
            if dep.marker is None:
                continue
            if dep.marker.evaluate({**markers, "extra": extra}) and \
                    not dep.marker.evaluate({**markers, "extra": ""}):
                dep.marker = None
                why = unmet(dep, dists, markers, seen)
                if why:
                    return f"extra [{extra}] needs {dep}: {why}"
    return None


def direct_url(dist: metadata.Distribution) -> str | None:
    import json

    raw = dist.read_text("direct_url.json")
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    url = data.get("url")
    vcs = data.get("vcs_info")
    if url and vcs:
        url = f"{vcs.get('vcs', 'git')}+{url}"
        if vcs.get("requested_revision"):
            url += f"@{vcs['requested_revision']}"
    return url


def unmet_path(entry: Entry, dists: Mapping[str, metadata.Distribution],
               markers: dict[str, str]) -> str | None:
    """Why the folder of ``entry`` is not installed as asked (None when it is)."""
    from packaging.requirements import Requirement

    assert entry.path is not None
    found = installed_from(entry.path, dists)
    if found is None:
        gone = "" if entry.path.is_dir() else " (the folder does not exist yet)"
        return f"nothing installed from {entry.path}{gone}"
    name, dist, editable = found
    if editable != entry.editable:
        return (f"{name} {dist.version} is installed from it "
                f"{'editable' if editable else 'as a copy'}, "
                f"{'editable' if entry.editable else 'a copy'} wanted")
    if entry.extras:
        return unmet(Requirement(f"{name}[{','.join(entry.extras)}]"), dists, markers)
    return None


def installed_from(folder: Path, dists: Mapping[str, metadata.Distribution]
                   ) -> tuple[str, metadata.Distribution, bool] | None:
    """The distribution installed from ``folder``: (name, dist, editable), else None."""
    import json
    from urllib.parse import unquote, urlsplit

    want = os.path.realpath(folder)
    for name, dist in dists.items():
        raw = dist.read_text("direct_url.json")
        if not raw or '"dir_info"' not in raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        parts = urlsplit(data.get("url", ""))
        if parts.scheme != "file" or os.path.realpath(unquote(parts.path)) != want:
            continue
        return name, dist, bool((data.get("dir_info") or {}).get("editable"))
    return None


def check(ctx: Context) -> Check:
    interp = inspect(ctx.python)
    dists = interp.distributions()
    markers = interp.markers()
    items = entries(ctx)
    upgraded = ctx.state["pip"].get("upgraded", ())
    missing = []
    for item in items:
        if item.path is not None:
            why = unmet_path(item, dists, markers)
        else:
            why = unmet(item.requirement, dists, markers)
        if why is None and item.upgrade and item.index not in upgraded:
            why = "upgrade = true: asks the index for a newer version on every restore"
        if why:
            missing.append(Missing(item.label, why, item))
    half = interp.half_installed()
    if half:
        # a half-installed dependency of any entry: everything goes to uv again, which
        # puts back what the repair removes
        reason = "half-installed: " + ", ".join(h.label for h in half)
        listed = {m.entry.index for m in missing if m.entry is not None}
        missing += [Missing(i.label, reason, i) for i in items if i.index not in listed]
    if not missing:
        return Check(True, f"{len(items)} requirement{'s' if len(items) != 1 else ''} met")
    return Check(False, f"{len(missing)} of {len(items)} requirements to install",
                 [f"install {m.requirement} ({m.reason})" for m in missing], missing)


def uv_binary() -> str:
    """The uv executable: BOOTSTRAP_UV, else the one of the ``uv`` package, else PATH's."""
    override = os.environ.get("BOOTSTRAP_UV")
    if override:
        return override
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise StepError("uv is not installed", step="pip",
                    hint="pip install uv (notebook-bootstrap depends on it)")


def uv_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """A copy of ``environ`` without uv settings that would change the install."""
    env = dict(environ)
    cleared = [f"{name}={env.pop(name)}" for name in UV_OVERRIDES if name in env]
    return env, cleared


def install_options(ctx: Context, *, default_index: str | None = None) -> list[str]:
    """Index options of ``[pip]`` for uv. ``default_index`` stands in for ``--no-index``
    (an empty folder): ``--no-index`` would drop the scoped indexes too."""
    pip = ctx.profile.pip
    assert pip is not None
    argv: list[str] = []
    if pip.no_index:
        argv += ["--default-index", default_index] if default_index else ["--no-index"]
    if pip.index_url:
        argv += ["--index-url", ctx.expand(pip.index_url, "pip.index_url")]
    for i, url in enumerate(pip.extra_index_urls):
        argv += ["--extra-index-url", ctx.expand(url, f"pip.extra_index_urls[{i}]")]
    for i, url in enumerate(pip.find_links):
        argv += ["--find-links", ctx.expand(url, f"pip.find_links[{i}]")]
    return argv


def scoped(ctx: Context) -> dict[str, tuple[str, dict[str, Any]]]:
    """Canonical package name -> (uv index name, ``[[tool.uv.index]]`` table) for every
    package a scoped index serves."""
    from packaging.utils import canonicalize_name

    pip = ctx.profile.pip
    assert pip is not None
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for i, index in enumerate(pip.indexes):
        name = f"scoped-{i}"
        if index.url is not None:
            table: dict[str, Any] = {"name": name, "explicit": True,
                                     "url": ctx.expand(index.url, f"pip.indexes[{i}].url")}
        else:
            assert index.find_links is not None
            where = index.find_links
            location = (ctx.expand(where, f"pip.indexes[{i}].find_links") if "://" in where
                        else str(ctx.path(where, f"pip.indexes[{i}].find_links")))
            table = {"name": name, "explicit": True, "url": location, "format": "flat"}
        for package in index.packages:
            out[canonicalize_name(package)] = (name, table)
    return out


def scoped_project(folder: Path, reqs: list[Any],
                   scope: Mapping[str, tuple[str, dict[str, Any]]]) -> Path:
    """Write the throwaway project whose sources pin ``reqs`` to their scoped indexes."""
    import tomlkit
    from packaging.utils import canonicalize_name

    folder.mkdir(parents=True, exist_ok=True)
    sources: dict[str, Any] = {}
    indexes: dict[str, dict[str, Any]] = {}
    for req in reqs:
        name, table = scope[canonicalize_name(req.name)]
        sources[req.name] = {"index": name}
        indexes[name] = table
    doc = {"project": {"name": "bootstrap-scoped-requirements", "version": "0",
                       "dependencies": [str(r) for r in reqs]},
           "tool": {"uv": {"sources": sources, "index": list(indexes.values())}}}
    path = folder / "pyproject.toml"
    path.write_text(tomlkit.dumps(doc))
    return path


def install_commands(ctx: Context, missing: list[Missing], tmp: Path) -> list[list[str]]:
    """The uv runs that install what is missing: one for entries that bring their
    dependencies, then one for ``no_deps`` entries; a run only where something is
    missing. Requirements of a run go in whole, so they resolve together; folders
    only when missing (uv would build them again)."""
    from packaging.utils import canonicalize_name

    pip = ctx.profile.pip
    assert pip is not None
    wanted_keys = {m.entry.index for m in missing if m.entry is not None}
    scope = scoped(ctx)
    items = entries(ctx)
    constraints = None
    if pip.constraints:
        constraints = tmp / "constraints.txt"
        constraints.write_text("\n".join(ctx.expand(c, f"pip.constraints[{i}]")
                                         for i, c in enumerate(pip.constraints)) + "\n")
    commands = []
    for no_deps in (False, True):
        group = [e for e in items if e.no_deps == no_deps]
        if not any(e.index in wanted_keys for e in group):
            continue
        reqs = [e for e in group if e.requirement is not None]
        pinned = [e.requirement for e in reqs if e.requirement.url is None
                  and canonicalize_name(e.requirement.name) in scope]
        plain = [str(e.requirement) for e in reqs if e.requirement not in pinned]
        empty = None
        if pinned and pip.no_index:
            empty = tmp / "no-index"
            empty.mkdir(exist_ok=True)
        argv = [uv_binary(), "pip", "install", "--python", ctx.python,
                *install_options(ctx, default_index=str(empty) if empty else None)]
        if constraints is not None:
            argv += ["--constraint", str(constraints)]
        if no_deps:
            argv.append("--no-deps")
        for e in reqs:
            if e.upgrade:
                argv += ["--upgrade-package", e.requirement.name]
        if pinned:
            project = scoped_project(tmp / ("scoped-no-deps" if no_deps else "scoped"),
                                     pinned, scope)
            argv += ["--requirement", str(project)]
        for e in group:
            if e.path is not None and e.index in wanted_keys:
                argv += ["--editable", e.spec] if e.editable else [e.spec]
        if plain:
            argv += ["--", *plain]
        commands.append(argv)
    return commands


def versions(ctx: Context) -> dict[str, str]:
    return {name: dist.version for name, dist in inspect(ctx.python).distributions().items()}


def apply(ctx: Context, plan: Check) -> None:
    from ..locked import install as install_locked  # the pinned lock and the wheel store

    for line in repair(ctx.python):  # what an interrupted install left half done
        ctx.note(line)
    if install_locked(ctx, plan):  # False: not for this profile (it notes why)
        return
    pip = ctx.profile.pip
    assert pip is not None
    env, cleared = uv_environment(ctx.environ)
    for setting in cleared:
        ctx.note(f"ignored {setting} from the environment for this install")
    for missing in plan.data:
        item = missing.entry
        if item is not None and item.path is not None and not item.path.is_dir():
            raise StepError(f"folder {item.path} does not exist", where=ctx.where(item.key),
                            hint="fix the path; a folder inside a clone needs the [[git]] entry "
                                 "that makes it")
    before = versions(ctx)
    with tempfile.TemporaryDirectory(prefix="bootstrap-pip-") as tmp:
        for argv in install_commands(ctx, plan.data, Path(tmp)):
            ctx.run(argv, env=env,
                    hint="uv could not install the requirements; its message is above")
    ctx.state["pip"]["upgraded"] = [e.index for e in entries(ctx) if e.upgrade]
    import importlib

    importlib.invalidate_caches()
    record_changes(ctx, before)


def record_changes(ctx: Context, before: Mapping[str, str]) -> None:
    """Note in the report which distributions changed since ``before``."""
    after = versions(ctx)
    changed = [(name, before.get(name), version) for name, version in sorted(after.items())
               if before.get(name) != version]
    ctx.state["pip"]["changed"] = changed
    for name, old, new in changed:
        ctx.note(f"{name} {old} -> {new}" if old else f"{name} {new} added")
    note_unscoped(ctx, [name for name, _, _ in changed])


def note_unscoped(ctx: Context, changed: list[str]) -> None:
    """A scoped package that came in as a dependency did not come from its index."""
    from packaging.utils import canonicalize_name

    direct = {canonicalize_name(r.name) for r in requirements(ctx)}
    for name in changed:
        if name in scoped(ctx) and name not in direct:
            ctx.note(f"{name} came in as a dependency, from the default indexes; list it in "
                     "[pip] packages to take it from its scoped index")
