"""Saving to the store: merge with hand edits, history, dry run, failures that keep the old file."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bootstrap.capture import Capture
from bootstrap.cli import main
from bootstrap.errors import OptionError, ProfileError, StoreError
from bootstrap.profile import DamagedProfileWarning, load, parse
from bootstrap.saving import save
from bootstrap.store import history_copies, prune_history

REPO = Path(__file__).resolve().parents[2]
INFO = {"python": "3.12", "platform": "colab", "gpu": "Tesla T4", "gpu_memory_gib": 15.0}


def captured(**fields) -> Capture:
    fields.setdefault("info", dict(INFO))
    return Capture(since=0, **fields)


def profile_file(isolated, name="vision") -> Path:
    return isolated["store"] / "profiles" / f"{name}.toml"


def test_new_profile_is_written_and_valid(isolated):
    cap = captured(packages=["gamma==3.1", "beta==1.0"], constraints=["alpha==2.0"],
                   apt=["ffmpeg"], env={"DEMO_MODE": "fast"}, secrets={"HF_TOKEN": "HF_TOKEN"},
                   workdir="projects/demo")
    result = save("vision", captured=cap)
    path = profile_file(isolated)
    assert result.written and result.path == path and result.history is None
    assert path.read_text() == result.toml
    profile = load(str(path))
    assert profile.name == "vision"
    assert profile.pip.packages == ["gamma==3.1", "beta==1.0"]
    assert profile.pip.constraints == ["alpha==2.0"]
    assert profile.apt.packages == ["ffmpeg"]
    assert profile.env == {"DEMO_MODE": "fast"} and profile.secrets == {"HF_TOKEN": "HF_TOKEN"}
    assert profile.workdir.path == "projects/demo"
    assert profile.captured.gpu == "Tesla T4" and profile.captured.gpu_memory_gib == 15
    assert "+[pip]" in result.diff
    assert f"saved profile vision to {path}" in result.text()


HAND_WRITTEN = """\
# my vision setup; do not lose this comment
version = 1
name = "vision"
description = "hand written"

[pip]
packages = [
    "gamma>=3",        # any 3.x is fine
    "alpha==1.0",      # pinned on purpose
    "mylib @ https://example.org/mylib-1.0.tar.gz",
]
constraints = ["zeta==0.9"]
index_url = "https://pypi.example.org/simple"

[env]
HF_HOME = "{drive}/hf-cache"   # keep the placeholder
MODE = "slow"

[workdir]
path = "projects/vision"
create = true

