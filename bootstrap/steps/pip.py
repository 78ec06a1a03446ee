"""The ``pip`` step: Python packages, installed with uv into the target interpreter.

Reads: ``[pip]``, requirements files it names, the target interpreter's
installed distributions, the folders of ``path`` entries, the profile's lock
and the store's wheels. Changes: the target's site-packages (through uv only),
the lock, the store's and the VM's wheel folders.

``check`` decides in-process, from distribution metadata and ``packaging``
specifiers, whether every entry already holds, so a restore where nothing is
missing starts no process at all. A direct or VCS URL entry holds when the
version its lock pins is installed; a ``path`` entry when an installed
distribution's ``direct_url.json`` points at its folder (editable or not, as
asked). ``upgrade = true`` means "the newest when the lock is made": the
restore's ``upgrade`` option (or ``bootstrap lock --upgrade``) makes it again.

``apply`` goes through the lock for every entry kind (``bootstrap.lock``): it
resolves once when there is no lock or it no longer fits (plain requirements,
scoped indexes, direct and VCS URLs, ``no_deps`` entries, constraints, and the
dependencies of ``path`` entries, all in one resolution), then installs exactly
the selected pins from wheels on local disk (``bootstrap.installer``). Folders
of ``path`` entries are installed from the folder afterwards, without their
dependencies (those are in the lock). ``[pip] lock = false`` resolves afresh on
every restore that has something to install (the file is still written).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import installer, lock as lockfile, uv, wheelstore
from ..context import Context
from ..errors import StepError
from ..interpreter import inspect, repair
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return profile.pip is not None and bool(profile.pip.packages or profile.pip.requirements)


@dataclass
class Entry:
    """One ``[pip]`` entry, placeholders expanded: a requirement, a bare URL or a folder."""

    index: int
    requirement: Any = None            # packaging Requirement
    url: str | None = None             # a VCS URL without a name (found when resolved)
    path: Path | None = None
    editable: bool = False
    no_deps: bool = False
    upgrade: bool = False
    no_build_isolation: bool = False
    extras: tuple[str, ...] = ()
    key_text: str = ""

    @property
    def key(self) -> str:
        return self.key_text or f"pip.packages[{self.index}]"

    @property
    def spec(self) -> str:
        """What uv is given for it: the requirement, the URL, or the folder with extras."""
        if self.requirement is not None:
            return str(self.requirement)
        if self.url is not None:
            return self.url
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.path}{extras}"

    @property
    def label(self) -> str:
        return ("-e " if self.editable else "") + self.spec

    @property
    def direct(self) -> str | None:
        """The direct or VCS URL of the entry (None for an index requirement or a folder)."""
        return self.url or (self.requirement.url if self.requirement is not None else None)


@dataclass
class Missing:
    requirement: str
    reason: str
    entry: Entry | None = None


def requirement_lines(ctx: Context) -> list[tuple[str, str]]:
    """(key, line) of each requirement in the ``[pip] requirements`` files, validated."""
    from ..profile import check_requirement

    pip = ctx.profile.pip
    assert pip is not None
    out = []
    for i, raw in enumerate(pip.requirements):
        key = f"pip.requirements[{i}]"
        path = ctx.path(raw, key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if not ctx.dry_run:
                raise StepError(f"requirements file {path} does not exist", where=ctx.where(key),
                                hint="fix the path; a file inside a clone needs the [[git]] entry "
                                     "that makes it") from None
            ctx.note(f"{path} does not exist yet (an earlier step may make it): its "
                     "requirements are read when the restore runs")
            continue
        except OSError as exc:
            raise StepError(f"cannot read requirements file {path}: {exc.strerror}",
                            where=ctx.where(key),
                            hint="fix the path; a file inside a clone needs the [[git]] entry "
                                 "that makes it") from None
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if not line:
                continue
            problem = check_requirement(line)
            if problem is not None:
                what, hint = problem
                if line.startswith("-"):
                    hint = ("a requirements file here holds plain requirements only; put "
                            "indexes in [pip] index_url / indexes, constraints in [pip] "
                            "constraints, editable folders in a { path = ..., editable = true } "
                            "entry")
                raise StepError(f"{path.name} line {n}: {line!r} {what}",
                                where=f"{path}:{n} (from {ctx.where(key)})", hint=hint)
            out.append((f"{key} line {n}", line))
    return out


def entries(ctx: Context) -> list[Entry]:
    """The profile's entries (placeholders expanded) that apply to the target."""
    from packaging.requirements import InvalidRequirement, Requirement

    assert ctx.profile.pip is not None
    markers = inspect(ctx.python).markers()
    out = []

    def parse(i: int, text: str, key: str, **options: Any) -> Entry:
        try:
            return Entry(i, requirement=Requirement(text), key_text=key, **options)
        except InvalidRequirement:  # validated already: a bare VCS URL
            return Entry(i, url=text, key_text=key, **options)

    for i, raw in enumerate(ctx.profile.pip.packages):
        key = f"pip.packages[{i}]"
        if isinstance(raw, str):
            out.append(parse(i, ctx.expand(raw, key), key))
            continue
        options = dict(editable=raw.editable, no_deps=raw.no_deps, upgrade=raw.upgrade,
                       extras=tuple(raw.extras),
                       no_build_isolation=getattr(raw, "no_build_isolation", False))
        if raw.path is not None:
            out.append(Entry(i, path=ctx.path(raw.path, f"{key}.path"), key_text=key, **options))
        else:
            assert raw.requirement is not None
            out.append(parse(i, ctx.expand(raw.requirement, f"{key}.requirement"), key,
                             **options))
    base = len(out)
    for n, (key, line) in enumerate(requirement_lines(ctx) if ctx.profile.pip.requirements
                                    else ()):
        out.append(parse(base + n, line, key))
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


