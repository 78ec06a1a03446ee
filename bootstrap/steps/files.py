"""The ``files`` step: downloads (https URL + sha256) and copies from the store, unpacked if asked.

Reads: ``[[files]]``, each entry's destination, the store.
Changes: each entry's ``dest`` (a file, or with ``unpack = true`` a folder),
and temporary siblings of it (``.NAME.download``, ``.NAME.new-*``) that are
gone once the entry is in place. A relative ``dest`` is taken against the
Drive root.

An entry is in place, and ``check`` says so without any network call, when:

- a download: ``dest`` is a file whose sha256 is the entry's;
- a copy from the store: with ``sha256``, ``dest`` has it; without, ``dest``
  has the size and modification time of the store file (copies keep the
  store file's time). When the store file is missing but ``dest`` exists,
  ``dest`` is kept;
- an unpack (either source): ``dest`` is a folder holding the marker file
  ``.bootstrap-unpacked.json`` that records the archive it came from (its
  sha256, or the store file's size and time); a different archive is unpacked
  again.

Downloads go through :func:`bootstrap.fetch.download` (timeouts, a deadline,
retries, resume, a tqdm bar, sha256 check, atomic rename) and archives
through :func:`bootstrap.archive.unpack` (hostile members refused, all or
nothing). An archive is unpacked next to ``dest`` and renamed into place with
its marker, so ``dest`` is never half written; a folder at ``dest`` that this
step did not unpack is never replaced. Plain ``http://`` works only to this
machine (127.0.0.1, ::1, localhost: a local mirror or test server); fetch
refuses it for any other host and refuses redirects from https to http.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..context import Context
from ..errors import BootstrapError, StepError
from ..profile import FileEntry, Profile, parse_size
from . import Check

MARKER = ".bootstrap-unpacked.json"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
#: wall-clock limit of one download; None: fetch's default (an hour)
DEADLINE_S: float | None = None
RETRIES = 3


def wanted(profile: Profile) -> bool:
    return bool(profile.files)


@dataclass
class Item:
    """One entry, resolved: where it goes, where it comes from, and what is wrong with it."""

    index: int
    entry: FileEntry
    dest: Path
    url: str | None
    source: Path | None      # the store file
    why: str | None = None   # None: in place

    @property
    def key(self) -> str:
        return f"files[{self.index}]"

    @property
    def origin(self) -> str:
        return self.url or f"store:{self.entry.store}"

    def action(self) -> str:
        verb = "download" if self.url else "copy"
        if self.entry.unpack:
            verb += " and unpack"
        return f"{verb} {self.origin} -> {self.dest} ({self.why})"


# -- check -------------------------------------------------------------------------

def resolve(ctx: Context, index: int, entry: FileEntry) -> Item:
    key = f"files[{index}]"
    if (entry.url is None) == (entry.store is None):
        raise StepError("a files entry needs exactly one of url or store", where=ctx.where(key),
                        hint='url = "https://..." with sha256, or store = "path/in/store"')
    if entry.url is not None and not entry.sha256:
        raise StepError("a download needs its sha256", where=ctx.where(f"{key}.sha256"),
                        hint='add sha256 = "..." (sha256sum FILE)')
    dest = ctx.path(entry.dest, f"{key}.dest")
    if entry.url is not None:
        return Item(index, entry, dest, ctx.expand(entry.url, f"{key}.url"), None)
    try:
        source = ctx.store.path(ctx.expand(entry.store or "", f"{key}.store"))
    except BootstrapError as error:
        error.where = ctx.where(f"{key}.store")
        raise
    return Item(index, entry, dest, None, source)


def _stat(path: Path) -> tuple[int, int] | None:
    """(size, whole-second mtime) of a file; Drive keeps mtimes to the second."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, int(info.st_mtime)


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def source_identity(item: Item) -> dict[str, Any] | None:
    """What the marker of an unpacked archive records; None when the store file is missing."""
    if item.entry.sha256:
        return {"sha256": item.entry.sha256}
    assert item.source is not None
    found = _stat(item.source)
    if found is None:
        return None
    return {"size": found[0], "mtime": found[1]}


def why_missing(item: Item) -> str | None:
    """Why the entry is not in place (None when it is); reads files, never the network."""
    from ..fetch import sha256_file

    dest, entry = item.dest, item.entry
    if entry.unpack:
        if not dest.exists():
            return "missing"
        marker = read_marker(dest) if dest.is_dir() else None
        if marker is None:
            if dest.is_dir() and not any(dest.iterdir()):
                return "empty folder"
            return "exists but was not unpacked by notebook-bootstrap"
        wanted_id = source_identity(item)
        if wanted_id is None:
            return None  # store file gone: keep what was unpacked from it
        if any(marker.get(k) != v for k, v in wanted_id.items()):
            return "unpacked from another version of the archive"
        return None
    if dest.is_dir():
        return "is a folder"
    if not dest.is_file():
        return "missing"
    if entry.sha256:
        return None if sha256_file(dest) == entry.sha256 else "sha256 differs"
    assert item.source is not None
    source = _stat(item.source)
    if source is None:
        return None  # store file gone: keep the copy there is
    return None if _stat(dest) == source else "differs from the store file"


