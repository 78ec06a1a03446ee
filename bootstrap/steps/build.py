"""The ``build`` step: commands that build what later steps install from.

Reads: ``[[build]]``, ``[workdir]`` (the default cwd), the file system
(``creates`` guards), ``unless`` probes and the run-once markers on this VM.
Changes: whatever the commands change. It runs after system packages,
files and clones are in place and before ``[venv]`` and ``[pip]``: a C
library a Python package compiles against, a Python a ``[venv]`` is made
from. The entries' keys and behaviour (argv, commands or
shell; creates, unless, once; check; when) are those of
:mod:`bootstrap.commands`.
"""

from __future__ import annotations

from .. import commands
from ..context import Context
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return bool(profile.build)


def check(ctx: Context) -> Check:
    found = commands.plan(ctx)
    return Check(found.satisfied, found.summary, found.actions, found.data)


def apply(ctx: Context, plan: Check) -> None:
    commands.apply(ctx, plan.data)
