"""The ``files``  step (not available yet in this build)."""

from __future__ import annotations

from ..context import Context
from ..errors import StepError
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return "files" in profile.sections()


def check(ctx: Context) -> Check:
    raise StepError("the files step is not available in this build", where=ctx.where("[files]"),
                    hint="remove the [files] section or skip it with --skip files")


def apply(ctx: Context, plan: Check) -> None:  # pragma: no cover - check() refuses first
    raise AssertionError("unreachable")
