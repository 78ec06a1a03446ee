"""The ``run`` step: ordered commands (build from source, patch a file, chmod...).

Reads: ``[[run]]``, the file system (``creates`` guards) and the exit status of
``unless`` probes. Changes: whatever the commands change; nothing else.

Each entry is a program with its arguments (``argv``, no shell), or an
explicit ``shell`` script run as ``/bin/sh -c SCRIPT``. Placeholders are
expanded in every string. ``cwd`` is where it runs (default and base for a
relative path: the Drive root); ``env`` is merged over the environment the
restore runs in ([env] is already in force); ``timeout`` stops it after that
many seconds.

An entry is done when one of its guards says so: ``creates`` (a path,
relative to its ``cwd``) exists, or the ``unless`` command (argv, run in the
same cwd and env) exits 0. An entry with neither guard runs on every restore;
within one restore it counts as done once it ran. Entries run in order; the
first failure (exit code, time limit, missing program, or a guard still not
holding after a zero exit) stops the restore, naming the entry, the exit code
and the last lines of output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..context import Context
from ..errors import StepError
from ..process import display
from ..profile import Command, Profile
from . import Check

SHELL = "/bin/sh"
#: an ``unless`` probe is a quick test; one that hangs counts as "not done" after this
PROBE_TIMEOUT = 120.0
#: output lines shown with a failure
TAIL = 20


def wanted(profile: Profile) -> bool:
    return bool(profile.run)


@dataclass
class Entry:
    index: int
    command: Command
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    creates: Path | None
    unless: list[str] | None

    @property
    def label(self) -> str:
        name = f" ({self.command.name})" if self.command.name else ""
        return f"run[{self.index}]{name}"

    @property
    def guarded(self) -> bool:
        return self.creates is not None or self.unless is not None


def entry(ctx: Context, index: int) -> Entry:
    """Entry ``index`` with its placeholders expanded."""
    from ..context import expand_in_order

    command = ctx.profile.run[index]
    key = f"run[{index}]"
    if command.shell is not None:
        argv = [SHELL, "-c", ctx.expand(command.shell, f"{key}.shell")]
    else:
        assert isinstance(command.argv, list)
        argv = [ctx.expand(word, f"{key}.argv[{i}]") for i, word in enumerate(command.argv)]
    cwd = (ctx.path(command.cwd, f"{key}.cwd") if command.cwd is not None
           else ctx.platform.drive_root)
    env = dict(ctx.environ)
    env.update(expand_in_order(ctx, command.env, env, f"{key}.env"))
    creates = (ctx.path(command.creates, f"{key}.creates", base=cwd)
               if command.creates is not None else None)
    unless = None
    if isinstance(command.unless, list):
        unless = [ctx.expand(word, f"{key}.unless[{i}]") for i, word in enumerate(command.unless)]
    return Entry(index, command, argv, cwd, env, creates, unless)


def done(ctx: Context, item: Entry) -> str | None:
    """Why ``item`` needs no run (a guard holds, or it ran in this restore), else None."""
    if item.index in ctx.state["run"].get("ran", ()) and not item.guarded:
        return "ran in this restore"
    if item.creates is not None and os.path.lexists(item.creates):
        return f"{item.creates} exists"
    if item.unless is not None and item.cwd.is_dir():
        from .. import process

        try:
            probe = process.run(item.unless, env=item.env, cwd=str(item.cwd), check=False,
                                timeout=item.command.timeout or PROBE_TIMEOUT, step="run")
        except StepError:
            return None  # a missing program or a hung probe: not done
        if probe.returncode == 0:
            return f"{display(item.unless)} succeeded"
    return None


def pending_reason(item: Entry) -> str:
    reasons = []
    if item.creates is not None:
        reasons.append(f"{item.creates} missing")
    if item.unless is not None:
        reasons.append(f"{display(item.unless)} fails")
    return ", ".join(reasons) or "no guard: runs on every restore"


def check(ctx: Context) -> Check:
    items = [entry(ctx, i) for i in range(len(ctx.profile.run))]
    pending = [item for item in items if done(ctx, item) is None]
    total = len(items)
    if not pending:
        return Check(True, f"{total} command{'s' if total != 1 else ''} done")
    return Check(False, f"{len(pending)} of {total} command{'s' if total != 1 else ''} to run",
                 [f"{item.label}: {display(item.argv)} ({pending_reason(item)})"
                  for item in pending],
                 [item.index for item in pending])


def apply(ctx: Context, plan: Check) -> None:
    ran = ctx.state["run"].setdefault("ran", [])
    for index in plan.data:
        # Guards are read again here: an earlier entry may have made this one's
        # output already (one make builds two programs).
        item = entry(ctx, index)
        reason = done(ctx, item) if item.guarded else None
        if reason:
            ctx.note(f"{item.label} skipped: {reason}")
            continue
        execute(ctx, item)
        ran.append(index)
        if item.guarded and done(ctx, item) is None:
            raise StepError(f"{item.label} exited 0 but its guard still says it is not done",
                            where=ctx.where(f"run[{index}]"),
                            details=pending_reason(item),
                            hint="make the command create what `creates` names (relative to "
                                 "its cwd), or fix the guard; otherwise every restore runs it")
        ctx.note(f"{item.label} ran: {display(item.argv)}")


def execute(ctx: Context, item: Entry) -> None:
    where = f"{ctx.where(f'run[{item.index}]')}: {display(item.argv)}"
    if not item.cwd.is_dir():
        raise StepError(f"{item.label}: working folder {item.cwd} does not exist",
                        where=where, hint="fix cwd, or make the folder in an earlier step "
                                          "(a [[git]] clone or an earlier [[run]] entry)")
    ctx.say(f"$ {display(item.argv)}  ({item.label}, in {item.cwd})")
    try:
        done_ = ctx.run(item.argv, env=item.env, cwd=str(item.cwd),
                        timeout=item.command.timeout, check=False, tail_lines=TAIL)
    except StepError as error:  # missing program, not executable, time limit
        raise StepError(f"{item.label}: {error.what}", where=where, details=error.details,
                        hint=error.hint) from None
    if done_.returncode != 0:
        raise StepError(f"{item.label} failed with exit code {done_.returncode}", where=where,
                        details=done_.output or "(no output)",
                        hint="the last lines of its output are above; later commands and "
                             "steps did not run")
