"""``%restore_env``: restore this machine from a profile, live in the notebook.

A thin adapter over ``bootstrap.restore``: parse the line (IPython's
magic_arguments, so ``%restore_env?`` shows the usage and a bad option is a
UsageError, never a SystemExit), pick the profile, run the restore with a live
display, then look at what the install changed: modules this kernel already
imported are named in the report (and, on Colab, in Colab's own restart
prompt), and ``--restart`` restarts the kernel when that is needed.

Errors are not caught: a BootstrapError shows as its few lines (what, where,
hint) through ``_render_traceback_``, the cell fails and a papermill run
stops there. The partial report is shown first.
"""

from __future__ import annotations

import os
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

STEPS_HELP = "gpu, drive, secrets, env, apt, files, git, pip, run, workdir, setup"
DEFAULT_NAME = "default"


@magics_class
class BootstrapMagics(Magics):
    """The restore magics."""

    @magic_arguments()
    @argument("profile", nargs="?", metavar="PROFILE",
              help="a profile name (looked up in the store, then the shipped profiles), "
                   "a path to a .toml file or an https URL; default: the store's "
                   "profiles/default.toml, or its only profile")
    @argument("--only", nargs="+", action="extend", default=[], metavar="STEP",
              help=f"run only these steps ({STEPS_HELP}); repeatable, or comma-separated")
    @argument("--skip", nargs="+", action="extend", default=[], metavar="STEP",
              help="leave these steps out")
    @argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    @argument("--python", metavar="PATH",
              help="the interpreter to install packages into (default: this kernel's)")
    @argument("--store", metavar="DIR",
              help="the persistent store folder (default: per platform; BOOTSTRAP_STORE)")
    @argument("--force", action="store_true",
              help="redo steps that keep a done-marker (e.g. the setup notebook)")
    @argument("--upgrade", action="store_true",
              help="make the pip lock again with the newest versions")
    @argument("--restart", action="store_true",
              help="restart the kernel when the install replaced modules it has imported")
    @line_magic
    def restore_env(self, line: str = "") -> None:
        """Restore this machine (packages, files, settings) from a saved profile.

        Shows each step's progress while it runs, then a report. Running it
        again when nothing changed is a quick no-op. Examples::

            %restore_env vision
            %restore_env examples/demo.toml --dry-run
            %restore_env vision --skip gpu --restart
        """
        args = parse_argstring(self.restore_env, line)
        run(self.shell, args)


def default_profile(profiles: os.PathLike[str] | str) -> str:
    """The profile to use when none is named: ``default.toml``, else the only one there.

    Raises OptionError saying how to create one when the store holds none, and
    naming them when it holds several.
    """
    from pathlib import Path

    from bootstrap.errors import OptionError

    folder = Path(profiles)
    default = folder / f"{DEFAULT_NAME}.toml"
    if default.is_file():
        return str(default)
    found = sorted(p for p in folder.glob("*.toml") if p.is_file()) if folder.is_dir() else []
    if len(found) == 1:
        return str(found[0])
    if not found:
        raise OptionError("no profile named and none saved in the store", where=str(folder),
                          hint="save this session's setup with %save_env NAME, or write a "
                               f"profile to {folder}/NAME.toml; then run %restore_env NAME")
    names = ", ".join(p.stem for p in found)
    raise OptionError(f"no profile named and the store holds {len(found)}: {names}",
                      where=str(folder),
                      hint=f"name one (%restore_env {found[0].stem}), or save the one to use "
                           f"by default as {DEFAULT_NAME}.toml")


def resolve(spec: str | None, store: str | None) -> tuple[str, str]:
    """(profile spec, store root): the default profile when none is given, paths absolute.

    Paths are made absolute now because the workdir step may change directory.
    """
    from pathlib import Path

    from bootstrap.platform import detect
    from bootstrap.profile import is_path, is_url
    from bootstrap.store import Store

    platform = detect(store=store)
    the_store = Store(platform.store_root)
    if spec is None:
        from bootstrap.steps.drive import before_lookup

        # the default profile is in the store, on Drive under Colab: mount it first
        before_lookup(platform, "default")
        spec = default_profile(the_store.profiles)
    elif not is_url(spec) and is_path(spec):
        spec = str(Path(spec).expanduser().absolute())
    return spec, str(the_store.root)


def run(shell: Any, args: Any) -> Any:
    """Restore as ``args`` (the parsed line) says; returns the Report, raises BootstrapError."""
    from bootstrap import restore
    from bootstrap.errors import BootstrapError
    from bootstrap.platform import detect_name

    from .display import LiveView, show
    from .restart import colab_prompt

    spec, store = resolve(args.profile, args.store)
    from bootstrap.runner import step_names

    only, skip = step_names(args.only), step_names(args.skip)
    view = LiveView(shell)
    try:
        report = restore(spec, only=only, skip=skip, dry_run=args.dry_run, python=args.python,
                         store=args.store, force=args.force, progress=view,
                         upgrade=args.upgrade)
    except BootstrapError as error:
        view.finish(error.report)
        raise
    except BaseException:
        view.finish(None)
        raise
    platform = detect_name()
    stale = [] if args.dry_run else stale_after(report, platform)
    restarting = False
    if stale:
        if args.restart and shell_can_restart(shell):
            restarting = True
            report.notes.append(f"{', '.join(stale)} imported before the install: restarting "
                                "the runtime now (--restart); then run %load_ext bootstrap and "
                                "%restore_env again, it will find everything in place")
        else:
            report.notes.append(f"{', '.join(stale)} imported before the install: "
                                "restart the runtime to use the new versions")
            if args.restart:
                report.notes.append("--restart needs a kernel (Jupyter, Colab); restart this "
                                    "IPython yourself")
    elif args.restart and not args.dry_run:
        report.notes.append("no restart needed: no imported module changed")
    if not args.dry_run:
        remember(report, spec, store, only, skip)
    exported = (report.step("setup").data.get("exported") if report.step("setup") else None)
    if exported:
        from .setup import push

        push(shell, exported)
        report.notes.append(f"the setup notebook exported {', '.join(sorted(exported))} "
                            "into this notebook")
    view.finish(report)
    if stale and platform == "colab" and not restarting:
        show(colab_prompt(stale))
    if restarting:
        from .restart import restart_kernel

        restart_kernel(shell)
    return report


def shell_can_restart(shell: Any) -> bool:
    from .restart import can_restart

    return can_restart(shell)


def stale_after(report: Any, platform: str) -> list[str]:
    """Modules this kernel imported whose distributions the pip step replaced."""
    from bootstrap.interpreter import inspect, is_running

    pip = report.step("pip")
    changed = (pip.data or {}).get("changed") if pip is not None else None
    if not changed or not is_running(report.python):
        return []
    from .restart import stale_modules

    return stale_modules(changed, inspect(report.python).distributions(), platform=platform)


def remember(report: Any, spec: str, store: str, only: list[str], skip: list[str]) -> None:
    """Record the restore as this VM's last; a failure to write is a note, not an error."""
    from bootstrap import vmstate
    from bootstrap.errors import BootstrapError

    try:
        vmstate.record(vmstate.Restored(profile=report.profile, spec=spec, store=store,
                                        python=report.python, only=only, skip=skip,
                                        headline=report.headline()))
    except BootstrapError as error:
        report.notes.append(f"could not record this restore for %env_status: {error.what}")
