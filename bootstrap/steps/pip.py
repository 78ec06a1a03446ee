"""The ``pip`` step: Python packages, installed with uv into the target interpreter.

Reads: ``[pip]``, the target interpreter's installed distributions.
Changes: the target's site-packages (through ``uv pip install`` only).
``check`` decides in-process, from distribution metadata and ``packaging``
specifiers, whether every requirement already holds, so a restore where
nothing is missing starts no uv process at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Mapping

from ..context import Context
from ..errors import StepError
from ..interpreter import inspect
from ..profile import Profile
from . import Check

#: uv settings read from the environment that silently change what gets
#: installed; Colab's image presets the first two to a file that does not exist.
UV_OVERRIDES = ("UV_CONSTRAINT", "UV_BUILD_CONSTRAINT", "UV_OVERRIDE", "UV_EXCLUDE_NEWER",
                "UV_RESOLUTION", "UV_PRERELEASE", "UV_NO_BUILD_ISOLATION", "UV_PYTHON",
                "UV_SYSTEM_PYTHON", "UV_BREAK_SYSTEM_PACKAGES", "UV_TORCH_BACKEND")


def wanted(profile: Profile) -> bool:
    return profile.pip is not None and bool(profile.pip.packages)


@dataclass
class Missing:
    requirement: str
    reason: str


def requirements(ctx: Context) -> list[Any]:
    """The profile's requirements (placeholders expanded) that apply to the target."""
    from packaging.requirements import Requirement

    assert ctx.profile.pip is not None
    markers = inspect(ctx.python).markers()
    out = []
    for i, entry in enumerate(ctx.profile.pip.packages):
        req = Requirement(ctx.expand(entry, f"pip.packages[{i}]"))
        if req.marker is None or req.marker.evaluate(markers):
            out.append(req)
    return out


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


def check(ctx: Context) -> Check:
    interp = inspect(ctx.python)
    dists = interp.distributions()
    markers = interp.markers()
    reqs = requirements(ctx)
    missing = [Missing(str(r), why) for r in reqs if (why := unmet(r, dists, markers))]
    if not missing:
        return Check(True, f"{len(reqs)} requirement{'s' if len(reqs) != 1 else ''} met")
    return Check(False, f"{len(missing)} of {len(reqs)} requirements to install",
                 [f"install {m.requirement} ({m.reason})" for m in missing], missing)


def uv_binary() -> str:
    """The uv executable: the one of the ``uv`` package, else the one on PATH."""
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


def install_options(ctx: Context) -> list[str]:
    pip = ctx.profile.pip
    assert pip is not None
    argv: list[str] = []
    if pip.no_index:
        argv.append("--no-index")
    if pip.index_url:
        argv += ["--index-url", ctx.expand(pip.index_url, "pip.index_url")]
    for i, url in enumerate(pip.extra_index_urls):
        argv += ["--extra-index-url", ctx.expand(url, f"pip.extra_index_urls[{i}]")]
    for i, url in enumerate(pip.find_links):
        argv += ["--find-links", ctx.expand(url, f"pip.find_links[{i}]")]
    return argv


def versions(ctx: Context) -> dict[str, str]:
    return {name: dist.version for name, dist in inspect(ctx.python).distributions().items()}


def apply(ctx: Context, plan: Check) -> None:
    from ..locked import install as install_locked  # the pinned lock and the wheel store

    if install_locked(ctx, plan):  # False: not for this profile (it notes why)
        return
    pip = ctx.profile.pip
    assert pip is not None
    env, cleared = uv_environment(ctx.environ)
    for setting in cleared:
        ctx.note(f"ignored {setting} from the environment for this install")
    before = versions(ctx)
    argv = [uv_binary(), "pip", "install", "--python", ctx.python, *install_options(ctx)]
    with tempfile.TemporaryDirectory(prefix="bootstrap-pip-") as tmp:
        if pip.constraints:
            constraints = os.path.join(tmp, "constraints.txt")
            with open(constraints, "w") as handle:
                handle.write("\n".join(ctx.expand(c, f"pip.constraints[{i}]")
                                       for i, c in enumerate(pip.constraints)) + "\n")
            argv += ["--constraint", constraints]
        argv += ["--", *(str(r) for r in requirements(ctx))]
        ctx.run(argv, env=env, hint="uv could not install the requirements; its message is above")
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
