"""``%restore_env``: restore this machine from a profile, live in the notebook.

A thin adapter over ``bootstrap.restore``: parse the line (IPython's
magic_arguments, so ``%restore_env?`` shows the usage and a bad option is a
UsageError, never a SystemExit; options and the profile in any order), run the
restore with a live display (the engine picks the default profile, records the
VM and names the modules the install made stale), then do what needs a kernel:
push the setup notebook's exported values, show Colab's own restart prompt,
and with ``--restart`` restart the kernel when that is needed.

Errors are not caught: a BootstrapError shows as its few lines (what, where,
hint) through ``_render_traceback_``, the cell fails and a papermill run
stops there. The partial report is shown first.
"""

from __future__ import annotations

import os
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

STEPS_HELP = ("gpu, drive, secrets, env, apt, files, git, build, venv, pip, run, workdir, "
              "variables, setup")


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
              help="restart the kernel when the install replaced modules it has imported "
                   "(Colab then shows 'Your session crashed' and a Run all stops there)")
    @argument("--verbose", "-v", action="store_true",
              help="also show how each step did its work (lock files, store traffic)")
    @line_magic
    def restore_env(self, line: str = "") -> None:
        """Restore this machine (packages, files, settings) from a saved profile.

        Shows each step's progress while it runs, then a report. Running it
        again when nothing changed is a quick no-op. Examples::

            %restore_env vision
            %restore_env demo --dry-run
            %restore_env vision --skip gpu --restart
        """
        args = parse_argstring(self.restore_env, line)
        run(self.shell, args)


def run(shell: Any, args: Any) -> Any:
    """Restore as ``args`` (the parsed line) says; returns the Report, raises BootstrapError."""
    from bootstrap import restore
    from bootstrap.errors import BootstrapError
    from bootstrap.platform import detect_name
    from bootstrap.session import RESTART_NOTE, profile_among_steps

    from .display import LiveView, show
    from .restart import colab_prompt, colab_prompt_wanted

    spec, only, skip = profile_among_steps(args.profile, args.only, args.skip)
    view = LiveView(shell, verbose=args.verbose)
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
    stale = report.stale
    restarting = False
    if stale and args.restart:
        if can_restart(shell):
            restarting = True
            report.notes = [n.replace(RESTART_NOTE, "restarting the runtime now (--restart); "
                                      "then run %load_ext bootstrap and %restore_env again, "
                                      "it will find everything in place"
                                      + (" (Colab will say 'Your session crashed': it has "
                                         "no other word for a restart)"
                                         if detect_name() == "colab" else ""))
                            for n in report.notes]
        else:
            report.notes.append("--restart needs a kernel (Jupyter, Colab); restart this "
                                "IPython yourself")
    elif args.restart and not args.dry_run:
        report.notes.append("no restart needed: no imported module changed")
    if report.variables and not args.dry_run:
        from .setup import push

        push(shell, report.variables)
        report.notes.append(f"[variables] set {', '.join(report.variables)} in this notebook")
    exported = (report.step("setup").data.get("exported") if report.step("setup") else None)
    if exported:
        from .setup import push

        push(shell, exported)
        report.notes.append(f"the setup notebook exported {', '.join(sorted(exported))} "
                            "into this notebook")
    view.finish(report)
    if stale and detect_name() == "colab" and not restarting \
            and colab_prompt_wanted(os.environ):
        show(colab_prompt(stale))
    if restarting:
        from .restart import restart_kernel

        restart_kernel(shell)
    return report


def can_restart(shell: Any) -> bool:
    from .restart import can_restart as _can_restart

    return _can_restart(shell)
