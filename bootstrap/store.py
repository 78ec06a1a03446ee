"""The store: the persistent folder that outlives the VM.

On Colab it is ``MyDrive/.bootstrap``; elsewhere a configurable folder. It
holds ``profiles/`` (with ``history/``), ``wheels/``, ``debs/`` and ``runs/``.
Every write goes through ``write_atomic`` so an interrupted save leaves the
previous file readable.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import StoreError
from .fileio import write_atomic as write_atomic  # the one atomic writer


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


# -- history of saved profiles ---------------------------------------------------
#
# Every save keeps the previous version as ``profiles/history/NAME-<UTC time>.toml``
# (``-1``, ``-2``... when two saves fall in the same second), so a damaged or
# regretted profile can be taken back. The newest HISTORY_KEEP copies are kept.

HISTORY_KEEP = 20
_STAMP = "%Y%m%dT%H%M%SZ"


def history_path(profile_path: Path, when: float | None = None) -> Path:
    """A new, unused history file name for ``profile_path`` (time ``when``, default now)."""
    folder = profile_path.parent / "history"
    stamp = time.strftime(_STAMP, time.gmtime(when))
    candidate = folder / f"{profile_path.stem}-{stamp}.toml"
    count = 0
    while candidate.exists():
        count += 1
        candidate = folder / f"{profile_path.stem}-{stamp}-{count}.toml"
    return candidate


def history_copies(profile_path: Path) -> list[Path]:
    """The history copies of ``profile_path``, newest first."""
    folder = profile_path.parent / "history"
    pattern = re.compile(rf"^{re.escape(profile_path.stem)}-(\d{{8}}T\d{{6}}Z)(?:-(\d+))?\.toml$")
    found = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match and entry.is_file():
            found.append(((match.group(1), int(match.group(2) or 0)), entry))
    return [entry for _, entry in sorted(found, reverse=True)]


def prune_history(profile_path: Path, keep: int = HISTORY_KEEP) -> list[Path]:
    """Delete all but the newest ``keep`` history copies; returns what was deleted."""
    removed = []
    for old in history_copies(profile_path)[keep:]:
        try:
            old.unlink()
            removed.append(old)
        except OSError:
            pass  # an old copy that cannot be deleted is harmless
    return removed
