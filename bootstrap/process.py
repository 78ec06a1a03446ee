"""Running other programs: argv lists only, time limits, streamed output, a kept tail.

Nothing here builds a shell command line. Output is read line by line so it can
be shown as progress, and the last lines are kept for the error message when
the command fails. Every command runs in its own process group (session), so a
time limit or an interrupt ends it with everything it started, and a wait never
depends on a pipe held open by a process nobody waits for.
"""

from __future__ import annotations

import collections
import io
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from .errors import StepError, TimedOut
from .redact import mask

TAIL_LINES = 30
#: after the command exited, its output is read until none came for DRAIN_S seconds,
#: at most DRAIN_MAX_S (a job it left in the background may hold the pipe open for ever)
DRAIN_S = 0.5
DRAIN_MAX_S = 5.0
#: how long an interrupted command gets to stop cleanly after SIGINT before it is killed
INTERRUPT_GRACE_S = 5.0
#: how often the wait looks at the clock and the command
POLL_S = 0.1
#: a longer line is cut into pieces (output with no newline cannot fill the memory)
MAX_LINE = 64 * 1024


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

    The command runs in its own process group. A time limit kills the whole group;
    an interrupt (KeyboardInterrupt) sends it SIGINT, waits up to INTERRUPT_GRACE_S
    for it to stop cleanly, kills what is left and re-raises. When the command
    exits, the rest of its output is read until it pauses for DRAIN_S (at most
    DRAIN_MAX_S): a background job it left (a service it started) may keep the
    pipe open, and is left running.

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
                                cwd=cwd, start_new_session=True)
    except FileNotFoundError:
        raise StepError(f"program not found: {argv[0]}", step=step, where=display(argv),
                        hint=hint or f"install {argv[0]} or put it on PATH") from None
    except PermissionError:
        raise StepError(f"program cannot be run: {argv[0]}", step=step, where=display(argv),
                        hint="check that it is executable") from None

    output = _Output(proc)
    deadline = start + timeout if timeout else None
    timed_out = False

    def take(line: str) -> None:
        tail.append(line)
        if on_line is not None:
            on_line(line)

    try:
        # read until the command exits (or its time is up), then drain briefly
        while proc.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                _signal_group(proc, signal.SIGKILL)
                break
            wait = (POLL_S if deadline is None
                    else max(0.0, min(POLL_S, deadline - time.monotonic())))
            if output.ended:  # it closed its output but runs on: wait on the process itself
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    pass
            else:
                output.take(take, wait)
        returncode = _reap(proc)
        output.drain(take, DRAIN_S, DRAIN_MAX_S)
    except KeyboardInterrupt:
        stop(proc)
        output.detach()
        raise
    finally:
        if proc.poll() is None:  # an error in on_line: leave nothing behind
            _signal_group(proc, signal.SIGKILL)
            _reap(proc)
        output.detach()
    done = Completed(argv, returncode, list(tail), time.monotonic() - start)
    if timed_out:
        raise TimedOut(f"{argv[0]} did not finish within {timeout:g} s and was stopped",
                       timeout=timeout, step=step, where=display(argv),
                       details=done.output or None,
                       hint=hint or "raise the time limit, or check why it hangs")
    if check and returncode != 0:
        raise StepError(f"{os.path.basename(argv[0])} failed with exit code {returncode}",
                        step=step, where=display(argv), details=done.output or None, hint=hint)
    return done


def stop(proc: subprocess.Popen, grace: float | None = None) -> None:
    """Interrupt ``proc``'s group (SIGINT, as Ctrl-C would), wait ``grace`` s, then kill it."""
    grace = INTERRUPT_GRACE_S if grace is None else grace
    _signal_group(proc, signal.SIGINT)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:
        pass  # a second interrupt: kill at once
    _signal_group(proc, signal.SIGKILL)
    _reap(proc)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        # the group is gone (or was never ours): the direct child at least
        if proc.poll() is None:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass


def _reap(proc: subprocess.Popen) -> int:
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            _signal_group(proc, signal.SIGKILL)


class _Output:
    """The command's output, read line by line in a thread so that no read can block the wait.

    Lines go through a queue to the caller's thread (progress callbacks run there).
    Once detached, the thread keeps reading and drops what it reads, so a
    background job that still writes to the pipe is not killed by SIGPIPE.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.detached = False
        self.ended = False
        self.seen = 0  # lines handed on
        stream = io.TextIOWrapper(proc.stdout, errors="replace")
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True,
                                       name=f"output of pid {proc.pid}")
        self.thread.start()

    def _pump(self, stream: io.TextIOWrapper) -> None:
        try:
            while True:
                line = stream.readline(MAX_LINE)
                if not line:
                    break
                if not self.detached:
                    self.lines.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            self.lines.put(None)
            try:
                stream.close()
            except OSError:
                pass

    def take(self, handle: Callable[[str], None], wait: float) -> None:
        """Hand on the lines that arrive within ``wait`` seconds (at least one wait)."""
        end = time.monotonic() + wait
        while not self.ended:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                return
            if line is None:
                self.ended = True
                return
            self.seen += 1
            handle(line)
            if time.monotonic() >= end:
                return

    def drain(self, handle: Callable[[str], None], idle: float, limit: float) -> None:
        """After the command exited: the rest of its output, until none came for ``idle``
        seconds or ``limit`` seconds passed (a job it left may write on for ever)."""
        end = time.monotonic() + limit
        while not self.ended and time.monotonic() < end:
            before = self.lines.qsize(), self.seen
            self.take(handle, min(idle, end - time.monotonic()))
            if (self.lines.qsize(), self.seen) == before:
                return

    def detach(self) -> None:
        self.detached = True
