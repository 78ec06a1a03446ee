"""Two saves of one profile at once lose nothing; temp files of interrupted saves go away."""

from __future__ import annotations

import os
import time

import pytest

from bootstrap import saving
from bootstrap.capture import Capture
from bootstrap.errors import StoreError
from bootstrap.fileio import ConcurrentWrite, write_atomic
from bootstrap.profile import load
from bootstrap.saving import save
from bootstrap.store import history_copies

OLD = 'version = 1\nname = "vision"\n\n[pip]\npackages = ["alpha==1.0"]\n'
THEIRS = 'version = 1\nname = "vision"\n\n[pip]\npackages = ["alpha==1.0", "delta==0.5"]\n'


def test_a_save_that_raced_another_keeps_both_and_says_how_to_merge(isolated, monkeypatch):
    path = isolated["store"] / "profiles" / "vision.toml"
    path.parent.mkdir(parents=True)
    path.write_text(OLD)
    real_render = saving.render

    def render_while_another_vm_saves(*args, **kwargs):
        # another VM on the same Drive saves while this one captures and merges
        path.write_text(THEIRS)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(saving, "render", render_while_another_vm_saves)
    with pytest.raises(StoreError, match="changed by another session") as caught:
        save("vision", captured=Capture(since=0, packages=["gamma==3.1"]))
    assert path.read_text() == THEIRS                       # theirs is not overwritten
    kept = [copy.read_text() for copy in history_copies(path)]
    assert OLD in kept and THEIRS in kept
    assert any("gamma==3.1" in text and "delta" not in text for text in kept)  # ours
    assert "save again" in caught.value.hint and str(history_copies(path)[0]) in caught.value.hint

    # saving again merges this session into their version: nothing lost
    monkeypatch.setattr(saving, "render", real_render)
    save("vision", captured=Capture(since=0, packages=["gamma==3.1"]))
    assert load(str(path)).pip.packages == ["alpha==1.0", "delta==0.5", "gamma==3.1"]


def test_a_new_profile_created_meanwhile_is_not_overwritten(isolated, monkeypatch):
    path = isolated["store"] / "profiles" / "fresh.toml"
    real_render = saving.render

    def render(*args, **kwargs):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(THEIRS.replace("vision", "fresh"))
        return real_render(*args, **kwargs)

    monkeypatch.setattr(saving, "render", render)
    with pytest.raises(StoreError, match="changed by another session"):
        save("fresh", captured=Capture(since=0, packages=["gamma==3.1"]))
    assert "delta" in path.read_text()


def test_write_atomic_compares_by_content(tmp_path):
    target = tmp_path / "own" / "f.txt"
    write_atomic(target, b"one", expected=None)
    write_atomic(target, b"two", expected=b"one")
    with pytest.raises(ConcurrentWrite) as caught:
        write_atomic(target, b"three", expected=b"one")
    assert caught.value.current == b"two" and target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]   # no temp file left


def test_temp_files_of_interrupted_saves_are_removed(isolated):
    folder = isolated["store"] / "profiles"
    folder.mkdir(parents=True)
    stale = folder / ".vision.toml.k3j4h5.tmp"
    young = folder / ".vision.toml.abcdef.tmp"     # maybe a save running right now
    other = folder / ".notes.txt.k3j4h5.tmp"
    (folder / "history").mkdir()
    stale_copy = folder / "history" / ".vision-20260101T000000Z.toml.a1b2c3.tmp"
    for item in (stale, young, other, stale_copy):
        item.write_text("partial")
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))
    os.utime(stale_copy, (hours_ago, hours_ago))
    save("vision", captured=Capture(since=0, packages=["gamma==3.1"]))
    assert not stale.exists() and young.exists() and other.exists()
    assert not stale_copy.exists()
