"""The pinned lock and the store of wheels: real uv installs into fresh venvs, a real index.

A PEP 503 index on 127.0.0.1 serves the test wheels and one sdist (built by
its in-tree backend, so no build needs the internet). "The network made
unreachable" is the same profile pointing at a closed port on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import bootstrap
from bootstrap import installer, lock as lockfile, wheelstore
from bootstrap.cli import main
from bootstrap.errors import StepError
from bootstrap.installer import as_wheel
from bootstrap.report import CHANGED, SATISFIED
from tests.support.venvs import installed, make_venv, uv
from tests.support.wheels import build_wheel

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["beta", "gamma[fast]", "zeta"]
EVERYTHING = {"alpha": "2.0", "beta": "1.0", "gamma": "3.1", "delta": "0.5", "zeta": "1.0"}

# packages, index and local_cache: tests/support/storeindex.py
pytestmark = pytest.mark.usefixtures("local_cache")


def installed_wheel(pkg: lockfile.Package) -> wheelstore.Wheel:
    """The wheel a locked package installs here: the index's, else the one built for it."""
    return as_wheel(pkg.wheels[0]) if pkg.wheels else as_wheel(pkg.built, built=True)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple/"


def lock_of(profile: Path) -> Path:
    """Where the restore keeps the lock of the profile file ``profile``."""
    from bootstrap.platform import detect
    from bootstrap.profile import load
    from bootstrap.store import Store

    return lockfile.path_for(load(str(profile)), Store(detect().store_root).profiles)


def filled_store(tmp_path: Path, index, python: Path, monkeypatch) -> Path:
    """A first restore from the loopback index: the store and the lock are filled."""
    monkeypatch.setenv("NB_TEST_INDEX", f"{index.url}/simple/")
    profile = write_profile(tmp_path)
    bootstrap.restore(str(profile), python=str(python))
    assert wheelstore.wait() == []
    return profile


def write_profile(folder: Path, packages: list[str] = PACKAGES, extra: str = "",
                  name: str = "work") -> Path:
    path = folder / f"{name}.toml"
    body = f"""
        [pip]
        packages = {packages!r}
        index_url = "{{env:NB_TEST_INDEX}}"
    """.replace("'", '"')
    path.write_text(textwrap.dedent(body) + extra)
    return path


def new_vm(tmp_path: Path, monkeypatch, name: str) -> Path:
    """A fresh venv and an empty local wheel folder, as on a new VM (the store stays)."""
    monkeypatch.setenv("BOOTSTRAP_WHEEL_CACHE", str(tmp_path / f"local-{name}"))
    return make_venv(tmp_path / name)


def offline_vm(tmp_path: Path, index, monkeypatch, name: str) -> Path:
    """The index gone (its URL now a closed port) and a fresh VM: only the store can serve."""
    index.stop()
    monkeypatch.setenv("NB_TEST_INDEX", closed_port_url())
    return new_vm(tmp_path, monkeypatch, name)


def restores_from_the_store(profile: Path, python: Path) -> None:
    """Restore ``profile`` into ``python``: every locked package comes from the store."""
    report = bootstrap.restore(str(profile), python=str(python))
    assert report.step("pip").outcome == CHANGED
    assert (f"installed 5 locked packages from {lock_of(profile).name} (5 from the store)"
            in report.step("pip").details)


def files_of(python: Path) -> dict[str, str]:
    """Every installed file's RECORD line, by distribution: what 'identical' means here."""
    site = next((python.parent.parent / "lib").glob("python*/site-packages"))
    out = {}
    for record in site.glob("*.dist-info/RECORD"):
        # leaving out what installers add about themselves (uv_cache.json, uv_build.json)
        lines = sorted(line for line in record.read_text().splitlines()
                       if line and line.split(",")[0].rsplit("/", 1)[-1] not in
                       ("INSTALLER", "RECORD", "direct_url.json", "uv_cache.json",
                        "uv_build.json"))
        out[record.parent.name] = "\n".join(lines)
    return out


