"""Running other programs: argv lists only, time limits, streamed output, a kept tail.

Nothing here builds a shell command line. Output is read line by line so it can
be shown as progress, and the last lines are kept for the error message when
the command fails.
"""

from __future__ import annotations

import collections
import os
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from .errors import StepError
from .redact import mask

TAIL_LINES = 30


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    tail: list[str]
    seconds: float

    @property
    def output(self) -> str:
        return "\n".join(self.tail)


def display(argv: Sequence[str]) -> str:
    """The command as a person would type it, secrets masked (for messages, never executed)."""
    return mask(shlex.join(argv))


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
        timeout: float | None = None, on_line: Callable[[str], None] | None = None,
        step: str | None = None, check: bool = True, hint: str | None = None,
        tail_lines: int = TAIL_LINES) -> Completed:
    """Run ``argv`` (a list), stream its merged output to ``on_line``, keep the last lines.

    With ``check`` a non-zero exit, a missing program or a timeout raises StepError
    naming the command, its exit code and the output tail.
    """
    argv = [os.fspath(a) for a in argv]
    if not argv or isinstance(argv, str):
        raise ValueError("argv must be a non-empty list")
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=None if env is None else dict(env),
                                cwd=cwd, text=True, errors="replace", bufsize=1)
    except FileNotFoundError:
        raise StepError(f"program not found: {argv[0]}", step=step, where=display(argv),
                        hint=hint or f"install {argv[0]} or put it on PATH") from None
    except PermissionError:
        raise StepError(f"program cannot be run: {argv[0]}", step=step, where=display(argv),
                        hint="check that it is executable") from None

    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if on_line is not None:
                on_line(line)
        returncode = proc.wait()
    finally:
        if timer:
            timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    done = Completed(argv, returncode, list(tail), time.monotonic() - start)
    if timed_out.is_set():
        raise StepError(f"{argv[0]} did not finish within {timeout:g} s and was stopped",
                        step=step, where=display(argv), details=done.output or None,
                        hint=hint or "raise the time limit, or check why it hangs")
    if check and returncode != 0:
        raise StepError(f"{os.path.basename(argv[0])} failed with exit code {returncode}",
                        step=step, where=display(argv), details=done.output or None, hint=hint)
    return done
