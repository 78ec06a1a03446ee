"""The engine: ``restore(profile)`` checks each step, applies what is missing, re-checks.

Reads top to bottom: find the platform and store, load the profile, pick the
steps, then for each step check -> apply -> check again. The first failure
stops the restore (nothing after a failed GPU check gets installed) and raises
its error with the report so far attached.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Iterable

from . import conditions, mutex, order, redact, steps
from .context import Context
from .errors import BootstrapError, NoInterpreter, OptionError, StepError
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
    done,
)
from .store import Store, kaggle_store, missing_from_attached


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
    store_notes, attached = ([], []) if platform.kaggle_root is None else kaggle_store(
        the_store, platform.kaggle_root / "input",
        chosen=the_store.root != platform.kaggle_root / "working" / ".bootstrap")
    if not isinstance(profile, Profile):
        # On Colab the store is on Drive: a fresh VM must mount it to find the profile.
        steps.load("drive").before_lookup(platform, os.fspath(profile))
        profile = load(profile, profiles_dir=the_store.profiles)
    profile = profile.for_platform(platform.name)
    probed: dict[str, object] = {}  # one nvidia-smi probe for conditions and the gpu step
    facts = conditions.facts(profile, platform.name, lambda: has_gpu(os.environ, probed))
    profile = conditions.resolve(profile, facts)
    redact.declare(profile.secrets)
    selected = select(profile, only, skip)
    # A dry run works on a copy of the environment, so [env] values can be in force
    # for the plans of later steps without changing this process.
    ctx = Context(profile=profile, platform=platform, store=the_store,
                  python=target_python(python), dry_run=dry_run, force=force, progress=progress,
                  environ=dict(os.environ) if dry_run else os.environ, facts=facts)
    ctx.state.setdefault("gpu", {}).update(probed)
    if ("venv", "") in selected:
        steps.load("venv").aim(ctx)  # {python} and every install mean the venv's, from the start
    redact.watch(ctx.environ)
    ctx.state["pip"] = {"upgrade": upgrade}
    report = Report(profile=profile.name or "profile", origin=profile.origin,
                    platform=platform.label, python=ctx.python, dry_run=dry_run)
    report.notes.extend(platform.notes + tuple(store_notes))
    if dry_run:
        wanted = [name for name, reason in selected if not reason]
        report.notes.extend("order: " + line for line in
                            order.explain(order.needs(profile, wanted), wanted))
    # one restore at a time into one interpreter; a dry run changes nothing
    guard = (contextlib.nullcontext() if dry_run else
             mutex.restoring(ctx.python, say=lambda text: emit(progress, Event("line", "restore",
                                                                                 text))))
    with guard:
        # what the target has installed before: [[run]] entries and setup notebooks install too
        before = None if dry_run else installed(ctx.python)
        for name, reason in selected:
            if reason:
                report.steps.append(StepResult(name, SKIPPED, reason))
                continue
            result = run_step(name, ctx)
            report.steps.append(result)
            if result.outcome == FAILED:
                error: BootstrapError = result.data["error"]
                error.report = report
                if name == "pip":
                    missing_from_attached(error, attached, profile.name or "PROFILE")
                raise error
    report.variables = dict(ctx.state.get("variables", {}).get("values", {}))
    after = installed(ctx.python) if before is not None and report.changed else None
    if before is not None and after is not None:
        report.installed_changes = [(name, before.get(name), version)
                                    for name, version in sorted(after.items())
                                    if before.get(name) != version]
    if profile.captured is not None:
        from .capture import moved

        report.notes.extend(moved(profile, ctx))
    return report


def has_gpu(environ, probed: dict[str, object]) -> tuple[bool, str]:
    """Whether this machine has a GPU, for ``when`` conditions (the gpu step's probe).

    The probe's answer is kept in ``probed["probe"]``; the runner hands it to the gpu
    step (``ctx.state["gpu"]``), which then does not ask nvidia-smi again."""
    if "probe" not in probed:
        from .gpus import probe

        probed["probe"] = probe(environ)
    found = probed["probe"]
    return bool(found.devices), found.reason or ""  # type: ignore[attr-defined]


def installed(python: str) -> dict[str, str] | None:
    """The target's installed distributions and their versions (from folder names: cheap);
    None when they cannot be read (the restore goes on without the comparison)."""
    from .interpreter import inspect

    try:
        return {name: dist.version for name, dist in inspect(python).distributions().items()}
    except (OSError, BootstrapError):
        return None


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


def check_steps(only: Iterable[str], skip: Iterable[str]) -> None:
    """Raise OptionError for a name in ``--only``/``--skip`` that is not a step."""
    for option, names in (("--only", only), ("--skip", skip)):
        for name in names:
            if name not in steps.ORDER:
                import difflib

                close = difflib.get_close_matches(name, steps.ORDER, n=1)
                raise OptionError(f"unknown step {name!r}", where=option,
                                  hint=(f"did you mean {close[0]!r}? " if close else "")
                                  + f"steps are: {', '.join(steps.ORDER)}")


def select(profile: Profile, only: Iterable[str], skip: Iterable[str]) -> list[tuple[str, str]]:
    """The steps to show, in order, each with a reason when it is skipped."""
    only, skip = list(only), list(skip)
    check_steps(only, skip)
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
    ctx.step, ctx.notes, ctx.details = name, [], []
    emit(ctx.progress, Event("start", name))
    start = time.monotonic()
    result = StepResult(name, FAILED, notes=ctx.notes, data=ctx.state.setdefault(name, {}),
                        details=ctx.details)
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
            result.outcome, result.summary = CHANGED, done(before.summary, after.summary)
    except BootstrapError as error:
        if not_made_yet(ctx, error):
            # every step that looks into the target (pip, a [[git]] install...) lands here
            result.outcome = PLANNED
            result.summary = f"install into {ctx.python} once [venv] has made it"
        else:
            if isinstance(error, StepError) and error.step is None:
                error.step = name
            result.outcome, result.summary = FAILED, error.what
            result.data["error"] = error
    except KeyboardInterrupt:
        # the running command was given time to stop cleanly (process.stop); the
        # next restore repairs whatever it left half done
        result.outcome, result.summary = FAILED, "interrupted"
        result.seconds = time.monotonic() - start
        emit(ctx.progress, Event("end", name, result.summary, result))
        raise
    result.seconds = time.monotonic() - start
    result.summary = redact.mask(result.summary)
    result.actions[:] = [redact.mask(action) for action in result.actions]
    result.notes[:] = [redact.mask(note) for note in result.notes]
    emit(ctx.progress, Event("end", name, result.summary, result))
    return result


def not_made_yet(ctx: Context, error: BootstrapError) -> bool:
    """Whether ``error`` only says that the [venv] this dry run plans is not there yet."""
    return (ctx.dry_run and isinstance(error, NoInterpreter) and error.python == ctx.python
            and "base" in ctx.state.get("venv", {}) and not os.path.exists(ctx.python))


def emit(progress: Progress | None, event: Event) -> None:
    if progress is not None:
        progress(event)