[platforms.kaggle.pip]
packages = ["kaggle-only==1"]
"""


def test_saving_over_a_profile_keeps_hand_edits(isolated):
    path = profile_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_text(HAND_WRITTEN)
    drive = isolated["drive"]
    cap = captured(packages=["gamma==3.1", "alpha==2.0", "omega==1.0"],
                   constraints=["zeta==1.0", "eta==2.0"],
                   env={"HF_HOME": "{drive}/hf-cache", "MODE": "fast", "NEW": "1"},
                   workdir="projects/vision")
    result = save("vision", captured=cap)

    text = path.read_text()
    assert "# my vision setup; do not lose this comment" in text
    assert '"gamma>=3",        # any 3.x is fine' in text          # still holds: kept
    assert '"alpha==2.0",      # pinned on purpose' in text         # moved on: replaced
    assert "mylib @ https://example.org/mylib-1.0.tar.gz" in text  # not captured: kept
    assert 'HF_HOME = "{drive}/hf-cache"   # keep the placeholder' in text
    profile = parse(text)
    assert profile.description == "hand written"
    assert profile.pip.packages == ["gamma>=3", "alpha==2.0",
                                    "mylib @ https://example.org/mylib-1.0.tar.gz", "omega==1.0"]
    assert profile.pip.constraints == ["zeta==1.0", "eta==2.0"]
    assert profile.pip.index_url == "https://pypi.example.org/simple"
    assert profile.env == {"HF_HOME": "{drive}/hf-cache", "MODE": "fast", "NEW": "1"}
    assert profile.workdir.path == "projects/vision" and profile.workdir.create
    assert profile.platforms["kaggle"]["pip"]["packages"] == ["kaggle-only==1"]
    assert profile.captured.platform == "colab"
    # the previous version is in history, byte for byte, and the diff shows the change
    assert result.history is not None and result.history.read_text() == HAND_WRITTEN
    assert history_copies(path) == [result.history]
    assert '-    "alpha==1.0",      # pinned on purpose' in result.diff
    assert '+    "alpha==2.0",      # pinned on purpose' in result.diff
    assert f"previous version kept as {result.history}" in result.text()

    # the same session saved again changes nothing and adds no history
    again = save("vision", captured=cap)
    assert not again.changed and not again.written and again.history is None
    assert len(history_copies(path)) == 1
    assert "is unchanged" in again.text()
    assert drive.is_dir()


def test_a_user_constraint_the_session_moved_past_is_updated(isolated):
    path = profile_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_text('version = 1\n[pip]\nconstraints = ["alpha<2"]\n[secrets]\nMODE = "MODE"\n')
    save("vision", captured=captured(packages=["alpha==2.0"], env={"MODE": "x"}))
    profile = load(str(path))
    assert profile.pip.packages == ["alpha==2.0"] and profile.pip.constraints == ["alpha==2.0"]
    assert profile.env == {}  # the user made MODE a secret: no value goes to [env]


def test_dry_run_prints_and_writes_nothing(isolated):
    result = save("vision", dry_run=True, captured=captured(packages=["gamma==3.1"]))
    assert not result.written and not profile_file(isolated).exists()
    assert not (isolated["store"] / "profiles").exists()
    assert result.text().startswith("# dry run: nothing written")
    assert '"gamma==3.1"' in result.text()


def test_bad_names_and_an_invalid_merge_are_refused(isolated):
    with pytest.raises(OptionError):
        save("../evil", captured=captured())
    path = profile_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_text('version = 1\n[pip]\npackagez = ["typo"]\n')
    with pytest.raises(ProfileError) as info:
        save("vision", captured=captured(packages=["gamma==3.1"]))
    assert "pip.packagez" in str(info.value) and "fix" in str(info.value)
    assert path.read_text() == 'version = 1\n[pip]\npackagez = ["typo"]\n'


# -- damaged profiles fall back to history --------------------------------------------

GOOD = 'version = 1\nname = "vision"\n[env]\nMODE = "from-history"\n'


@pytest.mark.parametrize("damage", [b'version = 1\n[pip]\npackages = ["gam', b"",
                                    b"\x00\x00\x00\x00", b"\xff\xfe garbage"],
                         ids=["truncated", "empty", "zeros", "binary"])
def test_damaged_profile_loads_newest_valid_history_copy(isolated, damage):
    path = profile_file(isolated)
    history = path.parent / "history"
    history.mkdir(parents=True)
    (history / "vision-20260101T000000Z.toml").write_text(GOOD.replace("from-history", "older"))
    (history / "vision-20260301T000000Z.toml").write_text(GOOD)
    (history / "vision-20260401T000000Z.toml").write_text("also [broken")
    (history / "vision-2-20260501T000000Z.toml").write_text(GOOD.replace("from-history", "other"))
    path.write_bytes(damage)
    with pytest.warns(DamagedProfileWarning, match="vision-20260301T000000Z.toml"):
        profile = load("vision", profiles_dir=path.parent)
    assert profile.env == {"MODE": "from-history"} and profile.name == "vision"
    assert profile.origin.endswith("vision-20260301T000000Z.toml")


def test_damaged_profile_without_history_is_an_error(isolated):
    path = profile_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'version = 1\n[pip\n')
    with pytest.raises(ProfileError, match="not valid TOML"):
        load("vision", profiles_dir=path.parent)
    path.write_bytes(b"  \n")
    with pytest.raises(ProfileError, match="is empty"):
        load("vision", profiles_dir=path.parent)


def test_an_invalid_but_readable_profile_is_reported_not_replaced(isolated):
    path = profile_file(isolated)
    (path.parent / "history").mkdir(parents=True)
    (path.parent / "history" / "vision-20260301T000000Z.toml").write_text(GOOD)
    path.write_text('version = 1\n[env]\n"bad name" = "x"\n')
    with pytest.raises(ProfileError, match="bad name"):
        load("vision", profiles_dir=path.parent)


def test_saving_over_a_damaged_profile_merges_into_history_and_keeps_the_damage(isolated):
    path = profile_file(isolated)
    (path.parent / "history").mkdir(parents=True)
    (path.parent / "history" / "vision-20260301T000000Z.toml").write_text(
        "# from history\n" + GOOD)
    path.write_bytes(b'version = 1\n[env]\nMODE = "cut')
    with pytest.warns(DamagedProfileWarning, match="merging into the newest readable copy"):
        result = save("vision", captured=captured(env={"NEW": "1"}))
    text = path.read_text()
    assert text.startswith("# from history\n") and 'NEW = "1"' in text
    assert result.history.read_bytes() == b'version = 1\n[env]\nMODE = "cut'


def test_history_is_pruned_to_the_newest(isolated):
    path = profile_file(isolated)
    history = path.parent / "history"
    history.mkdir(parents=True)
    names = [f"vision-2026010{i}T000000Z.toml" for i in range(1, 6)]
    for name in names:
        (history / name).write_text(GOOD)
    (history / "vision-20260105T000000Z-1.toml").write_text(GOOD)
    removed = prune_history(path, keep=3)
    assert sorted(p.name for p in removed) == names[:3]
    assert [p.name for p in history_copies(path)] == [
        "vision-20260105T000000Z-1.toml", names[4], names[3]]


# -- failures leave the old profile as it was ---------------------------------------------

OLD = '# the old one\nversion = 1\nname = "vision"\n[pip]\npackages = ["alpha==1.0"]\n'

CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    from bootstrap.capture import Capture
    from bootstrap.saving import save

    target = sys.argv[1] if sys.argv[1] == "any" else os.path.realpath(sys.argv[1])
    real_replace = os.replace

    def dying_replace(src, dst, *args, **kwargs):
        # the process is killed between the temp write and the rename
        if target == "any" or os.path.realpath(dst) == target:
            os._exit(1)
        return real_replace(src, dst, *args, **kwargs)

    os.replace = dying_replace
    save("vision", captured=Capture(since=0, packages=["alpha==2.0", "gamma==3.1"]))
    print("not reached")
""")


