"""The ``run`` step: ordered commands (build from source, patch a file, chmod, smoke tests).

Reads: ``[[run]]``, ``[workdir]`` (the default cwd), the file system
(``creates`` guards), ``unless`` probes and the run-once markers on this VM.
Changes: whatever the commands change. It runs after packages, files and
clones are in place; the entries' keys and behaviour (argv, commands or
shell; creates, unless, once; check; when) are those of
:mod:`bootstrap.commands`.
"""

from __future__ import annotations

from .. import commands
from ..context import Context
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return bool(profile.run)


def check(ctx: Context) -> Check:
    found = commands.plan(ctx)
    return Check(found.satisfied, found.summary, found.actions, found.data)


def apply(ctx: Context, plan: Check) -> None:
    commands.apply(ctx, plan.data)
