"""bootstrap.archive.unpack on real archives built here, good and hostile."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from bootstrap.archive import unpack
from bootstrap.errors import StepError

GOOD = {
    "README.md": b"# data\n",
    "data/a.txt": b"alpha\n",
    "data/nested/b.bin": bytes(range(256)) * 4,
    "bin/run.sh": b"#!/bin/sh\necho hi\n",
}


# -- builders ---------------------------------------------------------------------------

def _tar_file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    return info, data


def _tar_special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
    return info, None


def build_tar(path: Path, entries: list, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def build_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _zip_special(name: str, ftype: int, data: bytes = b"") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix, so external_attr carries the file type
    info.external_attr = (ftype | 0o777) << 16
    return info, data


def good_tar_entries() -> list:
    entries = [_tar_special("data", tarfile.DIRTYPE)]
    for name, data in GOOD.items():
        entries.append(_tar_file(name, data, 0o755 if name.endswith(".sh") else 0o644))
    return entries


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def area(tmp_path: Path) -> Path:
    """A dest two levels down whose parent does not exist yet: failures must not create it."""
    return tmp_path / "area" / "out"


def assert_nothing_written(tmp_path: Path, before: set[str]) -> None:
    assert snapshot(tmp_path) == before, "unpack left files behind"


# -- good archives -------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_unpacks_fully(tmp_path: Path, area: Path, mode: str) -> None:
    # A neutral name: the format is detected from the content.
    archive = build_tar(tmp_path / "payload.bin", good_tar_entries(), mode)
    files = unpack(archive, area)
    assert files == list(GOOD)
    for name, data in GOOD.items():
        assert (area / name).read_bytes() == data
    assert os.access(area / "bin/run.sh", os.X_OK)
    assert not os.access(area / "data/a.txt", os.X_OK)
    assert (area / "data/a.txt").stat().st_mtime == 1_700_000_000
    assert sorted(p.name for p in area.parent.iterdir()) == ["out"]  # no temp folder left


def test_zip_unpacks_fully(tmp_path: Path, area: Path) -> None:
    archive = build_zip(tmp_path / "payload.zip", [("data/", b"")] + list(GOOD.items()))
    files = unpack(archive, area)
    assert files == list(GOOD)
    for name, data in GOOD.items():
        assert (area / name).read_bytes() == data
    assert sorted(p.name for p in area.parent.iterdir()) == ["out"]


def test_dest_may_be_an_empty_folder(tmp_path: Path, area: Path) -> None:
    area.mkdir(parents=True)
    unpack(build_zip(tmp_path / "a.zip", [("x.txt", b"x")]), area)
    assert (area / "x.txt").read_bytes() == b"x"


def test_nonempty_dest_is_refused_and_kept(tmp_path: Path, area: Path) -> None:
    area.mkdir(parents=True)
    (area / "mine.txt").write_text("keep me")
    with pytest.raises(StepError, match="not an empty folder") as info:
        unpack(build_zip(tmp_path / "a.zip", [("x.txt", b"x")]), area)
    assert str(area) in str(info.value)
    assert snapshot(area) == {"mine.txt"}
    assert (area / "mine.txt").read_text() == "keep me"


def test_dot_slash_names_are_fine(tmp_path: Path, area: Path) -> None:
    # `tar -C folder -czf x.tgz .` writes "./" and "./name" members.
    entries = [_tar_special("./", tarfile.DIRTYPE), _tar_file("./b.txt", b"b")]
    files = unpack(build_tar(tmp_path / "dot.tgz", entries), area)
    assert files == ["b.txt"]
    assert (area / "b.txt").read_bytes() == b"b"


# -- hostile tar members ---------------------------------------------------------------

HOSTILE_TAR = {
    "dotdot": (_tar_file("../evil", b"pwned"), "../evil", "'..'"),
    "dotdot-deep": (_tar_file("data/../../evil", b"pwned"), "data/../../evil", "'..'"),
    # Refused although it stays inside: no '..' at all is the simpler rule.
    "dotdot-inside": (_tar_file("data/../x", b"x"), "data/../x", "'..'"),
    "absolute": (_tar_file("/abs/path", b"pwned"), "/abs/path", "absolute path"),
    "symlink": (_tar_special("link", tarfile.SYMTYPE, "../outside"), "link", "symbolic link"),
    "symlink-abs": (_tar_special("etc", tarfile.SYMTYPE, "/etc"), "etc", "symbolic link"),
    "hardlink": (_tar_special("hl", tarfile.LNKTYPE, "../outside"), "hl", "hard link"),
    "chardev": (_tar_special("null", tarfile.CHRTYPE), "null", "device"),
    "blockdev": (_tar_special("sda", tarfile.BLKTYPE), "sda", "device"),
    "fifo": (_tar_special("pipe", tarfile.FIFOTYPE), "pipe", "fifo"),
}


def refused(archive: Path, area: Path, tmp_path: Path, member: str, reason: str) -> str:
    """Unpacking ``archive`` fails naming ``member`` and ``reason``, and writes nothing
    under ``tmp_path``; returns the error's text."""
    before = snapshot(tmp_path)
    with pytest.raises(StepError) as info:
        unpack(archive, area)
    message = str(info.value)
    assert member in message
    assert reason in message
    assert_nothing_written(tmp_path, before)
    return message


