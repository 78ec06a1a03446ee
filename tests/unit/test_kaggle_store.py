"""Kaggle's stores: one attached as a dataset (read-only, under /kaggle/input) layered
below the writable one in /kaggle/working; real uv installs, a real index on 127.0.0.1
that is then closed, and a real read-only bind mount for the dataset."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

import bootstrap
from bootstrap import wheelstore
from bootstrap.cli import main
from bootstrap.store import attached_stores
from tests.support.venvs import installed, make_venv
from tests.unit.test_wheelstore import EVERYTHING, closed_port_url, write_profile

pytestmark = pytest.mark.usefixtures("clean_environ", "local_cache")


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

    # packed for Kaggle: the profile, its lock, exactly its wheels, the dataset's metadata
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    dataset = kaggle.input / "work-env"
    assert main(["pack", "work", str(dataset)]) == 0
    assert json.loads((dataset / "dataset-metadata.json").read_text()) == {
        "title": "work environment", "id": "someone/work-env",
        "licenses": [{"name": "CC0-1.0"}]}
    packed = sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*") if p.is_file())
    wheels = sorted(p for p in packed if p.startswith("wheels/"))
    assert [Path(w).name for w in sorted(wheels, key=lambda w: Path(w).name)] == \
        sorted(f"{n}-{v}-py3-none-any.whl" for n, v in EVERYTHING.items())
    assert packed == sorted(["dataset-metadata.json", "profiles/work.toml",
                             "profiles/locks/pylock.work.toml", *wheels])

    # Kaggle: the pack attached as a dataset, read-only; the index unreachable
    read_only(dataset)
    before = tree(dataset)
    move_to_kaggle_offline(tmp_path, index, monkeypatch)
    vm = make_venv(tmp_path / "kaggle-vm")
    report = bootstrap.restore("work", python=str(vm))
    assert wheelstore.wait() == []
    assert report.platform == "Kaggle"
    assert installed(vm) == EVERYTHING
    assert "installed 5 locked packages from pylock.work.toml (5 from the store)" in \
        report.step("pip").details
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



def move_to_kaggle_offline(tmp_path, index, monkeypatch) -> None:
    """From here on the process is a Kaggle VM (detected, not forced) with no index."""
    monkeypatch.delenv("BOOTSTRAP_PLATFORM")
    monkeypatch.delenv("BOOTSTRAP_STORE")
    monkeypatch.delenv("BOOTSTRAP_DRIVE")
    monkeypatch.setenv("NB_TEST_INDEX", closed_port_url())
    monkeypatch.setenv("BOOTSTRAP_WHEEL_CACHE", str(tmp_path / "kaggle-local-wheels"))
    index.stop()

def test_a_wheel_missing_from_the_dataset_is_named_with_how_to_add_it(
        tmp_path, index, fresh_venv, monkeypatch, isolated, kaggle):
    monkeypatch.setenv("BOOTSTRAP_PLATFORM", "local")
    monkeypatch.setenv("NB_TEST_INDEX", f"{index.url}/simple/")
    (isolated["store"] / "profiles").mkdir(parents=True)
    write_profile(isolated["store"] / "profiles")
    bootstrap.restore("work", python=str(fresh_venv))
    assert wheelstore.wait() == []
    dataset = kaggle.input / "work-env"
    bootstrap.pack("work", dataset)
    (dataset / "wheels" / "delta-0.5-py3-none-any.whl").unlink()

    move_to_kaggle_offline(tmp_path, index, monkeypatch)
    with pytest.raises(bootstrap.errors.StepError) as caught:
        bootstrap.restore("work", python=str(make_venv(tmp_path / "kaggle-vm")))
    error = caught.value
    assert error.what.startswith("delta-0.5-py3-none-any.whl is not in the attached store, "
                                 "and ")
    assert error.hint.startswith("add it to the dataset: where the internet is on, run "
                                 "`bootstrap restore work` and `bootstrap pack work DEST`, "
                                 "upload DEST as a new version of the dataset")


def test_pack_needs_a_lock_and_an_empty_folder(tmp_path, isolated):
    (isolated["store"] / "profiles").mkdir(parents=True)
    write_profile(isolated["store"] / "profiles")
    with pytest.raises(bootstrap.errors.StoreError) as caught:
        bootstrap.pack("work", tmp_path / "out")
    assert caught.value.what == "work has no lock yet"
    assert caught.value.hint.startswith("run `bootstrap restore work` (or `bootstrap lock work`)")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(bootstrap.errors.OptionError, match="is not empty"):
        bootstrap.pack("work", tmp_path / "full")


def test_pack_env_magic_packs_like_the_cli(tmp_path, isolated, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    (isolated["store"] / "profiles").mkdir(parents=True)
    (isolated["store"] / "profiles" / "plain.toml").write_text('[env]\nA = "b"\n')
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-json"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "bootstrap")
        shell.run_line_magic("pack_env", f"plain {tmp_path / 'ds'} --id me/plain-env")
    finally:
        InteractiveShell.clear_instance()
    assert (tmp_path / "ds" / "profiles" / "plain.toml").read_text() == '[env]\nA = "b"\n'
    assert json.loads((tmp_path / "ds" / "dataset-metadata.json").read_text())["id"] == \
        "me/plain-env"
    assert main(["pack", "plain", str(tmp_path / "ds2")]) == 0
    assert json.loads((tmp_path / "ds2" / "dataset-metadata.json").read_text())["id"] == \
        "INSERT_USERNAME/plain-env"


def test_pack_takes_the_debs_the_store_keeps_for_the_profiles_apt_packages(tmp_path, isolated):
    store = isolated["store"]
    (store / "profiles").mkdir(parents=True)
    (store / "profiles" / "tools.toml").write_text('[apt]\npackages = ["ffmpeg"]\n')
    (store / "debs" / "sets").mkdir(parents=True)
    for name in ("ffmpeg_4.4.2-0ubuntu0.22.04.1_amd64.deb", "libavcodec58_7%3a4.4.2_amd64.deb",
                 "cowsay_3.03_all.deb"):
        (store / "debs" / name).write_bytes(name.encode())
    (store / "debs" / "sets" / "aaaa.json").write_text(json.dumps({"debs": [
        {"filename": "ffmpeg_4.4.2-0ubuntu0.22.04.1_amd64.deb", "size": 1, "sha256": "x"},
        {"filename": "libavcodec58_7%3a4.4.2_amd64.deb", "size": 1, "sha256": "y"}]}))
    (store / "debs" / "sets" / "bbbb.json").write_text(json.dumps({"debs": [
        {"filename": "cowsay_3.03_all.deb", "size": 1, "sha256": "z"}]}))
    packed = bootstrap.pack("tools", tmp_path / "ds", dataset_id="me/tools-env")
    assert sorted(packed.debs) == ["ffmpeg_4.4.2-0ubuntu0.22.04.1_amd64.deb",
                                   "libavcodec58_7%3a4.4.2_amd64.deb"]
    assert sorted(p.name for p in (tmp_path / "ds" / "debs").rglob("*") if p.is_file()) == [
        "aaaa.json", "ffmpeg_4.4.2-0ubuntu0.22.04.1_amd64.deb",
        "libavcodec58_7%3a4.4.2_amd64.deb"]
    assert "upload it: kaggle datasets create -p" in packed.text()