def current_lock(ctx: Context) -> lockfile.Lock | None:
    """The profile's lock when it was made from the profile as it is now (else None)."""
    try:
        lock = lockfile.read(lockfile.path_for(ctx.profile, ctx.store.profiles))
    except ValueError:
        return None
    if lock is None or lock.inputs != request_digest(ctx):
        return None
    return lock


def check(ctx: Context) -> Check:
    interp = inspect(ctx.python)
    dists = interp.distributions()
    markers = interp.markers()
    items = entries(ctx)
    state = ctx.state.setdefault("pip", {})
    lock = current_lock(ctx) if any(e.direct or e.upgrade for e in items) else None
    missing = []
    for item in items:
        if item.path is not None:
            why = unmet_path(item, dists, markers)
        elif item.direct:
            why = unmet_url(item, lock, dists, markers)
        else:
            why = unmet(item.requirement, dists, markers)
        if why is None and item.upgrade and item.requirement is not None:
            why = unmet_upgrade(item, lock, dists)
        if why:
            missing.append(Missing(item.label, why, item))
    half = interp.half_installed()
    if half:
        # a half-installed dependency of any entry: everything goes to uv again, which
        # puts back what the repair removes
        reason = "half-installed: " + ", ".join(h.label for h in half)
        listed = {m.entry.index for m in missing if m.entry is not None}
        missing += [Missing(i.label, reason, i) for i in items if i.index not in listed]
    if state.get("upgrade") and not state.get("upgraded"):
        missing.append(Missing("the lock", "an upgrade was asked: the pins move to the newest"))
    if not missing:
        return Check(True, f"{len(items)} requirement{'s' if len(items) != 1 else ''} met")
    return Check(False, f"{len(missing)} of {len(items)} requirements to install",
                 [f"install {m.requirement} ({m.reason})" for m in missing], missing)


def unmet_upgrade(item: Entry, lock: lockfile.Lock | None,
                  dists: Mapping[str, metadata.Distribution]) -> str | None:
    """``upgrade = true``: the newest when the lock is made, so it holds at the locked pin."""
    from packaging.utils import canonicalize_name

    name = canonicalize_name(item.requirement.name)
    pkg = lock.by_name().get(name) if lock is not None else None
    if pkg is None:
        return "upgrade = true: the newest version is taken when the lock is made"
    dist = dists.get(name)
    if dist is not None and dist.version != pkg.version:
        return f"{dist.version} installed, the lock has {pkg.version}"
    return None


def unmet_url(item: Entry, lock: lockfile.Lock | None,
              dists: Mapping[str, metadata.Distribution], markers: dict[str, str]) -> str | None:
    """Why a direct or VCS URL entry does not hold: installed from that URL (pip's
    ``direct_url.json``), or at the version the lock pins for it."""
    if item.requirement is not None and unmet(item.requirement, dists, markers) is None:
        return None
    pkg = lock.for_entry(item.key, item.direct) if lock is not None and item.direct else None
    if pkg is None:
        return "not installed" if item.requirement is None else \
            unmet(item.requirement, dists, markers)
    dist = dists.get(pkg.name)
    if dist is None:
        return "not installed"
    if dist.version != pkg.version:
        return f"{dist.version} installed, {pkg.version} locked for {item.direct}"
    if item.requirement is not None and item.requirement.extras:
        from packaging.requirements import Requirement

        return unmet(Requirement(f"{pkg.name}[{','.join(item.requirement.extras)}]"), dists,
                     markers)
    return None


# -- what the lock is made from --------------------------------------------------------

