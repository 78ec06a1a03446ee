"""The ``env`` step: environment variables, placeholders expanded.

Reads: ``[env]``. Changes: ``os.environ`` of this process (and so of every
program it starts later in the restore, and of the notebook kernel).
"""

from __future__ import annotations

from ..context import Context
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return bool(profile.env)


def values(ctx: Context) -> dict[str, str]:
    return {name: ctx.expand(value, f"env.{name}") for name, value in ctx.profile.env.items()}


def check(ctx: Context) -> Check:
    wanted_values = values(ctx)
    differ = [name for name, value in wanted_values.items() if ctx.environ.get(name) != value]
    if not differ:
        return Check(True, f"{len(wanted_values)} variable{'s' if len(wanted_values) != 1 else ''}"
                           " set")
    return Check(False, f"{len(differ)} variable{'s' if len(differ) != 1 else ''} to set",
                 [f"set {name}={wanted_values[name]}" for name in differ])


def apply(ctx: Context, plan: Check) -> None:
    ctx.environ.update(values(ctx))
