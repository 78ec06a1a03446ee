"""The files step: downloads from a real server on 127.0.0.1, store copies, unpacking."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import bootstrap
from bootstrap import fetch
from bootstrap.errors import ProfileError, StepError, StoreError
from bootstrap.profile import FileEntry, Profile, parse
from bootstrap.report import CHANGED, PLANNED, SATISFIED
from bootstrap.steps import files
from tests.support.archives import tar_gz, zip_bytes
from tests.support.httpserver import LoopbackServer, send_redirect

WEIGHTS = os.urandom(200_000)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


DATA_V1 = tar_gz({"data/a.txt": b"a1\n", "data/sub/b.txt": b"b1\n"})
DATA_V2 = tar_gz({"data/a.txt": b"a2\n"})
HOSTILE = tar_gz({"ok.txt": b"fine\n", "../escape.txt": b"out\n"})


@pytest.fixture(autouse=True)
def _direct(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fetch, "_BACKOFF_BASE_S", 0.05)


@pytest.fixture
def server(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    for name, data in {"model.bin": WEIGHTS, "data-v1.tgz": DATA_V1, "data-v2.tgz": DATA_V2,
                       "hostile.tgz": HOSTILE}.items():
        (www / name).write_bytes(data)
    with LoopbackServer(www) as srv:
        yield srv


def restore(*entries: FileEntry, **options):
    # Built in code: the profile loader of this build takes only https URLs.
    return bootstrap.restore(Profile(name="t", files=list(entries)), **options)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- downloads ---------------------------------------------------------------------------

def test_download_then_satisfied_without_a_request(server, tmp_path):
    dest = tmp_path / "weights" / "model.bin"
    entry = FileEntry(dest=str(dest), url=server.url_for("model.bin"), sha256=sha(WEIGHTS))
    first = restore(entry)
    row = first.step("files")
    assert row.outcome == CHANGED and row.summary == "fetched 1 of 1 files"
    assert row.actions == [f"download {server.url_for('model.bin')} -> {dest} (missing)"]
    assert dest.read_bytes() == WEIGHTS
    assert leftovers(dest.parent) == ["model.bin"]
    requests_after_first = server.count()

    second = restore(entry)
    assert second.step("files").outcome == SATISFIED
    assert server.count() == requests_after_first  # no network call when in place


def test_a_new_checksum_downloads_the_new_file(server, tmp_path):
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"an older version")
    report = restore(FileEntry(dest=str(dest), url=server.url_for("model.bin"),
                               sha256=sha(WEIGHTS)))
    assert report.step("files").actions[0].endswith("(sha256 differs)")
    assert dest.read_bytes() == WEIGHTS


def test_wrong_checksum_leaves_nothing_at_dest(server, tmp_path):
    dest = tmp_path / "out" / "model.bin"
    with pytest.raises(StepError) as info:
        restore(FileEntry(dest=str(dest), url=server.url_for("model.bin"), sha256="0" * 64))
    error = info.value
    assert error.what == "downloaded file does not match its sha256"
    assert ": files[0]: http://127.0.0.1:" in error.where
    assert not dest.exists() and leftovers(dest.parent) == []


def test_relative_dest_is_under_the_drive_root(server, isolated):
    restore(FileEntry(dest="models/model.bin", url=server.url_for("model.bin"),
                      sha256=sha(WEIGHTS)))
    assert (isolated["drive"] / "models" / "model.bin").read_bytes() == WEIGHTS


def test_dry_run_plans_and_fetches_nothing(server, tmp_path):
    dest = tmp_path / "model.bin"
    report = restore(FileEntry(dest=str(dest), url=server.url_for("model.bin"),
                               sha256=sha(WEIGHTS)), dry_run=True)
    assert report.step("files").outcome == PLANNED
    assert server.count() == 0 and not dest.exists()


@pytest.mark.parametrize("url", ["http://example.com/model.bin", "http://10.1.2.3/m.bin",
                                 "ftp://127.0.0.1/m.bin"])
def test_plain_http_to_another_host_is_refused_before_any_download(tmp_path, url):
    dest = tmp_path / "model.bin"
    with pytest.raises(StepError) as info:
        restore(FileEntry(dest=str(dest), url=url, sha256=sha(WEIGHTS)), dry_run=True)
    assert info.value.where.endswith(f": files[0].url: {url}")
    assert "plain http" in info.value.what or "unsupported URL scheme" in info.value.what
    assert not dest.exists()


def test_plain_http_in_a_profile_file_is_refused_when_it_loads():
    with pytest.raises(Exception) as info:
        parse('[[files]]\nurl = "http://example.com/m.bin"\nsha256 = "' + "0" * 64
              + '"\ndest = "/tmp/m.bin"\n', source="t.toml")
    assert "plain http is refused" in str(info.value)


def test_a_redirect_to_plain_http_elsewhere_is_refused(server, tmp_path):
    server.route("/moved", lambda req: send_redirect(req, "http://10.255.255.1/model.bin"))
    dest = tmp_path / "model.bin"
    with pytest.raises(StepError) as info:
        restore(FileEntry(dest=str(dest), url=server.url_for("moved"), sha256=sha(WEIGHTS)))
    assert info.value.what.startswith("refusing redirect")
    assert not dest.exists()


# -- unpacking ------------------------------------------------------------------------------

def test_unpack_a_download_then_satisfied_then_a_new_version_replaces_it(server, tmp_path):
    dest = tmp_path / "datasets" / "small"
    v1 = FileEntry(dest=str(dest), url=server.url_for("data-v1.tgz"), sha256=sha(DATA_V1),
                   unpack=True)
    first = restore(v1)
    assert (dest / "data" / "a.txt").read_text() == "a1\n"
    assert (dest / "data" / "sub" / "b.txt").read_text() == "b1\n"
    assert f"unpacked 2 files into {dest}" in first.step("files").notes
    assert leftovers(dest.parent) == ["small"]  # no archive, no temporary folder
    count = server.count()

    assert restore(v1).step("files").outcome == SATISFIED
    assert server.count() == count

    v2 = FileEntry(dest=str(dest), url=server.url_for("data-v2.tgz"), sha256=sha(DATA_V2),
                   unpack=True)
    second = restore(v2)
    assert second.step("files").actions[0].endswith("(unpacked from another version of the "
                                                    "archive)")
    assert (dest / "data" / "a.txt").read_text() == "a2\n"
    assert not (dest / "data" / "sub").exists()
    assert leftovers(dest.parent) == ["small"]


def test_a_hostile_archive_is_refused_and_nothing_is_written(server, tmp_path):
    dest = tmp_path / "area" / "unpacked"
    with pytest.raises(StepError) as info:
        restore(FileEntry(dest=str(dest), url=server.url_for("hostile.tgz"),
                          sha256=sha(HOSTILE), unpack=True))
    assert "../escape.txt" in str(info.value)
    assert leftovers(tmp_path / "area") == []
    assert not (tmp_path / "escape.txt").exists()


def test_a_folder_the_step_did_not_unpack_is_never_replaced(server, tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("my own work\n")
    with pytest.raises(StepError) as info:
        restore(FileEntry(dest=str(dest), url=server.url_for("data-v1.tgz"),
                          sha256=sha(DATA_V1), unpack=True))
    assert "was not unpacked by notebook-bootstrap" in info.value.what
    assert (dest / "notes.txt").read_text() == "my own work\n"
    assert server.count() == 0


def test_an_empty_folder_is_filled(server, tmp_path):
    dest = tmp_path / "empty"
    dest.mkdir()
    restore(FileEntry(dest=str(dest), url=server.url_for("data-v1.tgz"), sha256=sha(DATA_V1),
                      unpack=True))
    assert (dest / "data" / "a.txt").exists() and (dest / files.MARKER).exists()


# -- the store ---------------------------------------------------------------------------------

def test_copy_from_the_store_keeps_its_time_and_is_then_satisfied(isolated, tmp_path):
    stored = isolated["store"] / "weights" / "lora.safetensors"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"v1 weights")
    os.utime(stored, (1_700_000_000, 1_700_000_000))
    dest = tmp_path / "lora.safetensors"
    entry = FileEntry(dest=str(dest), store="weights/lora.safetensors")

    assert restore(entry).step("files").outcome == CHANGED
    assert dest.read_bytes() == b"v1 weights" and int(dest.stat().st_mtime) == 1_700_000_000
    assert restore(entry).step("files").outcome == SATISFIED

    stored.write_bytes(b"v2 weights, longer")
    report = restore(entry)
    assert report.step("files").actions[0].endswith("(differs from the store file)")
    assert dest.read_bytes() == b"v2 weights, longer"
    assert leftovers(tmp_path).count("lora.safetensors") == 1
    assert not [n for n in leftovers(tmp_path) if n.endswith(".tmp")]


def test_a_store_copy_with_sha256_is_verified(isolated, tmp_path):
    stored = isolated["store"] / "w.bin"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"not what the profile pins")
    dest = tmp_path / "w.bin"
    with pytest.raises(StepError) as info:
        restore(FileEntry(dest=str(dest), store="w.bin", sha256=sha(b"pinned")))
    assert info.value.what == "w.bin in the store does not match its sha256"
    # (vm-state: the local state folder, where the restore lock lives)
    assert not dest.exists() and leftovers(tmp_path) == ["drive", "store", "vm-state"]


def test_missing_store_file(isolated, tmp_path):
    dest = tmp_path / "w.bin"
    with pytest.raises(StepError) as info:
        restore(FileEntry(dest=str(dest), store="nowhere/w.bin"))
    assert info.value.what == "nowhere/w.bin is not in the store"
    # a copy already there is kept when the store file is gone
    dest.write_bytes(b"kept")
    assert restore(FileEntry(dest=str(dest), store="nowhere/w.bin")).step("files").outcome \
        == SATISFIED


def test_a_store_path_may_not_leave_the_store(tmp_path):
    with pytest.raises(StoreError) as info:
        restore(FileEntry(dest=str(tmp_path / "x"), store="../../etc/passwd"))
    assert info.value.where.endswith(": files[0].store")


def test_unpack_from_the_store(isolated, tmp_path):
    stored = isolated["store"] / "data.zip"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(zip_bytes({"images/1.png": b"png", "labels.csv": b"a,b\n"}))
    dest = tmp_path / "data"
    entry = FileEntry(dest=str(dest), store="data.zip", unpack=True)
    assert restore(entry).step("files").outcome == CHANGED
    assert (dest / "labels.csv").read_text() == "a,b\n"
    assert (dest / "images" / "1.png").read_bytes() == b"png"
    assert restore(entry).step("files").outcome == SATISFIED
    stored.write_bytes(zip_bytes({"labels.csv": b"c,d\n"}))
    os.utime(stored, (1_800_000_000, 1_800_000_000))
    restore(entry)
    assert (dest / "labels.csv").read_text() == "c,d\n" and not (dest / "images").exists()


def test_max_size_caps_a_download(server, tmp_path):
    from bootstrap.profile import parse_size

    assert parse_size("2 GiB") == 2 * 1024 ** 3 and parse_size("500 MB") == 500_000_000
    assert parse_size(1000) == 1000 and parse_size("1.5k") == 1500
    for bad in ("lots", 0, -1, "5 XB", True):
        assert parse_size(bad) is None
    with pytest.raises(ProfileError, match=r"files\[0\].max_size: is not a size"):
        parse('[[files]]\nurl = "https://h.example/a"\nsha256 = "' + "0" * 64 +
              '"\ndest = "/x"\nmax_size = "lots"\n')
    dest = tmp_path / "out" / "model.bin"
    entry = FileEntry(dest=str(dest), url=server.url_for("/model.bin"), sha256=sha(WEIGHTS),
                      max_size="100 kB")
    with pytest.raises(StepError, match="larger than its limit of 100000 bytes"):
        restore(entry)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    entry.max_size = "1 MiB"
    assert restore(entry).step("files").outcome == CHANGED and dest.read_bytes() == WEIGHTS
