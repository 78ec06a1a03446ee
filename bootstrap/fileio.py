"""Writing files so a reader never sees half of one, and hashing files: one place for both.

Every writer in the project goes through here. A file is written under a temp
name in the folder it belongs in, flushed and fsynced, then renamed over the
target (``os.replace``, atomic on POSIX): an interrupted write leaves the old
file or the new one, never a mix. Hashes are sha256, read in blocks.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreError

BLOCK = 1024 * 1024
#: ``expected`` of write_atomic when anything may be replaced
ANY = object()
#: a temp file of an atomic write older than this is left over from an interrupted write
STALE_TEMP_S = 3600.0


class ConcurrentWrite(StoreError):
    """The file changed since it was read: another session wrote it; ``current`` is its text."""

    def __init__(self, path: Path, current: bytes | None) -> None:
        super().__init__(f"{path.name} was changed by another session since it was read",
                         where=str(path))
        self.path = path
        self.current = current


def temp_name(dest: Path) -> Path:
    """A temp name beside ``dest``, distinct per process and thread."""
    return dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")


@contextmanager
def replacing(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on a clean exit it replaces ``dest`` atomically.

    On an error the temp file is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write(tmp: Path, data: bytes) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def replace_bytes(dest: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``dest`` atomically (fsynced); OSError when it cannot be written."""
    with replacing(dest) as tmp:
        _write(tmp, data)
        if mode is not None:
            os.chmod(tmp, mode)


def copy_atomic(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Copy ``src`` to ``dest`` (the kernel's copy) so ``dest`` appears whole or not at all."""
    with replacing(dest) as tmp:
        shutil.copyfile(src, tmp)


def read_bytes(path: Path) -> bytes | None:
    """The content of ``path``, None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: bytes, *, expected: object = ANY) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file.

    Then read back and compare (Drive's FUSE mount has been seen to lose writes).
    With ``expected`` (the bytes read before, None for "did not exist") the file
    is compared, by content hash, just before it is replaced: when another writer
    changed it meanwhile, nothing is replaced and ConcurrentWrite is raised.
    Raises StoreError with a hint when it cannot write.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp:
            _write(tmp, data)
            if expected is not ANY:
                current = read_bytes(path)
                if _digest(current) != _digest(expected):  # type: ignore[arg-type]
                    raise ConcurrentWrite(path, current)
    except OSError as exc:
        raise StoreError(f"cannot write {path.name}: {exc.strerror}", where=str(path),
                         hint="check that the folder is writable and has free space; the "
                              "previous file is unchanged") from None
    if path.read_bytes() != data:
        raise StoreError(f"{path.name} reads back different from what was written",
                         where=str(path), hint="the disk or Drive mount lost the write; retry")


def clean_temp(folder: Path, name: str, older_than: float = STALE_TEMP_S) -> list[Path]:
    """Delete temp files an atomic write left in ``folder`` when it was interrupted.

    ``name`` is a regular expression for the names of the files written there
    (``re.escape("vision.toml")``). Only temp files older than ``older_than``
    seconds go: a younger one may belong to a write that is still going on.
    Returns what was deleted.
    """
    removed = []
    pattern = re.compile(rf"^\.(?:{name})\.[A-Za-z0-9_.]+\.tmp$")
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if not pattern.match(entry.name):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


# -- hashing ---------------------------------------------------------------------------

def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def sha256() -> hashlib._Hash:
    """A new sha256 to feed while streaming (downloads, copies)."""
    return hashlib.sha256()


def sha256_bytes(data: bytes | str) -> str:
    """The hex sha256 of ``data`` (text is hashed as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The hex sha256 and the size of the file at ``path``."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of the file at ``path``."""
    return hash_file(path)[0]
