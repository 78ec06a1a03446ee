"""Per-VM markers and records: one part (bootstrap.vmstate) for the setup notebook's
markers, the run-once markers, the VM record and the capture baseline, with one
boot check."""

from __future__ import annotations

import json

import pytest

from bootstrap import capture, notebook, vmstate
from bootstrap.errors import StoreError


@pytest.fixture
def boot(tmp_path, monkeypatch):
    path = tmp_path / "boot_id"
    path.write_text("11111111-aaaa\n")
    monkeypatch.setattr(vmstate, "BOOT_ID", path)
    return path


def test_setup_and_run_markers_are_one_kind_of_file(tmp_path, boot):
    state = tmp_path / "vm-state"
    marker = notebook.Marker(key="k" * 24, notebook="/d/setup.ipynb",
                             finished="2026-01-02T03:04:05+00:00", exported={"ROOT": "/x"})
    notebook.save_marker(marker)
    path = state / "setup-markers" / f"{'k' * 24}.json"
    data = json.loads(path.read_text())
    assert (data["key"], data["boot_id"], data["exported"]) == ("k" * 24, "11111111-aaaa",
                                                                {"ROOT": "/x"})
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"   # exported values stay private
    # the generic reader and the notebook's read the same marker
    assert vmstate.find_mark("setup", "k" * 24)["notebook"] == "/d/setup.ipynb"
    found = notebook.find_marker("k" * 24)
    assert found is not None and found.exported == {"ROOT": "/x"} and found.when == \
        "2026-01-02 03:04:05 UTC"
    # another key (an edited entry, other parameters) has no marker
    assert notebook.find_marker("j" * 24) is None
    vmstate.save_mark("run", "r" * 24, {"entry": "run[0]"})
    assert (state / "run-markers" / f"{'r' * 24}.json").exists()
    assert vmstate.find_mark("run", "r" * 24)["entry"] == "run[0]"
    assert vmstate.find_mark("setup", "r" * 24) is None          # kinds do not mix

    boot.write_text("22222222-bbbb\n")          # rebooted, or a copied state folder
    assert notebook.find_marker("k" * 24) is None
    assert vmstate.find_mark("run", "r" * 24) is None


def test_a_marker_written_before_the_merge_still_counts(tmp_path, boot):
    # the notebook's markers as earlier versions wrote them: no "at" field
    folder = tmp_path / "vm-state" / "setup-markers"
    folder.mkdir(parents=True)
    (folder / "abc.json").write_text(json.dumps({
        "key": "abc", "notebook": "/d/s.ipynb", "finished": "2026-01-02T03:04:05+00:00",
        "output": None, "exported": {}, "mode": "papermill", "boot_id": "11111111-aaaa"}))
    assert notebook.find_marker("abc").notebook == "/d/s.ipynb"
    (folder / "abc.json").write_text('{"key": "abc", "boot_id": "11111111-aaaa"}')
    assert notebook.find_marker("abc") is None   # not a notebook marker: ignored, not a crash
    (folder / "abc.json").write_text("[1, 2]")
    assert notebook.find_marker("abc") is None


def test_record_baseline_and_markers_share_the_boot_check(tmp_path, boot):
    vmstate.record(vmstate.Restored("vision", "vision", "/store", "/py"))
    baseline = capture.take_baseline(tmp_path / "baseline.json")
    vmstate.save_mark("run", "abc", {})
    assert vmstate.last() is not None and capture.load_baseline(baseline) is not None
    assert json.loads(baseline.read_text())["boot_id"] == "11111111-aaaa"
    boot.write_text("22222222-bbbb\n")
    assert vmstate.last() is None
    assert capture.load_baseline(baseline) is None
    assert vmstate.find_mark("run", "abc") is None


def test_a_marker_that_cannot_be_written_is_a_store_error(tmp_path, boot, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("BOOTSTRAP_STATE_DIR", str(blocked))
    with pytest.raises(StoreError) as caught:
        vmstate.save_mark("run", "abc", {})
    assert "cannot keep a marker" in caught.value.what
    assert "BOOTSTRAP_STATE_DIR" in caught.value.hint


def test_state_folder_and_wheel_cache_share_the_users_cache_folder(tmp_path):
    from bootstrap import wheelstore

    home = {"HOME": str(tmp_path / "home")}
    assert vmstate.state_dir(home) == tmp_path / "home" / ".cache" / "notebook-bootstrap"
    assert wheelstore.local_dir(home) == vmstate.state_dir(home) / "wheels"
    xdg = {**home, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert vmstate.state_dir(xdg) == tmp_path / "xdg" / "notebook-bootstrap"
    assert wheelstore.local_dir(xdg) == tmp_path / "xdg" / "notebook-bootstrap" / "wheels"
    # each keeps its own override
    both = {**xdg, "BOOTSTRAP_STATE_DIR": str(tmp_path / "s"),
            "BOOTSTRAP_WHEEL_CACHE": str(tmp_path / "w")}
    assert (vmstate.state_dir(both), wheelstore.local_dir(both)) == (tmp_path / "s", tmp_path / "w")
