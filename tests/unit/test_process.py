"""Running programs: process groups, time limits that hold, interrupts, daemons left alone."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from bootstrap import process
from bootstrap.errors import StepError


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def wait_for(path: Path, seconds: float = 10.0) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def gone(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_output_lines_and_exit_code():
    seen: list[str] = []
    done = process.run(["sh", "-c", "echo one; echo two >&2; printf 'a\\rb\\n'"],
                       on_line=seen.append)
    assert seen == ["one", "two", "a", "b"] and done.returncode == 0
    with pytest.raises(StepError, match="exit code 3"):
        process.run(["sh", "-c", "echo bad; exit 3"])


def test_a_time_limit_ends_the_whole_group_within_a_second_or_two(tmp_path):
    pidfile = tmp_path / "child"
    start = time.monotonic()
    with pytest.raises(StepError, match="did not finish within 2 s"):
        process.run(["sh", "-c", f"sleep 20 & echo $! > {pidfile}; wait; echo never"],
                    timeout=2)
    took = time.monotonic() - start
    assert took < 4.5, took
    assert gone(int(pidfile.read_text()))


def test_a_shell_whose_child_does_not_answer_is_stopped_in_time():
    start = time.monotonic()
    with pytest.raises(StepError, match="within 2 s"):
        process.run(["sh", "-c", "sleep 20; echo"], timeout=2)
    assert time.monotonic() - start < 4.5


def test_a_background_job_holding_the_pipe_does_not_hold_the_wait(tmp_path):
    """A [[run]] that starts a service: it keeps running, the restore goes on."""
    pidfile = tmp_path / "bg"
    start = time.monotonic()
    done = process.run(["sh", "-c", f"(sleep 30; echo late) & echo $! > {pidfile}; echo started"],
                       timeout=20)
    took = time.monotonic() - start
    pid = int(pidfile.read_text())
    try:
        assert done.tail == ["started"] and took < 3, took
        assert alive(pid)       # a service it started on purpose is left running
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_daemon_in_its_own_session_is_left_alone(tmp_path):
    pidfile = tmp_path / "daemon"
    done = process.run(["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 30' "
                                    "> /dev/null 2>&1 < /dev/null & echo ok"], timeout=10)
    pid = int(wait_for(pidfile))
    try:
        assert done.tail == ["ok"] and alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_an_interrupt_lets_the_command_stop_cleanly_then_returns(tmp_path):
    marker = tmp_path / "stopped"
    script = (f"trap 'echo cleaned > {marker}; exit 130' INT; echo ready; "
              "sleep 30 & wait; sleep 30 & wait")

    def interrupt(line: str) -> None:
        if line == "ready":
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        process.run(["sh", "-c", script], on_line=interrupt, timeout=60)
    assert time.monotonic() - start < process.INTERRUPT_GRACE_S + 3
    assert marker.read_text().strip() == "cleaned"


def test_an_interrupted_command_that_ignores_sigint_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(process, "INTERRUPT_GRACE_S", 1.0)
    pidfile = tmp_path / "stubborn"

    def interrupt(line: str) -> None:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        process.run(["sh", "-c", f"trap '' INT; echo $$ > {pidfile}; echo ready; sleep 30"],
                    on_line=interrupt, timeout=60)
    assert time.monotonic() - start < 4
    assert gone(int(pidfile.read_text()))


def test_a_line_without_end_cannot_fill_the_memory():
    done = process.run(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"], tail_lines=10)
    assert all(len(line) <= process.MAX_LINE for line in done.tail)
    assert sum(len(line) for line in done.tail) == 300000


def test_a_run_entry_that_starts_a_service_and_one_that_hangs(tmp_path):
    """[[run]] through the whole restore: a daemon does not hold it, a time limit holds."""
    from bootstrap import restore
    from bootstrap.profile import parse

    pidfile = tmp_path / "service.pid"
    profile = parse(f'''
        name = "svc"
        [[run]]
        name = "start a service"
        shell = "nohup sleep 30 > /dev/null 2>&1 & echo $! > {pidfile}; echo started"
        [[run]]
        name = "hangs"
        shell = "sleep 20; echo"
        timeout = 2
        ''', source="svc.toml")
    start = time.monotonic()
    with pytest.raises(StepError, match="within 2 s"):
        restore(profile)
    try:
        assert time.monotonic() - start < 6
        assert alive(int(wait_for(pidfile)))
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_an_interrupted_step_reports_interrupted(tmp_path):
    from bootstrap import restore
    from bootstrap.profile import parse

    profile = parse('''
        name = "slow"
        [[run]]
        name = "slow"
        shell = "echo ready; sleep 30"
        ''', source="slow.toml")
    ends = []

    def progress(event):
        if event.kind == "line" and event.text == "ready":
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        if event.kind == "end":
            ends.append(event.result)

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        restore(profile, progress=progress)
    assert time.monotonic() - start < process.INTERRUPT_GRACE_S + 3
    assert (ends[-1].name, ends[-1].outcome, ends[-1].summary) == ("run", "failed", "interrupted")


def test_a_command_that_closes_its_output_is_still_waited_for_and_timed():
    start = time.monotonic()
    cpu = time.process_time()
    done = process.run(["sh", "-c", "echo bye; exec >&- 2>&-; sleep 1"], timeout=10)
    assert done.tail == ["bye"] and 0.9 < time.monotonic() - start < 5
    assert time.process_time() - cpu < 0.5     # waited, did not spin
    with pytest.raises(StepError, match="within 1 s"):
        process.run(["sh", "-c", "exec >&- 2>&-; sleep 20"], timeout=1)


def test_much_output_at_the_end_is_all_read():
    done = process.run([sys.executable, "-c", "import sys\nfor i in range(200000): "
                        "sys.stdout.write(f'line {i}\\n')"], tail_lines=3)
    assert done.tail == ["line 199997", "line 199998", "line 199999"]
