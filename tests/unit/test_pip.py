"""The pip step: real uv installs of test wheels into fresh virtual environments."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import bootstrap
from bootstrap.errors import OptionError, StepError
from bootstrap.report import CHANGED, PLANNED, SATISFIED, SKIPPED
from tests.support.index import asked_for, simple_index
from tests.support.venvs import installed


def write_profile(folder: Path, body: str, name: str = "p") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return path


def local_pip(wheelhouse: Path, packages: list[str], extra: str = "") -> str:
    return (f'[pip]\npackages = {packages!r}\nno_index = true\n'
            f'find_links = ["{wheelhouse}"]\n{extra}').replace("'", '"')


def test_installs_into_target_venv_then_second_run_starts_no_uv(tmp_path, wheelhouse,
                                                                 fresh_venv, uv_log):
    profile = write_profile(tmp_path, local_pip(wheelhouse, ["beta", "gamma[fast]"]))
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    pip = report.step("pip")
    assert pip.outcome == CHANGED
    assert installed(fresh_venv) == {"alpha": "2.0", "beta": "1.0", "gamma": "3.1",
                                     "delta": "0.5"}
    assert "alpha 2.0 added" in pip.notes and "delta 0.5 added" in pip.notes
    # the first restore resolves once (the lock), then installs exactly it
    calls = [line.split()[1] for line in uv_log.read_text().splitlines()]
    assert calls == ["compile", "install"]

    again = bootstrap.restore(str(profile), python=str(fresh_venv))
    assert [(r.name, r.outcome) for r in again.steps] == [("gpu", SATISFIED), ("pip", SATISFIED)]
    assert again.step("pip").summary == "2 requirements met"
    assert len(uv_log.read_text().splitlines()) == 2  # no uv process the second time


def test_version_change_and_extras_are_detected(tmp_path, wheelhouse, fresh_venv, uv_log):
    first = write_profile(tmp_path, local_pip(wheelhouse, ["alpha==1.0", "gamma"]), "first")
    bootstrap.restore(str(first), python=str(fresh_venv))
    assert installed(fresh_venv) == {"alpha": "1.0", "gamma": "3.1"}
    second = write_profile(tmp_path, local_pip(wheelhouse, ["alpha>=2", "gamma[fast]"]), "second")
    plan = bootstrap.restore(str(second), python=str(fresh_venv), dry_run=True)
    pip = plan.step("pip")
    assert pip.outcome == PLANNED
    assert pip.actions == ["install alpha>=2 (1.0 installed, >=2 wanted)",
                           "install gamma[fast] (extra [fast] needs delta>=0.5: not installed)"]
    assert installed(fresh_venv) == {"alpha": "1.0", "gamma": "3.1"}  # dry run changed nothing
    report = bootstrap.restore(str(second), python=str(fresh_venv))
    assert "alpha 1.0 -> 2.0" in report.step("pip").notes
    assert installed(fresh_venv)["alpha"] == "2.0"


def test_markers_for_other_pythons_are_ignored(tmp_path, wheelhouse, fresh_venv, uv_log):
    profile = write_profile(tmp_path, f'''
        [pip]
        packages = ["delta", "alpha; python_version < '3.0'"]
        no_index = true
        find_links = ["{wheelhouse}"]
    ''')
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    assert report.step("pip").outcome == CHANGED
    assert installed(fresh_venv) == {"delta": "0.5"}
    calls = len(uv_log.read_text().splitlines())
    # alpha's marker never holds here: the check counts it as met, so nothing is left to do
    again = bootstrap.restore(str(profile), python=str(fresh_venv))
    assert again.step("pip").outcome == SATISFIED
    assert len(uv_log.read_text().splitlines()) == calls


def test_constraints_pin_dependencies(tmp_path, wheelhouse, fresh_venv):
    profile = write_profile(tmp_path, local_pip(wheelhouse, ["beta"],
                                                'constraints = ["alpha<2"]\n'))
    bootstrap.restore(str(profile), python=str(fresh_venv))
    assert installed(fresh_venv) == {"alpha": "1.0", "beta": "1.0"}


def test_pep503_index_on_loopback(tmp_path, wheelhouse, fresh_venv):
    with simple_index(wheelhouse) as index:
        profile = write_profile(tmp_path, f'''
            [pip]
            packages = ["beta"]
            index_url = "{index.url}/simple/"
        ''')
        report = bootstrap.restore(str(profile), python=str(fresh_venv))
        assert report.step("pip").outcome == CHANGED
        assert {"alpha", "beta"} <= asked_for(index)
    assert installed(fresh_venv) == {"alpha": "2.0", "beta": "1.0"}


def test_colab_uv_presets_are_cleared_and_reported(tmp_path, wheelhouse, fresh_venv,
                                                   monkeypatch, uv_log):
    # Colab's image points these at a file that does not exist; uv would fail on it.
    monkeypatch.setenv("UV_CONSTRAINT", "/backend-container/containers/requirements.constraints")
    monkeypatch.setenv("UV_BUILD_CONSTRAINT", "/backend-container/containers/build.constraints")
    profile = write_profile(tmp_path, local_pip(wheelhouse, ["delta"]))
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    notes = report.step("pip").notes
    assert ("ignored UV_CONSTRAINT=/backend-container/containers/requirements.constraints "
            "from the environment for this install") in notes
    assert any(n.startswith("ignored UV_BUILD_CONSTRAINT=") for n in notes)
    assert installed(fresh_venv) == {"delta": "0.5"}
    assert "UV_CONSTRAINT" in os.environ  # only uv's environment was cleaned


def test_uv_error_text_reaches_the_user(tmp_path, wheelhouse, fresh_venv):
    profile = write_profile(tmp_path, local_pip(wheelhouse, ["nosuchpkg==1.0"]))
    with pytest.raises(StepError) as info:
        bootstrap.restore(str(profile), python=str(fresh_venv))
    text = str(info.value)
    assert text.startswith("error: uv failed with exit code 1\n  where: ")
    assert "pip compile --quiet --python" in text  # the one resolution of the restore
    assert "nosuchpkg" in text and "  | " in text  # uv's own words, quoted
    assert "hint: uv could not resolve the requirements" in text
    assert info.value.report.step("pip").outcome == "failed"
    assert installed(fresh_venv) == {}


def test_missing_python_is_an_option_error(tmp_path, wheelhouse):
    profile = write_profile(tmp_path, local_pip(wheelhouse, ["delta"]))
    with pytest.raises(OptionError, match="no Python interpreter at /nonexistent/python"):
        bootstrap.restore(str(profile), python="/nonexistent/python")


def test_only_and_skip(tmp_path, wheelhouse, fresh_venv, monkeypatch):
    monkeypatch.delenv("NB_TEST_A", raising=False)
    profile = write_profile(tmp_path, local_pip(wheelhouse, ["delta"]) + '[env]\nNB_TEST_A = "1"\n')
    report = bootstrap.restore(str(profile), python=str(fresh_venv), only=["env"])
    assert [(r.name, r.outcome) for r in report.steps] == [("gpu", SKIPPED), ("env", CHANGED),
                                                           ("pip", SKIPPED)]
    assert report.step("pip").summary == "left out by --only"
    assert installed(fresh_venv) == {}
    report = bootstrap.restore(str(profile), python=str(fresh_venv), skip=["pip"])
    assert [(r.name, r.outcome) for r in report.steps] == [("gpu", SATISFIED), ("env", SATISFIED),
                                                           ("pip", SKIPPED)]
    with pytest.raises(OptionError) as info:
        bootstrap.restore(str(profile), only=["pipp"])
    assert "unknown step 'pipp'" in str(info.value) and "did you mean 'pip'?" in str(info.value)
