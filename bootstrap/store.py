"""The store: the persistent folder that outlives the VM.

On Colab it is ``MyDrive/.bootstrap``; elsewhere a configurable folder. It
holds ``profiles/`` (with ``history/``), ``wheels/``, ``debs/`` and ``runs/``.
Every write goes through ``write_atomic`` so an interrupted save leaves the
previous file readable.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import StoreError


@dataclass(frozen=True)
class Store:
    root: Path

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def history(self) -> Path:
        return self.root / "profiles" / "history"

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"

    @property
    def debs(self) -> Path:
        return self.root / "debs"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def profile_path(self, name: str) -> Path:
        return self.profiles / f"{name}.toml"

    def path(self, relative: str) -> Path:
        """A path inside the store; refuses one that would leave it."""
        target = (self.root / relative).resolve()
        root = self.root.resolve()
        if target != root and root not in target.parents:
            raise StoreError(f"path {relative!r} leaves the store", where=str(self.root),
                             hint="use a path relative to the store, without '..'")
        return target


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file.

    Temp file in the same folder, flush and fsync, ``os.replace``, then read back
    and compare (Drive's FUSE mount has been seen to lose writes).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StoreError(f"cannot write {path.name}: {exc.strerror}", where=str(path.parent),
                         hint="check that the folder exists, is writable and has free space"
                         ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StoreError(f"cannot write {path.name}: {exc.strerror}", where=str(path),
                         hint="check free space and permissions; the previous file is unchanged"
                         ) from None
    if path.read_bytes() != data:
        raise StoreError(f"{path.name} reads back different from what was written",
                         where=str(path), hint="the disk or Drive mount lost the write; retry")
