"""One restore at a time per machine and target interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bootstrap
from bootstrap import mutex
from bootstrap.errors import StepError
from bootstrap.profile import parse

REPO = Path(__file__).resolve().parents[2]
PROFILE = parse('name = "one"\n[[run]]\nargv = ["true"]\n', source="one.toml")

HOLD = """
import sys, time
sys.path.insert(0, {repo!r})
from bootstrap import mutex
with mutex.restoring(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(python: str, seconds: float) -> subprocess.Popen:
    """Another process (another kernel, a CLI run) restoring into ``python``."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=str(REPO)), python,
                             str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_restore_says_for_whom_it_waits_and_gives_up(monkeypatch):
    other = hold(sys.executable, 30)
    try:
        monkeypatch.setenv("BOOTSTRAP_RESTORE_WAIT", "1")
        lines = []
        start = time.monotonic()
        with pytest.raises(StepError, match=rf"another restore is running \(pid {other.pid}, "
                                            r"since \d\d:\d\d:\d\d\); gave up after 1 s"):
            bootstrap.restore(PROFILE, progress=lambda e: lines.append(e.text))
        assert time.monotonic() - start < 4
        assert any(f"another restore is running (pid {other.pid}" in line for line in lines)
        # a dry run changes nothing and does not wait
        assert bootstrap.restore(PROFILE, dry_run=True).ok
    finally:
        other.kill()
        other.communicate()


def test_the_second_restore_goes_on_when_the_first_ends(monkeypatch):
    other = hold(sys.executable, 1)
    try:
        start = time.monotonic()
        report = bootstrap.restore(PROFILE)
        assert report.ok and 0.5 < time.monotonic() - start < 10
    finally:
        other.communicate()


def test_a_killed_holder_does_not_block_and_other_interpreters_do_not_wait(tmp_path):
    other = hold(sys.executable, 60)
    elsewhere = tmp_path / "python"
    elsewhere.symlink_to("/bin/true")
    with mutex.restoring(str(elsewhere), wait=0):     # another interpreter: free
        pass
    os.kill(other.pid, signal.SIGKILL)
    other.communicate()
    with mutex.restoring(sys.executable, wait=2):
        with mutex.restoring(sys.executable, wait=0):  # re-entered in this process
            pass