@pytest.mark.parametrize("killed_at", ["profile", "any"])
def test_interrupted_save_leaves_old_profile_and_history(isolated, tmp_path, killed_at):
    path = profile_file(isolated)
    history = path.parent / "history"
    history.mkdir(parents=True)
    path.write_text(OLD)
    older = history / "vision-20260101T000000Z.toml"
    older.write_text(GOOD)
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO)))
    done = subprocess.run([sys.executable, str(script),
                           str(path) if killed_at == "profile" else "any"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "not reached" not in done.stdout, done.stderr
    assert path.read_text() == OLD
    assert load("vision", profiles_dir=path.parent).pip.packages == ["alpha==1.0"]
    assert older.read_text() == GOOD
    copies = history_copies(path)
    if killed_at == "profile":   # the old version was already kept before the kill
        assert len(copies) == 2 and copies[0].read_text() == OLD
    else:                        # killed while keeping it: history as it was
        assert copies == [older]
    # a later save works and finishes the job
    save("vision", captured=captured(packages=["alpha==2.0"]))
    assert load("vision", profiles_dir=path.parent).pip.packages == ["alpha==2.0"]


class _FullDisk:
    """A file handle whose writes fail like a full disk."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self):
        self.handle.flush()

    def fileno(self):
        return self.handle.fileno()


@pytest.mark.parametrize("failing_write", [1, 2], ids=["history-write", "profile-write"])
def test_disk_full_leaves_old_profile_untouched(isolated, monkeypatch, failing_write):
    path = profile_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_text(OLD)
    real_fdopen = os.fdopen
    calls = []

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        if "w" in mode:
            calls.append(fd)
            if len(calls) == failing_write:
                return _FullDisk(handle)
        return handle

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(StoreError) as info:
        save("vision", captured=captured(packages=["alpha==2.0"]))
    monkeypatch.undo()
    message = str(info.value)
    assert "No space left on device" in message and "previous file is unchanged" in message
    assert path.read_text() == OLD
    leftovers = [p.name for p in path.parent.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_unwritable_history_leaves_old_profile_untouched(isolated):
    path = profile_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_text(OLD)
    (path.parent / "history").write_text("a file where the history folder should be")
    with pytest.raises(StoreError) as info:
        save("vision", captured=captured(packages=["alpha==2.0"]))
    assert "cannot write" in str(info.value) and "hint:" in str(info.value)
    assert path.read_text() == OLD


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_store_leaves_old_profile_untouched(isolated):
    path = profile_file(isolated)
    path.parent.mkdir(parents=True)
    (path.parent / "history").mkdir()
    path.write_text(OLD)
    for folder in (path.parent, path.parent / "history"):
        folder.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="Permission denied"):
            save("vision", captured=captured(packages=["alpha==2.0"]))
    finally:
        for folder in (path.parent, path.parent / "history"):
            folder.chmod(0o755)
    assert path.read_text() == OLD


# -- the command line -------------------------------------------------------------------------

def test_cli_save(isolated, monkeypatch, capsys, tmp_path):
    project = isolated["drive"] / "projects" / "cli"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("BOOTSTRAP_SESSION_START", str(time.time() + 60))
    monkeypatch.setenv("BOOTSTRAP_APT_HISTORY", str(tmp_path / "no-apt-history.log"))

    assert main(["save", "clidemo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# dry run: nothing written")
    assert 'name = "clidemo"' in out and 'path = "projects/cli"' in out
    assert "environment variables not saved" in out
    assert not profile_file(isolated, "clidemo").exists()

    assert main(["save", "clidemo"]) == 0
    assert "saved profile clidemo" in capsys.readouterr().out
    assert load("clidemo", profiles_dir=profile_file(isolated).parent).workdir.path == \
        "projects/cli"

    assert main(["save", "clidemo", "--since", "yesterday"]) == 2
    assert "cannot read 'yesterday' as a time" in capsys.readouterr().err


def test_git_entries_are_matched_by_url(isolated):
    entry = {"url": "https://github.com/org/tool.git", "ref": "a" * 40,
             "dest": "/content/tool", "install": True, "editable": True}
    save("vision", captured=captured(git=[entry]))
    path = profile_file(isolated)
    path.write_text(path.read_text().replace('dest = "/content/tool"',
                                             'dest = "/content/tool"  # mine'))
    save("vision", captured=captured(git=[dict(entry, url="https://github.com/org/tool",
                                               ref="b" * 40)]))
    profile = load(str(path))
    assert len(profile.git) == 1 and profile.git[0].ref == "b" * 40
    assert "# mine" in path.read_text() and profile.git[0].install and profile.git[0].editable