def test_second_vm_restores_from_the_store_with_the_network_unreachable(
        tmp_path, index, fresh_venv, monkeypatch, isolated):
    monkeypatch.setenv("NB_TEST_INDEX", f"{index.url}/simple/")
    profile = write_profile(tmp_path)
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    pip = report.step("pip")
    assert pip.outcome == CHANGED
    assert installed(fresh_venv) == EVERYTHING
    assert f"wrote {lock_of(profile)} (5 packages)" in pip.details
    assert "saving 5 new wheels to the store in the background" in pip.details
    assert wheelstore.wait() == []
    lock = lockfile.read(lock_of(tmp_path / "work.toml"))
    assert lock is not None and {p.name: p.version for p in lock.packages} == EVERYTHING
    zeta = lock.by_name()["zeta"]
    assert not zeta.wheels and zeta.sdist is not None and zeta.built is not None
    stored = sorted(p.name for p in (isolated["store"] / "wheels").rglob("*.whl"))
    assert stored == sorted([f"{n}-{v}-py3-none-any.whl" for n, v in EVERYTHING.items()])

    # the same VM again: nothing to do, no installer started
    again = bootstrap.restore(str(profile), python=str(fresh_venv))
    assert again.step("pip").outcome == SATISFIED

    # a new VM, and the index is gone: everything comes from the store
    second = offline_vm(tmp_path, index, monkeypatch, "vm2")
    restores_from_the_store(profile, second)
    assert installed(second) == EVERYTHING
    assert files_of(second) == files_of(fresh_venv)


def test_without_lock_or_store_the_closed_index_is_a_clear_failure(tmp_path, monkeypatch):
    # the counterpart of the test above: it is the store that made that restore work
    monkeypatch.setenv("NB_TEST_INDEX", closed_port_url())
    venv = make_venv(tmp_path / "venv")
    with pytest.raises(StepError):
        bootstrap.restore(str(write_profile(tmp_path)), python=str(venv))
    assert installed(venv) == {}


