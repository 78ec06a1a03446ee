"""The command line: ``bootstrap restore|validate|show|lock PROFILE``,
``bootstrap save NAME``, ``bootstrap setup NOTEBOOK``, ``bootstrap status``,
``bootstrap help [TOPIC]``, ``bootstrap import NOTEBOOK``,
``bootstrap export PROFILE --to ENGINE DIR``, ``bootstrap pack PROFILE DEST``.

Options map one to one onto the Python API. Errors print as their few lines
(what, where, hint); ``--debug`` shows tracebacks. Exit codes: 0 done,
1 a step failed, 2 bad usage, 3 bad profile, 4 this machine does not fit the
profile (e.g. no GPU), 70 an internal error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .errors import BootstrapError

EXIT_INTERNAL = 70


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="DIR",
                        help="the persistent store folder (default: per platform; "
                             "BOOTSTRAP_STORE)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    from .steps import ORDER

    parser = argparse.ArgumentParser(
        prog="bootstrap", description="Restore a notebook VM from a saved environment profile.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    restore = sub.add_parser("restore", help="bring this machine to what a profile says")
    restore.add_argument("profile", nargs="?",
                         help="a profile name, a path to a .toml file or an https URL (default: "
                              "the store's profiles/default.toml, or its only profile)")
    restore.add_argument("--only", nargs="+", default=[], metavar="STEP",
                         help=f"run only these steps ({', '.join(ORDER)}; commas work too)")
    restore.add_argument("--skip", nargs="+", default=[], metavar="STEP",
                         help="leave these steps out")
    restore.add_argument("--dry-run", action="store_true",
                         help="print what would be done and change nothing")
    restore.add_argument("--python", metavar="PATH",
                         help="the interpreter to install packages into (default: this one)")
    restore.add_argument("--drive", metavar="DIR",
                         help="the Drive root for {drive} and relative paths (BOOTSTRAP_DRIVE)")
    restore.add_argument("--force", action="store_true",
                         help="redo steps that keep a done-marker (e.g. the setup notebook)")
    restore.add_argument("--upgrade", action="store_true",
                         help="make the pip lock again with the newest versions")
    restore.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    restore.add_argument("--verbose", "-v", action="store_true",
                         help="also show how each step did its work (lock files, store traffic)")
    _common(restore)

    status = sub.add_parser("status", help="this machine, the store, and whether the last "
                                           "restore still holds")
    status.add_argument("--no-check", action="store_true",
                        help="do not re-check the last restored profile (no dry run)")
    _common(status)

    topic = sub.add_parser("help", help="print the documentation on a topic (profile, pip, "
                                         "secrets, saving, ...)")
    topic.add_argument("topic", nargs="?", help="a topic or section; none: the list of topics")
    topic.set_defaults(debug=False)

    validate = sub.add_parser("validate", help="check a profile and report every problem")
    validate.add_argument("profile")
    _common(validate)

    lock = sub.add_parser("lock", help="resolve a profile's [pip] packages and write its lock")
    lock.add_argument("profile", help="a profile name, a path to a .toml file or an https URL")
    lock.add_argument("--upgrade", action="store_true",
                      help="resolve everything afresh instead of keeping the locked versions")
    lock.add_argument("--python", metavar="PATH",
                      help="the interpreter to resolve for (default: this one)")
    _common(lock)

    show = sub.add_parser("show", help="print the resolved profile as TOML")
    show.add_argument("profile")
    show.add_argument("--platform", choices=("colab", "kaggle", "local"),
                      help="merge this platform's overrides (default: this machine's)")
    _common(show)

    setup = sub.add_parser("setup", help="run a setup notebook with papermill, unless it "
                                         "already ran on this machine")
    setup.add_argument("notebook", help="the setup notebook (.ipynb)")
    setup.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"),
                       help="a parameter, typed like papermill's -p (True/False/None, int, "
                            "float, else a string); repeat for more")
    setup.add_argument("--force", action="store_true", help="run even when already done")
    setup.add_argument("--timeout", type=float, metavar="S", help="seconds each cell may run")
    setup.add_argument("--start-timeout", type=float, metavar="S",
                       help="seconds the kernel may take to start (default 60)")
    setup.add_argument("--kernel", metavar="NAME", help="the kernel (default: the notebook's, "
                                                        "else python3)")
    setup.add_argument("--cwd", metavar="DIR", help="working folder (default: the notebook's)")
    setup.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _common(setup)

    save = sub.add_parser("save", help="save what this session changed as a profile")
    save.add_argument("name", help="the profile name (profiles/NAME.toml in the store)")
    save.add_argument("--dry-run", action="store_true", help="print the profile, write nothing")
    save.add_argument("--since", metavar="TIME",
                      help="count changes after this time (epoch seconds or ISO 8601; default: "
                           "BOOTSTRAP_SESSION_START or when the VM started)")
    _common(save)

    imp = sub.add_parser("import", help="write a profile from a notebook's setup cells "
                                        "(nothing in it runs)")
    imp.add_argument("notebook", help="the notebook (.ipynb) whose pip, apt, Drive, git... "
                                      "lines to read")
    imp.add_argument("--name", help="the profile name (default: the notebook's file name)")
    imp.add_argument("--dry-run", action="store_true", help="print the profile, write nothing")
    _common(imp)

    exp = sub.add_parser("export", help="write a profile as repo2docker, devcontainer or Ray "
                                        "files")
    exp.add_argument("profile", help="a profile name, a path to a .toml file or an https URL")
    exp.add_argument("--to", required=True, choices=("repo2docker", "devcontainer", "ray"),
                     help="the engine to write files for")
    exp.add_argument("dest", metavar="DIR", help="the folder to write them into")
    _common(exp)

    pack = sub.add_parser("pack", help="write a profile, its lock and the wheels it needs into "
                                       "a folder to upload as a Kaggle dataset")
    pack.add_argument("profile", help="a profile name or a path to a .toml file")
    pack.add_argument("dest", help="a new folder")
    pack.add_argument("--id", dest="dataset_id", metavar="USER/SLUG",
                      help="the dataset's id (default: KAGGLE_USERNAME/NAME-env)")
    pack.add_argument("--title", help="the dataset's title (default: NAME environment)")
    _common(pack)
    return parser


def print_progress(event) -> None:
    if event.kind == "start":
        print(f"-> {event.step}", file=sys.stderr, flush=True)
    elif event.kind == "line":
        print(f"   {event.step}: {event.text}", file=sys.stderr, flush=True)
    elif event.result is not None:
        print(f"<- {event.step}: {event.result.outcome} ({event.result.seconds:.2f} s)",
              file=sys.stderr, flush=True)


def cmd_restore(args: argparse.Namespace) -> int:
    from .session import profile_among_steps, restore, wait_for_store

    profile, only, skip = profile_among_steps(args.profile, args.only, args.skip)
    # imported=(): this process's own imports end with it; the kernel's preloaded ones count
    report = restore(profile, only=only, skip=skip, dry_run=args.dry_run, python=args.python,
                     store=args.store, drive=args.drive, force=args.force, imported=(),
                     upgrade=args.upgrade,
                     progress=None if args.quiet else print_progress)
    print(report.text(verbose=args.verbose))
    if report.variables:
        import json

        from .redact import MASK, mask, shown_values

        # the notebook gets the values; the output does not
        for name, value in shown_values(report.variables).items():
            shown = MASK if value == MASK else json.dumps(value, ensure_ascii=False)
            print(mask(f"variable {name} = {shown}"))
    for error in wait_for_store():  # wheels still being saved to the store
        print(f"warning: {error}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .session import status

    print(status(store=args.store, check=not args.no_check).text())
    return 0


def cmd_help(args: argparse.Namespace) -> int:
    from .manual import lookup

    print(lookup(args.topic).text.rstrip())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from . import load_profile
    from .redact import mask

    profile = load_profile(args.profile, store=args.store)
    print(mask(f"{profile.origin}: valid profile {profile.name!r} "
               f"({', '.join(profile.sections()) or 'no steps'})"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from . import load_profile
    from .platform import detect_name
    from .profile import dump
    from .redact import mask

    profile = load_profile(args.profile, store=args.store)
    print(mask(dump(profile.for_platform(args.platform or detect_name()))), end="")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    import json

    from .notebook import parse_parameters, progress_bar, run_setup
    from .platform import detect
    from .store import Store

    on_cell, close = (None, lambda: None) if args.quiet else progress_bar(file=sys.stderr)
    try:
        outcome = run_setup(args.notebook, parse_parameters(args.parameter), force=args.force,
                            store=Store(detect(store=args.store).store_root), on_cell=on_cell,
                            cwd=args.cwd, kernel=args.kernel, timeout=args.timeout,
                            start_timeout=args.start_timeout)
    finally:
        close()
    print(outcome.summary())
    for note in outcome.notes:
        print(f"note: {note}")
    from .redact import MASK, mask, shown_values

    for name, value in shown_values(outcome.exported).items():
        # a notebook may hand back a token: the terminal (and a log of it) must not show it
        shown = MASK if value == MASK else json.dumps(value, ensure_ascii=False)
        print(mask(f"exported {name} = {shown}"))
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    from .saving import save

    # this process started with the kernel's current environment, so variables are
    # compared with the baseline taken at %load_ext instead
    result = save(args.name, dry_run=args.dry_run, store=args.store, since=args.since,
                  env_start="baseline")
    print(result.text())
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from .runner import lock as lock_profile

    path, lock, changes = lock_profile(args.profile, upgrade=args.upgrade, python=args.python,
                                       store=args.store, progress=print_progress)
    print(f"wrote {path}: {len(lock.packages)} packages"
          + (f", {len(changes)} changed" if changes else ", none changed"))
    for line in changes:
        print(f"  {line}")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from . import pack

    print(pack(args.profile, args.dest, store=args.store, dataset_id=args.dataset_id,
               title=args.title).text())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from . import import_notebook

    result = import_notebook(args.notebook, name=args.name, dry_run=args.dry_run,
                             store=args.store)
    print(result.text())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import export_profile

    print(export_profile(args.profile, args.to, args.dest, store=args.store).text())
    return 0


COMMANDS = {"restore": cmd_restore, "status": cmd_status, "help": cmd_help,
            "validate": cmd_validate, "show": cmd_show,
            "setup": cmd_setup, "save": cmd_save, "lock": cmd_lock,
            "import": cmd_import, "export": cmd_export, "pack": cmd_pack}


def unknown_options(parser: argparse.ArgumentParser, command: str | None,
                    extra: list[str]) -> str:
    """argparse's "unrecognized arguments" message, with a did-you-mean for a mistyped option."""
    import difflib

    message = f"unrecognized arguments: {' '.join(extra)}"
    known = list(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            known += list(action.choices[command]._option_string_actions)
    for word in extra:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1)
            if close:
                return f"{message} (did you mean {close[0]}?)"
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(unknown_options(parser, args.command, extra))
    try:
        return COMMANDS[args.command](args)
    except BootstrapError as error:
        if args.debug:
            raise
        report = getattr(error, "report", None)
        if report is not None:
            print(report.text())
        print(str(error), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bootstrap help pip | head`: the reader has all it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:
        if args.debug:
            raise
        import traceback

        traceback.print_exc()
        print("error: internal error in notebook-bootstrap (the traceback above is a bug; "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL
