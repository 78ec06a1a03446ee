"""The store of wheels: every wheel a restore installs, kept so no VM downloads or builds it twice.

Two folders hold wheels:

- the store's ``wheels/`` (on Colab on Drive): one file per wheel, named as the
  wheel, so Drive sees a few large files. A wheel built here from an sdist is
  kept under ``wheels/built/<sha256[:16]>/`` instead: builds are not
  reproducible, and two VMs building the same sdist at once must not replace
  each other's file under a name the other's lock points at.
- a local folder on the VM's own disk (``$XDG_CACHE_HOME/notebook-bootstrap/
  wheels``, or ``BOOTSTRAP_WHEEL_CACHE``) that uv installs from with
  ``--offline --find-links``, laid out the same way (built wheels under their
  hash). Drive is slow per file and has no hardlinks, so
  uv never reads the store directly.

A file reaches the local folder under its final name (an atomic rename) only
once its size is the one the lock records, and uv installs it with
``--require-hashes``: uv hashes each wheel as it unpacks it, so the bytes are
read once, and a truncated or altered wheel is refused before anything is
installed. After such a refusal (and for files from outside the store) the
sha256 is checked here, file by file, to find and replace the bad one. Writes to
the store are atomic renames of a finished temp file too: that is what keeps
two restores running at once from corrupting the store; an ``flock`` on
``wheels/.lock`` (where the file system has one; Drive's FUSE mount may not)
only keeps them from copying the same file twice.

Saving into the store runs on a background thread so the restore does not
wait for Drive: ``save`` queues, ``wait`` blocks until the queue is empty
(the CLI waits before it exits; a later restore waits before it starts).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from .fileio import (
    BLOCK as _CHUNK,
    hash_file as hash_file,  # the one file hasher
    sha256 as new_sha256,
    temp_name,
)
from .platform import cache_home


@dataclass(frozen=True)
class Wheel:
    """A wheel file as the lock describes it."""

    filename: str
    sha256: str
    size: int | None = None
    built: bool = False      # built here from an sdist (stored under built/<hash>/)


class Damaged(Exception):
    """A file whose size or sha256 is not what the lock says (internal)."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path.name}: {what}")
        self.path = path
        self.what = what


def local_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The VM-local folder uv installs wheels from."""
    environ = os.environ if environ is None else environ
    if environ.get("BOOTSTRAP_WHEEL_CACHE"):
        return Path(environ["BOOTSTRAP_WHEEL_CACHE"]).expanduser()
    return cache_home(environ) / "wheels"


#: file systems that read slower per file than a download may come: Drive's FUSE mount
#: and network shares
SLOW_FILESYSTEMS = ("fuse", "nfs", "cifs", "smb", "9p", "sshfs")


def is_slow(folder: Path, mounts: str = "/proc/self/mounts") -> bool:
    """Whether ``folder`` is on a FUSE or network mount (BOOTSTRAP_SLOW_STORE=1/0 decides
    where set)."""
    forced = os.environ.get("BOOTSTRAP_SLOW_STORE")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        table = Path(mounts).read_text()
    except OSError:
        return False
    where = os.path.realpath(folder)
    best, kind = "", ""
    for line in table.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (where == point or where.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, parts[2]
    return kind.startswith(SLOW_FILESYSTEMS)


def store_path(store_wheels: Path, wheel: Wheel) -> Path:
    if wheel.built:
        return store_wheels / "built" / wheel.sha256[:16] / wheel.filename
    return store_wheels / wheel.filename


def verify(path: Path, wheel: Wheel, *, sha256: bool = True) -> None:
    """Raise Damaged unless ``path`` has the size (and the sha256) the lock records."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Damaged(path, f"cannot be read ({exc.strerror})") from None
    if wheel.size is not None and size != wheel.size:
        raise Damaged(path, f"is {size} bytes, the lock says {wheel.size} (truncated?)")
    if not sha256:
        return
    digest, _ = hash_file(path)
    if digest != wheel.sha256:
        raise Damaged(path, f"has sha256 {digest[:16]}..., the lock says {wheel.sha256[:16]}...")


