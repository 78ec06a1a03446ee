"""The one exception hierarchy of notebook-bootstrap.

Every error says what went wrong, where (a file and key path, or a command and
its exit code) and how to fix it. In IPython they render as those few lines
instead of a traceback (``_render_traceback_``) yet stay real exceptions, so a
papermill run stops on them. Every field is masked of secrets (``redact``) when
the error is made and again when it is shown. This module imports nothing from
the package but ``redact``, which imports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .redact import mask

#: the fields of an error that are shown, so masked of secrets whenever they are set
_MASKED = frozenset({"what", "where", "hint", "details"})


class BootstrapError(Exception):
    """Base of all expected failures: bad input, failed commands, unmet needs."""

    #: process exit status used by the CLI for this kind of error
    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None,
                 details: str | None = None) -> None:
        what = mask(what)
        super().__init__(what)
        self.what = what
        self.where = where
        self.hint = hint
        #: extra lines shown under the message (e.g. the tail of a command's output)
        self.details = details
        #: the restore report up to the failure, when the error came from a restore
        self.report: Any = None

    def __setattr__(self, name: str, value: Any) -> None:
        # a field set later (a step adding where it happened) is masked as well
        if name in _MASKED and isinstance(value, str):
            value = mask(value)
        super().__setattr__(name, value)

    def lines(self) -> list[str]:
        out = [f"error: {self.what}"]
        if self.where:
            out.append(f"  where: {self.where}")
        if self.details:
            out.extend("  | " + line for line in self.details.rstrip("\n").splitlines())
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return [mask(line) for line in out]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback.
        return self.lines()


@dataclass(frozen=True)
class Problem:
    """One mistake in a profile: where (file: key path), what, the value and a hint."""

    where: str
    what: str
    value: Any = None
    hint: str | None = None
    has_value: bool = True

    def line(self) -> str:
        text = f"{self.where}: {self.what}"
        if self.has_value:
            shown = repr(self.value)
            if len(shown) > 200:  # a whole file pasted into one value
                shown = shown[:200] + f"... ({len(shown)} characters)"
            text += f" (got {shown})"
        if self.hint:
            text += f"; hint: {self.hint}"
        return mask(text)


#: a profile error lists at most this many problems (a broken file can have thousands)
MAX_PROBLEMS_SHOWN = 50


class ProfileError(BootstrapError):
    """A profile that cannot be read or does not validate; lists every problem."""

    exit_code = 3

    def __init__(self, problems: list[Problem] | Problem, *, source: str | None = None,
                 hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        count = len(self.problems)
        label = source or "profile"
        if count == 1 and source is None:
            # nothing was read yet (no such name or file): the problem is the whole story
            what = f"{self.problems[0].where}: {self.problems[0].what}"
        elif count > 1:
            what = f"{label} has {count} problem{'s' if count != 1 else ''}"
        else:
            what = f"invalid profile {label}"
        super().__init__(what, hint=hint)
        self.source = source

    def lines(self) -> list[str]:
        out = [f"error: {self.what}"]
        if len(self.problems) == 1 and self.source is None:
            problem = self.problems[0]
            if problem.has_value:
                out.append(f"  got {problem.value!r}")
            if problem.hint:
                out.append(f"  hint: {problem.hint}")
        else:
            out.extend(f"  - {p.line()}" for p in self.problems[:MAX_PROBLEMS_SHOWN])
            if len(self.problems) > MAX_PROBLEMS_SHOWN:
                out.append(f"  - ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return [mask(line) for line in out]


class OptionError(BootstrapError):
    """A bad option or argument to a command, magic or API call."""

    exit_code = 2


class NoInterpreter(OptionError):
    """There is no Python at the path given as the interpreter to install into.

    ``python`` is that path: in a dry run it may be a [venv] not made yet."""

    def __init__(self, python: str, **kwargs: str | None) -> None:
        super().__init__(f"no Python at {python}", **kwargs)  # type: ignore[arg-type]
        self.python = python


class StepError(BootstrapError):
    """A restore step failed: a command exited non-zero, a postcondition did not hold."""

    exit_code = 1

    def __init__(self, what: str, *, step: str | None = None, where: str | None = None,
                 hint: str | None = None, details: str | None = None) -> None:
        super().__init__(what, where=where, hint=hint, details=details)
        self.step = step


class TimedOut(StepError):
    """A command ran past its time limit (``timeout`` seconds) and was stopped."""

    def __init__(self, what: str, *, timeout: float, **kwargs: str | None) -> None:
        super().__init__(what, **kwargs)  # type: ignore[arg-type]
        self.timeout = timeout


class EnvironmentMismatch(StepError):
    """This machine cannot satisfy the profile (no GPU, too little memory, no root...)."""

    exit_code = 4


class StoreError(BootstrapError):
    """The persistent store could not be read or written."""

    exit_code = 1
