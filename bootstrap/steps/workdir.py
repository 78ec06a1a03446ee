"""The ``workdir`` step: change into the working folder, last but for the setup notebook.

Reads: ``[workdir]``. Changes: the current directory of this process (the
kernel's, for the magics); creates the folder when ``create = true``.
A relative path is taken against the Drive root.
"""

from __future__ import annotations

import os

from ..context import Context
from ..errors import StepError
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return profile.workdir is not None


def check(ctx: Context) -> Check:
    assert ctx.profile.workdir is not None
    target = ctx.path(ctx.profile.workdir.path, "workdir.path")
    try:
        here = os.path.samefile(os.getcwd(), target)
    except OSError:
        here = False
    if here:
        return Check(True, f"in {target}")
    actions = [] if target.is_dir() else [f"create {target}"]
    return Check(False, f"change into {target}", actions + [f"chdir {target}"], target)


def apply(ctx: Context, plan: Check) -> None:
    assert ctx.profile.workdir is not None
    target = plan.data
    if not target.is_dir():
        if not ctx.profile.workdir.create:
            raise StepError(f"working folder {target} does not exist",
                            where=ctx.where("workdir.path"),
                            hint="create it, fix the path, or set create = true in [workdir]")
        target.mkdir(parents=True, exist_ok=True)
    os.chdir(target)
