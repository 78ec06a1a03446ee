"""The ``files`` step: downloads, copies (from the store or any path), text files and lines.

Reads: ``[[files]]``, each entry's destination, the store, the digests this
step recorded for downloads without a ``sha256``.
Changes: each entry's ``dest`` (a file, or with ``unpack = true`` a folder),
temporary siblings of it (``.NAME.download``, ``.NAME.new-*``) that are gone
once the entry is in place, and the store's record of first-use digests.
A relative ``dest`` or ``source`` is taken against the Drive root. An entry
whose ``when`` does not hold here is left out, with a note.

An entry is in place, and ``check`` says so without any network call, when:

- a download: ``dest`` is a file whose sha256 is the entry's. A download
  without ``sha256`` is trusted on first use: the digest of the first
  download is recorded in the store, beside the profile's lock
  (``profiles/locks/downloads.NAME.json``), and every later VM's download
  must match it; the report says so;
- a copy (``store = "path/in/store"``, or ``source = "{drive}/data/x.zip"``,
  any path): with ``sha256``, ``dest`` has it; without, ``dest`` has the size
  and modification time of the source file (copies keep its time). When the
  source file is missing but ``dest`` exists, ``dest`` is kept;
- an unpack (any of these sources): ``dest`` is a folder holding the marker
  file ``.bootstrap-unpacked.json`` that records the archive it came from
  (its sha256, or the source file's size and time); a different archive is
  unpacked again;
- ``content = "..."``: ``dest`` holds exactly that text (placeholders
  expanded);
- ``append = "export X=1"``: ``dest`` has that line (added at the end when
  it is missing; the file is created when needed), for files like
  ``~/.bashrc``;
- and, with ``mode = 0o755``, the file has those permissions (only a
  ``chmod`` when nothing else differs).

Downloads go through :func:`bootstrap.fetch.download` (timeouts, a deadline,
retries, resume, a tqdm bar, sha256 check, atomic rename) and archives
through :func:`bootstrap.archive.unpack` (hostile members refused, all or
nothing). An archive is unpacked next to ``dest`` and renamed into place with
its marker, so ``dest`` is never half written; a folder at ``dest`` that this
step did not unpack is never replaced. Text is written with the store's
atomic write. Plain ``http://`` works only to this machine (127.0.0.1, ::1,
localhost: a local mirror or test server); fetch refuses it for any other
host and refuses redirects from https to http.
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
    source: Path | None      # the store file, or the file at ``source``
    why: str | None = None   # None: in place
    text: str | None = None  # content or append, expanded
    trusted: str | None = None  # a download's digest recorded on first use

    @property
    def key(self) -> str:
        return f"files[{self.index}]"

    @property
    def sha256(self) -> str | None:
        return self.entry.sha256 or self.trusted

    @property
    def origin(self) -> str:
        if self.url:
            return self.url
        if self.entry.store is not None:
            return f"store:{self.entry.store}"
        return str(self.source)

    def action(self) -> str:
        if self.entry.content is not None:
            return f"write {self.dest} ({self.why})"
        if self.entry.append is not None:
            return f"append a line to {self.dest} ({self.why})"
        verb = "download" if self.url else "copy"
        if self.entry.unpack:
            verb += " and unpack"
        return f"{verb} {self.origin} -> {self.dest} ({self.why})"


# -- check -------------------------------------------------------------------------

def resolve(ctx: Context, index: int, entry: FileEntry, trusted: dict[str, str]) -> Item:
    key = f"files[{index}]"
    given = [k for k in FileEntry.SOURCES if getattr(entry, k) is not None]
    if len(given) != 1:
        raise StepError("a files entry needs exactly one of url, store, source, content or "
                        "append", where=ctx.where(key),
                        hint='url = "https://...", store = "path/in/store", source = "{drive}/'
                             'file", content = "text" or append = "a line"')
    dest = ctx.path(entry.dest, f"{key}.dest")
    if entry.url is not None:
        return Item(index, entry, dest, ctx.expand(entry.url, f"{key}.url"), None,
                    trusted=None if entry.sha256 else trusted.get(trust_key(entry.url)))
    if entry.content is not None:
        return Item(index, entry, dest, None, None,
                    text=ctx.expand(entry.content, f"{key}.content"))
    if entry.append is not None:
        return Item(index, entry, dest, None, None,
                    text=ctx.expand(entry.append, f"{key}.append").strip("\n"))
    if entry.source is not None:
        return Item(index, entry, dest, None, ctx.path(entry.source, f"{key}.source"))
    try:
        source = ctx.store.path(ctx.expand(entry.store or "", f"{key}.store"))
    except BootstrapError as error:
        error.where = ctx.where(f"{key}.store")
        raise
    return Item(index, entry, dest, None, source)


# -- first-use digests ---------------------------------------------------------------

def trust_path(ctx: Context) -> Path:
    """The store's record of first-use digests of this profile, beside its lock."""
    from ..lock import path_for

    lock = path_for(ctx.profile, ctx.store.profiles)
    stem = lock.name.removeprefix("pylock.").removesuffix(".toml")
    return lock.with_name(f"downloads.{stem}.json")


