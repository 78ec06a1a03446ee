"""The apt step against the real apt-get and dpkg, with a .deb built by the test.

Runs only as root on Debian or Ubuntu; apt reads a sources list of the test's
own (a local repository), never the machine's. The package is removed again
in teardown.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import bootstrap
from bootstrap.profile import parse
from bootstrap.report import CHANGED, SATISFIED
from tests.support import debrepo

pytestmark = pytest.mark.skipif(debrepo.unavailable() is not None,
                                reason=debrepo.unavailable() or "")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    debrepo.remove_package()
    repo = debrepo.make(tmp_path / "apt")
    log = tmp_path / "apt-get.log"
    wrappers = debrepo.recording_apt_get(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BOOTSTRAP_APT_OPTIONS", repo.options)
    repo.log = log
    yield repo
    debrepo.remove_package()


def machine_lists() -> dict[str, int]:
    folder = Path("/var/lib/apt/lists")
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.is_dir() else {}


def apt_runs(repo) -> list[str]:
    lines = repo.log.read_text().splitlines() if repo.log.exists() else []
    return [line.split()[0] for line in lines]


PROFILE = f'[apt]\npackages = ["{debrepo.PACKAGE}"]\n'


def test_real_apt_installs_once_keeps_the_deb_and_reuses_it(repo, isolated):
    profile = parse(PROFILE, source="apt.toml")
    before = machine_lists()

    first = bootstrap.restore(profile)
    row = first.step("apt")
    assert row.outcome == CHANGED, row
    assert debrepo.status() == "ii "
    assert debrepo.INSTALLED_FILE.read_text() == "hello from a test package\n"
    assert apt_runs(repo) == ["update", "install"]
    stored = isolated["store"] / "debs" / repo.deb.name
    assert stored.read_bytes() == repo.deb.read_bytes()

    # Second run on the same machine: satisfied from dpkg-query alone.
    second = bootstrap.restore(profile)
    assert second.step("apt").outcome == SATISFIED
    assert apt_runs(repo) == ["update", "install"]  # no new apt-get run

    # A "new VM": the package and the archive cache are gone, and so is the
    # repository; only the store's copy of the .deb can make the install work.
    debrepo.remove_package()
    assert debrepo.status() in (None, "un ")
    shutil.rmtree(repo.root)
    for deb in repo.archives.glob("*.deb"):
        deb.unlink()
    third = bootstrap.restore(profile)
    assert third.step("apt").outcome == CHANGED
    assert "reused 1 .deb file from the store" in third.step("apt").details
    assert debrepo.status() == "ii "
    assert apt_runs(repo)[2:] == ["install"]  # lists still fresh: no update, no other run
    assert machine_lists() == before  # the machine's own lists were never touched


def test_real_apt_removes_before_it_installs(repo, isolated):
    install = bootstrap.restore(parse(PROFILE, source="apt.toml"))
    assert install.step("apt").outcome == CHANGED and debrepo.status() == "ii "

    profile = parse(f'[apt]\nremove = ["{debrepo.PACKAGE}"]\n', source="rm.toml")
    plan = bootstrap.restore(profile, dry_run=True)
    assert plan.step("apt").actions[0].startswith(f"remove {debrepo.PACKAGE} (")
    first = bootstrap.restore(profile)
    assert first.step("apt").outcome == CHANGED
    assert first.step("apt").notes == [f"removed {debrepo.PACKAGE}"]
    assert debrepo.status() in (None, "un ", "rc ")
    runs = apt_runs(repo)
    second = bootstrap.restore(profile)
    assert second.step("apt").outcome == SATISFIED
    assert second.step("apt").summary == "0 packages installed, 1 absent"
    assert apt_runs(repo) == runs  # no apt-get run
