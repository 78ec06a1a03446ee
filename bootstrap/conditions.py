"""Conditions on profile entries: ``when = "gpu"``, ``"no-gpu"`` or a platform name.

A ``[[run]]``, ``[[files]]``, ``[apt]`` or ``[pip]`` entry with ``when`` applies
only where its condition holds. The facts are the platform's name and whether
a GPU is there; the GPU is asked for only when some entry of the profile
depends on it. ``resolve`` leaves out the ``[apt]`` and ``[pip]`` entries that
do not apply, so those steps never see them; ``[[run]]`` and ``[[files]]``
keep their entries (and so their numbers in messages) and skip them with a
note.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from .profile import Profile


@dataclass(frozen=True)
class Facts:
    platform: str
    gpu: bool | None = None        # None: not asked (no entry depends on it)
    gpu_reason: str = ""

    def holds(self, when: str | None) -> bool:
        if when is None:
            return True
        if when in ("gpu", "no-gpu"):
            return bool(self.gpu) == (when == "gpu")
        return when == self.platform

    def why_not(self, when: str) -> str:
        """Why ``when`` does not hold here, for the report."""
        if when == "gpu":
            return f"when = \"gpu\" and this machine has no GPU ({self.gpu_reason or 'none found'})"
        if when == "no-gpu":
            return "when = \"no-gpu\" and this machine has a GPU"
        return f"when = \"{when}\" and this is {self.platform}"


def conditions(profile: Profile) -> set[str]:
    """Every ``when`` the profile's entries use."""
    found: set[str] = set()
    entries: list[object] = [*profile.build, *profile.run, *profile.files]
    if profile.apt is not None:
        entries += profile.apt.packages
    if profile.pip is not None:
        entries += profile.pip.packages
    for entry in entries:
        when = getattr(entry, "when", None)
        if when:
            found.add(when)
    return found


def facts(profile: Profile, platform: str, has_gpu: Callable[[], tuple[bool, str]]) -> Facts:
    """The facts the profile's conditions need; ``has_gpu`` is called only when one does."""
    if conditions(profile) & {"gpu", "no-gpu"}:
        present, reason = has_gpu()
        return Facts(platform, present, reason)
    return Facts(platform)


def resolve(profile: Profile, found: Facts) -> Profile:
    """``profile`` without the ``[apt]`` and ``[pip]`` entries whose condition fails here;
    apt table entries become plain names."""
    apt, pip = profile.apt, profile.pip
    if apt is not None:
        names = [entry if isinstance(entry, str) else entry.name for entry in apt.packages
                 if isinstance(entry, str) or found.holds(entry.when)]
        apt = dataclasses.replace(apt, packages=names)
    if pip is not None and any(getattr(e, "when", None) for e in pip.packages):
        pip = dataclasses.replace(pip, packages=[
            e for e in pip.packages if isinstance(e, str) or found.holds(e.when)])
    if apt is profile.apt and pip is profile.pip:
        return profile
    return dataclasses.replace(profile, apt=apt, pip=pip)
