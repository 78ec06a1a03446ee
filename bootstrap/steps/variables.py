"""The ``variables`` step: names for the notebook (``PROJECT_ROOT``, ``ZIP_PATH``).

Reads: ``[variables]`` (values with placeholders, expanded in the order written
against the environment as the earlier steps left it). Changes: nothing on
the machine. It puts the expanded values in ``ctx.state["variables"]["values"]``;
the runner hands them back on the report (``Report.variables``), ``%restore_env``
pushes them into the notebook's namespace (as it does with a setup notebook's
exported values) and the CLI prints them. It always holds: there is nothing
to install, so it never counts as a change.
"""

from __future__ import annotations

from ..context import Context
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return bool(profile.variables)


def values(ctx: Context) -> dict[str, str]:
    return {name: ctx.expand(value, f"variables.{name}")
            for name, value in ctx.profile.variables.items()}


def check(ctx: Context) -> Check:
    found = values(ctx)
    ctx.state["variables"]["values"] = found
    count = len(found)
    return Check(True, f"{count} variable{'s' if count != 1 else ''} for the notebook: "
                       f"{', '.join(found)}")


def apply(ctx: Context, plan: Check) -> None:  # pragma: no cover - check() always holds
    ctx.state["variables"]["values"] = values(ctx)
