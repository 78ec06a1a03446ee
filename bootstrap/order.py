"""The order of the restore steps: what a step needs, read from the profile, comes first.

``steps.ORDER`` is the policy (the GPU check first so a wrong runtime fails in
seconds, the chdir and the setup notebook last). On top of it each profile
declares needs by what it says: a ``pip`` path entry inside a ``[[git]]``
clone needs the clone, a ``[[files]]`` entry written into a clone needs it
too, ``[[run]]`` commands need the packages, files and clones, builds need
``[env]``, ``[pip]`` needs the ``[venv]``, which needs the ``[[run]]`` entry
that builds its base Python. ``derive`` sorts the wanted steps so that every need comes first,
keeping the policy order wherever the needs leave a choice. ``explain`` says
why, for ``--dry-run``.

Paths are compared as the profile writes them (placeholders unexpanded,
relative ones taken against ``{drive}``), so deriving the order reads no file.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Iterable

from .errors import Problem, ProfileError
from .profile import Profile

#: steps whose programs (uv and the builds it runs, commands) see the environment
_RUNS_PROGRAMS = ("apt", "git", "build", "venv", "pip", "run", "setup")
_ENV_REF = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-[^{}]*)?\}")


@dataclass(frozen=True)
class Need:
    step: str     # the step that needs
    after: str    # the step that must come first
    reason: str

    def line(self) -> str:
        return f"{self.step} after {self.after}: {self.reason}"


def _norm(path: str) -> str:
    path = path.strip()
    if path.startswith("~"):
        path = "{home}" + path[1:]
    if not path.startswith(("/", "{")):
        path = "{drive}/" + path
    return posixpath.normpath(path)


def inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it, as written in the profile."""
    p, f = _norm(path), _norm(folder)
    return p == f or p.startswith(f.rstrip("/") + "/")


def _clone_of(profile: Profile, path: str | None) -> tuple[int, str] | None:
    if path is None:
        return None
    for i, repo in enumerate(profile.git):
        if inside(path, repo.dest):
            return i, repo.dest
    return None


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def needs(profile: Profile, wanted: Iterable[str]) -> list[Need]:
    """Every need between the ``wanted`` steps of ``profile``, one reason each."""
    from .schema import to_data

    wanted = set(wanted)
    found: dict[tuple[str, str], str] = {}

    def need(step: str, after: str, reason: str) -> None:
        if step in wanted and after in wanted and step != after:
            found.setdefault((step, after), reason)

    # Placeholders {env:NAME} that [env] or [secrets] provide.
    data = to_data(profile)
    provided = {name: "env" for name in profile.env}
    provided.update({name: "secrets" for name in profile.secrets})
    for section, value in data.items():
        if section in ("version", "name", "description", "platforms"):
            continue
        for text in _strings(value):
            for name in _ENV_REF.findall(text):
                if name in provided:
                    need(section, provided[name],
                         f"{section} uses {{env:{name}}}, set by [{provided[name]}]")
    for step in _RUNS_PROGRAMS:
        need(step, "env", "the programs it starts (installers, builds, commands) see [env]")
        need(step, "secrets", "the programs it starts see [secrets]")

    # Clones before what is read from or written into them.
    pip = profile.pip
    for i, entry in enumerate(pip.packages if pip else []):
        clone = _clone_of(profile, getattr(entry, "path", None))
        if clone:
            need("pip", "git", f"pip.packages[{i}] installs from the clone at {clone[1]} "
                               f"(git[{clone[0]}])")
    for i, entry in enumerate(profile.files):
        clone = _clone_of(profile, entry.dest)
        if clone:
            need("files", "git", f"files[{i}].dest is inside the clone at {clone[1]} "
                                 f"(git[{clone[0]}])")
    if profile.workdir is not None:
        clone = _clone_of(profile, profile.workdir.path)
        if clone:
            need("workdir", "git", f"workdir.path is inside the clone at {clone[1]}")
    for section in ("build", "run"):
        for i, command in enumerate(getattr(profile, section)):
            for key in ("cwd", "creates"):
                clone = _clone_of(profile, getattr(command, key))
                if clone:
                    need(section, "git", f"{section}[{i}].{key} is inside the clone at "
                                         f"{clone[1]} (git[{clone[0]}])")
    # A [venv] is made before anything is installed into it, and after the [[run]]
    # entry that builds its base Python, if one does.
    venv = profile.venv
    builder = None
    for step, what in (("apt", "system packages"), ("files", "files"), ("git", "clones")):
        need("build", step, f"builds run after the {what} they may use are in place")
    need("pip", "build", "packages may compile against what [[build]] made")
    if venv is not None:
        need("venv", "build", "its base Python may be one [[build]] made")
        need("pip", "venv", "[pip] installs into the [venv]")
        if any(repo.install for repo in profile.git):
            need("git", "venv", "[[git]] installs into the [venv]")
        for i, command in enumerate(profile.run):
            for key in ("creates", "cwd"):
                made = getattr(command, key)
                if venv.python and made and inside(venv.python, made):
                    builder = builder or (i, key)
        if builder is not None:
            need("venv", "run", f"venv.python is made by run[{builder[0]}] "
                                f"(inside its {builder[1]})")
    for step, what in (("apt", "system packages"), ("files", "files"), ("git", "clones"),
                       ("pip", "Python packages")):
        if step == "pip" and builder is not None:
            continue  # the build comes first; pip then installs into the venv made from it
        need("run", step, f"commands run after the {what} they may use are in place")
    return [Need(step, after, reason) for (step, after), reason in found.items()]


def derive(names: Iterable[str], found: Iterable[Need], policy: Iterable[str]) -> list[str]:
    """``names`` sorted so each step comes after what it needs; ties keep ``policy``'s order."""
    rank = {name: i for i, name in enumerate(policy)}
    names = sorted(set(names), key=lambda n: rank.get(n, len(rank)))
    before: dict[str, set[str]] = {name: set() for name in names}
    for n in found:
        if n.step in before and n.after in before:
            before[n.step].add(n.after)
    out: list[str] = []
    while len(out) < len(names):
        ready = [n for n in names if n not in out and before[n] <= set(out)]
        if not ready:
            stuck = ", ".join(n for n in names if n not in out)
            raise ProfileError(Problem("profile", f"steps need each other: {stuck}",
                                       has_value=False,
                                       hint="a clone, file or folder cannot be both made by and "
                                            "needed by the same steps; check the paths"))
        out.append(ready[0])
    return out


def explain(found: Iterable[Need], order: list[str]) -> list[str]:
    """One line per need, in the order of the steps that need: ``pip after git: ...``."""
    position = {name: i for i, name in enumerate(order)}
    ranked = sorted(found, key=lambda n: (position.get(n.step, 99), position.get(n.after, 99)))
    return [n.line() for n in ranked]
