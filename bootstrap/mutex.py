"""One restore at a time per machine and target interpreter.

Two restores into one interpreter at once (two notebook tabs, a CLI run beside
a kernel) would both install. A restore holds an exclusive ``flock`` on
``restore-<hash>.lock`` in the local state folder (``bootstrap.vmstate``,
never on Drive: the lock is for this machine). The file says who holds it (pid,
start time, interpreter), so a second restore can say for whom it waits. The
kernel drops the lock when its holder exits, however it ends, so a killed
restore never blocks the next one. A restore that waits longer than
``BOOTSTRAP_RESTORE_WAIT`` seconds (default WAIT_S) gives up with an error.
Re-entering in the process that holds the lock (a setup notebook run inline
that restores again) does not wait for itself. Where the lock file cannot be
made (an unwritable state folder) the restore goes on unguarded and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping

from .errors import StepError

#: how long a second restore waits for the first, by default
WAIT_S = 600.0
POLL_S = 0.2
# lock files this process holds, with how many restores in it hold each
_held: dict[Path, int] = {}


def lock_path(python: str, environ: Mapping[str, str] | None = None) -> Path:
    from .vmstate import state_dir

    key = hashlib.sha256(os.path.realpath(python).encode()).hexdigest()[:16]
    return state_dir(environ) / "locks" / f"restore-{key}.lock"


def wait_limit(environ: Mapping[str, str] | None = None) -> float:
    environ = os.environ if environ is None else environ
    try:
        return max(0.0, float(environ.get("BOOTSTRAP_RESTORE_WAIT", WAIT_S)))
    except ValueError:
        return WAIT_S


def holder(path: Path) -> str:
    """Who holds the lock at ``path``, in words: "pid 123, since 12:00:03"."""
    try:
        info = json.loads(path.read_text() or "{}")
        since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {int(info['pid'])}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


@contextlib.contextmanager
def restoring(python: str, *, wait: float | None = None, say: Callable[[str], None] | None = None,
              environ: Mapping[str, str] | None = None) -> Iterator[Path]:
    """Hold the restore lock of ``python`` while the block runs; wait for it up to ``wait`` s."""
    import fcntl

    path = lock_path(python, environ)
    if path in _held:
        _held[path] += 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    limit = wait_limit(environ) if wait is None else wait
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        # an unwritable state folder must not stop the restore itself: go on unguarded
        if say is not None:
            say(f"cannot create the restore lock ({exc.strerror}); not guarding against a "
                "second restore at once")
        yield path
        return
    try:
        end, told = time.monotonic() + limit, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = holder(path)
                if time.monotonic() >= end:
                    raise StepError(
                        f"another restore is running ({who}); gave up after {limit:g} s",
                        where=str(path),
                        hint="wait for it to finish and restore again, or stop it; "
                             "BOOTSTRAP_RESTORE_WAIT sets how long to wait") from None
                if not told and say is not None:
                    say(f"another restore is running ({who}); waiting for it, up to {limit:g} s")
                    told = True
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time(),
                                  "python": python}).encode(), 0)
        _held[path] = 1
        try:
            yield path
        finally:
            del _held[path]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # drops the lock
