"""[venv] for real: uv makes the environment (also from a Python a [[run]] entry put in
place), [pip] installs into it through the lock and the store, a second restore is a
no-op that starts no process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bootstrap import restore
from bootstrap.errors import ProfileError, StepError
from bootstrap.profile import parse
from bootstrap.report import CHANGED, PLANNED, SATISFIED
from tests.support.venvs import installed

pytestmark = pytest.mark.usefixtures("clean_environ")

BASE = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")


def test_pip_installs_into_the_venv_then_nothing_to_do(tmp_path, wheelhouse, started, isolated):
    profile = parse(f"""
        [venv]
        path = "{tmp_path}/envs/work"
        python = "{BASE}"

        [env]
        TOOL_PYTHON = "{{python}}"     # [env] runs before [venv], and means the venv's

        [pip]
        no_index = true
        find_links = ["{wheelhouse}"]
        packages = ["beta==1.0"]

        [[run]]
        argv = ["{{python}}", "-c", "import beta, alpha; open('imported', 'w')"]
        creates = "imported"
    """, source="v.toml")
    plan = restore(profile, dry_run=True)
    assert plan.step("venv").outcome == PLANNED
    assert plan.step("pip").outcome == PLANNED
    assert plan.step("pip").summary.startswith(f"install into {tmp_path}/envs/work/bin/python")

    first = restore(profile)
    python = tmp_path / "envs" / "work" / "bin" / "python"
    assert first.step("venv").outcome == CHANGED and first.step("pip").outcome == CHANGED
    assert first.python == str(python)
    assert installed(python) == {"alpha": "2.0", "beta": "1.0"}
    assert (tmp_path / "imported").exists()            # {python} is the venv's
    assert os.environ["TOOL_PYTHON"] == str(python)
    locks = list((isolated["store"] / "profiles" / "locks").glob("pylock.*.toml"))
    assert locks, "the venv's packages are locked like the kernel's"

    started.clear()
    second = restore(profile)
    assert [r.outcome for r in second.steps if r.name != "gpu"] == [SATISFIED] * 4
    assert started == []


def test_a_venv_from_a_python_a_run_entry_puts_in_place(tmp_path, wheelhouse):
    profile = parse(f"""
        [[run]]
        name = "build python"
        commands = [["mkdir", "-p", "{tmp_path}/py/bin"],
                    ["ln", "-s", "{BASE}", "{tmp_path}/py/bin/python3"]]
        creates = "{tmp_path}/py/bin/python3"

        [venv]
        path = "{tmp_path}/env"
        python = "{tmp_path}/py/bin/python3"

        [pip]
        no_index = true
        find_links = ["{wheelhouse}"]
        packages = ["alpha==2.0"]
    """, source="b.toml")
    plan = restore(profile, dry_run=True)
    assert "order: venv after run: venv.python is made by run[0] (inside its creates)" \
        in plan.notes
    report = restore(profile)
    assert [r.name for r in report.steps] == ["gpu", "run", "venv", "pip"]
    assert installed(tmp_path / "env" / "bin" / "python") == {"alpha": "2.0"}


def test_a_folder_that_is_no_venv_is_never_replaced(tmp_path):
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "mine.txt").write_text("keep")
    profile = parse(f'[venv]\npath = "{tmp_path}/env"\n', source="k.toml")
    with pytest.raises(StepError) as caught:
        restore(profile)
    assert caught.value.what == f"{tmp_path}/env exists and is not a virtual environment"
    assert (tmp_path / "env" / "mine.txt").read_text() == "keep"


def test_validation():
    with pytest.raises(ProfileError) as caught:
        parse('[venv]\npython = "{nope}"\nsite = true\n', source="v.toml")
    lines = [p.line() for p in caught.value.problems]
    assert any(line.startswith("v.toml: venv.site: unknown key") for line in lines)
    assert any(line.startswith("v.toml: venv.python: unknown placeholder {nope}")
               for line in lines)
    assert any(line.startswith("v.toml: venv.path: missing required key") for line in lines)


def test_a_dry_run_plans_every_install_into_a_venv_not_made_yet(tmp_path, wheelhouse):
    from tests.support.gitrepo import GitRepo, clone
    from tests.support.wheels import project_files

    origin = GitRepo.create(tmp_path / "origin")
    origin.commit(project_files("nbgitdemo", "1.0", package=True), "one")
    clone(origin.path, tmp_path / "code" / "demo")       # the clone is there, the venv is not
    venv_python = f"{tmp_path}/envs/work/bin/python"
    profile = parse(f"""
        [venv]
        path = "{tmp_path}/envs/work"
        python = "{BASE}"

        [[git]]
        url = "{origin.url}"
        dest = "{tmp_path}/code/demo"
        install = true

        [pip]
        no_index = true
        find_links = ["{wheelhouse}"]
        packages = ["alpha==2.0"]

        [[run]]
        argv = ["{{python}}", "-c", "open('smoke', 'w')"]
        unless = ["{{python}}", "-c", "import nbgitdemo"]
    """, source="v.toml")
    plan = restore(profile, dry_run=True)
    outcomes = {r.name: (r.outcome, r.summary) for r in plan.steps if r.name != "gpu"}
    assert outcomes == {
        "venv": (PLANNED, f"create {tmp_path}/envs/work"),
        "git": (PLANNED, f"install into {venv_python} once [venv] has made it"),
        "pip": (PLANNED, f"install into {venv_python} once [venv] has made it"),
        "run": (PLANNED, "1 of 1 command to run"),
    }
    [action] = plan.step("run").actions
    assert action.startswith(f"run[0]: {venv_python} -c ")
    assert action.endswith(f"import nbgitdemo' not tried yet: {venv_python} does not exist)")
    assert not (tmp_path / "envs").exists()

    # the same steps for real: the plan was right
    report = restore(profile)
    assert [report.step(n).outcome for n in ("venv", "git", "pip")] == [CHANGED] * 3
    # the guard, read once the venv is there, sees the [[git]] install
    assert report.step("run").outcome == SATISFIED and not (tmp_path / "smoke").exists()
    assert installed(venv_python) == {"alpha": "2.0", "nbgitdemo": "1.0"}