def test_truncated_wheel_in_the_store_is_fetched_again_and_repaired(
        tmp_path, index, fresh_venv, monkeypatch, isolated):
    profile = filled_store(tmp_path, index, fresh_venv, monkeypatch)
    stored = isolated["store"] / "wheels" / "beta-1.0-py3-none-any.whl"
    good = stored.read_bytes()
    stored.write_bytes(good[: len(good) // 2])

    second = new_vm(tmp_path, monkeypatch, "vm2")
    report = bootstrap.restore(str(profile), python=str(second))
    notes = report.step("pip").notes
    assert any("the store's beta-1.0-py3-none-any.whl is damaged" in n and "fetching it again" in n
               for n in notes), notes
    assert installed(second) == EVERYTHING
    assert wheelstore.wait() == []
    assert stored.read_bytes() == good  # repaired


def test_altered_wheel_in_the_store_is_reported_offline_and_never_installed(
        tmp_path, index, fresh_venv, monkeypatch, isolated):
    profile = filled_store(tmp_path, index, fresh_venv, monkeypatch)
    stored = isolated["store"] / "wheels" / "alpha-2.0-py3-none-any.whl"
    alter(stored)

    second = offline_vm(tmp_path, index, monkeypatch, "vm2")
    with pytest.raises(StepError) as info:
        bootstrap.restore(str(profile), python=str(second))
    text = str(info.value)
    assert "alpha-2.0-py3-none-any.whl in the store is damaged and could not be fetched again" \
        in text
    assert "sha256" in text and str(stored) in text
    assert installed(second) == {}  # nothing at all was installed
    local = Path(os.environ["BOOTSTRAP_WHEEL_CACHE"])
    assert not (local / "alpha-2.0-py3-none-any.whl").exists()


def alter(path: Path) -> None:
    """Flip one byte in the middle: the same size, so only the sha256 can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_altered_wheel_in_the_store_is_refused_by_uv_then_fetched_again_and_repaired(
        tmp_path, index, fresh_venv, monkeypatch, isolated):
    profile = filled_store(tmp_path, index, fresh_venv, monkeypatch)
    stored = isolated["store"] / "wheels" / "alpha-2.0-py3-none-any.whl"
    good = stored.read_bytes()
    alter(stored)

    second = new_vm(tmp_path, monkeypatch, "vm2")
    report = bootstrap.restore(str(profile), python=str(second))
    notes = report.step("pip").notes
    assert any(n.startswith("uv refused alpha-2.0-py3-none-any.whl: it has sha256 ")
               for n in notes), notes
    assert any("the store's alpha-2.0-py3-none-any.whl is damaged" in n
               and "fetching it again" in n for n in notes), notes
    assert installed(second) == EVERYTHING
    assert files_of(second) == files_of(fresh_venv)
    assert wheelstore.wait() == []
    assert stored.read_bytes() == good  # the store is repaired too


def test_altered_wheel_in_the_local_folder_is_replaced_from_the_store_offline(
        tmp_path, index, fresh_venv, monkeypatch, isolated):
    profile = filled_store(tmp_path, index, fresh_venv, monkeypatch)
    second = offline_vm(tmp_path, index, monkeypatch, "vm2")
    local = Path(os.environ["BOOTSTRAP_WHEEL_CACHE"])
    local.mkdir(parents=True)
    copy = local / "gamma-3.1-py3-none-any.whl"  # a file of its own, not a link to the store's
    shutil.copyfile(isolated["store"] / "wheels" / copy.name, copy)
    alter(copy)

    report = bootstrap.restore(str(profile), python=str(second))
    notes = report.step("pip").notes
    assert any(n.startswith("uv refused gamma-3.1-py3-none-any.whl: it has sha256 ")
               for n in notes), notes
    assert not any("the store's" in n for n in notes), notes  # the store's copy was fine
    assert installed(second) == EVERYTHING
    assert files_of(second) == files_of(fresh_venv)
    wheel = wheelstore.Wheel(copy.name, lockfile.read(lock_of(profile)).by_name()["gamma"]
                             .wheels[0].sha256)
    wheelstore.verify(copy, wheel)  # the local folder holds the good file now


def test_two_restores_at_once_share_the_store_without_corrupting_it(
        tmp_path, index, monkeypatch, isolated):
    profile = write_profile(tmp_path)
    venvs = [make_venv(tmp_path / f"venv{i}") for i in range(2)]
    env = {**os.environ, "NB_TEST_INDEX": f"{index.url}/simple/",
           "BOOTSTRAP_WHEEL_CACHE": str(tmp_path / "shared-local"),
           "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "bootstrap", "restore", str(profile),
                               "--python", str(venv), "-q"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for venv in venvs]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for venv in venvs:
        assert installed(venv) == EVERYTHING
    lock = lockfile.read(lock_of(tmp_path / "work.toml"))
    assert lock is not None
    wheels = isolated["store"] / "wheels"
    assert not [p for p in wheels.rglob("*") if p.name.endswith(".tmp")]
    for pkg in lock.packages:  # every wheel the lock names is in the store, intact
        wheel = installed_wheel(pkg)
        wheelstore.verify(wheelstore.store_path(wheels, wheel), wheel)

    third = offline_vm(tmp_path, index, monkeypatch, "vm3")
    restores_from_the_store(profile, third)
    assert installed(third) == EVERYTHING


def test_a_lock_that_no_longer_fits_is_noted_and_resolved_again(
        tmp_path, index, fresh_venv, monkeypatch):
    monkeypatch.setenv("NB_TEST_INDEX", f"{index.url}/simple/")
    # the "platform" already has alpha 1.0: the lock keeps it and marks it as the base's
    subprocess.run([uv(), "pip", "install", "-q", "--python", str(fresh_venv), "--index-url",
                    f"{index.url}/simple/", "alpha==1.0"], check=True)
    profile = write_profile(tmp_path, ["beta"])
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    assert installed(fresh_venv) == {"alpha": "1.0", "beta": "1.0"}
    assert "saving 1 new wheel to the store in the background" in report.step("pip").details
    lock_path = lock_of(tmp_path / "work.toml")
    alpha = lockfile.read(lock_path).by_name()["alpha"]
    assert (alpha.version, alpha.base) == ("1.0", True)

    # the platform moved: alpha 2.0 now, and beta is missing again
    subprocess.run([uv(), "pip", "install", "-q", "--python", str(fresh_venv), "--index-url",
                    f"{index.url}/simple/", "alpha==2.0"], check=True)
    subprocess.run([uv(), "pip", "uninstall", "-q", "--python", str(fresh_venv), "beta"],
                   check=True)
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    notes = report.step("pip").notes
    assert (f"{lock_path.name} no longer fits: it was made with the platform's alpha 1.0, "
            "this machine has 2.0; resolved again") in notes
    assert installed(fresh_venv) == {"alpha": "2.0", "beta": "1.0"}  # alpha left alone
    assert lockfile.read(lock_path).by_name()["alpha"].version == "2.0"

    # another Python wrote it
    text = lock_path.read_text()
    lock_path.write_text(text.replace(f'python = "{".".join(map(str, sys.version_info[:3]))}"',
                                      'python = "3.99.0"'))
    subprocess.run([uv(), "pip", "uninstall", "-q", "--python", str(fresh_venv), "beta"],
                   check=True)
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    assert any("it was made for Python 3.99.0, this is Python 3." in n
               for n in report.step("pip").notes)

    # the profile changed
    changed = write_profile(tmp_path, ["beta", "delta"])
    report = bootstrap.restore(str(changed), python=str(fresh_venv))
    assert (f"{lock_path.name} no longer fits: the profile's [pip] section changed since it "
            "was made; resolved again") in report.step("pip").notes
    assert installed(fresh_venv) == {"alpha": "2.0", "beta": "1.0", "delta": "0.5"}


def test_bootstrap_lock_keeps_versions_unless_upgrade(tmp_path, index, fresh_venv, monkeypatch,
                                                      capsys):
    monkeypatch.setenv("NB_TEST_INDEX", f"{index.url}/simple/")
    profile = write_profile(tmp_path, ["alpha", "beta"], 'constraints = ["alpha<2"]\n')
    assert main(["lock", str(profile), "--python", str(fresh_venv)]) == 0
    lock_path = lock_of(tmp_path / "work.toml")
    assert lockfile.read(lock_path).by_name()["alpha"].version == "1.0"
    assert installed(fresh_venv) == {}  # locking installs nothing
    # the constraint goes; a plain `lock` keeps 1.0, --upgrade moves on
    profile = write_profile(tmp_path, ["alpha", "beta"])
    assert main(["lock", str(profile), "--python", str(fresh_venv)]) == 0
    assert lockfile.read(lock_path).by_name()["alpha"].version == "1.0"
    assert main(["lock", str(profile), "--python", str(fresh_venv), "--upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {lock_path}: 2 packages, 1 changed\n  alpha 1.0 -> 2.0\n" in out
    assert lockfile.read(lock_path).by_name()["alpha"].version == "2.0"
    # the API does the same: back to the constraint, then on purpose to the newest again
    profile = write_profile(tmp_path, ["alpha", "beta"], 'constraints = ["alpha<2"]\n')
    path, lock, changes = bootstrap.lock_profile(str(profile), python=str(fresh_venv))
    assert path == lock_path and changes == ["alpha 2.0 -> 1.0"]
    profile = write_profile(tmp_path, ["alpha", "beta"])
    _, lock, changes = bootstrap.lock_profile(str(profile), python=str(fresh_venv),
                                              upgrade=True)
    assert lock.by_name()["alpha"].version == "2.0" and changes == ["alpha 1.0 -> 2.0"]


def test_lock_false_resolves_afresh_where_a_lock_keeps_its_pins(tmp_path, fresh_venv,
                                                                monkeypatch):
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "delta", "0.5")
    body = f'[pip]\npackages = ["delta"]\nno_index = true\nfind_links = ["{wheels}"]\n'
    locked, fresh = tmp_path / "locked.toml", tmp_path / "fresh.toml"
    locked.write_text(body)
    fresh.write_text(body + "lock = false\n")
    for profile in (locked, fresh):
        bootstrap.restore(str(profile), python=str(fresh_venv))
    assert installed(fresh_venv) == {"delta": "0.5"}
    build_wheel(wheels, "delta", "0.6")  # a newer release appears
    vm2 = new_vm(tmp_path, monkeypatch, "vm2")
    bootstrap.restore(str(locked), python=str(vm2))
    assert installed(vm2) == {"delta": "0.5"}  # the lock's pin
    vm3 = new_vm(tmp_path, monkeypatch, "vm3")
    bootstrap.restore(str(fresh), python=str(vm3))
    assert installed(vm3) == {"delta": "0.6"}  # resolved afresh
    assert bootstrap.restore(str(fresh), python=str(vm3)).step("pip").outcome == SATISFIED


def test_lock_file_round_trips_and_is_pep751_shaped():
    lock = lockfile.Lock(
        [lockfile.Package("alpha", "1.0", wheels=[lockfile.Artifact(
            "alpha-1.0-py3-none-any.whl", "a" * 64,
            "https://x.org/alpha-1.0-py3-none-any.whl", 12)], base=True),
         lockfile.Package("zeta", "1.0", sdist=lockfile.Artifact(
             "zeta-1.0.tar.gz", "b" * 64, "https://x.org/zeta-1.0.tar.gz"),
             built=lockfile.Artifact("zeta-1.0-py3-none-any.whl", "c" * 64, None, 99))],
        inputs="d" * 64, requirements=["alpha", "zeta"], python="3.11.7",
        implementation="cpython", sys_platform="linux", machine="x86_64")
    text = lockfile.dump(lock, profile="work.toml")
    assert lockfile.parse(text) == lock
    import tomllib

    data = tomllib.loads(text)
    assert data["lock-version"] == "1.0" and data["created-by"] == "notebook-bootstrap"
    assert data["packages"][0]["wheels"][0]["hashes"] == {"sha256": "a" * 64}
    assert data["packages"][1]["sdist"]["url"] == "https://x.org/zeta-1.0.tar.gz"
    with pytest.raises(ValueError, match="no \\[tool.notebook-bootstrap\\] table"):
        lockfile.parse('lock-version = "1.0"\npackages = []\n')


def test_a_lock_without_a_store_downloads_and_builds_once_then_the_store_serves(
        tmp_path, index, fresh_venv, monkeypatch, isolated):
    # e.g. the lock came with the profile (a git repository), the store is new
    profile = filled_store(tmp_path, index, fresh_venv, monkeypatch)
    lock_path = lock_of(tmp_path / "work.toml")
    first_build = lockfile.read(lock_path).by_name()["zeta"].built
    shutil.rmtree(isolated["store"] / "wheels")

    second = new_vm(tmp_path, monkeypatch, "vm2")
    report = bootstrap.restore(str(profile), python=str(second))
    notes = report.step("pip").details
    assert (f"installed 5 locked packages from {lock_path.name} (4 downloaded, "
            "1 built from source)") in notes
    assert "saving 5 new wheels to the store in the background" in notes
    assert installed(second) == EVERYTHING
    assert wheelstore.wait() == []
    rebuilt = lockfile.read(lock_path).by_name()["zeta"].built
    assert rebuilt is not None and rebuilt.filename == first_build.filename
    # on the VM too, a built wheel is kept under its hash: another build of the same
    # sdist cannot replace it under the same name
    local = Path(os.environ["BOOTSTRAP_WHEEL_CACHE"])
    assert (local / "built" / rebuilt.sha256[:16] / rebuilt.filename).is_file()
    assert not (local / rebuilt.filename).exists()

    third = offline_vm(tmp_path, index, monkeypatch, "vm3")
    restores_from_the_store(profile, third)
    assert files_of(third) == files_of(second)


def test_locks_live_in_the_store(tmp_path, isolated):
    from bootstrap.profile import load
    from bootstrap.store import Store

    store = Store(isolated["store"])
    store.profiles.mkdir(parents=True)
    (store.profiles / "vision.toml").write_text('[pip]\npackages = ["alpha"]\n')
    in_store = load("vision", profiles_dir=store.profiles)
    assert lockfile.path_for(in_store, store.profiles) == \
        store.profiles / "locks" / "pylock.vision.toml"
    (tmp_path / "project").mkdir()
    beside = tmp_path / "project" / "my.profile.toml"
    beside.write_text('[pip]\npackages = ["alpha"]\n')
    elsewhere = lockfile.path_for(load(str(beside)), store.profiles)
    assert elsewhere.parent == store.profiles / "locks"
    assert elsewhere.name.startswith("pylock.my-profile-") and elsewhere.suffix == ".toml"
    assert not list((tmp_path / "project").glob("pylock*"))  # nothing beside the profile


def test_the_store_takes_only_the_file_the_lock_names(tmp_path):
    # the local folder is shared by the restores on a VM: what put links or copies
    # into the store is checked once more, so another build's bytes never land there
    import hashlib

    local = tmp_path / "local" / "zeta-1.0-py3-none-any.whl"
    local.parent.mkdir()
    local.write_bytes(b"another build")
    wheel = wheelstore.Wheel(local.name, hashlib.sha256(b"this build!!!").hexdigest(),
                             len(b"this build!!!"), built=True)
    store = tmp_path / "store" / "wheels"
    with pytest.raises(wheelstore.Damaged):
        wheelstore.put(store, local, wheel)
    assert not [p for p in store.rglob("*") if p.is_file() and p.name != ".lock"]


def test_files_of_a_find_links_folder_are_copied_never_linked(tmp_path, packages, fresh_venv,
                                                               isolated):
    # every file is on this machine: resolved once, then the lock installed exactly.
    # A hardlink would share the user's file with the store (and change its ctime,
    # which uv's cache reads to tell whether a local sdist changed).
    links = tmp_path / "links"
    shutil.copytree(packages, links)
    before = {p.name: (p.stat().st_nlink, p.stat().st_ctime_ns) for p in links.iterdir()}
    profile = tmp_path / "offline.toml"
    profile.write_text(f'[pip]\npackages = {PACKAGES!r}\nno_index = true\n'
                       f'find_links = ["{links}"]\n'.replace("'", '"'))
    report = bootstrap.restore(str(profile), python=str(fresh_venv))
    assert (f"installed 5 locked packages from {lock_of(profile).name} (4 from find-links "
            "folders, 1 built from source)") in report.step("pip").details
    assert installed(fresh_venv) == EVERYTHING
    assert wheelstore.wait() == []
    assert len(list((isolated["store"] / "wheels").rglob("*.whl"))) == 5
    assert {p.name: (p.stat().st_nlink, p.stat().st_ctime_ns) for p in links.iterdir()} == before


def test_a_slow_store_races_the_index_and_either_source_gives_the_same_install(
        tmp_path, index, fresh_venv, monkeypatch, isolated):
    profile = filled_store(tmp_path, index, fresh_venv, monkeypatch)
    monkeypatch.setenv("BOOTSTRAP_SLOW_STORE", "1")  # as on Drive's FUSE mount

    def sources(report) -> dict[str, int]:
        note = next(n for n in report.step("pip").details if n.startswith("installed 5 locked"))
        return {label: int(n) for n, label in
                (part.split(" ", 1) for part in note[note.index("(") + 1:-1].split(", "))}

    # a store that answers in time: the index is not asked at all
    second = new_vm(tmp_path, monkeypatch, "vm2")
    report = bootstrap.restore(str(profile), python=str(second))
    assert sources(report) == {"from the store": 5}
    assert installed(second) == EVERYTHING
    assert files_of(second) == files_of(fresh_venv)

    # a store late to answer (Drive's first read of a file): the index is asked too and its
    # downloads win; the built wheel exists only in the store
    real_copy = wheelstore.copy_unless

    def late(*args, **kwargs):
        time.sleep(3 * installer.head_start(args[2]))
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(wheelstore, "copy_unless", late)
    late_vm = new_vm(tmp_path, monkeypatch, "vm-late")
    report = bootstrap.restore(str(profile), python=str(late_vm))
    assert sources(report) == {"from the store": 1, "downloaded": 4}
    assert files_of(late_vm) == files_of(fresh_venv)
    monkeypatch.setattr(wheelstore, "copy_unless", real_copy)
    assert wheelstore.wait() == []
    assert not [p for p in (isolated["store"] / "wheels").rglob("*") if p.name.endswith(".tmp")]

    # the index gone: every download fails, the store wins every race
    third = offline_vm(tmp_path, index, monkeypatch, "vm3")
    restores_from_the_store(profile, third)
    assert files_of(third) == files_of(fresh_venv)


def test_is_slow_knows_fuse_and_network_mounts(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\n"
                      "drive /content/drive fuse.drive rw 0 0\n"
                      "server:/x /mnt/nfs nfs4 rw 0 0\n")
    monkeypatch.delenv("BOOTSTRAP_SLOW_STORE", raising=False)
    assert wheelstore.is_slow(Path("/content/drive/MyDrive/.bootstrap/wheels"), str(mounts))
    assert wheelstore.is_slow(Path("/mnt/nfs/store"), str(mounts))
    assert not wheelstore.is_slow(Path("/content/drive2"), str(mounts))
    assert not wheelstore.is_slow(Path("/home/me/store"), str(mounts))
    monkeypatch.setenv("BOOTSTRAP_SLOW_STORE", "1")
    assert wheelstore.is_slow(Path("/home/me/store"), str(mounts))


def test_every_source_kind_round_trips_through_packaging_pylock():
    """VCS commits, direct URLs and folders are PEP 751 packages too; packaging validates
    what is written and what is read, and selects the wheel for this interpreter."""
    import platform
    import sys

    from bootstrap.interpreter import inspect

    python = ".".join(str(n) for n in sys.version_info[:3])
    lock = lockfile.Lock(
        [lockfile.Package("alpha", "1.0", wheels=[
            lockfile.Artifact("alpha-1.0-py2-none-any.whl", "e" * 64, "https://x.org/a2.whl"),
            lockfile.Artifact("alpha-1.0-py3-none-any.whl", "a" * 64, "https://x.org/a3.whl")]),
         lockfile.Package("hello-tools", "0.3", vcs=lockfile.Vcs(
             "https://github.com/org/repo", "0123456789abcdef0123456789abcdef01234567", "python"),
             built=lockfile.Artifact("hello_tools-0.3-py3-none-any.whl", "b" * 64, None, 7)),
         lockfile.Package("mine", "", directory="/content/repo/python"),
         lockfile.Package("zeta", "1.0", archive=lockfile.Artifact(
             "zeta-1.0.tar.gz", "c" * 64, "https://x.org/zeta-1.0.tar.gz", 5))],
        inputs="d" * 64, python=python, implementation=sys.implementation.name,
        sys_platform=sys.platform, machine=platform.machine(),
        named={"pip.packages[1]": "hello-tools"})
    text = lockfile.dump(lock, profile="work.toml")
    assert lockfile.parse(text) == lock
    chosen = {s.package.name: s for s in lockfile.select(lock, inspect(sys.executable))}
    assert set(chosen) == {"alpha", "hello-tools", "zeta"}  # the folder is installed from itself
    assert chosen["alpha"].wheel.filename == "alpha-1.0-py3-none-any.whl"
    assert not chosen["hello-tools"].build and chosen["zeta"].build  # zeta was never built
    assert lock.for_entry("pip.packages[1]", "git+https://elsewhere/x").name == "hello-tools"
    assert lock.for_url("zeta @ https://x.org/zeta-1.0.tar.gz".split(" @ ")[1]).name == "zeta"
    other = lockfile.Lock(lock.packages, lock.inputs, python="2.7.18")
    assert lockfile.misfit(other, lock.inputs, inspect(sys.executable), {}) is not None
