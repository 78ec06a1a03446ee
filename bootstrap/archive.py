"""Unpack a zip or tar archive into a folder, refusing anything hostile.

The ``files`` step uses this to unpack downloaded data sets and weights. An
archive comes from the internet, so it is treated as hostile input:

- The format is detected from the content (zip, then tar with no, gzip,
  bzip2 or xz compression), not from the file name.
- Every member must be a plain file or a directory whose path stays inside
  the destination: absolute paths, any ``..`` component (even one that would
  stay inside: no legitimate archive needs it), links of any kind
  (symbolic and hard; refusing all of them is simpler and safer than judging
  where each one points), devices and fifos are refused, naming the member.
- Sizes are capped: the declared total (checked before a member is written)
  and the bytes actually written (checked while writing, in case a reader
  ever trusts a lying header) may not exceed ``max_total_bytes``, and the
  member count may not exceed ``max_members``.
- All or nothing: members are written into a temporary folder next to
  ``dest`` (same filesystem), which is renamed onto ``dest`` only after every
  member is in. On any failure the temporary folder is removed, along with any
  parent folders this call created, so nothing is left at or outside ``dest``.

The destination rule: ``dest`` must not exist, or be an empty directory (it is
then replaced by the rename, atomically on POSIX). A non-empty ``dest`` is
refused rather than merged or overwritten; callers that re-unpack delete it
first. Modes are normalised (rw for the owner, the executable bit kept,
set-id bits dropped); owners are never restored.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import stat
import tarfile
import time
import zipfile
from pathlib import Path
from typing import IO, Iterator

from .errors import StepError

__all__ = ["DEFAULT_MAX_MEMBERS", "DEFAULT_MAX_TOTAL_BYTES", "unpack"]

#: default cap on the unpacked size (a VM's disk is around 100 GiB)
DEFAULT_MAX_TOTAL_BYTES = 64 * 1024**3
#: default cap on the number of members (image data sets can be large)
DEFAULT_MAX_MEMBERS = 1_000_000

_CHUNK = 1024 * 1024


class _Refused(Exception):
    """A member breaks a rule or cannot be written; becomes a StepError naming it (internal)."""

    def __init__(self, member: str, what: str, hint: str) -> None:
        super().__init__(what)
        self.member = member
        self.what = what
        self.hint = hint


def unpack(archive: str | os.PathLike[str], dest: str | os.PathLike[str], *,
           max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
           max_members: int = DEFAULT_MAX_MEMBERS) -> list[str]:
    """Unpack ``archive`` into ``dest``; return the regular files written, in archive order.

    The returned names are POSIX paths relative to ``dest``. Raises StepError
    (naming the archive and the member) for a hostile or corrupt archive, one
    over a cap, an unknown format, or a non-empty ``dest``; ``dest`` is then
    left as it was.
    """
    archive = Path(archive)
    dest = Path(dest)
    if not archive.is_file():
        raise StepError("archive not found", where=str(archive),
                        hint="check the path; the download may have failed")
    if dest.exists() and not (dest.is_dir() and not dest.is_symlink() and _is_empty(dest)):
        raise StepError(
            "unpack destination exists and is not an empty folder",
            where=str(dest),
            hint="remove it (or pick another destination) so the archive can be unpacked "
                 "as a whole; existing files are never merged or overwritten",
        )

    kind = _detect(archive)
    created = _make_parents(dest.parent)
    tmp: Path | None = None
    done = False
    try:
        tmp = _make_temp_dir(dest)
        writer = _Writer(tmp, max_total_bytes=max_total_bytes)
        if kind == "zip":
            files = _unpack_zip(archive, writer, max_members=max_members)
        else:
            files = _unpack_tar(archive, writer, max_members=max_members)
        # Onto a missing or empty directory, rename is atomic on POSIX; it
        # fails (ENOTEMPTY) if something appeared in dest meanwhile.
        os.replace(tmp, dest)
        done = True
        return files
    except _Refused as exc:
        raise StepError(exc.what, where=f"{archive}: {exc.member}", hint=exc.hint) from None
    except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError,
            *_decompress_errors()) as exc:
        raise StepError(f"archive is corrupt or truncated: {exc}", where=str(archive),
                        hint="download it again; if it keeps failing, the file at the "
                             "source is damaged") from exc
    except NotImplementedError as exc:  # zipfile: a compression method it lacks
        raise StepError(f"cannot unpack: {exc}", where=str(archive),
                        hint="repack the archive with deflate (zip) or gzip/xz (tar)") from exc
    except OSError as exc:
        raise StepError(f"cannot unpack: {exc.strerror or exc}", where=f"{archive} -> {dest}",
                        hint="check free disk space and that the destination folder is "
                             "writable") from exc
    finally:
        if not done:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            _remove_created(created)


# -- format detection --------------------------------------------------------------

def _detect(archive: Path) -> str:
    # Zip first: a zip's directory is at the end, and some zips (self-extracting
    # ones) start with bytes a tar reader might misread.
    try:
        if zipfile.is_zipfile(archive):
            return "zip"
        if tarfile.is_tarfile(archive):
            return "tar"
    except OSError as exc:
        raise StepError(f"cannot read archive: {exc.strerror or exc}", where=str(archive),
                        hint="check that the file exists and is readable") from exc
    raise StepError(
        "not a zip or tar archive",
        where=str(archive),
        hint="supported are .zip, .tar, .tar.gz/.tgz, .tar.bz2 and .tar.xz (detected from "
             "the content); a single compressed file (.gz without tar) is not an archive",
    )


def _decompress_errors() -> tuple[type[BaseException], ...]:
    import lzma
    import zlib

    errors: list[type[BaseException]] = [zlib.error, lzma.LZMAError]
    try:
        import gzip
        errors.append(gzip.BadGzipFile)
    except (ImportError, AttributeError):
        pass
    return tuple(errors)


# -- member checks -------------------------------------------------------------------

def _safe_name(raw: str) -> str:
    """Return the member's path relative to dest, or raise _Refused."""
    if "\x00" in raw:
        raise _Refused(raw, "archive member name contains a NUL byte",
                       "the archive is damaged or malicious; do not use it")
    # Windows tools sometimes write backslashes; judge them as separators so
    # "..\\x" cannot slip past, then keep the name as POSIX.
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _Refused(raw, f"archive member has an absolute path: {raw!r}",
                       "members must be relative paths; rebuild the archive from inside "
                       "the folder (e.g. tar -C folder -czf out.tgz .)")
    if ".." in name.split("/"):
        raise _Refused(raw, f"archive member path contains '..': {raw!r}",
                       "members must stay inside the destination; this archive tries to "
                       "write outside it, so do not use it")
    return posixpath.normpath(name)