def index_options(ctx: Context) -> list[str]:
    """Index options of ``[pip]`` for uv."""
    pip = ctx.profile.pip
    assert pip is not None
    argv: list[str] = []
    if pip.no_index:
        argv += ["--no-index"]
    if pip.index_url:
        argv += ["--index-url", ctx.expand(pip.index_url, "pip.index_url")]
    for i, url in enumerate(pip.extra_index_urls):
        argv += ["--extra-index-url", ctx.expand(url, f"pip.extra_index_urls[{i}]")]
    for i, url in enumerate(pip.find_links):
        argv += ["--find-links", ctx.expand(url, f"pip.find_links[{i}]")]
    return argv


def scoped(ctx: Context) -> dict[str, dict[str, Any]]:
    """Canonical package name -> its ``[[tool.uv.index]]`` table, for every package a scoped
    index serves."""
    from packaging.utils import canonicalize_name

    pip = ctx.profile.pip
    assert pip is not None
    out: dict[str, dict[str, Any]] = {}
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
            out[canonicalize_name(package)] = table
    return out


def request_digest(ctx: Context) -> str:
    """What a lock is made from (``lock.inputs_digest``)."""
    pip = ctx.profile.pip
    assert pip is not None
    lines = [line for _, line in requirement_lines(ctx)] if pip.requirements else None
    return lockfile.inputs_digest(pip, lines)


def request(ctx: Context) -> lockfile.Request:
    """The profile's pip inputs, expanded for this machine."""
    pip = ctx.profile.pip
    assert pip is not None
    groups: dict[bool, list[str]] = {False: [], True: []}
    for e in entries(ctx):
        if e.path is not None:
            line = ("-e " if e.editable else "") + e.spec
        else:
            line = e.spec
        groups[e.no_deps].append(line)
    return lockfile.Request(
        requirements=groups[False], no_deps=groups[True], scoped=scoped(ctx),
        options=index_options(ctx),
        constraints=[ctx.expand(c, f"pip.constraints[{i}]")
                     for i, c in enumerate(pip.constraints)],
        upgrade=[e.requirement.name for e in entries(ctx) if e.upgrade and e.requirement],
        no_build_isolation=[e.requirement.name for e in entries(ctx)
                            if e.no_build_isolation and e.requirement is not None],
        digest=request_digest(ctx),
        urls={e.key: e.direct for e in entries(ctx) if e.direct})


# -- apply ------------------------------------------------------------------------------

def versions(ctx: Context) -> dict[str, str]:
    return {name: dist.version for name, dist in inspect(ctx.python).distributions().items()}


def apply(ctx: Context, plan: Check) -> None:
    from importlib import invalidate_caches

    for line in repair(ctx.python):  # what an interrupted install left half done
        ctx.note(line)
    pip = ctx.profile.pip
    assert pip is not None
    for missing in plan.data:
        item = missing.entry
        if item is not None and item.path is not None and not item.path.is_dir():
            raise StepError(f"folder {item.path} does not exist", where=ctx.where(item.key),
                            hint="fix the path; a folder inside a clone needs the [[git]] entry "
                                 "that makes it")
    for setting in uv.environment(ctx.environ)[1]:
        ctx.note(f"ignored {setting} from the environment for this install")
    for error in wheelstore.wait():  # store work left from an earlier restore in this process
        ctx.note(error)
    state = ctx.state.setdefault("pip", {})
    before = versions(ctx)
    interp = inspect(ctx.python)
    spec = request(ctx)
    path = lockfile.path_for(ctx.profile, ctx.store.profiles)
    old = None
    try:
        old = lockfile.read(path)
    except ValueError as exc:
        ctx.note(f"{path.name} {exc}; resolving again")
    upgrade = bool(state.get("upgrade"))
    if upgrade:
        reason = "an upgrade was asked"
    elif not pip.lock:
        reason = "lock = false"
    else:
        reason = "no lock yet" if old is None else lockfile.misfit(old, spec.digest, interp, before)
    if reason is None:
        assert old is not None
        lock = old
    else:
        if old is not None and not upgrade and pip.lock:
            ctx.note(f"{path.name} no longer fits: {reason}; resolved again")
        # lock = false: resolved afresh, not from the old pins (the file stays the record
        # of what was installed, for the check and the store's built wheels)
        lock = lockfile.resolve(ctx, spec, installed={} if upgrade else before,
                                old=None if upgrade or not pip.lock else old,
                                upgrade=upgrade, quiet=True)
        state["upgraded"] = upgrade
    known = lockfile.dump(lock) if reason is None else None
    try:
        selected = lockfile.select(lock, interp)
    except ValueError as exc:
        raise StepError(f"the lock does not fit this machine: {exc}", where=str(path),
                        hint="run `bootstrap lock PROFILE --upgrade` to resolve it again") from None
    todo = [s for s in selected if before.get(s.package.name) != s.package.version]
    reinstall = broken(plan, lock, before)
    todo += [s for s in selected if s.package.name in reinstall and s not in todo]
    local = wheelstore.local_dir(ctx.environ)
    local.mkdir(parents=True, exist_ok=True)
    isolation_off = set(spec.no_build_isolation) | {  # bare URLs: named by the lock
        lock.named[e.key] for e in entries(ctx) if e.no_build_isolation and e.key in lock.named}
    fetcher = installer.Fetcher(ctx, local, spec.options, frozenset(isolation_off))
    try:
        sources = installer.install(ctx, fetcher, todo, reinstall)
    finally:
        fetcher.close()
    for text in fetcher.notes:
        ctx.note(text)
    install_folders(ctx, plan, spec.options)
    for item in todo:  # an index need not say how big a file is; the lock keeps it once known
        if item.wheel is not None and item.wheel.size is None:
            here = wheelstore.store_path(local, installer.installed_wheel(item))  # type: ignore[arg-type]
            if here.is_file():
                item.wheel.size = here.stat().st_size
    if known is None or lockfile.dump(lock) != known:
        from ..fileio import write_atomic

        write_atomic(path, lockfile.dump(lock, profile=ctx.profile.source).encode())
        ctx.detail(f"wrote {path} ({len(lock.packages)} package"
                 f"{'s' if len(lock.packages) != 1 else ''})" if reason is not None
                 else f"updated {path}")
    if todo:
        parts = [f"{n} {label}" for key, label in installer.SOURCES
                 if (n := sum(1 for v in sources.values() if v == key))]
        ctx.detail(f"installed {len(todo)} locked package{'s' if len(todo) != 1 else ''} from "
                 f"{path.name}" + (f" ({', '.join(parts)})" if parts else ""))
    if fetcher.saving:
        ctx.detail(f"saving {fetcher.saving} new wheel{'s' if fetcher.saving != 1 else ''} to "
                 "the store in the background")
    state["sources"] = sources
    state["lock"] = str(path)
    invalidate_caches()
    record_changes(ctx, before)


