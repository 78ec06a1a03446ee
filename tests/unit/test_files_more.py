"""The files step's other sources: text (content, append), copies from any path (Drive),
downloads without a sha256 (trust on first use), conditions."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import pytest

import bootstrap
from bootstrap.errors import ProfileError, StepError
from bootstrap.profile import FileEntry, Profile, parse
from bootstrap.report import CHANGED, SATISFIED
from tests.support.httpserver import LoopbackServer

pytestmark = pytest.mark.usefixtures("clean_environ")


def restore(*entries: FileEntry, **options):
    # Built in code: the profile loader takes only https URLs, the test server is http.
    return bootstrap.restore(Profile(name="t", files=list(entries)), **options)


def test_content_and_append_then_satisfied(tmp_path, started, monkeypatch):
    monkeypatch.setenv("PROJECT", "vision")
    bashrc = tmp_path / "home" / ".bashrc"
    bashrc.parent.mkdir()
    bashrc.write_text("# the image's own lines\nalias ll='ls -l'")   # no newline at the end
    profile = parse(f"""
        [[files]]
        dest = "{tmp_path}/conf/app.cfg"
        content = "[paths]\\nroot = {{drive}}/{{env:PROJECT}}\\n"
        [[files]]
        dest = "{bashrc}"
        append = "export PROJECT={{env:PROJECT}}"
        [[files]]
        dest = "{bashrc}"
        append = "export PATH=/opt/tool/bin:$PATH"
    """, source="t.toml")
    first = bootstrap.restore(profile)
    assert first.step("files").outcome == CHANGED
    drive = os.environ["BOOTSTRAP_DRIVE"]
    assert (tmp_path / "conf" / "app.cfg").read_text() == f"[paths]\nroot = {drive}/vision\n"
    assert bashrc.read_text() == ("# the image's own lines\nalias ll='ls -l'\n"
                                  "export PROJECT=vision\nexport PATH=/opt/tool/bin:$PATH\n")
    started.clear()
    second = bootstrap.restore(profile)
    assert second.step("files").outcome == SATISFIED
    assert second.step("files").summary == "3 files in place"
    assert started == []
    assert bashrc.read_text().count("export PROJECT=vision") == 1
    # An edited file is put back as the profile says; a removed line is added again.
    (tmp_path / "conf" / "app.cfg").write_text("edited\n")
    bashrc.write_text("# only this\n")
    third = bootstrap.restore(profile)
    assert third.step("files").outcome == CHANGED
    assert (tmp_path / "conf" / "app.cfg").read_text().startswith("[paths]\n")
    assert bashrc.read_text() == ("# only this\nexport PROJECT=vision\n"
                                  "export PATH=/opt/tool/bin:$PATH\n")


def test_copy_and_unpack_from_a_drive_path(tmp_path, isolated, started):
    drive = isolated["drive"]
    (drive / "data").mkdir()
    with zipfile.ZipFile(drive / "data" / "project.zip", "w") as archive:
        archive.writestr("project/train.csv", "a,b\n1,2\n")
    (drive / "data" / "notes.txt").write_text("hello\n")
    profile = parse(f"""
        [[files]]
        source = "{{drive}}/data/project.zip"
        dest = "{tmp_path}/content/project"
        unpack = true
        [[files]]
        source = "data/notes.txt"
        dest = "{tmp_path}/content/notes.txt"
    """, source="d.toml")
    first = bootstrap.restore(profile)
    assert first.step("files").outcome == CHANGED
    assert (tmp_path / "content" / "project" / "project" / "train.csv").read_text() == "a,b\n1,2\n"
    assert (tmp_path / "content" / "notes.txt").read_text() == "hello\n"
    started.clear()
    assert bootstrap.restore(profile).step("files").outcome == SATISFIED
    assert started == []
    missing = parse(f'[[files]]\nsource = "{{drive}}/data/absent.zip"\ndest = "{tmp_path}/x"\n',
                    source="m.toml")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(missing)
    assert caught.value.what == f"{drive}/data/absent.zip does not exist"
    assert caught.value.where == "m.toml: files[0].source"


def test_a_download_without_sha256_is_trusted_on_first_use(tmp_path, isolated, started):
    www = tmp_path / "www"
    www.mkdir()
    (www / "model.bin").write_bytes(b"version one")
    with LoopbackServer(www) as srv:
        url = srv.url_for("model.bin")
        dest = tmp_path / "vm1" / "model.bin"
        entry = FileEntry(dest=str(dest), url=url)
        first = restore(entry)
        assert first.step("files").outcome == CHANGED
        digest = hashlib.sha256(b"version one").hexdigest()
        note = first.step("files").notes[0]
        assert note.startswith("files[0]: no sha256 in the profile; trusted on first use")
        record = isolated["store"] / "profiles" / "locks" / "downloads.t.json"
        assert json.loads(record.read_text())["sha256"] == {url: digest}
        count = srv.count()
        started.clear()
        assert restore(entry).step("files").outcome == SATISFIED
        assert srv.count() == count                  # checked against the record, no request
        assert started == []

        # A later VM (an empty dest) gets the same file: checked against the record.
        other = FileEntry(dest=str(tmp_path / "vm2" / "model.bin"), url=url)
        again = restore(other)
        assert again.step("files").outcome == CHANGED
        assert "checked against the sha256 recorded on its first download" in \
            again.step("files").notes[0]
        # The file on the server changes: a later VM refuses it.
        (www / "model.bin").write_bytes(b"version two, replaced upstream")
        third = FileEntry(dest=str(tmp_path / "vm3" / "model.bin"), url=url)
        with pytest.raises(StepError) as caught:
            restore(third)
        assert caught.value.what == "downloaded file does not match its sha256"
        assert "recorded in" in caught.value.hint and str(record) in caught.value.hint
        assert not (tmp_path / "vm3" / "model.bin").exists()


def test_when_leaves_files_out(tmp_path):
    profile = parse(f"""
        [[files]]
        dest = "{tmp_path}/kaggle.cfg"
        content = "kaggle"
        when = "kaggle"
        [[files]]
        dest = "{tmp_path}/local.cfg"
        content = "local"
        when = "local"
    """, source="w.toml")
    report = bootstrap.restore(profile)
    assert not (tmp_path / "kaggle.cfg").exists() and (tmp_path / "local.cfg").exists()
    assert report.step("files").notes == ['files[0] left out: when = "kaggle" and this is local']


def test_validation_of_the_new_keys():
    with pytest.raises(ProfileError) as caught:
        parse("""
            [[files]]
            dest = "/a"
            content = "x"
            append = "y"
            [[files]]
            dest = "/b"
            append = "two\\nlines"
            [[files]]
            dest = "/c"
            content = "x"
            unpack = true
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            [[files]]
            dest = "/d"
            source = "https://example.org/x.zip"
            [[files]]
            dest = "/e"
            content = "{nope}"
            when = "sometimes"
        """, source="f.toml")
    lines = [p.line() for p in caught.value.problems]
    assert lines[0].startswith("f.toml: files[0]: has content and append: needs exactly one")
    assert any(line.startswith("f.toml: files[1].append: must be one non-empty line")
               for line in lines)
    assert any(line.startswith("f.toml: files[2].unpack: only an archive can be unpacked")
               for line in lines)
    assert any(line.startswith("f.toml: files[2].sha256: is for downloaded or copied files")
               for line in lines)
    assert any(line.startswith("f.toml: files[3].source: is a URL, not a path") for line in lines)
    assert any(line.startswith("f.toml: files[4].content: unknown placeholder {nope}")
               for line in lines)
    assert any(line.startswith("f.toml: files[4].when: is not a condition") for line in lines)
    assert len(lines) == 7, lines


def test_mode_makes_a_copy_executable_and_only_a_mode_change_is_a_chmod(tmp_path, isolated,
                                                                         started):
    tool = isolated["drive"] / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o644)
    profile = parse(f"""
        [[files]]
        source = "{tool}"
        dest = "{tmp_path}/bin/tool"
        mode = 0o755
        [[files]]
        dest = "{tmp_path}/token.json"
        content = "{{{{}}}}"
        mode = 0o600
    """, source="m.toml")
    bootstrap.restore(profile)
    assert (tmp_path / "bin" / "tool").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "token.json").stat().st_mode & 0o7777 == 0o600
    assert (tmp_path / "token.json").read_text() == "{}"
    started.clear()
    assert bootstrap.restore(profile).step("files").outcome == SATISFIED
    (tmp_path / "bin" / "tool").chmod(0o700)
    before = (tmp_path / "bin" / "tool").stat().st_mtime_ns
    again = bootstrap.restore(profile)
    assert again.step("files").actions == [
        f"copy {tool} -> {tmp_path}/bin/tool (mode is 0o700, 0o755 wanted)"]
    assert (tmp_path / "bin" / "tool").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "bin" / "tool").stat().st_mtime_ns == before   # not copied again
    assert started == []


def test_mode_written_in_decimal_is_caught():
    with pytest.raises(ProfileError) as caught:
        parse('[[files]]\ndest = "/x"\ncontent = "x"\nmode = 755\n'
              '[[files]]\ndest = "/y"\nurl = "https://example.org/a.zip"\nunpack = true\n'
              'mode = 0o755\n', source="m.toml")
    lines = [p.line() for p in caught.value.problems]
    assert lines[0].startswith("m.toml: files[0].mode: looks like an octal mode written as a "
                               "decimal number (got 755); hint: write mode = 0o755")
    assert lines[1].startswith("m.toml: files[1].mode: goes with a file, not an unpacked folder")
