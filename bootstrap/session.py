"""This VM as every face sees it: the default profile, the last restore, status, stale modules.

The magics, the command line and the Python API all restore through
``restore()`` here, so they agree on what happens around the steps that
``bootstrap.runner`` runs:

- with no profile named, the store's ``profiles/default.toml`` (else its only
  profile) is used; on Colab Drive is mounted first, since the store is there;
- a successful restore is recorded as this VM's last (``bootstrap.vmstate``),
  which ``status()`` re-checks with a dry run;
- modules that were imported before the pip step replaced their distribution
  are named (``Report.stale``) with a note to restart.

What needs a kernel (pushing values into the user's namespace, Colab's
restart prompt, restarting) stays in the magics.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import BootstrapError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    from .report import Report

DEFAULT_NAME = "default"
RESTART_NOTE = "restart the runtime to use the new versions"


# -- which profile -----------------------------------------------------------------

def default_profile(profiles: os.PathLike[str] | str) -> str:
    """The profile to use when none is named: ``default.toml``, else the only one there.

    Raises OptionError saying how to create one when the store holds none, and
    naming them when it holds several.
    """
    folder = Path(profiles)
    default = folder / f"{DEFAULT_NAME}.toml"
    if default.is_file():
        return str(default)
    found = sorted(p for p in folder.glob("*.toml") if p.is_file()) if folder.is_dir() else []
    if len(found) == 1:
        return str(found[0])
    if not found:
        raise OptionError("no profile named and none saved in the store", where=str(folder),
                          hint="save this session's setup with %save_env NAME (bootstrap save "
                               f"NAME), or write a profile to {folder}/NAME.toml; then restore "
                               "it by name (see `bootstrap help profile`)")
    names = ", ".join(p.stem for p in found)
    raise OptionError(f"no profile named and the store holds {len(found)}: {names}",
                      where=str(folder),
                      hint=f"name one (%restore_env {found[0].stem}), or save the one to use "
                           f"by default as {DEFAULT_NAME}.toml")


def resolve(spec: str | os.PathLike[str] | None, platform: Any, profiles: Path) -> str:
    """The profile to load: the default when none is given; a path made absolute.

    Paths are made absolute now because the workdir step may change directory
    and the VM record must name the same file later.
    """
    from .profile import is_path, is_url
    from .steps.drive import before_lookup

    if spec is None:
        # the default profile is in the store, on Drive under Colab: mount it first
        before_lookup(platform, DEFAULT_NAME)
        return default_profile(profiles)
    spec = os.fspath(spec)
    if not is_url(spec) and is_path(spec):
        return str(Path(spec).expanduser().absolute())
    return spec


def profile_among_steps(profile: str | None, only: list[str],
                        skip: list[str]) -> tuple[str | None, list[str], list[str]]:
    """Take the profile back from ``--skip gpu vision``, where the step list swallowed it.

    The step options take several values, so a profile written after them ends
    up in the list. With no profile given, a last value that names no step is
    the profile (option order is free, as users expect from a command line).
    """
    import difflib

    from .steps import ORDER

    def a_profile(value: str) -> bool:
        # a mistyped step ("pipp") stays a step, so its error can say "did you mean 'pip'?"
        return ("," not in value and value not in ORDER
                and not difflib.get_close_matches(value, ORDER, n=1, cutoff=0.8))

    if profile is None and skip and a_profile(skip[-1]):
        return skip[-1], only, skip[:-1]
    if profile is None and only and a_profile(only[-1]):
        return only[-1], only[:-1], skip
    return profile, only, skip


# -- restore -------------------------------------------------------------------------

def restore(profile: Any = None, *, only: Iterable[str] = (), skip: Iterable[str] = (),
            dry_run: bool = False, store: str | os.PathLike[str] | None = None,
            drive: str | os.PathLike[str] | None = None,
            imported: Iterable[str] | None = None, **options: Any) -> Report:
    """``runner.restore`` with the default profile, the VM record and the stale modules.

    ``imported`` are the modules held by the interpreter that will use the
    packages (default: this process's ``sys.modules``); a command-line run
    passes none, since its own imports end with it.
    """
    from .platform import detect
    from .profile import Profile
    from .runner import check_steps, restore as run, step_names
    from .store import Store

    only, skip = step_names(only), step_names(skip)
    check_steps(only, skip)  # before the default profile is looked for (and Drive mounted)
    platform = detect(store=store, drive=drive)
    spec = profile if isinstance(profile, Profile) else \
        resolve(profile, platform, Store(platform.store_root).profiles)
    report = run(spec, only=only, skip=skip, dry_run=dry_run, store=store, drive=drive,
                 **options)
    if dry_run:
        return report
    report.stale = stale_after(report, platform.name, imported)
    if report.stale:
        report.notes.append(f"{', '.join(report.stale)} imported before the install: "
                            f"{RESTART_NOTE}")
    if not isinstance(spec, Profile):
        remember(report, spec, str(Store(platform.store_root).root), only, skip)
    return report


def stale_after(report: Report, platform: str, imported: Iterable[str] | None = None
                ) -> list[str]:
    """Modules held by the running interpreter whose distributions the restore replaced (any
    step: pip, [[run]] entries, a setup notebook)."""
    from .interpreter import inspect, is_running

    changed = report.installed_changes
    if not changed or not is_running(report.python):
        return []
    from .staleness import stale_modules

    return stale_modules(changed, inspect(report.python).distributions(), platform=platform,
                         imported=imported)


def remember(report: Report, spec: str, store: str, only: list[str], skip: list[str]) -> None:
    """Record the restore as this VM's last; a failure to write is a note, not an error."""
    from . import vmstate

    try:
        vmstate.record(vmstate.Restored(profile=report.profile, spec=spec, store=store,
                                        python=report.python, only=only, skip=skip,
                                        headline=report.headline()))
    except BootstrapError as error:
        report.notes.append(f"could not record this restore for status: {error.what}")


def wait_for_store() -> list[str]:
    """Wait for wheels still being copied into the store; the problems they met.

    A process that ends (the command line) calls this first, so the copies are
    not cut off; a kernel lets them finish in the background.
    """
    if "bootstrap.wheelstore" not in sys.modules:  # nothing was queued in this process
        return []
    from .wheelstore import wait

    return wait()


# -- status --------------------------------------------------------------------------

@dataclass
class Status:
    """Where am I, what do I have, and does the last restore still hold."""

    rows: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        return next((value for name, value in self.rows if name == key), None)

    def text(self) -> str:
        width = max(len(key) for key, _ in self.rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in self.rows)

    __str__ = text

    def _repr_html_(self) -> str:
        import html

        body = "".join(f"<tr><th style='text-align:left'>{html.escape(key)}</th>"
                       f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
                       for key, value in self.rows)
        return f"<table class='bootstrap-status'><tbody>{body}</tbody></table>"


def status(*, store: str | os.PathLike[str] | None = None, check: bool = True) -> Status:
    """The platform, Python, GPU, Drive, store, profiles and the last restore on this VM.

    With ``check`` the last restore is run again as a dry run, so "does it
    still hold" is current. Changes nothing.
    """
    from .platform import detect
    from .store import Store

    platform = detect(store=store)
    the_store = Store(platform.store_root)
    rows = [
        ("platform", f"{platform.label} ({platform.name})"),
        ("python", f"{sys.executable} ({sys.version.split()[0]})"),
        ("gpu", gpu_line()),
        ("drive", drive_line(platform)),
        ("store", f"{the_store.root} "
                  f"({'present' if the_store.root.is_dir() else 'not created yet'})"),
        ("profiles", profiles_line(the_store.profiles)),
    ]
    rows.extend(restored_rows(check=check))
    return Status(rows)


def gpu_line() -> str:
    """What the gpu step's nvidia-smi query finds (it never raises for a missing GPU)."""
    from .gpus import probe

    return probe().describe()


def drive_line(platform: Any) -> str:
    root = platform.drive_root
    if platform.mountpoint is not None:
        mounted = os.path.ismount(platform.mountpoint)
        return f"{root} ({'mounted' if mounted else 'not mounted'} at {platform.mountpoint})"
    return f"{root} ({'present' if root.is_dir() else 'missing'})"


def profiles_line(folder: Path) -> str:
    names = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    if not names:
        return ("none saved (save one with %save_env NAME or bootstrap save NAME, or write "
                "profiles/NAME.toml)")
    try:
        default: str | None = Path(default_profile(folder)).stem
    except BootstrapError:
        default = None
    return ", ".join(names) + (f" (default: {default})" if default else " (no default)")


def restored_rows(*, check: bool) -> list[tuple[str, str]]:
    from . import vmstate

    last = vmstate.last()
    if last is None:
        return [("restored", "nothing restored on this VM yet")]
    rows = [("restored", f"{last.profile} at {last.when} (from {last.spec})")]
    if check:
        rows.append(("holds", still_holds(last)))
    return rows


def still_holds(last: Any) -> str:
    """A dry run of the recorded restore: "yes", or what it would do again."""
    from .report import PLANNED
    from .runner import restore as run

    try:
        report = run(last.spec, only=last.only, skip=last.skip, dry_run=True,
                     python=last.python, store=last.store)
    except BootstrapError as error:
        return f"no: {error.what}"
    planned = [r for r in report.steps if r.outcome == PLANNED]
    if not planned:
        return "yes: every step is satisfied"
    return "no: " + "; ".join(f"{r.name} ({r.summary})" for r in planned)
