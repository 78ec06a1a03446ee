"""What a session changed: real installs into fresh venvs, a real apt log format, /proc."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bootstrap import capture as cap_mod
from bootstrap.capture import Capture, apt_changes, env_changes, workdir_changes
from bootstrap.platform import detect
from bootstrap.profile import parse
from tests.conftest import REPO
from tests.support.gitrepo import GitRepo
from tests.support.venvs import uv
from tests.support.wheels import build_wheel, project_files

TOKEN = "hf_" + "Zq8" * 12


def uv_install(python: Path, *args: str, links: Path) -> None:
    subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(python), "--no-index",
                    "--find-links", str(links), *args], check=True)


def after_now() -> float:
    """A session start strictly after everything written so far."""
    since = time.time()
    time.sleep(0.05)  # file times come from a coarse clock; keep "after" unambiguous
    return since


@pytest.fixture
def links(wheelhouse, tmp_path) -> Path:
    folder = tmp_path / "more-wheels"
    build_wheel(folder, "zeta", "1.0")
    build_wheel(folder, "omega", "1.0", requires=["zeta>=1"])
    for wheel in wheelhouse.glob("*.whl"):
        (folder / wheel.name).write_bytes(wheel.read_bytes())
    return folder


def test_only_what_the_session_added_is_captured(fresh_venv, links):
    # the "base image": installed before the session started
    uv_install(fresh_venv, "alpha==1.0", "delta==0.5", "beta==1.0", links=links)
    since = after_now()
    # the session: a new ask with a dependency, an upgrade, and one more ask
    uv_install(fresh_venv, "omega", "gamma", links=links)
    uv_install(fresh_venv, "alpha==2.0", links=links)

    cap = Capture(since=since)
    cap_mod.python_changes(cap, python=str(fresh_venv))

    assert cap.packages == ["alpha==2.0", "gamma==3.1", "omega==1.0"]
    assert cap.constraints == ["zeta==1.0"]
    everything = " ".join(cap.packages + cap.constraints)
    assert "delta" not in everything and "beta" not in everything


def test_requested_marker_of_pip_counts_and_uv_one_does_not(tmp_path, links):
    from tests.support.kernelvenv import make_kernel_venv

    python = make_kernel_venv(tmp_path / "pipvenv")
    since = after_now()
    # pip marks only what was named: zeta asked for, though omega needs it
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index",
                    "--disable-pip-version-check", "--find-links", str(links), "omega", "zeta"],
                   check=True)
    cap = Capture(since=since)
    cap_mod.python_changes(cap, python=str(python))
    assert cap.packages == ["omega==1.0", "zeta==1.0"] and cap.constraints == []

    # uv writes REQUESTED for every distribution (astral-sh/uv#13278): the top level decides
    since = after_now()
    uv_install(python, "beta", links=links)
    site = next(python.parent.parent.glob("lib/python*/site-packages"))
    assert (next(site.glob("alpha-*.dist-info")) / "REQUESTED").exists()
    cap = Capture(since=since)
    cap_mod.python_changes(cap, python=str(python))
    assert cap.packages == ["beta==1.0"] and cap.constraints == ["alpha==2.0"]


def test_baseline_catches_changes_whatever_the_timestamps(fresh_venv, links, tmp_path):
    uv_install(fresh_venv, "alpha==1.0", links=links)
    baseline = tmp_path / "baseline.json"
    assert cap_mod.take_baseline(baseline, python=str(fresh_venv)) == baseline
    data = cap_mod.load_baseline(baseline, python=str(fresh_venv))
    assert data is not None and "HOME" in data["environ"]
    assert os.environ["HOME"] not in baseline.read_text()  # digests, never values
    assert stat.S_IMODE(baseline.stat().st_mode) == 0o600
    # a second call keeps the first (earliest) baseline
    first = baseline.read_bytes()
    cap_mod.take_baseline(baseline, python=str(fresh_venv))
    assert baseline.read_bytes() == first
    uv_install(fresh_venv, "gamma", links=links)

    cap = Capture(since=time.time() + 3600)  # timestamps alone would find nothing
    cap_mod.python_changes(cap, python=str(fresh_venv), baseline=data)
    assert cap.packages == ["gamma==3.1"]


def test_local_file_install_is_kept_only_when_on_drive(fresh_venv, links, isolated):
    drive_wheels = isolated["drive"] / "wheels"
    drive_wheels.mkdir()
    on_drive = drive_wheels / "gamma-3.1-py3-none-any.whl"
    on_drive.write_bytes((links / on_drive.name).read_bytes())
    since = after_now()
    uv_install(fresh_venv, f"gamma @ {on_drive.as_uri()}",
               f"zeta @ {(links / 'zeta-1.0-py3-none-any.whl').as_uri()}", links=links)
    cap = Capture(since=since)
    cap_mod.python_changes(cap, python=str(fresh_venv), drive_root=isolated["drive"])
    assert cap.packages == ["gamma==3.1"]
    assert cap.find_links == ["{drive}/wheels"]
    assert any("zeta 1.0 was installed from" in n and "not saved" in n for n in cap.notes)


def test_direct_urls_follow_pep_610(tmp_path):
    def dist(direct):
        return cap_mod.Dist("tool", "Tool", "1.2", tmp_path, True, direct, [])

    cap = Capture(since=0)
    vcs = {"url": "https://user:ghp_secretsecretsecretsecret12@github.com/org/tool",
           "vcs_info": {"vcs": "git", "commit_id": "a" * 40, "requested_revision": "v1.2"}}
    assert cap_mod.entry_for(dist(vcs), cap, None) == \
        f"Tool @ git+https://github.com/org/tool@{'a' * 40}"
    assert any("removed credentials" in n for n in cap.notes)
    archive = {"url": "https://files.example.org/tool-1.2.whl",
               "archive_info": {"hashes": {"sha256": "0" * 64}}}
    assert cap_mod.entry_for(dist(archive), cap, None) == \
        "Tool @ https://files.example.org/tool-1.2.whl"
    plain_http = {"url": "http://files.example.org/tool-1.2.whl", "archive_info": {}}
    assert cap_mod.entry_for(dist(plain_http), cap, None) is None
    assert cap_mod.entry_for(dist(None), cap, None) == "Tool==1.2"


@pytest.mark.skipif(not cap_mod.shutil.which("git"), reason="needs git")
def test_editable_checkout_becomes_a_git_entry(fresh_venv, tmp_path):
    project = tmp_path / "proj"
    repo = GitRepo.create(project)
    commit = repo.commit(project_files("proj", "0.3", modules={"src/proj.py": "X = 1\n"}), "first")
    repo.git("remote", "add", "origin",
             "https://oauth2:glpat-abcdefghijklmnopqrstuvwx@gitlab.example.org/team/proj.git")
    since = after_now()
    subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(fresh_venv), "--offline",
                    "-e", str(project)], check=True)
    (project / "src" / "proj.py").write_text("X = 2\n")  # an uncommitted change

    cap = Capture(since=since)
    cap_mod.python_changes(cap, python=str(fresh_venv))
    assert cap.packages == [] and cap.constraints == []
    assert cap.git == [{"url": "https://gitlab.example.org/team/proj.git", "ref": commit,
                        "dest": str(project.resolve()), "install": True, "editable": True}]
    assert any("uncommitted changes" in n for n in cap.notes)
    assert "glpat-" not in repr(cap)

    # no https remote: nothing to clone from, so a note and no entry
    repo.git("remote", "set-url", "origin", "git@gitlab.example.org:team/proj.git")
    cap = Capture(since=since)
    cap_mod.python_changes(cap, python=str(fresh_venv))
    assert cap.git == [] and any("editable install" in n for n in cap.notes)


# -- apt ---------------------------------------------------------------------------------

# The format of /var/log/apt/history.log as apt 2.x writes it (entries copied from a
# Debian 12 machine and an Ubuntu 22.04 one, names changed where it helps the test).
APT_HISTORY = (
    "\n"
    "Start-Date: 2025-06-24  14:36:29\n"
    "Commandline: apt-get install -qqy curl make\n"
    "Install: curl:amd64 (7.88.1-10+deb12u12), libcurl4:amd64 (7.88.1-10+deb12u12, automatic), "
    "make:amd64 (4.3-4.1)\n"
    "End-Date: 2025-06-24  14:37:04\n"
    "\n"
    "Start-Date: 2026-05-21  09:31:02\n"
    "Commandline: apt-get install -y ffmpeg tzdata\n"
    "Requested-By: ubuntu (1000)\n"
    "Install: libavcodec58:amd64 (7:4.4.2-0ubuntu0.22.04.1, automatic), ffmpeg:amd64 "
    "(7:4.4.2-0ubuntu0.22.04.1), libx264-163:amd64 (2:0.163.3060+git5db6aa6-2build1, "
    "automatic)\n"
    "Upgrade: tzdata:amd64 (2024a-0ubuntu0.22.04, 2025b-0ubuntu0.22.04)\n"
    "End-Date: 2026-05-21  09:31:20\n"
    "\n"
    "Start-Date: 2026-05-21  09:32:00\n"
    "Commandline: apt-get -o Dpkg::Options::=--force-confold -y upgrade\n"
    "Upgrade: libssl3:amd64 (3.0.2-0ubuntu1.15, 3.0.2-0ubuntu1.18), openssl:amd64 "
    "(3.0.2-0ubuntu1.15, 3.0.2-0ubuntu1.18)\n"
    "End-Date: 2026-05-21  09:32:09\n"
    "\n"
    "Start-Date: 2026-05-21  09:33:10\n"
    "Commandline: /usr/bin/apt-get install -y --no-install-recommends -q "
    "-oDPkg::Lock::Timeout=120 -- graphviz:amd64 libsndfile1=1.0.31-2ubuntu0.1 sox\n"
    "Install: graphviz:amd64 (2.42.2-6), libsndfile1:amd64 (1.0.31-2ubuntu0.1), sox:amd64 "
    "(14.4.2+git20190427-2build1), libgvc6:amd64 (2.42.2-6, automatic)\n"
    "End-Date: 2026-05-21  09:33:30\n"
    "\n"
    "Start-Date: 2026-05-21  09:40:00\n"
    "Commandline: apt-get remove -y sox\n"
    "Remove: sox:amd64 (14.4.2+git20190427-2build1)\n"
    "End-Date: 2026-05-21  09:40:02\n"
    "\n"
    "Start-Date: 2026-05-21  09:41:00\n"
    "Commandline: apt install htop\n"
    "Install: htop:amd64 (3.0.5-7build2)\n"
    "End-Date: 2026-05-21  09:41:03\n"
    "Error: Sub-process /usr/bin/dpkg returned an error code (1)\n")


def local_time(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def test_apt_history_gives_only_asked_packages_after_the_start(tmp_path):
    log = tmp_path / "history.log"
    log.write_text(APT_HISTORY.lstrip())
    since = local_time("2026-05-21 09:30:00")
    got = apt_changes(since, history=log, dpkg_status=tmp_path / "no-status")
    assert got == ["ffmpeg", "tzdata", "graphviz", "libsndfile1=1.0.31-2ubuntu0.1", "htop"]
    # a later start leaves out what came before it
    assert apt_changes(local_time("2026-05-21 09:33:00"), history=log,
                       dpkg_status=tmp_path / "no-status") == \
        ["graphviz", "libsndfile1=1.0.31-2ubuntu0.1", "htop"]
    # what dpkg no longer lists (removed with dpkg -r, or a failed install) is dropped
    status = tmp_path / "status"
    status.write_text(
        "Package: ffmpeg\nStatus: install ok installed\nArchitecture: amd64\n\n"
        "Package: htop\nStatus: deinstall ok config-files\n\n"
        "Package: graphviz\nStatus: install ok installed\n\n"
        "Package: tzdata\nStatus: install ok installed\n\n"
        "Package: libsndfile1\nStatus: install ok installed\n")
    assert apt_changes(since, history=log, dpkg_status=status) == \
        ["ffmpeg", "tzdata", "graphviz", "libsndfile1=1.0.31-2ubuntu0.1"]
    assert apt_changes(since, history=tmp_path / "missing.log") == []


# -- environment ---------------------------------------------------------------------------

def test_environment_changes_secrets_and_noise(tmp_path):
    drive = tmp_path / "drive"
    start = {"HOME": "/root", "PATH": "/usr/bin", "LANG": "C.UTF-8", "MODE": "slow"}
    now = dict(start, MODE="fast", DATA_DIR=f"{drive}/data", JSON='{"a": 1}',
               PATH="/opt/tool/bin:/usr/bin", HF_TOKEN=TOKEN, MY_NOTE=f"uses {TOKEN} inside",
               DB_PASSWORD="hunter2", WANDB_API_KEY="0123456789abcdef",
               PWD="/x", OLDPWD="/y", JPY_PARENT_PID="5", MPLBACKEND="agg", CLICOLOR="1",
               PAGER="cat", BOOTSTRAP_STORE="/s", **{"odd-name": "1"})
    cap = Capture(since=0)
    env_changes(cap, environ=now, start=start, drive_root=drive)
    assert cap.env == {"MODE": "fast", "DATA_DIR": "{drive}/data", "JSON": '{{"a": 1}}'}
    assert cap.secrets == {"HF_TOKEN": "HF_TOKEN", "MY_NOTE": "MY_NOTE",
                           "DB_PASSWORD": "DB_PASSWORD", "WANDB_API_KEY": "WANDB_API_KEY"}
    assert TOKEN not in repr(cap) and "hunter2" not in repr(cap)
    assert any("HF_TOKEN looks like a secret" in n for n in cap.notes)
    assert any("PATH was extended" in n for n in cap.notes)
    assert any("odd-name" in n for n in cap.notes)

    # against the baseline's digests (what the CLI uses)
    digests = {name: cap_mod._digest(value) for name, value in start.items()}
    cap = Capture(since=0)
    env_changes(cap, environ=now, digests=digests, drive_root=drive)
    assert cap.env["MODE"] == "fast" and "PATH" not in cap.env and "HF_TOKEN" in cap.secrets


def test_start_environ_reads_proc(monkeypatch):
    start = cap_mod.start_environ()
    if start is None:
        pytest.skip("no /proc/self/environ here")
    monkeypatch.setenv("SET_AFTER_START", "1")
    assert "SET_AFTER_START" not in start and "PATH" in start
    assert cap_mod.start_environ("/nonexistent/environ") is None


def test_workdir_relative_to_drive(tmp_path):
    drive = tmp_path / "drive"
    (drive / "projects" / "vision").mkdir(parents=True)
    cap = Capture(since=0)
    workdir_changes(cap, cwd=str(drive / "projects" / "vision"), drive_root=drive)
    assert cap.workdir == "projects/vision"
    cap = Capture(since=0)
    workdir_changes(cap, cwd=str(tmp_path), drive_root=drive)
    assert cap.workdir == str(tmp_path.resolve()) and "outside Drive" in cap.notes[0]
    cap = Capture(since=0)
    workdir_changes(cap, cwd=str(tmp_path), drive_root=drive, start_cwd=str(tmp_path))
    assert cap.workdir is None


# -- session start, GPU, what moved ---------------------------------------------------------

def test_session_start_sources(tmp_path, monkeypatch):
    assert cap_mod.session_start(123.5) == 123.5
    assert cap_mod.session_start("2026-05-21T09:30:00+00:00") == 1779355800.0
    monkeypatch.setenv("BOOTSTRAP_SESSION_START", "1779355800")
    assert cap_mod.session_start() == 1779355800.0
    monkeypatch.delenv("BOOTSTRAP_SESSION_START")
    with pytest.raises(cap_mod.OptionError):
        cap_mod.session_start("last tuesday")
    # /proc: the boot time plus PID 1's start (field 22, in clock ticks)
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "stat").write_text("cpu  1 2 3\nbtime 1779300000\nprocesses 9\n")
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S"] + ["0"] * 18 + [str(250 * ticks)] + ["0"] * 10
    (proc / "1" / "stat").write_text(f"1 (my init (x)) {' '.join(fields)}\n")
    assert cap_mod.container_start(str(proc)) == 1779300250.0
    real = cap_mod.container_start()
    if real is not None:
        assert real <= time.time()


def test_gpu_and_what_moved(tmp_path, monkeypatch):
    from bootstrap.context import Context
    from bootstrap.profile import parse
    from bootstrap.store import Store
    from tests.support.fakes import FAKES

    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "t4")
    assert cap_mod.gpu_info() == ("Tesla T4", 15.0)
    info = cap_mod.machine_info("colab", gpu=cap_mod.gpu_info())
    assert info == {"python": f"{sys.version_info[0]}.{sys.version_info[1]}",
                    "platform": "colab", "gpu": "Tesla T4", "gpu_memory_gib": 15.0}

    profile = parse('version = 1\n[captured]\npython = "3.0"\nplatform = "colab"\n'
                    'gpu = "NVIDIA A100-SXM4-40GB"\ngpu_memory_gib = 40\n')
    platform = detect()
    ctx = Context(profile=profile, platform=platform, store=Store(platform.store_root),
                  python=sys.executable)
    notes = cap_mod.moved(profile, ctx)
    assert any("saved with Python 3.0" in n for n in notes)
    assert any("saved on colab; this is local" in n for n in notes)
    assert any("A100-SXM4-40GB (40 GiB); this machine has a Tesla T4 (15 GiB)" in n
               for n in notes)
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "nodriver")
    assert cap_mod.gpu_info() is None
    assert any("this machine has no GPU" in n for n in cap_mod.moved(profile, ctx))


def test_restore_reports_what_moved(isolated):
    from bootstrap.runner import restore

    path = isolated["drive"] / "p.toml"
    path.write_text('version = 1\n[env]\nX_MOVED = "1"\n[captured]\npython = "3.0"\n')
    report = restore(str(path), dry_run=True)
    assert any("saved with Python 3.0" in n for n in report.notes)
    assert "saved with Python 3.0" in report.text()


def test_captured_table_is_validated():
    from bootstrap.profile import ProfileError, parse

    with pytest.raises(ProfileError) as info:
        parse('version = 1\n[captured]\npython = "three"\nplatform = "mars"\n'
              'gpu_memory_gib = -1\n')
    text = str(info.value)
    assert "captured.python" in text and "captured.platform" in text \
        and "captured.gpu_memory_gib" in text
    assert parse('version = 1\n[captured]\npython = "3.12"\n').sections() == []


#: what the stand-ins of notebook-bootstrap's dependencies need in turn: requests brings
#: charset-normalizer, which the tool does not name itself (its closure counts too)
TRANSITIVE = {"requests": ["charset-normalizer>=2"]}


def tool_dependencies() -> list[tuple[str, str, list[str]]]:
    """Stand-ins for the real wheel's dependencies (the suite has no network), each at the
    floor pyproject.toml declares, plus what they bring in turn."""
    from packaging.requirements import Requirement

    from bootstrap.profile import toml_reader

    project = toml_reader().loads((REPO / "pyproject.toml").read_text())["project"]
    out = []
    for line in project["dependencies"]:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        floor = next(s.version for s in req.specifier if s.operator == ">=")
        out.append((req.name, floor, TRANSITIVE.get(req.name, [])))
    return out + [("charset-normalizer", "3.0.0", [])]


def test_the_tools_own_install_is_not_saved_unless_the_profile_names_it(fresh_venv, links,
                                                                        project, isolated):
    wheel = project
    dependencies = tool_dependencies()
    for name, version, requires in dependencies:
        build_wheel(links, name, version, requires=requires)
    since = after_now()
    # the first cell on a fresh VM: install the tool (the real wheel); then the user's own
    uv_install(fresh_venv, str(wheel), links=links)
    uv_install(fresh_venv, "omega", links=links)

    cap = Capture(since=since)
    cap_mod.python_changes(cap, python=str(fresh_venv))
    assert cap.packages == ["omega==1.0"] and cap.constraints == ["zeta==1.0"]
    [note] = [n for n in cap.notes if "of notebook-bootstrap itself" in n]
    assert f"not saved: {len(dependencies)} packages" in note
    assert "charset-normalizer" in note

    # what the user's own profile lists stays theirs
    kept = Capture(since=since)
    cap_mod.python_changes(kept, python=str(fresh_venv), keep=["Tomlkit", "requests"])
    floors = {name: version for name, version, _ in dependencies}
    assert kept.packages == ["omega==1.0", f"requests=={floors['requests']}",
                             f"tomlkit=={floors['tomlkit']}"]

    from bootstrap.saving import save

    fresh = save("fresh", python=str(fresh_venv), since=since, dry_run=True)
    saved = parse(fresh.toml)
    assert saved.pip.packages == ["omega==1.0"] and saved.pip.constraints == ["zeta==1.0"]
    profile = isolated["store"] / "profiles" / "mine.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text('version = 1\n[pip]\npackages = ["tqdm>=4"]\n')
    mine = save("mine", python=str(fresh_venv), since=since)
    assert parse(mine.toml).pip.packages == ["tqdm>=4", "omega==1.0"]
