"""The run step for real: a cloned repository's C program built with make, guards,
failures that name the entry, and [env] in force for every command."""

from __future__ import annotations

import os
import subprocess

import pytest

from bootstrap import restore
from bootstrap.errors import StepError
from bootstrap.profile import parse
from bootstrap.report import CHANGED, FAILED, SATISFIED
from tests.support.fakes import Lines
from tests.support.gitrepo import clone, make_git_repo
from tests.support.venvs import installed

BUILD_AND_INSTALL = """
name = "hello"

[env]
PATH = "{drive}/src/hello:{env:PATH}"

[pip]
no_index = true
packages = [{ path = "{drive}/src/hello/python", editable = true, no_deps = true }]

[[run]]
name = "build hello"
argv = ["make"]
cwd = "{drive}/src/hello"
creates = "hello"

[[run]]
name = "use the package"
argv = ["{python}", "-c", "import hello_tools as h; print('tools', h.VERSION); open('tools', 'w')"]
cwd = "{drive}"
unless = ["test", "-e", "{drive}/tools"]

[[run]]
name = "use the program"
shell = "hello > {drive}/hello.out"
creates = "{drive}/hello.out"
"""


# Restores write os.environ (the env step): clean_environ puts it back after each test.
pytestmark = pytest.mark.usefixtures("clean_environ")


def build_profile(git_entry: str = ""):
    return parse(BUILD_AND_INSTALL + git_entry, source="hello.toml")


def check_build_and_install(drive, venv, profile):
    first_lines = Lines()
    first = restore(profile, python=str(venv), progress=first_lines)
    program = drive / "src" / "hello" / "hello"
    assert first.step("run").outcome == CHANGED
    assert subprocess.run([str(program)], capture_output=True, text=True,
                          check=True).stdout == "hello from C\n"
    assert (drive / "hello.out").read_text() == "hello from C\n"   # found through [env] PATH
    assert any(line.startswith("cc ") for line in first_lines.lines)  # make's output streamed
    assert "tools 0.3" in first_lines.lines     # run after pip: the package is importable
    assert installed(venv)["hello-tools"] == "0.3"
    assert set(installed(venv)) == {"hello-tools"}  # no deps, editable
    built_at = program.stat().st_mtime_ns

    second_lines = Lines()
    second = restore(profile, python=str(venv), progress=second_lines)
    assert second.step("run").outcome == SATISFIED
    assert second.step("pip").outcome == SATISFIED
    assert second_lines.lines == []             # nothing ran, not even make
    assert program.stat().st_mtime_ns == built_at


def test_clone_build_skip_and_editable_subfolder(tmp_path, isolated, fresh_venv):
    origin = make_git_repo(tmp_path / "origin")
    clone(origin, isolated["drive"] / "src" / "hello")   # the clone, made as git would
    check_build_and_install(isolated["drive"], fresh_venv, build_profile())


def test_git_step_clones_then_run_builds(tmp_path, isolated, fresh_venv, monkeypatch):
    origin = make_git_repo(tmp_path / "origin")
    monkeypatch.setenv("ORIGIN", str(origin))
    profile = build_profile('[[git]]\nurl = "{env:ORIGIN}"\ndest = "{drive}/src/hello"\n')
    check_build_and_install(isolated["drive"], fresh_venv, profile)


def test_failure_names_entry_exit_code_and_tail_and_stops(isolated):
    drive = isolated["drive"]
    profile = parse("""
        [[run]]
        argv = ["true"]
        cwd = "{drive}"
        [[run]]
        name = "compile"
        shell = "echo line-1; echo line-2; echo 'error: it broke' >&2; exit 3"
        cwd = "{drive}"
        [[run]]
        argv = ["touch", "later-ran"]
        cwd = "{drive}"
        [workdir]
        path = "afterwards"
        create = true
    """, source="fail.toml")
    with pytest.raises(StepError) as caught:
        restore(profile)
    error = caught.value
    assert error.what == "run[1] (compile) failed with exit code 3"
    assert error.where.startswith("fail.toml: run[1]: /bin/sh -c ")
    assert error.details.splitlines() == ["line-1", "line-2", "error: it broke"]
    text = str(error)
    assert "  | error: it broke" in text
    assert not (drive / "later-ran").exists()
    assert not (drive / "afterwards").exists()          # no later step ran
    assert [r.name for r in error.report.steps] == ["gpu", "run"]
    assert error.report.step("run").outcome == FAILED


def test_run_sees_env_values_built_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("BASE", "/opt/base")
    profile = parse("""
        [env]
        TOOL_HOME = "{env:BASE}/tool"
        TOOL_BIN = "{env:TOOL_HOME}/bin"
        PATH = "{env:TOOL_BIN}:{env:PATH}"
        [[run]]
        shell = "echo \\"$TOOL_BIN|$PATH|$EXTRA\\" > seen.txt"
        env = { EXTRA = "{env:TOOL_HOME}+x" }
        creates = "seen.txt"
    """, source="env.toml")
    before_path = os.environ["PATH"]
    restore(profile)
    seen = (tmp_path / "seen.txt").read_text().strip().split("|")  # no cwd: where it started
    assert seen == ["/opt/base/tool/bin", "/opt/base/tool/bin:" + before_path,
                    "/opt/base/tool+x"]
    # A second restore does not prepend again: PATH still holds.
    again = restore(profile)
    assert again.step("env").outcome == SATISFIED
    assert os.environ["PATH"] == "/opt/base/tool/bin:" + before_path


def test_unless_guard_and_unguarded_entries(tmp_path):
    drive = tmp_path  # no cwd: the folder the restore started in
    profile = parse("""
        [[run]]
        name = "count"
        shell = "echo x >> count.txt"
        [[run]]
        name = "once"
        shell = "echo done > marker"
        unless = ["test", "-f", "marker"]
    """, source="guards.toml")
    first = restore(profile)
    assert first.step("run").outcome == CHANGED
    plan = restore(profile, dry_run=True)
    assert plan.step("run").actions == [
        "run[0] (count): /bin/sh -c 'echo x >> count.txt' (no guard: runs on every restore)"]
    second = restore(profile)
    assert second.step("run").outcome == CHANGED
    assert (drive / "count.txt").read_text() == "x\nx\n"   # no guard: every restore
    assert (drive / "marker").read_text() == "done\n"     # unless held: ran once


def test_time_limit_missing_program_and_unkept_guard(tmp_path):
    slow = parse('[[run]]\nname = "nap"\nargv = ["sleep", "5"]\ntimeout = 0.3\n', source="t.toml")
    with pytest.raises(StepError) as caught:
        restore(slow)
    assert caught.value.what == "run[0] (nap): sleep did not finish within 0.3 s and was stopped"

    missing = parse('[[run]]\nargv = ["no-such-program-xyz"]\n', source="m.toml")
    with pytest.raises(StepError) as caught:
        restore(missing)
    assert caught.value.what == "run[0]: program not found: no-such-program-xyz"

    unkept = parse('[[run]]\nargv = ["true"]\ncreates = "made"\n', source="u.toml")
    with pytest.raises(StepError) as caught:
        restore(unkept)
    assert caught.value.what == "run[0] exited 0 but its guard still says it is not done"
    assert str(tmp_path / "made") in caught.value.details


def test_missing_cwd_is_named(isolated):
    profile = parse('[[run]]\nargv = ["make"]\ncwd = "{drive}/src/absent"\n', source="c.toml")
    with pytest.raises(StepError) as caught:
        restore(profile)
    assert caught.value.what == (f"run[0]: working folder {isolated['drive'] / 'src' / 'absent'}"
                                 " does not exist")
