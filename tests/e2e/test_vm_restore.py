"""One profile with every VM step restored end to end, through the API and the CLI.

gpu (the faithful fake nvidia-smi playing a T4), drive (a local folder),
secrets (from the store's .env), apt, files and git.

apt is real (a test .deb from a local repository) when the tests run as root
on Debian or Ubuntu, and left out of the profile otherwise. Downloads come
over https from a server on 127.0.0.1 with a self-signed certificate that
requests is told to trust (REQUESTS_CA_BUNDLE); the git repository is made in
tmp; the package it holds is installed into a fresh virtual environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bootstrap
from bootstrap.report import CHANGED, SATISFIED
from tests.support import debrepo
from tests.support.archives import tar_gz
from tests.support.gitrepo import GitRepo, head_of
from tests.support.httpserver import LoopbackServer, self_signed_cert
from tests.support.wheels import project_files

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = os.urandom(100_000)
SECRET = "hf_e2eSecretValue0123456789abcdef"
APT = debrepo.unavailable() is None


DATA = tar_gz({"train/a.csv": b"x,y\n1,2\n", "README": b"data\n"})


@pytest.fixture
def vm(tmp_path, monkeypatch, isolated, fresh_venv):
    """Everything a profile points at: https server, store file, git repo, apt repo."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("UV_OFFLINE", "1")
    pair = self_signed_cert(tmp_path)
    if pair is None:
        pytest.skip("needs the openssl command for a local https server")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pair[0]))
    www = tmp_path / "www"
    www.mkdir()
    (www / "model.bin").write_bytes(WEIGHTS)
    (www / "data.tgz").write_bytes(DATA)

    monkeypatch.setenv("PATH", f"{REPO / 'tests' / 'fakes'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "t4")
    monkeypatch.delenv("NB_HF_TOKEN", raising=False)
    isolated["store"].mkdir(parents=True, exist_ok=True)
    (isolated["store"] / ".env").write_text(f"HF_TOKEN={SECRET}\n")

    stored = isolated["store"] / "notes" / "readme.txt"
    stored.parent.mkdir(parents=True)
    stored.write_text("from the store\n")

    origin = GitRepo.create(tmp_path / "origin")
    origin.commit(project_files("nbgitdemo", "1.0", package=True), "one")
    origin.tag("v1")

    log = tmp_path / "apt-get.log"
    if APT:
        debrepo.remove_package()
        repo = debrepo.make(tmp_path / "apt")
        wrappers = debrepo.recording_apt_get(tmp_path / "bin", log)
        monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("BOOTSTRAP_APT_OPTIONS", repo.options)

    with LoopbackServer(www, tls=pair) as server:
        apt_table = f'[apt]\npackages = ["{debrepo.PACKAGE}"]\n\n' if APT else ""
        text = (
            'name = "vm"\n\n'
            '[gpu]\nrequired = true\nmin_memory_gib = 15\nmodels = ["T4", "L4"]\n\n'
            '[drive]\n\n'
            '[secrets]\nNB_HF_TOKEN = "HF_TOKEN"\n\n' + apt_table +
            f'[[files]]\nurl = "{server.url_for("model.bin")}"\n'
            f'sha256 = "{hashlib.sha256(WEIGHTS).hexdigest()}"\n'
            'dest = "{drive}/weights/model.bin"\n\n'
            f'[[files]]\nurl = "{server.url_for("data.tgz")}"\n'
            f'sha256 = "{hashlib.sha256(DATA).hexdigest()}"\n'
            'dest = "{drive}/data"\nunpack = true\n\n'
            '[[files]]\nstore = "notes/readme.txt"\ndest = "{drive}/notes.txt"\n\n'
            f'[[git]]\nurl = "{origin.url}"\nref = "v1"\ndest = "{{drive}}/code/demo"\n'
            'install = true\n')
        profile = tmp_path / "vm.toml"
        profile.write_text(text)
        yield {"profile": profile, "server": server, "drive": isolated["drive"],
               "python": fresh_venv, "origin": origin, "apt_log": log}
    if APT:
        debrepo.remove_package()


def apt_runs(vm) -> int:
    log = vm["apt_log"]
    return len(log.read_text().splitlines()) if log.exists() else 0


def assert_restored(vm) -> None:
    drive = vm["drive"]
    assert (drive / "weights" / "model.bin").read_bytes() == WEIGHTS
    assert (drive / "data" / "train" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (drive / "notes.txt").read_text() == "from the store\n"
    assert head_of(drive / "code" / "demo") == vm["origin"].head()
    out = subprocess.run([str(vm["python"]), "-c", "import nbgitdemo; print(nbgitdemo.VERSION)"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "1.0"
    if APT:
        assert debrepo.status() == "ii "


def test_restore_through_the_api_then_everything_is_satisfied(vm):
    steps = (["apt"] if APT else []) + ["files", "git"]
    first = bootstrap.restore(vm["profile"], python=str(vm["python"]))
    assert [r.name for r in first.steps] == ["gpu", "drive", "secrets", *steps]
    assert first.step("gpu").outcome == SATISFIED
    assert first.step("gpu").summary.startswith("Tesla T4, 15 GiB")
    assert first.step("secrets").outcome == CHANGED
    assert os.environ["NB_HF_TOKEN"] == SECRET
    assert SECRET not in first.text() and SECRET not in first._repr_html_()
    assert [(r.name, r.outcome) for r in first.steps if r.name in steps] == \
        [(s, CHANGED) for s in steps]
    assert_restored(vm)
    requests, apt_before = vm["server"].count(), apt_runs(vm)

    second = bootstrap.restore(vm["profile"], python=str(vm["python"]))
    assert [r.name for r in second.steps if r.name in steps] == steps
    assert {r.outcome for r in second.steps} == {SATISFIED}
    assert vm["server"].count() == requests   # no download
    assert apt_runs(vm) == apt_before          # no apt-get


def test_restore_through_the_cli_then_everything_is_satisfied(vm):
    argv = [sys.executable, "-m", "bootstrap", "restore", str(vm["profile"]),
            "--python", str(vm["python"])]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    headline = first.stdout.splitlines()[0]
    assert headline.startswith("restore of vm on local machine: ")
    assert f"{4 if APT else 3} changed in" in headline  # secrets, (apt), files, git
    assert SECRET not in first.stdout + first.stderr
    assert_restored(vm)
    requests = vm["server"].count()

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    # step rows are indented by two spaces; their actions and notes by more
    rows = [line.split() for line in second.stdout.splitlines()[1:]
            if line.startswith("  ") and not line.startswith("   ")]
    outcomes = {row[0]: row[1] for row in rows}
    assert {"files", "git"} | ({"apt"} if APT else set()) <= set(outcomes)
    # variables belong to the process: a new CLI process sets the secret again
    assert outcomes.pop("secrets") == "changed"
    assert set(outcomes.values()) == {"satisfied"}
    assert vm["server"].count() == requests