def copy_verified(src: Path, dest: Path, wheel: Wheel, *, sha256: bool = True,
                  link: bool = True) -> None:
    """Put a checked copy of ``src`` at ``dest`` (atomically); raise Damaged otherwise.

    A hardlink is tried first (the same disk: instant) unless ``link=False``
    (``src`` is not ours: a link would share the user's file, and change its
    ctime, which uv's cache reads), a copy otherwise. The size is always
    checked before the file gets its final name; the sha256 too unless
    ``sha256=False`` (for files uv installs with ``--require-hashes``, which
    hashes them itself).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    try:
        linked = False
        if link:
            try:
                os.link(src, tmp)
                linked = True
            except OSError:
                pass  # another file system, or src is missing: the copy says which
        if linked:
            verify(tmp, wheel, sha256=sha256)
        else:
            _copy_hashing(src, tmp, wheel, sha256=sha256)
        os.replace(tmp, dest)
    except Damaged as exc:
        raise Damaged(src, exc.what) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def copy_unless(src: Path, dest: Path, wheel: Wheel, stop: threading.Event, *,
                sha256: bool = True) -> bool:
    """Copy ``src`` to ``dest`` in blocks, checked as ``copy_verified`` does, unless ``stop``
    is set first (then False, and ``dest`` is partial: the caller removes it)."""
    digest = new_sha256()
    size = 0
    with _reading(src), open(src, "rb") as fin, open(dest, "wb") as fout:
        while block := fin.read(_CHUNK):
            if stop.is_set():
                return False
            if sha256:
                digest.update(block)
            size += len(block)
            fout.write(block)
    _check_copy(src, wheel, size, digest.hexdigest() if sha256 else None)
    return not stop.is_set()


def _copy_hashing(src: Path, dest: Path, wheel: Wheel, *, sha256: bool = True) -> None:
    digest = new_sha256()
    size = 0
    with _reading(src):
        if not sha256:  # the kernel's copy (copy_file_range): no bytes through Python
            shutil.copyfile(src, dest)
            size = os.path.getsize(dest)
        else:
            with open(src, "rb") as fin, open(dest, "wb") as fout:
                while block := fin.read(_CHUNK):
                    digest.update(block)
                    size += len(block)
                    fout.write(block)
    _check_copy(src, wheel, size, digest.hexdigest() if sha256 else None)


@contextmanager
def _reading(src: Path) -> Iterator[None]:
    """Turn a failure to read ``src`` into Damaged; a missing ``src`` stays FileNotFoundError."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise Damaged(src, f"cannot be read ({exc.strerror})") from None


def _check_copy(src: Path, wheel: Wheel, size: int, sha256: str | None) -> None:
    """Raise Damaged when a copy of ``src`` is not the size or sha256 the lock says."""
    if wheel.size is not None and size != wheel.size:
        raise Damaged(src, f"is {size} bytes, the lock says {wheel.size} (truncated?)")
    if sha256 is not None and sha256 != wheel.sha256:
        raise Damaged(src, f"has sha256 {sha256[:16]}..., the lock says {wheel.sha256[:16]}...")


@contextmanager
def store_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder/.lock`` where the file system supports it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)


def put(store_wheels: Path, local: Path, wheel: Wheel, *, checked: bool = False) -> bool:
    """Copy a local wheel into the store, checked; False when it was there already.

    ``checked``: ``local`` was hashed already (uv installed it with
    ``--require-hashes``), so a hardlink to it needs no second read; a copy is
    always read back and hashed.
    """
    target = store_path(store_wheels, wheel)
    with store_lock(store_wheels):
        try:
            verify(target, wheel)
            return False
        except Damaged:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            os.close(fd)
            linked = False
            try:
                # the same disk (a store outside Drive): share the file
                os.unlink(tmp)
                os.link(local, tmp)
                linked = True
            except OSError:
                with open(tmp, "wb") as out, open(local, "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
            if not (linked and checked):
                # what reaches the store is checked: Drive's mount has been seen to lose
                # writes, and the local folder is shared with other restores on this VM
                verify(Path(tmp), wheel)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return True


# -- work in the background --------------------------------------------------------------

_POOL: ThreadPoolExecutor | None = None
_PENDING: list[tuple[str, Future[bool]]] = []
_PENDING_LOCK = threading.Lock()


def background(label: str, job: Callable[[], bool]) -> None:
    """Run ``job`` (returns True when it saved something) on a store worker thread.

    The pool's threads are joined when the interpreter exits, so a CLI run
    finishes its saves before the process ends.
    """
    global _POOL
    with _PENDING_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bootstrap-store")
        _PENDING.append((label, _POOL.submit(job)))


def save(store_wheels: Path, local: Path, wheel: Wheel, *, checked: bool = False) -> None:
    """Queue a local wheel to be copied into the store in the background (see ``put``)."""
    background(wheel.filename, lambda: put(store_wheels, local, wheel, checked=checked))


def wait() -> list[str]:
    """Block until the store jobs are done; return (and forget) the errors they met."""
    with _PENDING_LOCK:
        pending = list(_PENDING)
        _PENDING.clear()
    errors = []
    for label, future in pending:
        try:
            future.result()
        except BaseException as exc:  # reported, never lost in a thread
            what = getattr(exc, "what", None) or str(exc) or type(exc).__name__
            errors.append(f"could not save {label} to the store: {what}")
    return errors