def check(ctx: Context) -> Check:
    items = [resolve(ctx, i, entry) for i, entry in enumerate(ctx.profile.files)]
    for item in items:
        item.why = why_missing(item)
    todo = [item for item in items if item.why]
    count = len(items)
    if not todo:
        return Check(True, f"{count} file{'s' if count != 1 else ''} in place")
    for item in todo:
        if item.url:
            # Refuse a URL fetch would refuse now, so a dry run shows it too.
            from ..fetch import check_url

            try:
                check_url(item.url, allow_http=True)
            except StepError as error:
                error.where = f"{ctx.where(item.key + '.url')}: {item.url}"
                raise
    return Check(False, f"{len(todo)} of {count} files to fetch",
                 [item.action() for item in todo], todo)


# -- apply -------------------------------------------------------------------------

def apply(ctx: Context, plan: Check) -> None:
    for item in plan.data:
        if item.why == "is a folder":
            raise StepError(f"{item.dest} is a folder, not a file", where=ctx.where(item.key),
                            hint="give the full path of the file, including its name, or set "
                                 "unpack = true for an archive")
        if item.why == "exists but was not unpacked by notebook-bootstrap":
            raise StepError(f"{item.dest} already exists and was not unpacked by "
                            "notebook-bootstrap", where=ctx.where(f"{item.key}.dest"),
                            hint="move it away (it is never replaced), or choose another dest")
        if item.url:
            fetch_item(ctx, item)
        else:
            copy_item(ctx, item)


def _download(ctx: Context, item: Item, dest: Path) -> None:
    from ..fetch import download

    assert item.url is not None and item.entry.sha256 is not None
    ctx.say(f"download {item.url}")
    try:
        download(item.url, dest, sha256=item.entry.sha256, connect_timeout=CONNECT_TIMEOUT_S,
                 read_timeout=READ_TIMEOUT_S, deadline=DEADLINE_S, retries=RETRIES,
                 progress=ctx.progress is not None, allow_http=True,
                 max_bytes=parse_size(item.entry.max_size) if item.entry.max_size else None)
    except StepError as error:
        error.where = f"{ctx.where(item.key)}: {error.where}" if error.where else \
            ctx.where(item.key)
        raise


def fetch_item(ctx: Context, item: Item) -> None:
    if not item.entry.unpack:
        _download(ctx, item, item.dest)
        return
    # A stable name, so a download cut short resumes on the next restore.
    archive = item.dest.parent / f".{item.dest.name}.download"
    _download(ctx, item, archive)
    try:
        unpack_into_place(ctx, item, archive, {"url": item.url, "sha256": item.entry.sha256})
    finally:
        # Verified but refused or unpacked: either way it is not needed again.
        archive.unlink(missing_ok=True)


def copy_item(ctx: Context, item: Item) -> None:
    from ..fetch import sha256_file

    assert item.source is not None
    if not item.source.is_file():
        raise StepError(f"{item.entry.store} is not in the store", where=ctx.where(item.key),
                        details=f"looked for {item.source}",
                        hint="put the file into the store (on Colab: MyDrive/.bootstrap/"
                             f"{item.entry.store}), or fix the store path")
    if item.entry.unpack:
        identity = source_identity(item) or {}
        unpack_into_place(ctx, item, item.source, {"store": item.entry.store, **identity})
        return
    ctx.say(f"copy {item.origin} -> {item.dest}")
    dest = item.dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise StepError(f"cannot write next to {dest}: {exc.strerror}",
                        where=ctx.where(f"{item.key}.dest"),
                        hint="check that the folder is writable") from None
    try:
        shutil.copyfile(item.source, tmp)
        shutil.copystat(item.source, tmp)  # the time is how check recognises the copy
        if item.entry.sha256 and sha256_file(tmp) != item.entry.sha256:
            raise StepError(f"{item.entry.store} in the store does not match its sha256",
                            where=ctx.where(f"{item.key}.sha256"),
                            hint="the store holds another version of the file: put the right "
                                 "one there, or update sha256 in the profile")
        os.replace(tmp, dest)
    except OSError as exc:
        raise StepError(f"cannot copy {item.entry.store} from the store: {exc.strerror}",
                        where=ctx.where(item.key),
                        hint="check free space and that the store is readable") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def unpack_into_place(ctx: Context, item: Item, archive: Path, marker: dict[str, Any]) -> None:
    """Unpack next to dest, add the marker, then put it at dest in one rename."""
    from ..archive import unpack

    dest = item.dest
    ctx.say(f"unpack {item.origin} -> {dest}")
    token = secrets.token_hex(4)
    fresh = dest.parent / f".{dest.name}.new-{token}"
    try:
        files = unpack(archive, fresh)
    except StepError as error:
        error.where = f"{ctx.where(item.key)}: {error.where}" if error.where else \
            ctx.where(item.key)
        raise
    try:
        (fresh / MARKER).write_text(json.dumps({**marker, "files": len(files)}, indent=1) + "\n")
        if dest.is_dir() and read_marker(dest) is not None:
            # Ours, from another archive: swap, then drop the old one.
            old = dest.parent / f".{dest.name}.old-{token}"
            os.rename(dest, old)
            try:
                os.rename(fresh, dest)
            except OSError:
                os.rename(old, dest)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(fresh, dest)  # onto nothing, or onto an empty folder
    except OSError as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        raise StepError(f"cannot put the unpacked files at {dest}: {exc.strerror}",
                        where=ctx.where(f"{item.key}.dest"),
                        hint="check that nothing else writes there and that the folder is "
                             "writable") from None
    ctx.note(f"unpacked {len(files)} file{'s' if len(files) != 1 else ''} into {dest}")
