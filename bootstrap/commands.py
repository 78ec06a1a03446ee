"""Ordered commands: what the ``build`` and ``run`` steps do with their entries.

``[[build]]`` and ``[[run]]`` entries have the same keys and the same
behaviour; they differ only in when their step runs (build before ``[venv]``
and ``[pip]``, run after them). The step's name (``ctx.step``) says which
section is read; messages name entries ``run[2]`` or ``build[0]``.

Reads: the section's entries, ``[workdir]`` (the default cwd), the file
system (``creates`` guards), the exit status of ``unless`` probes and the
run-once markers in the local state folder. Changes: whatever the commands
change; a marker for each ``once`` entry that ran.

Each entry is a program with its arguments (``argv``, no shell), several
programs run in order (``commands``, a list of argv lists; the first failure
stops the entry), or an explicit ``shell`` script run as ``/bin/sh -c
SCRIPT``. Placeholders are expanded in every string. ``cwd`` is where it runs
(default: the ``[workdir]`` when the profile has one, else the folder the
restore started in; a relative ``cwd`` is taken against the Drive root);
``env`` is merged over the environment the restore runs in ([env] is already
in force); ``timeout`` stops each program after that many seconds;
``when`` leaves the entry out where its condition does not hold.

An entry is done when one of its guards says so: ``creates`` (a path,
relative to its ``cwd``) exists, the ``unless`` command (argv, run in the
same cwd and env) exits 0, or, with ``once = true``, a marker says it ran on
this VM. The marker sits in the local state folder (never the store: a new
VM must run it again) and is keyed by the entry's content, so an edited entry
runs again; ``--force`` runs it again. An entry with no guard runs on every
restore; within one restore it counts as done once it ran. Each guard is read right before its entry
would run, so an earlier entry can make a later one unnecessary.

A ``check = true`` entry is a smoke test: it runs on every restore (not in a
dry run), in its place among the others, shows its output, and never counts
as a change; when it fails, the restore fails.

Entries run in order; the first failure (exit code, time limit, missing
program, or a guard still not holding after a zero exit) stops the restore,
naming the entry, the command, the exit code and the last lines of output.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .context import Context
from .errors import BootstrapError, StepError, TimedOut
from .process import display
from .profile import Command
from .schema import to_data

SHELL = "/bin/sh"
#: an ``unless`` probe is a quick test; one that hangs counts as "not done" after this
PROBE_TIMEOUT = 120.0
#: output lines shown with a failure
TAIL = 20
#: the kind of the run-once markers in the local state folder
MARKS = "run"


def section(ctx: Context) -> list[Command]:
    """The entries of the running step's section: ``[[run]]`` or ``[[build]]``."""
    return getattr(ctx.profile, ctx.step)


@dataclass
class Entry:
    section: str
    index: int
    command: Command
    programs: list[list[str]]
    cwd: Path
    env: dict[str, str]
    creates: Path | None
    unless: list[str] | None
    default_cwd: bool = False

    @property
    def label(self) -> str:
        name = f" ({self.command.name})" if self.command.name else ""
        return f"{self.section}[{self.index}]{name}"

    @property
    def argv(self) -> list[str]:
        return self.programs[0]

    @property
    def shown(self) -> str:
        return " && ".join(display(argv) for argv in self.programs)

    @property
    def guarded(self) -> bool:
        return self.creates is not None or self.unless is not None or self.command.once

    @property
    def key(self) -> str:
        """The run-once marker's key: the entry's content, so an edit runs it again."""
        data = to_data(self.command)
        data.pop("name", None)
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def default_cwd(ctx: Context) -> Path:
    """Where an entry without ``cwd`` runs: the [workdir], else where the restore started."""
    if ctx.profile.workdir is not None:
        return ctx.path(ctx.profile.workdir.path, "workdir.path")
    return ctx.start_dir


def entry(ctx: Context, index: int) -> Entry:
    """Entry ``index`` with its placeholders expanded."""
    command = section(ctx)[index]
    key = f"{ctx.step}[{index}]"
    if command.shell is not None:
        script = secrets_by_reference(command.shell, ctx.profile.secrets)
        programs = [[SHELL, "-c", ctx.expand(script, f"{key}.shell")]]
    elif command.commands is not None:
        programs = [[ctx.expand(word, f"{key}.commands[{j}][{i}]") for i, word in enumerate(argv)]
                    for j, argv in enumerate(command.commands)]
    else:
        assert isinstance(command.argv, list)
        programs = [[ctx.expand(word, f"{key}.argv[{i}]") for i, word in enumerate(command.argv)]]
    cwd = (ctx.path(command.cwd, f"{key}.cwd") if command.cwd is not None
           else default_cwd(ctx))
    env = dict(ctx.environ)
    env.update(ctx.expand_in_order(command.env, env, f"{key}.env"))
    creates = (ctx.path(command.creates, f"{key}.creates", base=cwd)
               if command.creates is not None else None)
    unless = None
    if isinstance(command.unless, list):
        unless = [ctx.expand(word, f"{key}.unless[{i}]") for i, word in enumerate(command.unless)]
    return Entry(ctx.step, index, command, programs, cwd, env, creates, unless, command.cwd is None)