def _refuse_type(name: str, kind: str) -> _Refused:
    return _Refused(name, f"archive member is a {kind}: {name!r}",
                    "only regular files and folders are unpacked; links and special files "
                    "are refused because they can reach outside the destination; rebuild "
                    "the archive without them (e.g. tar --dereference)")


# -- writing -------------------------------------------------------------------------

class _Writer:
    """Writes members under ``root`` and enforces the byte cap."""

    def __init__(self, root: Path, *, max_total_bytes: int) -> None:
        self.root = root
        self.max_total_bytes = max_total_bytes
        self.declared = 0
        self.written = 0

    def declare(self, name: str, size: int) -> None:
        self.declared += max(size, 0)
        if self.declared > self.max_total_bytes:
            raise _Refused(name, f"archive is too large: its members declare more than "
                                 f"{self.max_total_bytes} bytes (reached at {name!r})",
                           _size_hint(self.max_total_bytes))

    def path(self, name: str) -> Path:
        return self.root.joinpath(*name.split("/"))

    def directory(self, raw: str, name: str) -> None:
        if name == ".":
            return
        try:
            self.path(name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(raw, exc) from exc

    def file(self, raw: str, name: str, src: IO[bytes], mode: int,
             mtime: float | None) -> None:
        if name == ".":
            raise _Refused(raw, f"archive member is a file without a name: {raw!r}",
                           "the archive is damaged; rebuild it")
        target = self.path(name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_file():
                target.unlink()  # a later duplicate member wins, as with tar
            # Only the executable bit of the archive's mode is kept (no set-id,
            # sticky or group/world write); the umask applies on top. O_EXCL
            # and O_NOFOLLOW: never write through anything we did not create.
            perm = 0o755 if mode & 0o100 else 0o644
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0), perm)
        except OSError as exc:
            raise _write_error(raw, exc) from exc
        with open(fd, "wb") as out:
            while True:
                # A read error (corrupt data) propagates as such, not as a write error.
                block = src.read(_CHUNK)
                if not block:
                    break
                self.written += len(block)
                if self.written > self.max_total_bytes:
                    # More bytes than declared: a bomb, or a header that lies.
                    raise _Refused(raw, f"archive unpacks to more than "
                                        f"{self.max_total_bytes} bytes (reached at {raw!r})",
                                   _size_hint(self.max_total_bytes))
                try:
                    out.write(block)
                except OSError as exc:
                    raise _write_error(raw, exc) from exc
        if mtime is not None:
            try:
                os.utime(target, (mtime, mtime))
            except (OSError, OverflowError, ValueError):
                pass  # a silly timestamp is no reason to fail


