"""The engine: ``restore(profile)`` checks each step, applies what is missing, re-checks.

Reads top to bottom: find the platform and store, load the profile, pick the
steps, then for each step check -> apply -> check again. The first failure
stops the restore (nothing after a failed GPU check gets installed) and raises
its error with the report so far attached.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterable

from . import order, steps
from .context import Context
from .errors import BootstrapError, OptionError, StepError
from .platform import detect
from .profile import Profile, load
from .report import (
    CHANGED,
    FAILED,
    PLANNED,
    SATISFIED,
    SKIPPED,
    Event,
    Progress,
    Report,
    StepResult,
)
from .store import Store


def restore(profile: str | os.PathLike[str] | Profile, *, only: Iterable[str] = (),
            skip: Iterable[str] = (), dry_run: bool = False, python: str | None = None,
            store: str | os.PathLike[str] | None = None,
            drive: str | os.PathLike[str] | None = None,
            force: bool = False, progress: Progress | None = None,
            upgrade: bool = False) -> Report:
    """Bring this machine to what ``profile`` says and return a Report.

    ``profile`` is a Profile, a name (store, then shipped profiles), a path or an
    https URL. ``python`` is the interpreter to install into (default: this one).
    ``upgrade`` makes the pip lock again with the newest versions (on purpose).
    Raises a BootstrapError (with ``.report``) when a step fails.
    """
    platform = detect(store=store, drive=drive)
    the_store = Store(platform.store_root)
    if not isinstance(profile, Profile):
        # On Colab the store is on Drive: a fresh VM must mount it to find the profile.
        steps.load("drive").before_lookup(platform, os.fspath(profile))
        profile = load(profile, profiles_dir=the_store.profiles)
    profile = profile.for_platform(platform.name)
    selected = select(profile, only, skip)
    # A dry run works on a copy of the environment, so [env] values can be in force
    # for the plans of later steps without changing this process.
    ctx = Context(profile=profile, platform=platform, store=the_store,
                  python=target_python(python), dry_run=dry_run, force=force, progress=progress,
                  environ=dict(os.environ) if dry_run else os.environ)
    ctx.state["pip"] = {"upgrade": upgrade}
    report = Report(profile=profile.name or "profile", origin=profile.origin,
                    platform=platform.label, python=ctx.python, dry_run=dry_run)
    if dry_run:
        wanted = [name for name, reason in selected if not reason]
        report.notes.extend("order: " + line for line in
                            order.explain(order.needs(profile, wanted), wanted))
    for name, reason in selected:
        if reason:
            report.steps.append(StepResult(name, SKIPPED, reason))
            continue
        result = run_step(name, ctx)
        report.steps.append(result)
        if result.outcome == FAILED:
            error: BootstrapError = result.data["error"]
            error.report = report
            raise error
    if profile.captured is not None:
        from .capture import moved

        report.notes.extend(moved(profile, ctx))
    return report


def lock(profile: str | os.PathLike[str] | Profile, *, upgrade: bool = False,
         python: str | None = None, store: str | os.PathLike[str] | None = None,
         progress: Progress | None = None) -> tuple[Path, object, list[str]]:
    """Resolve ``profile``'s [pip] section and write its lock, installing nothing; return
    (path, lock, changes). ``upgrade`` moves every pin to the newest version."""
    platform = detect(store=store)
    the_store = Store(platform.store_root)
    if not isinstance(profile, Profile):
        profile = load(profile, profiles_dir=the_store.profiles)
    profile = profile.for_platform(platform.name)
    pip = steps.load("pip")
    if not pip.wanted(profile):
        raise OptionError(f"profile {profile.name or profile.origin} has no [pip] packages to "
                          "lock", where=profile.origin, hint="add packages under [pip]")
    ctx = Context(profile=profile, platform=platform, store=the_store,
                  python=target_python(python), progress=progress)
    ctx.step = "pip"
    return pip.lock_profile(ctx, upgrade=upgrade)


def target_python(python: str | None) -> str:
    if python is None:
        return sys.executable
    path = Path(python).expanduser()
    if not path.exists() or not os.access(path, os.X_OK) or path.is_dir():
        raise OptionError(f"no Python interpreter at {python}", where="--python",
                          hint="give the path of a python executable, e.g. .venv/bin/python")
    return str(path.absolute())


def step_names(values: Iterable[str]) -> list[str]:
    """``--only pip env``, ``--only pip --only env`` and ``--only pip,env`` alike."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def select(profile: Profile, only: Iterable[str], skip: Iterable[str]) -> list[tuple[str, str]]:
    """The steps to show, in order, each with a reason when it is skipped."""
    only, skip = list(only), list(skip)
    for option, names in (("--only", only), ("--skip", skip)):
        for name in names:
            if name not in steps.ORDER:
                import difflib

                close = difflib.get_close_matches(name, steps.ORDER, n=1)
                raise OptionError(f"unknown step {name!r}", where=option,
                                  hint=(f"did you mean {close[0]!r}? " if close else "")
                                  + f"steps are: {', '.join(steps.ORDER)}")
    out = []
    wanted = [name for name in steps.ORDER if steps.load(name).wanted(profile)]
    for name in order.derive(wanted, order.needs(profile, wanted), steps.ORDER):
        if only and name not in only:
            out.append((name, "left out by --only"))
        elif name in skip:
            out.append((name, "left out by --skip"))
        else:
            out.append((name, ""))
    return out


def run_step(name: str, ctx: Context) -> StepResult:
    module = steps.load(name)
    ctx.step, ctx.notes = name, []
    emit(ctx.progress, Event("start", name))
    start = time.monotonic()
    result = StepResult(name, FAILED, notes=ctx.notes, data=ctx.state.setdefault(name, {}))
    try:
        before = module.check(ctx)
        result.actions = list(before.actions)
        if before.satisfied:
            result.outcome, result.summary = SATISFIED, before.summary
        elif ctx.dry_run:
            result.outcome, result.summary = PLANNED, before.summary
            if getattr(module, "APPLY_IN_DRY_RUN", False):
                module.apply(ctx, before)  # it changes only ctx.environ, a copy in a dry run
        else:
            module.apply(ctx, before)
            after = module.check(ctx)
            if not after.satisfied:
                raise StepError(f"{name} still does not hold after it was applied",
                                step=name, where=ctx.where(f"[{name}]"),
                                details="\n".join(after.actions) or after.summary,
                                hint="something outside the profile undid it or the installer "
                                     "reported success without doing it; run with --debug")
            result.outcome, result.summary = CHANGED, after.summary
    except BootstrapError as error:
        if isinstance(error, StepError) and error.step is None:
            error.step = name
        result.outcome, result.summary = FAILED, error.what
        result.data["error"] = error
    result.seconds = time.monotonic() - start
    emit(ctx.progress, Event("end", name, result.summary, result))
    return result


def emit(progress: Progress | None, event: Event) -> None:
    if progress is not None:
        progress(event)