def done(ctx: Context, item: Entry) -> str | None:
    """Why ``item`` needs no run (a guard holds, or it ran in this restore), else None."""
    if item.index in ctx.state[ctx.step].get("ran", ()) and \
            (not item.guarded or item.command.once):  # once: even if its marker could not be kept
        return "ran in this restore"
    if item.command.once and not ctx.force:  # --force runs it again (once per restore)
        from .vmstate import find_mark

        if find_mark(MARKS, item.key) is not None:
            return "ran once on this VM (once = true)"
    return guard_holds(ctx, item)


def guard_holds(ctx: Context, item: Entry, *, ran: bool = False) -> str | None:
    """Why the ``creates`` or ``unless`` guard says ``item`` is done, else None.

    Before the entry runs, a hung ``unless`` probe means "not done"; right after
    it ran (``ran``), a hung probe is an error of its own: it says nothing.
    """
    if item.creates is not None and os.path.lexists(item.creates):
        return f"{item.creates} exists"
    if item.unless is not None and item.cwd.is_dir() and not missing_program(item.unless):
        from . import process

        try:
            probe = process.run(item.unless, env=item.env, cwd=str(item.cwd), check=False,
                                timeout=item.command.timeout or PROBE_TIMEOUT, step=ctx.step)
        except TimedOut as error:
            if not ran:
                return None  # a hung probe: not done
            key = f"{item.section}[{item.index}].unless"
            raise StepError(f"{item.label}: its unless guard {display(item.unless)} did not "
                            f"finish within {error.timeout:g} s",
                            where=ctx.where(key), details=error.details,
                            hint="the command itself exited 0; make the guard return quickly "
                                 "(it runs under the entry's timeout), or raise `timeout`") \
                from None
        except StepError:
            return None  # a missing program: not done
        if probe.returncode == 0:
            return f"{display(item.unless)} succeeded"
    return None


def missing_program(argv: list[str]) -> bool:
    """Whether ``argv`` names its program by a path that is not there (yet)."""
    return os.sep in argv[0] and not os.path.lexists(argv[0])


def pending_reason(item: Entry) -> str:
    reasons = []
    if item.command.once:
        reasons.append("not run on this VM yet (once = true)")
    if item.creates is not None:
        reasons.append(f"{item.creates} missing")
    if item.unless is not None:
        if not item.cwd.is_dir():
            reasons.append(f"{display(item.unless)} not tried yet: {item.cwd} does not exist")
        elif missing_program(item.unless):
            # e.g. {python} of a [venv] that this restore makes later
            reasons.append(f"{display(item.unless)} not tried yet: {item.unless[0]} "
                           "does not exist")
        else:
            reasons.append(f"{display(item.unless)} fails")
    return ", ".join(reasons) or "no guard: runs on every restore"


def _left_out(ctx: Context, command: Command) -> bool:
    return not ctx.holds(command.when)


@dataclass
class Plan:
    """What ``plan`` found: the step's Check, in the words of this part."""

    satisfied: bool
    summary: str
    actions: list[str] = field(default_factory=list)
    data: list[int] = field(default_factory=list)   # the pending entries' numbers


def plan(ctx: Context) -> Plan:
    state = ctx.state[ctx.step]
    items, checks, skipped = [], [], []
    for i, command in enumerate(section(ctx)):
        if _left_out(ctx, command):
            skipped.append(i)
        elif command.check:
            checks.append(entry(ctx, i))
        else:
            items.append(entry(ctx, i))
    if skipped and not state.get("noted"):
        state["noted"] = True
        for i in skipped:
            when = section(ctx)[i].when or ""
            ctx.note(f"{ctx.step}[{i}] left out: {ctx.facts.why_not(when)}")
    pending = [item for item in items if done(ctx, item) is None]
    total = len(items)
    summary = f"{total} command{'s' if total != 1 else ''}"
    if not pending:
        ran_checks = run_checks(ctx, checks)
        return Plan(True, f"{summary} done{ran_checks}")
    actions = [f"{item.label}: {item.shown} ({pending_reason(item)})" for item in pending]
    actions += [f"{item.label}: {item.shown} (check: runs on every restore)" for item in checks]
    return Plan(False, f"{len(pending)} of {summary} to run", actions,
                [item.index for item in pending])


