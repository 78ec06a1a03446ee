"""[variables]: expanded at restore, on the report (API), printed (CLI), pushed into the
notebook's namespace (%restore_env)."""

from __future__ import annotations

import pytest

from bootstrap import restore
from bootstrap.cli import main
from bootstrap.errors import ProfileError
from bootstrap.profile import parse
from bootstrap.report import SATISFIED

pytestmark = pytest.mark.usefixtures("clean_environ")

PROFILE = """
[env]
DATA = "{drive}/data"

[variables]
PROJECT_ROOT = "{drive}/projects/vision"
ZIP_PATH = "{env:DATA}/images.zip"
JOBS = "{cpus}"
"""


def test_the_report_carries_them(isolated, started):
    drive = isolated["drive"]
    report = restore(parse(PROFILE, source="v.toml"))
    assert report.variables["PROJECT_ROOT"] == f"{drive}/projects/vision"
    assert report.variables["ZIP_PATH"] == f"{drive}/data/images.zip"
    assert int(report.variables["JOBS"]) >= 1
    row = report.step("variables")
    assert row.outcome == SATISFIED
    assert row.summary == "3 variables for the notebook: PROJECT_ROOT, ZIP_PATH, JOBS"
    assert restore(parse(PROFILE, source="v.toml"), dry_run=True).variables == report.variables
    again = restore(parse(PROFILE, source="v.toml"))
    assert [r.outcome for r in again.steps[1:]] == [SATISFIED, SATISFIED]   # env, variables
    assert started == []


def test_the_cli_prints_them(isolated, tmp_path, capsys):
    path = tmp_path / "v.toml"
    path.write_text(PROFILE)
    assert main(["restore", str(path), "-q"]) == 0
    out = capsys.readouterr().out
    assert f'variable PROJECT_ROOT = "{isolated["drive"]}/projects/vision"' in out


def test_restore_env_pushes_them_into_the_namespace(isolated, tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "v.toml"
    path.write_text(PROFILE)
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "bootstrap")
        shell.run_line_magic("restore_env", f"{path} --dry-run")
        assert "ZIP_PATH" not in shell.user_ns          # a dry run changes nothing
        shell.run_line_magic("restore_env", str(path))
        assert shell.user_ns["ZIP_PATH"] == f"{isolated['drive']}/data/images.zip"
    finally:
        InteractiveShell.clear_instance()


def test_names_must_be_python_variables():
    with pytest.raises(ProfileError) as caught:
        parse('[variables]\n"1st" = "x"\nclass = "y"\nOK = "{nope}"\n', source="v.toml")
    lines = [p.line() for p in caught.value.problems]
    assert any(line.startswith("v.toml: variables.1st: is not a Python variable name")
               for line in lines)
    assert any(line.startswith("v.toml: variables.class: is not a Python variable name")
               for line in lines)
    assert any(line.startswith("v.toml: variables.OK: unknown placeholder {nope}")
               for line in lines)