@pytest.mark.parametrize("case", list(HOSTILE_TAR))
def test_hostile_tar_member_is_refused(tmp_path: Path, area: Path, case: str) -> None:
    bad, member, reason = HOSTILE_TAR[case]
    # Good members before the bad one: they must not survive the refusal.
    archive = build_tar(tmp_path / "evil.tgz", good_tar_entries() + [bad])
    message = refused(archive, area, tmp_path, member, reason)
    assert "hint:" in message
    assert not (tmp_path / "evil").exists() and not Path("/abs/path").exists()


# -- hostile zip members ---------------------------------------------------------------

HOSTILE_ZIP = {
    "dotdot": (("../evil", b"pwned"), "../evil", "'..'"),
    "backslash-dotdot": (("..\\evil", b"pwned"), "..\\evil", "'..'"),
    "absolute": (("/abs/path", b"pwned"), "/abs/path", "absolute path"),
    "symlink": (_zip_special("link", stat.S_IFLNK, b"../outside"), "link", "symbolic link"),
    "chardev": (_zip_special("null", stat.S_IFCHR), "null", "device"),
    "fifo": (_zip_special("pipe", stat.S_IFIFO), "pipe", "fifo"),
}


@pytest.mark.parametrize("case", list(HOSTILE_ZIP))
def test_hostile_zip_member_is_refused(tmp_path: Path, area: Path, case: str) -> None:
    bad, member, reason = HOSTILE_ZIP[case]
    archive = build_zip(tmp_path / "evil.zip", list(GOOD.items()) + [bad])
    with zipfile.ZipFile(archive) as zf:  # the hostile name really is in the archive
        assert member in zf.namelist()
    refused(archive, area, tmp_path, member, reason)


def test_encrypted_zip_member_is_refused(tmp_path: Path, area: Path) -> None:
    archive = build_zip(tmp_path / "enc.zip", [("secret.txt", b"x")])
    raw = bytearray(archive.read_bytes())
    # zipfile cannot write encrypted members; set the "encrypted" flag bit in
    # the local header (offset 6) and the central directory entry (offset 8).
    raw[raw.index(b"PK\x03\x04") + 6] |= 1
    raw[raw.index(b"PK\x01\x02") + 8] |= 1
    archive.write_bytes(bytes(raw))
    with pytest.raises(StepError, match="encrypted") as info:
        unpack(archive, area)
    assert "secret.txt" in str(info.value)
    assert not area.parent.exists()


# -- size and count caps -------------------------------------------------------------------

BOMB_BYTES = 8 * 1024 * 1024
CAP = 1024 * 1024


def test_zip_bomb_is_refused(tmp_path: Path, area: Path) -> None:
    archive = build_zip(tmp_path / "bomb.zip", [("small.txt", b"ok"),
                                                ("zeros.bin", bytes(BOMB_BYTES))])
    assert archive.stat().st_size < BOMB_BYTES // 100  # it really is a bomb
    before = snapshot(tmp_path)
    with pytest.raises(StepError, match="too large") as info:
        unpack(archive, area, max_total_bytes=CAP)
    assert "zeros.bin" in str(info.value)
    assert "max_total_bytes" in str(info.value)
    assert_nothing_written(tmp_path, before)


def test_tar_gz_bomb_is_refused(tmp_path: Path, area: Path) -> None:
    archive = build_tar(tmp_path / "bomb.tgz", [_tar_file("small.txt", b"ok"),
                                                _tar_file("zeros.bin", bytes(BOMB_BYTES))])
    assert archive.stat().st_size < BOMB_BYTES // 100
    before = snapshot(tmp_path)
    with pytest.raises(StepError, match="too large") as info:
        unpack(archive, area, max_total_bytes=CAP)
    assert "zeros.bin" in str(info.value)
    assert_nothing_written(tmp_path, before)


def test_too_many_members_is_refused(tmp_path: Path, area: Path) -> None:
    archive = build_tar(tmp_path / "many.tar", [_tar_file(f"f{i}", b"x") for i in range(5)], "w")
    before = snapshot(tmp_path)
    with pytest.raises(StepError, match="more than 3 members") as info:
        unpack(archive, area, max_members=3)
    assert "f3" in str(info.value)
    assert_nothing_written(tmp_path, before)


# -- broken input ---------------------------------------------------------------------------

def test_not_an_archive(tmp_path: Path, area: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive\n" * 100)
    with pytest.raises(StepError, match="not a zip or tar archive") as info:
        unpack(junk, area)
    assert str(junk) in str(info.value)
    assert not area.parent.exists()


def test_truncated_archive_leaves_nothing(tmp_path: Path, area: Path) -> None:
    full = build_tar(tmp_path / "full.tgz",
                     good_tar_entries() + [_tar_file("big.bin", os.urandom(200_000))])
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    before = snapshot(tmp_path)
    with pytest.raises(StepError, match="corrupt or truncated") as info:
        unpack(cut, area)
    assert str(cut) in str(info.value)
    assert_nothing_written(tmp_path, before)


def test_missing_archive(tmp_path: Path, area: Path) -> None:
    with pytest.raises(StepError, match="archive not found"):
        unpack(tmp_path / "nope.zip", area)
    assert not area.parent.exists()
