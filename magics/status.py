"""``%env_status``: where am I, what do I have, and does my profile still hold?

Shows the platform, the Python, the GPU, the Drive root (and whether it is
mounted), the store and its profiles, and the profile last restored on this
VM (from ``bootstrap.vmstate``) together with a dry run that says whether it
still holds. Reads only; changes nothing.
"""

from __future__ import annotations

import html
import os
import sys
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


@magics_class
class StatusMagics(Magics):
    """The status magic."""

    @magic_arguments()
    @argument("--store", metavar="DIR",
              help="the persistent store folder (default: per platform; BOOTSTRAP_STORE)")
    @argument("--no-check", action="store_true",
              help="do not re-check the last restored profile (no dry run)")
    @line_magic
    def env_status(self, line: str = "") -> None:
        """Show the platform, GPU, Drive, store and the profile restored on this VM.

        The last restore is checked again with a dry run, so the answer to
        "does it still hold" is current. Changes nothing.
        """
        args = parse_argstring(self.env_status, line)
        from .display import show

        rows = status_rows(store=args.store, check=not args.no_check)
        show({"text/plain": text(rows), "text/html": table(rows)})


def status_rows(*, store: str | None = None, check: bool = True) -> list[tuple[str, str]]:
    from bootstrap.platform import detect
    from bootstrap.store import Store

    platform = detect(store=store)
    the_store = Store(platform.store_root)
    rows = [
        ("platform", f"{platform.label} ({platform.name})"),
        ("python", f"{sys.executable} ({sys.version.split()[0]})"),
        ("gpu", gpu_line()),
        ("drive", drive_line(platform)),
        ("store", store_line(the_store)),
        ("profiles", profiles_line(the_store)),
    ]
    rows.extend(restored_rows(check=check))
    return rows


def gpu_line() -> str:
    """What the gpu step's nvidia-smi query finds (it never raises for a missing GPU)."""
    from bootstrap.gpus import probe

    return probe().describe()


def drive_line(platform: Any) -> str:
    root = platform.drive_root
    if platform.mountpoint is not None:
        mounted = os.path.ismount(platform.mountpoint) or (platform.mountpoint / "MyDrive").is_dir()
        return f"{root} ({'mounted' if mounted else 'not mounted'} at {platform.mountpoint})"
    return f"{root} ({'present' if root.is_dir() else 'missing'})"


def store_line(store: Any) -> str:
    return f"{store.root} ({'present' if store.root.is_dir() else 'not created yet'})"


def profiles_line(store: Any) -> str:
    from bootstrap.errors import BootstrapError

    from .restore import default_profile

    folder = store.profiles
    names = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    if not names:
        return "none saved (create one with %save_env NAME or write profiles/NAME.toml)"
    try:
        default = os.path.basename(default_profile(folder))[:-len(".toml")]
    except BootstrapError:
        default = None
    return ", ".join(names) + (f" (default: {default})" if default else " (no default)")


def restored_rows(*, check: bool) -> list[tuple[str, str]]:
    from bootstrap import vmstate

    last = vmstate.last()
    if last is None:
        return [("restored", "nothing restored on this VM yet")]
    rows = [("restored", f"{last.profile} at {last.when} (from {last.spec})")]
    if check:
        rows.append(("holds", still_holds(last)))
    return rows


def still_holds(last: Any) -> str:
    """A dry run of the recorded restore: "yes", or what it would do again."""
    from bootstrap import restore
    from bootstrap.errors import BootstrapError
    from bootstrap.report import PLANNED

    try:
        report = restore(last.spec, only=last.only, skip=last.skip, dry_run=True,
                         python=last.python, store=last.store)
    except BootstrapError as error:
        return f"no: {error.what}"
    planned = [r for r in report.steps if r.outcome == PLANNED]
    if not planned:
        return "yes: every step is satisfied"
    return "no: " + "; ".join(f"{r.name} ({r.summary})" for r in planned)


def text(rows: list[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(key)}</th>"
                   f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
                   for key, value in rows)
    return f"<table class='bootstrap-status'><tbody>{body}</tbody></table>"
