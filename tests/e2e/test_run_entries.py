"""[[run]] entries for real: run-once markers, several commands under one guard, check
entries, conditions, the default working folder, and guards read right before each entry."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bootstrap import restore
from bootstrap.errors import ProfileError, StepError
from bootstrap.profile import parse
from bootstrap.report import CHANGED, SATISFIED
from tests.support.fakes import Lines

pytestmark = pytest.mark.usefixtures("clean_environ")


def problems(text: str) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        parse(text, source="p.toml")
    return [p.line() for p in caught.value.problems]


def test_once_runs_once_per_vm_and_again_when_edited(tmp_path, isolated, started):
    text = """
        [[run]]
        name = "fetch and unpack"
        commands = [["sh", "-c", "echo got >> log.txt"], ["mkdir", "-p", "unpacked-by-archive"]]
        once = true
    """
    first = restore(parse(text, source="once.toml"))
    assert first.step("run").outcome == CHANGED
    assert (tmp_path / "log.txt").read_text() == "got\n"
    markers = list((tmp_path / "vm-state" / "run-markers").glob("*.json"))
    assert len(markers) == 1                       # on the VM's disk, not in the store
    assert not (isolated["store"] / "run-markers").exists()

    started.clear()
    second = restore(parse(text, source="once.toml"))
    assert second.step("run").outcome == SATISFIED
    assert second.step("run").summary == "1 command done"
    assert started == []                           # no process at all
    assert (tmp_path / "log.txt").read_text() == "got\n"

    # An edited entry is another entry: it runs again.
    edited = text.replace("echo got", "echo got-v2")
    third = restore(parse(edited, source="once.toml"))
    assert third.step("run").outcome == CHANGED
    assert (tmp_path / "log.txt").read_text() == "got\ngot-v2\n"

    # A marker from another boot (another VM) does not count.
    marker = next(m for m in markers if m.exists())
    marker.write_text(marker.read_text().replace('"boot_id": "', '"boot_id": "other-'))
    again = restore(parse(text, source="once.toml"))
    assert again.step("run").outcome == CHANGED


def test_commands_stop_at_the_first_failure_naming_it(tmp_path):
    profile = parse("""
        [[run]]
        name = "build"
        commands = [["touch", "configured"], ["sh", "-c", "echo broken >&2; exit 2"],
                    ["touch", "installed"]]
        creates = "installed"
    """, source="b.toml")
    with pytest.raises(StepError) as caught:
        restore(profile)
    error = caught.value
    assert error.what == "run[0] (build) command 2 of 3 failed with exit code 2"
    assert error.where == "b.toml: run[0]: sh -c 'echo broken >&2; exit 2'"
    assert error.details == "broken"
    assert "the entry's later commands" in error.hint
    assert (tmp_path / "configured").exists() and not (tmp_path / "installed").exists()


def test_commands_under_one_guard_then_satisfied(tmp_path, started):
    profile = parse("""
        [[run]]
        commands = [["mkdir", "-p", "build"], ["touch", "build/tool"]]
        creates = "build/tool"
        timeout = 30
    """, source="b.toml")
    assert restore(profile).step("run").outcome == CHANGED
    started.clear()
    assert restore(profile).step("run").outcome == SATISFIED
    assert started == []


def test_check_entries_run_every_time_and_never_count_as_a_change(tmp_path, started):
    text = """
        [[run]]
        argv = ["touch", "tool"]
        creates = "tool"
        [[run]]
        name = "smoke test"
        shell = "test -e tool && echo tool works"
        check = true
    """
    lines = Lines()
    first = restore(parse(text, source="c.toml"), progress=lines)
    assert first.step("run").outcome == CHANGED
    assert "tool works" in lines.lines            # its output is shown
    assert "run[1] (smoke test) check passed: tool works" in first.step("run").notes

    started.clear()
    lines = Lines()
    second = restore(parse(text, source="c.toml"), progress=lines)
    assert second.step("run").outcome == SATISFIED
    assert second.step("run").summary == "1 command done; 1 check passed"
    assert started.programs() == ["sh"]           # only the check ran
    assert "tool works" in lines.lines

    failing = text.replace("test -e tool", "test -e missing-tool")
    with pytest.raises(StepError) as caught:
        restore(parse(failing, source="c.toml"))
    assert caught.value.what == "run[1] (smoke test) failed with exit code 1"

    started.clear()
    plan = restore(parse(text, source="c.toml"), dry_run=True)  # a dry run runs no check
    assert plan.step("run").outcome == SATISFIED
    assert "run[1] (smoke test) would check: /bin/sh -c 'test -e tool && echo tool works'" \
        in plan.step("run").notes
    assert started == []


def test_conditions_leave_entries_out(tmp_path, gpu):
    text = """
        [[run]]
        argv = ["touch", "built-with-cuda"]
        creates = "built-with-cuda"
        when = "gpu"
        [[run]]
        argv = ["touch", "built-for-cpu"]
        creates = "built-for-cpu"
        when = "no-gpu"
        [[run]]
        argv = ["touch", "on-kaggle"]
        creates = "on-kaggle"
        when = "kaggle"
        [[run]]
        argv = ["sh", "-c", "echo $0 $1 > seen.txt", "-j{cpus}", "{env:NO_SUCH_PREFIX:-/usr/local}"]
        check = true
    """
    report = restore(parse(text, source="w.toml"))
    assert (tmp_path / "built-for-cpu").exists()
    assert not (tmp_path / "built-with-cuda").exists() and not (tmp_path / "on-kaggle").exists()
    notes = report.step("run").notes
    assert any(n.startswith('run[0] left out: when = "gpu" and this machine has no GPU')
               for n in notes), notes
    assert 'run[2] left out: when = "kaggle" and this is local' in notes
    cpus = len(os.sched_getaffinity(0))
    assert (tmp_path / "seen.txt").read_text() == f"-j{cpus} /usr/local\n"

    gpu("t4")  # the fake nvidia-smi: a Tesla T4
    report = restore(parse(text, source="w.toml"))
    assert (tmp_path / "built-with-cuda").exists()


def test_default_cwd_is_the_workdir_or_the_start_folder(tmp_path, isolated):
    here = parse('[[run]]\nargv = ["touch", "here"]\ncreates = "here"\n', source="h.toml")
    restore(here)
    assert (tmp_path / "here").exists() and not (isolated["drive"] / "here").exists()

    in_workdir = parse('[[run]]\nargv = ["touch", "made"]\ncreates = "made"\n'
                       '[workdir]\npath = "/tmp"\n'.replace("/tmp", str(tmp_path / "proj"))
                       + "create = true\n", source="w.toml")
    restore(in_workdir)
    assert (tmp_path / "proj" / "made").exists()
    assert Path.cwd() == tmp_path / "proj"


def test_each_guard_is_read_right_before_its_entry(tmp_path):
    # The second entry's probe succeeds before the first entry ran, and fails after it:
    # it must run.
    (tmp_path / "stale").write_text("old")
    profile = parse("""
        [[run]]
        argv = ["rm", "stale"]
        unless = ["test", "!", "-e", "stale"]
        [[run]]
        argv = ["touch", "rebuilt"]
        unless = ["/bin/sh", "-c", "test -e stale || test -e rebuilt"]
    """, source="g.toml")
    assert restore(profile, dry_run=True).step("run").actions == [
        "run[0]: rm stale (test '!' -e stale fails)"]
    report = restore(profile)
    assert (tmp_path / "rebuilt").exists(), report.text()


def test_dry_run_says_which_guards_were_not_tried(tmp_path):
    profile = parse("""
        [[run]]
        argv = ["make"]
        cwd = "{drive}/repo"
        unless = ["test", "-x", "tool"]
    """, source="d.toml")
    plan = restore(profile, dry_run=True)
    (action,) = plan.step("run").actions
    assert "test -x tool not tried yet" in action and "fails" not in action


def test_validation_of_the_new_keys():
    lines = problems("""
        [[run]]
        argv = ["find", ".", "-name", "*.pyc", "-exec", "rm", "{}", "+"]
        [[run]]
        commands = []
        [[run]]
        commands = [["make"], []]
        [[run]]
        argv = ["make"]
        commands = [["make"]]
        [[run]]
        argv = ["true"]
        check = true
        creates = "x"
        [[run]]
        argv = ["true"]
        once = true
        unless = ["true"]
        [[run]]
        argv = ["true"]
        when = "tpu"
        [[run]]
        argv = ["echo", "{env:X:-}", "{cpus}"]
    """)
    assert lines[0].startswith("p.toml: run[0].argv: has {} (an unknown placeholder)")
    assert "write {{}} for literal braces" in lines[0]
    assert any(line.startswith("p.toml: run[1].commands: must not be empty") for line in lines)
    assert any(line.startswith("p.toml: run[2].commands[1]: must not be empty") for line in lines)
    assert any(line.startswith("p.toml: run[3]: has both argv and commands") for line in lines)
    assert any(line.startswith("p.toml: run[4].check: a check runs on every restore")
               for line in lines)
    assert any(line.startswith("p.toml: run[5].once: has unless too") for line in lines)
    assert any(line.startswith("p.toml: run[6].when: is not a condition (got 'tpu'); hint: use "
                               "one of gpu, no-gpu, colab, kaggle, local") for line in lines)
    assert not any(line.startswith("p.toml: run[7]") for line in lines)
    assert len(lines) == 7, lines


def test_unset_env_in_a_dry_run_names_the_profile(tmp_path):
    profile = parse('[[run]]\nargv = ["echo", "{env:SURELY_UNSET_VAR}"]\n', source="u.toml")
    with pytest.raises(ProfileError) as caught:
        restore(profile, dry_run=True)
    assert caught.value.what == "invalid profile u.toml"
    assert "{env:SURELY_UNSET_VAR:-value}" in caught.value.problems[0].hint


def test_build_entries_run_before_pip_and_run_entries_after(tmp_path, fresh_venv, started):
    # [[build]] makes the project [pip] installs (as a C library a package compiles
    # against would be); [[run]] checks the result once pip has installed it.
    (tmp_path / "generate.sh").write_text(
        "mkdir -p made/made_pkg\n"
        "echo 'VALUE = 42' > made/made_pkg/__init__.py\n"
        "printf '[project]\\nname = \"made-pkg\"\\nversion = \"1.0\"\\n' > made/pyproject.toml\n")
    project = tmp_path / "made"
    profile = parse(f"""
        [[build]]
        name = "generate the project"
        argv = ["sh", "generate.sh"]
        creates = "made/pyproject.toml"
        [pip]
        packages = [{{ path = "{project}" }}]
        [[run]]
        name = "smoke test"
        argv = ["{{python}}", "-c", "import made_pkg; print('value', made_pkg.VALUE)"]
        check = true
    """, source="b.toml")
    first = restore(profile, python=str(fresh_venv))
    assert [r.name for r in first.steps] == ["gpu", "build", "pip", "run"]
    assert first.step("build").outcome == CHANGED and first.step("pip").outcome == CHANGED
    assert first.step("build").notes == ["build[0] (generate the project) ran: sh generate.sh"]
    assert "run[0] (smoke test) check passed: value 42" in first.step("run").notes
    started.clear()
    second = restore(profile, python=str(fresh_venv))
    assert [r.outcome for r in second.steps[1:]] == [SATISFIED] * 3
    assert len(started) == 1 and started[0][0] == str(fresh_venv)   # only the check ran


def test_once_with_creates_must_make_it_and_is_not_marked_otherwise(tmp_path):
    profile = parse('[[run]]\nargv = ["true"]\nonce = true\ncreates = "made"\n', source="o.toml")
    with pytest.raises(StepError) as caught:
        restore(profile)
    assert caught.value.what == "run[0] exited 0 but its guard still says it is not done"
    assert not list((tmp_path / "vm-state").glob("run-markers/*.json"))


def test_a_guard_that_hangs_after_its_command_ran_is_named_with_its_time_limit(tmp_path):
    # the guard answers "not done" at once until the command made `ran`, then hangs
    profile = parse(f"""
        [[run]]
        name = "make it"
        argv = ["touch", "{tmp_path}/ran"]
        unless = ["sh", "-c", "test -e {tmp_path}/ran && sleep 60; exit 1"]
        timeout = 1
    """, source="g.toml")
    began = time.monotonic()
    with pytest.raises(StepError) as caught:
        restore(profile)
    assert time.monotonic() - began < 30                     # stopped, not waited out
    error = caught.value
    assert (tmp_path / "ran").exists()
    assert error.what == (f"run[0] (make it): its unless guard sh -c 'test -e {tmp_path}/ran "
                          "&& sleep 60; exit 1' did not finish within 1 s")
    assert error.where == "g.toml: run[0].unless"
    assert "exited 0 but its guard still says" not in str(error)
    assert "timeout" in error.hint

def test_once_without_a_writable_state_folder_runs_and_says_it_will_run_again(tmp_path,
                                                                               monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the state folder would be")
    monkeypatch.setenv("BOOTSTRAP_STATE_DIR", str(blocked))
    profile = parse('[[run]]\nargv = ["touch", "ran"]\nonce = true\n', source="o.toml")
    report = restore(profile)
    assert report.step("run").outcome == CHANGED
    assert any("could not record that it ran" in n and "runs it again" in n
               for n in report.step("run").notes), report.step("run").notes


def test_force_runs_a_once_entry_again_once(tmp_path):
    text = """
        [[run]]
        argv = ["sh", "-c", "echo ran >> log.txt"]
        once = true
    """
    restore(parse(text, source="once.toml"))
    assert restore(parse(text, source="once.toml")).step("run").outcome == SATISFIED
    forced = restore(parse(text, source="once.toml"), force=True)
    assert forced.step("run").outcome == CHANGED
    assert (tmp_path / "log.txt").read_text() == "ran\nran\n"      # once more, not twice more
    assert restore(parse(text, source="once.toml")).step("run").outcome == SATISFIED


def test_on_colab_run_entries_without_cwd_need_no_drive(tmp_path, colab, monkeypatch):
    from tests.support.fakes import write_profile

    start = tmp_path / "started-here"
    start.mkdir()
    monkeypatch.chdir(start)
    plain = write_profile(tmp_path, '[[run]]\nargv = ["touch", "here"]\ncreates = "here"\n')
    report = restore(plain)
    assert "drive" not in [r.name for r in report.steps]
    assert (start / "here").exists()

    # a [workdir] on the VM's disk (not under {drive}) is the default cwd; Drive stays
    # unmounted
    project = colab.root / "content" / "project"
    with_workdir = write_profile(tmp_path, f'[workdir]\npath = "{project}"\ncreate = true\n'
                                           '[[run]]\nargv = ["touch", "made"]\n'
                                           'creates = "made"\n')
    report = restore(with_workdir)
    assert "drive" not in [r.name for r in report.steps]
    assert (project / "made").exists()
    assert colab.calls() == [] and not os.path.ismount(colab.mountpoint)


def test_the_cli_names_the_profile_and_the_literal_brace_form(tmp_path, isolated):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]

    def cli(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "SURELY_UNSET_VAR"}
        return subprocess.run([sys.executable, "-m", "bootstrap", *args], capture_output=True,
                              text=True, env={**env, "PYTHONPATH": str(repo)}, timeout=120)

    (isolated["store"] / "profiles").mkdir(parents=True, exist_ok=True)
    (isolated["store"] / "profiles" / "unset.toml").write_text(
        '[[run]]\nargv = ["echo", "{env:SURELY_UNSET_VAR}"]\n')
    done = cli("restore", "--dry-run", "unset")          # by name, from the store
    assert done.returncode == 3
    assert "error: invalid profile unset.toml\n" in done.stderr
    assert "invalid profile profile" not in done.stderr + done.stdout
    assert "{env:SURELY_UNSET_VAR:-value}" in done.stderr

    (tmp_path / "find.toml").write_text(
        '[[run]]\nargv = ["find", ".", "-exec", "rm", "{}", "+"]\n')
    done = cli("validate", str(tmp_path / "find.toml"))
    assert done.returncode == 3
    assert "run[0].argv: has {} (an unknown placeholder)" in done.stderr
    assert "hint: write {{}} for literal braces, e.g. find's -exec ... {{}} +" in done.stderr