def install_folders(ctx: Context, plan: Check, options: list[str]) -> None:
    """Install the missing ``path`` entries from their folders, without their dependencies
    (the lock has installed those)."""
    folders = [m.entry for m in plan.data or () if m.entry is not None and m.entry.path is not None]
    if not folders:
        return
    env, _ = uv.environment(ctx.environ)
    argv = uv.pip_install(ctx.python, *options, "--no-deps")
    for e in folders:
        argv += ["--editable", e.spec] if e.editable else [e.spec]
    ctx.run(argv, env=env, hint="uv could not install the folder; its message is above")


def broken(plan: Check, lock: lockfile.Lock, installed: dict[str, str]) -> list[str]:
    """Locked packages the check found unmet though their version is the pinned one."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    pinned = lock.by_name()
    out = []
    for missing in plan.data or ():
        try:
            name = canonicalize_name(Requirement(missing.requirement).name)
        except InvalidRequirement:
            continue  # a folder or a bare URL
        pkg = pinned.get(name)
        if pkg is not None and installed.get(name) == pkg.version:
            out.append(name)
    return out


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


# -- the `bootstrap lock` command -------------------------------------------------------------

def lock_profile(ctx: Context, *, upgrade: bool = False) -> tuple[Path, lockfile.Lock, list[str]]:
    """Resolve the profile's [pip] section and write its lock; return (path, lock, changes).

    Without ``upgrade`` the versions of the current lock and of what is installed
    are kept where they still fit; with it, everything is resolved afresh.
    Nothing is installed.
    """
    from ..fileio import write_atomic

    path = lockfile.path_for(ctx.profile, ctx.store.profiles)
    try:
        old = lockfile.read(path)
    except ValueError:
        old = None
    have = versions(ctx)
    lock = lockfile.resolve(ctx, request(ctx), installed={} if upgrade else have,
                            old=None if upgrade else old, upgrade=upgrade)
    for pkg in lock.packages:  # what the platform has already is its own, for the fit check
        was = old.by_name().get(pkg.name) if old is not None else None
        pkg.base = have.get(pkg.name) == pkg.version and (was is None or was.base) \
            and pkg.vcs is None and pkg.archive is None and pkg.directory is None
    write_atomic(path, lockfile.dump(lock, profile=os.path.basename(ctx.profile.origin or ""))
                 .encode())
    return path, lock, changes(old, lock)


def changes(old: lockfile.Lock | None, new: lockfile.Lock) -> list[str]:
    before = {p.name: p.version for p in old.packages} if old else {}
    after = {p.name: p.version for p in new.packages}
    out = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name not in before:
            out.append(f"{name} {after[name]} added")
        elif name not in after:
            out.append(f"{name} {before[name]} removed")
        else:
            out.append(f"{name} {before[name]} -> {after[name]}")
    return out