def run_checks(ctx: Context, checks: list[Entry]) -> str:
    """Run the check entries that did not run in this restore; a summary suffix."""
    if not checks:
        return ""
    if ctx.dry_run:
        for item in checks:
            ctx.note(f"{item.label} would check: {item.shown}")
        return f"; {len(checks)} check{'s' if len(checks) != 1 else ''} to run"
    checked = ctx.state[ctx.step].setdefault("checked", [])
    for item in checks:
        if item.index not in checked:
            execute(ctx, item)
            checked.append(item.index)
    return f"; {len(checks)} check{'s' if len(checks) != 1 else ''} passed"


def apply(ctx: Context, pending: list[int]) -> None:
    ran = ctx.state[ctx.step].setdefault("ran", [])
    checked = ctx.state[ctx.step].setdefault("checked", [])
    for index, command in enumerate(section(ctx)):
        if _left_out(ctx, command):
            continue
        # Each guard is read right before its entry: an earlier entry may have made
        # this one's output already (one make builds two programs), or changed what
        # its probe sees.
        item = entry(ctx, index)
        if command.check:
            if index not in checked:
                execute(ctx, item)
                checked.append(index)
            continue
        reason = done(ctx, item)
        if reason:
            if index in pending:
                ctx.note(f"{item.label} skipped: {reason}")
            continue
        execute(ctx, item)
        ran.append(index)
        if (item.creates is not None or item.unless is not None) \
                and guard_holds(ctx, item, ran=True) is None:
            raise StepError(f"{item.label} exited 0 but its guard still says it is not done",
                            where=ctx.where(item.label.split(" ")[0]),
                            details=pending_reason(item),
                            hint="make the command create what `creates` names (relative to "
                                 "its cwd), or fix the guard; otherwise every restore runs it")
        if command.once:
            remember(ctx, item)
        ctx.note(f"{item.label} ran: {item.shown}")


def remember(ctx: Context, item: Entry) -> None:
    """Write the run-once marker; a failure to write is a note (it runs again next time)."""
    from .vmstate import save_mark

    try:
        save_mark(MARKS, item.key, {"entry": item.label, "profile": ctx.profile.name or "",
                                    "command": to_data(item.command)})
    except BootstrapError as error:
        ctx.note(f"{item.label}: could not record that it ran ({error.what}); "
                 "the next restore runs it again")


def execute(ctx: Context, item: Entry) -> None:
    if not item.cwd.is_dir() and item.default_cwd and ctx.profile.workdir is not None \
            and ctx.profile.workdir.create:
        item.cwd.mkdir(parents=True, exist_ok=True)  # the workdir step would create it too
    count = len(item.programs)
    for number, argv in enumerate(item.programs, 1):
        which = f" command {number} of {count}" if count > 1 else ""
        where = f"{ctx.where(f'{item.section}[{item.index}]')}: {display(argv)}"
        if not item.cwd.is_dir():
            raise StepError(f"{item.label}: working folder {item.cwd} does not exist",
                            where=where, hint="fix cwd, or make the folder in an earlier step "
                                              "(a [[git]] clone or an earlier entry)")
        ctx.say(f"$ {display(argv)}  ({item.label}{which}, in {item.cwd})")
        try:
            finished = ctx.run(argv, env=item.env, cwd=str(item.cwd),
                               timeout=item.command.timeout, check=False, tail_lines=TAIL)
        except StepError as error:  # missing program, not executable, time limit
            raise StepError(f"{item.label}{which}: {error.what}", where=where,
                            details=error.details, hint=error.hint) from None
        if finished.returncode != 0:
            later = "the entry's later commands, " if number < count else ""
            raise StepError(f"{item.label}{which} failed with exit code {finished.returncode}",
                            where=where, details=finished.output or "(no output)",
                            hint=f"the last lines of its output are above; {later}later "
                                 "entries and steps did not run")
        if item.command.check and finished.tail:
            ctx.note(f"{item.label} check passed: {finished.tail[-1][:200]}")


_SECRET_PLACEHOLDER = re.compile(r'(")?\{env:([A-Za-z_][A-Za-z0-9_]*)\}')


def secrets_by_reference(script: str, declared: Iterable[str] = ()) -> str:
    """``script`` with each secret ``{env:NAME}`` (a [secrets] variable, or a name like
    HF_TOKEN) turned into a reference the shell reads from the environment, ``"${NAME}"``.

    Pasted as text, the value would be code to the shell (a quote or ``$`` in a
    password) and would show in the process list; the entry's environment holds it.
    """
    from .redact import is_secret_name

    names = set(declared)

    def reference(match: re.Match[str]) -> str:
        quote, name = match[1] or "", match[2]
        if name not in names and not is_secret_name(name):
            return match[0]
        return f"{quote}${{{{{name}}}}}" if quote else f'"${{{{{name}}}}}"'

    return _SECRET_PLACEHOLDER.sub(reference, script)