def _write_error(raw: str, exc: OSError) -> _Refused:
    return _Refused(raw, f"cannot write archive member {raw!r}: {exc.strerror or exc}",
                    "check free disk space; if a member clashes with another (a file where "
                    "a folder should be), the archive is malformed")


def _size_hint(cap: int) -> str:
    return (f"the cap is max_total_bytes={cap}; if the archive is genuine, raise the cap, "
            "otherwise it may be a decompression bomb")


def _count(name: str, count: int, max_members: int) -> None:
    if count > max_members:
        raise _Refused(name, f"archive has more than {max_members} members "
                             f"(reached at {name!r})",
                       f"the cap is max_members={max_members}; raise it if the archive "
                       "is genuine")


def _unpack_zip(archive: Path, writer: _Writer, *, max_members: int) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        # The central directory is cheap to read, so judge every member
        # before writing a single byte.
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        for count, info in enumerate(infos, 1):
            _count(info.filename, count, max_members)
            name = _safe_name(info.filename)
            unix_mode = info.external_attr >> 16
            ftype = stat.S_IFMT(unix_mode)
            if info.is_dir():
                if ftype and not stat.S_ISDIR(ftype):
                    raise _refuse_type(info.filename, _type_name(ftype))
            elif ftype and not stat.S_ISREG(ftype):
                raise _refuse_type(info.filename, _type_name(ftype))
            else:
                if info.flag_bits & 0x1:
                    raise _Refused(info.filename, f"archive member is encrypted: "
                                                  f"{info.filename!r}",
                                   "encrypted zips cannot be unpacked here; publish the "
                                   "archive without a password")
                writer.declare(info.filename, info.file_size)
            plan.append((info, name))
        files: list[str] = []
        for info, name in plan:
            if info.is_dir():
                writer.directory(info.filename, name)
                continue
            try:
                mtime: float | None = time.mktime(info.date_time + (0, 0, -1))
            except (OverflowError, ValueError):
                mtime = None
            with zf.open(info) as src:
                writer.file(info.filename, name, src, info.external_attr >> 16, mtime)
            files.append(name)
        return files


def _unpack_tar(archive: Path, writer: _Writer, *, max_members: int) -> list[str]:
    files: list[str] = []
    # One pass: members are judged as they are read, each before its bytes are
    # written, so a compressed archive is decompressed only once. A refusal
    # late in the archive still leaves nothing behind (temporary folder).
    with tarfile.open(archive, "r:*") as tf:
        for count, member in enumerate(_members(tf), 1):
            _count(member.name, count, max_members)
            name = _safe_name(member.name)
            if member.issym():
                raise _refuse_type(member.name, "symbolic link")
            if member.islnk():
                raise _refuse_type(member.name, "hard link")
            if member.ischr() or member.isblk():
                raise _refuse_type(member.name, "device")
            if member.isfifo():
                raise _refuse_type(member.name, "fifo")
            if member.isdir():
                writer.directory(member.name, name)
            elif member.isreg():
                writer.declare(member.name, member.size)
                src = tf.extractfile(member)
                if src is None:  # cannot happen for a regular member
                    raise _refuse_type(member.name, "member without data")
                with src:
                    writer.file(member.name, name, src, member.mode, float(member.mtime))
                files.append(name)
            else:
                raise _refuse_type(member.name, f"member of unsupported type {member.type!r}")
    return files


def _members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    # Iterating reads headers lazily; drop the ones already handled so a
    # million-member archive does not keep a million TarInfo objects.
    while True:
        member = tf.next()
        if member is None:
            return
        yield member
        tf.members.clear()


def _type_name(ftype: int) -> str:
    if stat.S_ISLNK(ftype):
        return "symbolic link"
    if stat.S_ISCHR(ftype) or stat.S_ISBLK(ftype):
        return "device"
    if stat.S_ISFIFO(ftype):
        return "fifo"
    if stat.S_ISSOCK(ftype):
        return "socket"
    return f"member of unsupported type {oct(ftype)}"


# -- folders ---------------------------------------------------------------------------

def _is_empty(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return those created, deepest first."""
    missing: list[Path] = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepError(f"cannot create the destination folder: {exc.strerror or exc}",
                        where=str(folder), hint="check the path and its permissions") from exc
    return missing


def _remove_created(created: list[Path]) -> None:
    for p in created:  # deepest first; stop at the first one someone else filled
        try:
            p.rmdir()
        except OSError:
            return


def _make_temp_dir(dest: Path) -> Path:
    """A new folder next to ``dest`` (same filesystem, so the final rename is atomic)."""
    # Not tempfile.mkdtemp: that makes the folder 0700, and this one becomes
    # dest, which should get the usual umask-based mode.
    for _ in range(100):
        candidate = dest.with_name(f".{dest.name}.unpack-{secrets.token_hex(4)}")
        try:
            candidate.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name next to {dest}")
