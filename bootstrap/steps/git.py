"""The ``git``  step (not available yet in this build)."""

from __future__ import annotations

from ..context import Context
from ..errors import StepError
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return "git" in profile.sections()


def check(ctx: Context) -> Check:
    raise StepError("the git step is not available in this build", where=ctx.where("[git]"),
                    hint="remove the [git] section or skip it with --skip git")


def apply(ctx: Context, plan: Check) -> None:  # pragma: no cover - check() refuses first
    raise AssertionError("unreachable")
