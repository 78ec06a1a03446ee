"""Kaggle's stores: one attached as a dataset (read-only, under /kaggle/input) layered
below the writable one in /kaggle/working; real uv installs, a real index on 127.0.0.1
that is then closed, and a real read-only bind mount for the dataset."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import bootstrap
from bootstrap import wheelstore
from bootstrap.store import attached_stores
from tests.support.fakes import clean_environ, fake_modules, kaggle  # noqa: F401
from tests.support.venvs import installed, make_venv
from tests.unit.test_wheelstore import (EVERYTHING, closed_port_url, index,  # noqa: F401
                                        local_cache, packages, write_profile)

pytestmark = pytest.mark.usefixtures("clean_environ")


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` by its sha256 (links by where they point)."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_file():
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def read_only():
    """``read_only(folder)``: bind-mount ``folder`` onto itself read-only, as Kaggle attaches
    a dataset; unmounted afterwards."""
    mounted: list[Path] = []

    def make(folder: Path) -> None:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        mounted.append(folder)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_attached_stores_are_found_at_the_top_or_in_dot_bootstrap(tmp_path):
    inp = tmp_path / "input"
    (inp / "mine" / "profiles").mkdir(parents=True)
    (inp / "other" / ".bootstrap" / "profiles").mkdir(parents=True)
    (inp / "datasets" / "someone" / "deep" / "profiles").mkdir(parents=True)
    (inp / "just-data" / "images").mkdir(parents=True)
    assert attached_stores(inp) == [inp / "datasets" / "someone" / "deep", inp / "mine",
                                    inp / "other" / ".bootstrap"]
    assert attached_stores(tmp_path / "nothing") == []


def test_a_store_only_in_working_says_it_needs_persistence(tmp_path, kaggle, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_STORE")
    monkeypatch.delenv("BOOTSTRAP_DRIVE")
    (tmp_path / "p.toml").write_text('[env]\nA = "b"\n')
    report = bootstrap.restore(tmp_path / "p.toml")
    said = [n for n in report.notes if "Persistence" in n]
    assert said == [f"the store {kaggle.working / '.bootstrap'} is in /kaggle/working, which "
                    "comes back in the next session only with the notebook's Persistence set "
                    "to \"Files\"; to keep it for good, write it as a dataset with `bootstrap "
                    "pack` and attach that dataset"]


def test_a_store_attached_read_only_restores_a_fresh_vm_with_the_index_gone(
        tmp_path, index, fresh_venv, monkeypatch, isolated, kaggle, read_only):
    # machine one (not Kaggle): a restore from the index fills a store
    monkeypatch.setenv("BOOTSTRAP_PLATFORM", "local")
    monkeypatch.setenv("NB_TEST_INDEX", f"{index.url}/simple/")
    made = isolated["store"]
    (made / "profiles").mkdir(parents=True)
    write_profile(made / "profiles", extra='[env]\nFROM_STORE = "{store}"\n')
    bootstrap.restore("work", python=str(fresh_venv))
    assert wheelstore.wait() == []
    assert (made / "profiles" / "locks" / "pylock.work.toml").is_file()

    # Kaggle: the store attached as a dataset, read-only; the index unreachable
    dataset = kaggle.input / "my-env-store"
    shutil.copytree(made, dataset)
    read_only(dataset)
    before = tree(dataset)
    monkeypatch.delenv("BOOTSTRAP_PLATFORM")
    monkeypatch.delenv("BOOTSTRAP_STORE")
    monkeypatch.delenv("BOOTSTRAP_DRIVE")
    monkeypatch.setenv("NB_TEST_INDEX", closed_port_url())
    monkeypatch.setenv("BOOTSTRAP_WHEEL_CACHE", str(tmp_path / "kaggle-local-wheels"))
    index.stop()
    vm = make_venv(tmp_path / "kaggle-vm")
    report = bootstrap.restore("work", python=str(vm))
    assert wheelstore.wait() == []
    assert report.platform == "Kaggle"
    assert installed(vm) == EVERYTHING
    assert "installed 5 locked packages from pylock.work.toml (5 from the store)" in \
        report.step("pip").notes
    writable = kaggle.working / ".bootstrap"
    assert os.environ["FROM_STORE"] == str(writable)
    assert report.notes[0].startswith(f"store attached read-only: {dataset} (under {writable}")
    assert tree(dataset) == before                         # nothing in the dataset changed
    with pytest.raises(OSError):
        (dataset / "probe").write_text("x")                 # and it really is read-only
    # a second session's restore finds the links in place and stays offline
    again = bootstrap.restore("work", python=str(vm))
    assert again.step("pip").outcome == "satisfied"
    assert tree(dataset) == before