def trust_key(url: str) -> str:
    """A URL as the record keeps it: as the profile writes it, less any secret part.

    The record is kept in the store (on Drive, in a pack): a password or a token in
    the URL stays out of it, and every VM computes the same key.
    """
    from ..redact import clean_url, mask_shapes

    # by shape only, never by this VM's environment: the next VM must find the same key
    return mask_shapes(clean_url(url)[0])


def read_trusted(ctx: Context) -> dict[str, str]:
    """URL (``trust_key``) -> sha256 recorded on its first download."""
    if not any(e.url is not None and e.sha256 is None for e in ctx.profile.files):
        return {}
    path = trust_path(ctx)
    try:
        return _parse_trusted(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StepError(f"the recorded digests of downloads cannot be read: {exc}",
                        where=str(path), hint="fix or delete the file; a deleted record is "
                                              "made again from the next download") from None


def _parse_trusted(raw: bytes) -> dict[str, str]:
    data = json.loads(raw)
    found = data.get("sha256") if isinstance(data, dict) else None
    # keys written whole by an older version are read (and written back) cleaned
    return {trust_key(k): v for k, v in found.items() if isinstance(v, str)} \
        if isinstance(found, dict) else {}


def record_trusted(ctx: Context, url: str, digest: str) -> None:
    """Add ``url``'s digest to the record; another VM's record written meanwhile is kept."""
    from ..fileio import ConcurrentWrite, read_bytes, write_atomic

    path = trust_path(ctx)
    for _ in range(5):
        before = read_bytes(path)
        try:
            current = _parse_trusted(before) if before is not None else {}
        except ValueError:
            current = {}   # a damaged record: made again (read_trusted said so already)
        current[trust_key(url)] = digest
        data = {"comment": "sha256 of each download the profile gives without one, recorded "
                           "on its first download and required on every later one",
                "sha256": dict(sorted(current.items()))}
        try:
            write_atomic(path, (json.dumps(data, indent=1) + "\n").encode(), expected=before)
            return
        except ConcurrentWrite:
            continue  # another VM recorded a download meanwhile: merge with its record


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
    """What the marker of an unpacked archive records; None when the source file is missing."""
    if item.sha256:
        return {"sha256": item.sha256}
    if item.url:
        return None  # a first download: nothing recorded yet
    assert item.source is not None
    found = _stat(item.source)
    if found is None:
        return None
    return {"size": found[0], "mtime": found[1]}


def why_missing(item: Item) -> str | None:
    """Why the entry is not in place (None when it is); reads files, never the network."""
    from ..fileio import sha256_file

    dest, entry = item.dest, item.entry
    if item.text is not None:
        return why_text_missing(item)
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
            if item.url:
                return "its digest was not recorded (trust on first use)"
            return None  # source file gone: keep what was unpacked from it
        if any(marker.get(k) != v for k, v in wanted_id.items()):
            return "unpacked from another version of the archive"
        return None
    if dest.is_dir():
        return "is a folder"
    if not dest.is_file():
        return "missing"
    if item.sha256:
        return None if sha256_file(dest) == item.sha256 else "sha256 differs"
    if item.url:
        return "its digest was not recorded (trust on first use)"
    assert item.source is not None
    source = _stat(item.source)
    if source is None:
        return None  # source file gone: keep the copy there is
    return None if _stat(dest) == source else \
        ("differs from the store file" if item.entry.store is not None
         else "differs from the source file")


def why_text_missing(item: Item) -> str | None:
    assert item.text is not None
    if item.dest.is_dir():
        return "is a folder"
    try:
        current = item.dest.read_text()
    except FileNotFoundError:
        return "missing"
    except (OSError, UnicodeDecodeError):
        return "cannot be read as text"
    if item.entry.content is not None:
        return None if current == item.text else "holds other text"
    return None if item.text in current.splitlines() else "the line is missing"


def why_not_in_place(item: Item) -> str | None:
    """``why_missing``, then the file's mode when the entry gives one."""
    why = why_missing(item)
    if why is None and item.entry.mode is not None:
        try:
            have = item.dest.stat().st_mode & 0o7777
        except OSError:
            return "missing"
        if have != item.entry.mode:
            return f"mode is {have:#o}, {item.entry.mode:#o} wanted"
    return why


def check(ctx: Context) -> Check:
    trusted = read_trusted(ctx)
    items = []
    for i, entry in enumerate(ctx.profile.files):
        if not ctx.holds(entry.when):
            if not ctx.state["files"].get("noted"):
                ctx.note(f"files[{i}] left out: {ctx.facts.why_not(entry.when or '')}")
            continue
        items.append(resolve(ctx, i, entry, trusted))
    ctx.state["files"]["noted"] = True
    for item in items:
        item.why = why_not_in_place(item)
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
        refuse_planted_link(ctx, item)
        if item.why and item.why.startswith("mode is "):
            pass  # only the permissions differ: no second download or copy
        elif item.text is not None:
            write_text(ctx, item)
        elif item.url:
            fetch_item(ctx, item)
        else:
            copy_item(ctx, item)
        if item.entry.mode is not None:
            try:
                os.chmod(item.dest, item.entry.mode)
            except OSError as exc:
                raise StepError(f"cannot change the mode of {item.dest}: {exc.strerror}",
                                where=ctx.where(f"{item.key}.mode"),
                                hint="check that the file belongs to this user") from None


def refuse_planted_link(ctx: Context, item: Item) -> None:
    """Stop before writing through a link that a clone or an unpacked archive brought.

    A ``dest`` inside a git checkout or an unpacked folder (content from elsewhere)
    must stay inside it: a link there pointing out (``config.yaml -> ~/.ssh/...``)
    was planted by whoever made the repository. Links the user made (``~/.bashrc``
    -> a dotfiles clone) lie outside such folders and are followed.
    """
    dest = Path(os.path.abspath(item.dest))
    real = dest.resolve()
    if real == dest:
        return
    for folder in dest.parents:
        if (folder / ".git").exists() or (folder / MARKER).is_file():
            inside = folder.resolve()
            if real != inside and inside not in real.parents:
                raise StepError(f"{dest} leads out of {folder} through a link inside it "
                                f"(to {real})", where=ctx.where(f"{item.key}.dest"),
                                hint="the link came with the repository or archive; nothing "
                                     "is written through it: choose a dest that is a plain "
                                     "file there, or remove the link")
            return


def write_text(ctx: Context, item: Item) -> None:
    """Write ``content``, or add the ``append`` line at the end; atomically either way.

    A ``dest`` that is a link (``~/.bashrc`` -> a dotfiles clone) is followed: the
    file it points to is written and the link stays.
    """
    from ..errors import StoreError
    from ..fileio import write_atomic

    assert item.text is not None
    dest = item.dest.resolve() if item.dest.is_symlink() else item.dest
    if item.entry.content is not None:
        text = item.text
    else:
        try:
            text = dest.read_text()
        except FileNotFoundError:
            text = ""
        if text and not text.endswith("\n"):
            text += "\n"
        text += item.text + "\n"
    try:
        mode = dest.stat().st_mode & 0o7777
    except OSError:
        mode = 0o644
    ctx.say(f"{'write' if item.entry.content is not None else 'append to'} {dest}")
    try:
        write_atomic(dest, text.encode())
        os.chmod(dest, mode)
    except (StoreError, OSError) as error:
        raise StepError(f"cannot write {dest}: {getattr(error, 'what', None) or error}",
                        where=ctx.where(f"{item.key}.dest"),
                        hint="check that the folder is writable") from None


def _download(ctx: Context, item: Item, dest: Path) -> None:
    from ..fetch import download

    assert item.url is not None
    ctx.say(f"download {item.url}")
    try:
        download(item.url, dest, sha256=item.sha256, connect_timeout=CONNECT_TIMEOUT_S,
                 read_timeout=READ_TIMEOUT_S, deadline=DEADLINE_S, retries=RETRIES,
                 progress=ctx.progress is not None, allow_http=True,
                 max_bytes=parse_size(item.entry.max_size) if item.entry.max_size else None)
    except StepError as error:
        error.where = f"{ctx.where(item.key)}: {error.where}" if error.where else \
            ctx.where(item.key)
        if item.trusted and "does not match" in error.what:
            error.hint = ("the file at this URL is not the one its first download recorded "
                          f"in {trust_path(ctx)}; if the new file is the one you want, put its "
                          "sha256 in the profile (or delete its line there)")
        raise
    if item.sha256 is None:
        from ..fileio import sha256_file

        item.trusted = sha256_file(dest)
        assert item.entry.url is not None
        record_trusted(ctx, item.entry.url, item.trusted)
        ctx.note(f"{item.key}: no sha256 in the profile; trusted on first use: recorded "
                 f"{item.trusted[:12]}... in the store, required on every later VM")
    else:
        if item.trusted:
            ctx.note(f"{item.key}: checked against the sha256 recorded on its first download")


def fetch_item(ctx: Context, item: Item) -> None:
    if not item.entry.unpack:
        _download(ctx, item, item.dest)
        return
    # A stable name, so a download cut short resumes on the next restore.
    archive = item.dest.parent / f".{item.dest.name}.download"
    _download(ctx, item, archive)
    try:
        unpack_into_place(ctx, item, archive, {"url": item.url, "sha256": item.sha256})
    finally:
        # Verified but refused or unpacked: either way it is not needed again.
        archive.unlink(missing_ok=True)


def copy_item(ctx: Context, item: Item) -> None:
    from ..fileio import sha256_file

    assert item.source is not None
    if not item.source.is_file() and item.entry.store is None:
        what = "is not a regular file" if item.source.exists() else "does not exist"
        raise StepError(f"{item.source} {what}", where=ctx.where(f"{item.key}.source"),
                        hint="check the path (on Colab, files on Drive are under {drive}, "
                             "MyDrive), or fix source")
    if not item.source.is_file():
        raise StepError(f"{item.entry.store} is not in the store", where=ctx.where(item.key),
                        details=f"looked for {item.source}",
                        hint="put the file into the store (on Colab: MyDrive/.bootstrap/"
                             f"{item.entry.store}), or fix the store path")
    if item.entry.unpack:
        identity = source_identity(item) or {}
        origin = ({"store": item.entry.store} if item.entry.store is not None
                  else {"source": str(item.source)})
        unpack_into_place(ctx, item, item.source, {**origin, **identity})
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
            raise StepError(f"{item.entry.store} in the store does not match its sha256"
                            if item.entry.store is not None else
                            f"{item.source} does not match its sha256",
                            where=ctx.where(f"{item.key}.sha256"),
                            hint="the store holds another version of the file: put the right "
                                 "one there, or update sha256 in the profile")
        os.replace(tmp, dest)
    except OSError as exc:
        raise StepError(f"cannot copy {item.origin}: {exc.strerror}",
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
