"""The store: the persistent folder that outlives the VM.

On Colab it is ``MyDrive/.bootstrap``; elsewhere a configurable folder. It
holds ``profiles/`` (with ``history/``), ``wheels/``, ``debs/`` and ``runs/``.
Every write goes through ``fileio.write_atomic`` so an interrupted save leaves the
previous file readable.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import BootstrapError, StoreError


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


# -- stores attached read-only (Kaggle datasets) ----------------------------------------
#
# On Kaggle only /kaggle/input outlives a session for sure: a store uploaded as a
# dataset is attached there, read-only. A restore writes nothing into it: the
# writable store (in /kaggle/working) links each file of it that it lacks, so
# every reader finds the files where it always looks, and every write (a new lock,
# a new wheel, a history copy) replaces a link in the writable store, never the
# file it points at. Links whose target has gone (the dataset was detached) are
# dropped.

#: never taken from an attached store: secrets do not belong in a dataset
_NOT_LINKED = {".env"}
#: how deep under /kaggle/input a store may sit (/kaggle/input/<slug>, or
#: /kaggle/input/datasets/<owner>/<slug> in Kaggle's newer layout)
_ATTACHED_DEPTH = 3


def attached_stores(input_root: Path) -> list[Path]:
    """Stores under ``input_root``: folders holding ``profiles/`` at their top or in
    ``.bootstrap/``, sorted by path."""
    found: list[Path] = []

    def visit(folder: Path, depth: int) -> None:
        for candidate in (folder, folder / ".bootstrap"):
            if (candidate / "profiles").is_dir():
                found.append(candidate)
                return
        if depth >= _ATTACHED_DEPTH:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and
                              not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            visit(child, depth + 1)

    if input_root.is_dir():
        for child in sorted(p for p in input_root.iterdir() if p.is_dir()):
            visit(child, 1)
    return found


def link_attached(store: Store, below: list[Path], gone_from: Path | None = None) -> int:
    """Link into ``store`` every file of the read-only stores ``below`` that it lacks
    (the first store wins); drop links into ``gone_from`` whose target has gone.
    Returns how many links were made."""
    made = 0
    for root in below:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or relative.name in _NOT_LINKED or \
                    relative.name.endswith(".tmp") or relative.name == ".lock":
                continue
            target = store.root / relative
            if os.path.lexists(target):
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(path, target)
            except OSError as exc:
                raise StoreError(f"cannot link {relative} of {root}: {exc.strerror}",
                                 where=str(store.root),
                                 hint="check that the store in /kaggle/working is writable "
                                      "and has free space") from None
            made += 1
    if store.root.is_dir() and gone_from is not None:
        for path in store.root.rglob("*"):
            if path.is_symlink() and not path.exists() and \
                    os.readlink(path).startswith(str(gone_from) + os.sep):
                path.unlink()
    return made


def kaggle_store(store: Store, input_root: Path, *, chosen: bool) -> tuple[list[str], list[Path]]:
    """Layer the stores attached under ``input_root`` below ``store``: the report's notes,
    and the attached stores."""
    below = attached_stores(input_root)
    made = link_attached(store, below, input_root)
    if below:
        names = ", ".join(str(p) for p in below)
        return [f"store attached read-only: {names} (under {store.root}; "
                f"{made} new link{'s' if made != 1 else ''})"], below
    if chosen:
        return [], below
    return [f"the store {store.root} is in /kaggle/working, which comes back in the next "
            "session only with the notebook's Persistence set to \"Files\"; to keep it for "
            "good, write it as a dataset with `bootstrap pack` and attach that dataset"], below


def missing_from_attached(error: BootstrapError, attached: list[Path], profile: str) -> None:
    """Say how to add a wheel a restore could not get to the dataset it should come from."""
    import re

    found = re.search(r"[\w.+-]+\.whl", " ".join(filter(None, (error.what, error.where))))
    if not attached or found is None:
        return
    error.what = f"{found.group(0)} is not in the attached store, and {error.what}"
    error.hint = (f"add it to the dataset: where the internet is on, run `bootstrap restore "
                  f"{profile}` and `bootstrap pack {profile} DEST`, upload DEST as a new "
                  "version of the dataset (kaggle datasets version -p DEST -m 'wheels'), "
                  "and attach that version; or turn the notebook's internet on for this run")
