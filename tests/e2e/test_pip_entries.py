"""pip table entries and scoped indexes, installed for real with uv into fresh venvs.

The scoped-index tests use a trap: the scoped source also carries ``othermod``
9.9, higher than the default source's 1.0. Had uv consulted the scoped source
for ``othermod``, it would have taken 9.9 (the control test shows it does when
the folder is a plain find-links). Over HTTP the proof is direct: the scoped
server's request log never names ``othermod``.
"""

from __future__ import annotations

import pytest

from bootstrap import restore
from bootstrap.errors import StepError
from bootstrap.profile import parse
from bootstrap.report import CHANGED, SATISFIED
from tests.support.gitrepo import git
from tests.support.index import simple_index
from tests.support.venvs import installed
from tests.support.wheels import build_wheel, write_project

# Restores write os.environ (the env step): clean_environ puts it back after each test.
pytestmark = pytest.mark.usefixtures("clean_environ")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A scoped source (a CUDA-style build and a trap) and a default source."""
    scoped = tmp_path_factory.mktemp("scoped")
    build_wheel(scoped, "torchish", "1.0+cu118", requires=["othermod"])
    build_wheel(scoped, "othermod", "9.9")
    default = tmp_path_factory.mktemp("default")
    build_wheel(default, "othermod", "1.0")
    build_wheel(default, "torchish", "2.0")
    return scoped, default


@pytest.fixture
def folders(sources, monkeypatch):
    """The two sources as find-links folders, named by {env:SCOPED} and {env:DEFAULT}."""
    scoped, default = sources
    monkeypatch.setenv("SCOPED", str(scoped))
    monkeypatch.setenv("DEFAULT", str(default))


def test_scoped_index_serves_only_its_packages(sources, fresh_venv, monkeypatch):
    scoped, default = sources
    with simple_index(scoped) as scoped_srv, simple_index(default) as default_srv:
        monkeypatch.setenv("SCOPED_INDEX", scoped_srv.url_for("/simple/"))
        monkeypatch.setenv("DEFAULT_INDEX", default_srv.url_for("/simple/"))
        profile = parse("""
            [pip]
            index_url = "{env:DEFAULT_INDEX}"
            packages = ["torchish==1.0+cu118", "othermod"]
            [[pip.indexes]]
            url = "{env:SCOPED_INDEX}"
            packages = ["torchish"]
        """, source="scoped.toml")
        report = restore(profile, python=str(fresh_venv))
        scoped_paths = [r.path for r in scoped_srv.requests]
        default_paths = [r.path for r in default_srv.requests]

    assert report.step("pip").outcome == CHANGED
    got = installed(fresh_venv)
    assert got["torchish"] == "1.0+cu118"      # the local version label, from the scoped index
    assert got["othermod"] == "1.0"            # torchish's dependency, from the default index
    assert "/simple/torchish/" in scoped_paths
    assert not [p for p in scoped_paths if "othermod" in p], scoped_paths
    assert not [p for p in default_paths if "torchish" in p], default_paths

    again = restore(profile, python=str(fresh_venv))
    assert again.step("pip").outcome == SATISFIED


def test_scoped_find_links_is_never_consulted_for_others(folders, fresh_venv):
    profile = parse("""
        [pip]
        no_index = true
        find_links = ["{env:DEFAULT}"]
        packages = ["torchish", "othermod"]
        [[pip.indexes]]
        find_links = "{env:SCOPED}"
        packages = ["torchish"]
    """, source="flat.toml")
    restore(profile, python=str(fresh_venv))
    got = installed(fresh_venv)
    # torchish only from the scoped folder, though the default one has a higher 2.0;
    # othermod never from it, though it has a higher 9.9.
    assert got["torchish"] == "1.0+cu118"
    assert got["othermod"] == "1.0"


def test_control_plain_find_links_would_take_the_trap(folders, fresh_venv):
    profile = parse("""
        [pip]
        no_index = true
        find_links = ["{env:DEFAULT}", "{env:SCOPED}"]
        packages = ["torchish==1.0+cu118", "othermod"]
    """, source="control.toml")
    restore(profile, python=str(fresh_venv))
    assert installed(fresh_venv)["othermod"] == "9.9"


def test_subfolder_installs_editable_without_deps(tmp_path, fresh_venv, wheelhouse, monkeypatch):
    # A folder made with git init stands for a clone: a path entry needs only a folder.
    repo = tmp_path / "drive" / "src" / "repo"
    write_project(repo / "python", "hello-tools", "0.3", requires=["alpha"])
    git(repo, "init", "--quiet")
    monkeypatch.setenv("WHEELS", str(wheelhouse))
    profile = parse("""
        [pip]
        no_index = true
        find_links = ["{env:WHEELS}"]
        packages = [
          "beta",
          { path = "src/repo/python", editable = true, no_deps = true },
        ]
    """, source="editable.toml")
    report = restore(profile, python=str(fresh_venv))
    got = installed(fresh_venv)
    assert got["hello-tools"] == "0.3" and got["beta"] == "1.0"
    # Editable: the module is imported from the folder, and edits show at once.
    (repo / "python" / "hello_tools.py").write_text("VERSION = 'edited'\n")
    import subprocess

    out = subprocess.run([str(fresh_venv), "-c", "import hello_tools as h; "
                          "print(h.__file__); print(h.VERSION)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(repo / "python" / "hello_tools.py"), "edited"]
    # alpha came for beta; hello-tools' own need of alpha was not resolved separately,
    # and the no-deps run came second.
    assert "install -e " + str(repo / "python") in " ".join(report.step("pip").actions)

    again = restore(profile, python=str(fresh_venv))
    assert again.step("pip").outcome == SATISFIED


def test_no_deps_leaves_dependencies_out(wheelhouse, fresh_venv, monkeypatch):
    monkeypatch.setenv("WHEELS", str(wheelhouse))
    profile = parse("""
        [pip]
        no_index = true
        find_links = ["{env:WHEELS}"]
        packages = [{ requirement = "beta", no_deps = true }]
    """, source="nodeps.toml")
    restore(profile, python=str(fresh_venv))
    got = installed(fresh_venv)
    assert got.get("beta") == "1.0" and "alpha" not in got


def test_path_entry_copy_then_editable_reinstalls(tmp_path, fresh_venv):
    write_project(tmp_path / "drive" / "proj", "copyme", "1.0")
    copy = parse('[pip]\nno_index = true\npackages = [{ path = "proj" }]\n', source="c.toml")
    restore(copy, python=str(fresh_venv))
    assert installed(fresh_venv)["copyme"] == "1.0"
    assert restore(copy, python=str(fresh_venv)).step("pip").outcome == SATISFIED
    editable = parse('[pip]\nno_index = true\npackages = [{ path = "proj", editable = true }]\n',
                     source="e.toml")
    plan = restore(editable, python=str(fresh_venv), dry_run=True)
    assert "as a copy, editable wanted" in " ".join(plan.step("pip").actions)
    restore(editable, python=str(fresh_venv))
    assert restore(editable, python=str(fresh_venv)).step("pip").outcome == SATISFIED


def test_upgrade_takes_the_newest_when_locked_then_starts_no_installer(
        tmp_path, wheelhouse, fresh_venv, monkeypatch, uv_log):
    from bootstrap.cli import main

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for wheel in wheelhouse.glob("alpha-*.whl"):
        (wheels / wheel.name).write_bytes(wheel.read_bytes())
    monkeypatch.setenv("WHEELS", str(wheels))
    old = parse('[pip]\nno_index = true\nfind_links = ["{env:WHEELS}"]\n'
                'packages = ["alpha==1.0"]\n', source="old.toml")
    restore(old, python=str(fresh_venv))
    up = tmp_path / "up.toml"
    up.write_text('[pip]\nno_index = true\nfind_links = ["{env:WHEELS}"]\n'
                  'packages = [{ requirement = "alpha", upgrade = true }]\n')
    report = restore(str(up), python=str(fresh_venv))
    assert installed(fresh_venv)["alpha"] == "2.0"  # the newest, though 1.0 was installed
    assert report.step("pip").outcome == CHANGED
    uv_log.write_text("")
    again = restore(str(up), python=str(fresh_venv))
    assert again.step("pip").outcome == SATISFIED
    assert uv_log.read_text() == ""  # no installer, no index asked

    build_wheel(wheels, "alpha", "3.0")  # a newer release: the lock keeps 2.0 ...
    assert restore(str(up), python=str(fresh_venv)).step("pip").outcome == SATISFIED
    assert installed(fresh_venv)["alpha"] == "2.0"
    # ... until the pins are moved on purpose, from any face
    assert main(["restore", str(up), "--python", str(fresh_venv), "--upgrade", "-q"]) == 0
    assert installed(fresh_venv)["alpha"] == "3.0"
    assert any(line.startswith("pip compile") and "--upgrade" in line.split()
               for line in uv_log.read_text().splitlines())
    assert restore(str(up), python=str(fresh_venv)).step("pip").outcome == SATISFIED


def test_missing_folder_is_named(tmp_path, fresh_venv):
    profile = parse('[pip]\nno_index = true\npackages = [{ path = "nowhere" }]\n',
                    source="gone.toml")
    with pytest.raises(StepError) as caught:
        restore(profile, python=str(fresh_venv))
    assert caught.value.what == f"folder {tmp_path / 'drive' / 'nowhere'} does not exist"
    assert caught.value.where.endswith(": pip.packages[0]")


def test_builds_see_env_values(tmp_path, fresh_venv, monkeypatch):
    monkeypatch.setenv("BASE", "/opt/cuda")
    write_project(tmp_path / "drive" / "ext", "cuda-ext", "1.0",
                  record_env=["CUDA_HOME", "EXT_FLAGS"])
    profile = parse("""
        [env]
        CUDA_HOME = "{env:BASE}-12.1"
        EXT_FLAGS = "-I{env:CUDA_HOME}/include"
        [pip]
        no_index = true
        packages = [{ path = "ext" }]
    """, source="build-env.toml")
    restore(profile, python=str(fresh_venv))
    import subprocess

    seen = subprocess.run([str(fresh_venv), "-c", "import cuda_ext_build as b; print(b.ENV)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert seen == repr({"CUDA_HOME": "/opt/cuda-12.1", "EXT_FLAGS": "-I/opt/cuda-12.1/include"})


def test_scoped_index_no_deps_and_sdist_restore_on_a_fresh_vm_with_the_index_down(
        tmp_path, sources, wheelhouse, fresh_venv, monkeypatch, uv_log):
    """The first restore fills the lock and the store; a fresh VM with every index
    unreachable restores from them alone: no resolution, no build, no index request."""
    from tests.support.venvs import make_venv
    from tests.support.wheels import build_sdist

    scoped, plain = sources
    default = tmp_path / "default-index"
    default.mkdir()
    for wheel in [*wheelhouse.glob("*.whl"), *plain.glob("othermod-*.whl")]:
        (default / wheel.name).write_bytes(wheel.read_bytes())
    build_sdist(default, "zeta", "1.0")
    profile = tmp_path / "real.toml"
    profile.write_text(
        '[pip]\nindex_url = "{env:NB_DEFAULT}"\n'
        'packages = ["torchish", "zeta", { requirement = "beta", no_deps = true }]\n'
        '[[pip.indexes]]\nurl = "{env:NB_SCOPED}"\npackages = ["torchish"]\n')
    with simple_index(scoped) as scoped_server, simple_index(default) as default_server:
        monkeypatch.setenv("NB_SCOPED", f"{scoped_server.url}/simple/")
        monkeypatch.setenv("NB_DEFAULT", f"{default_server.url}/simple/")
        first = restore(str(profile), python=str(fresh_venv))
        assert first.step("pip").outcome == CHANGED
        assert installed(fresh_venv) == {"torchish": "1.0+cu118", "othermod": "1.0",
                                         "zeta": "1.0", "beta": "1.0"}  # no alpha: no_deps
        from bootstrap import wheelstore

        assert wheelstore.wait() == []
    # both servers are stopped now: any request would fail
    monkeypatch.setenv("BOOTSTRAP_WHEEL_CACHE", str(tmp_path / "local-vm2"))
    second = make_venv(tmp_path / "vm2")
    uv_log.write_text("")
    report = restore(str(profile), python=str(second))
    assert report.step("pip").outcome == CHANGED
    assert installed(second) == installed(fresh_venv)
    calls = uv_log.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("pip install ")  # nothing resolved or built
    assert "--offline" in calls[0].split() and "--no-build" in calls[0].split()
    assert any("(4 from the store)" in n for n in report.step("pip").details), \
        report.step("pip").notes


def test_vcs_url_direct_sdist_and_requirements_file_go_through_the_lock_and_store(
        tmp_path, wheelhouse, fresh_venv, monkeypatch, uv_log, isolated):
    """A bare VCS URL (its name found when resolved), a direct URL to an sdist and a
    requirements file: locked (the VCS URL to its commit), built once, kept in the store;
    the same VM again starts no process; a fresh VM with both servers down restores
    from the store with one offline install."""
    import subprocess

    from bootstrap import load_profile, lock as lockfile, wheelstore
    from tests.support.gitrepo import head_of, make_git_repo
    from tests.support.httpserver import LoopbackServer
    from tests.support.venvs import make_venv
    from tests.support.wheels import build_sdist

    served = tmp_path / "served"
    served.mkdir()
    repo = make_git_repo(tmp_path / "repo")
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(served / "repo.git")],
                   check=True)
    subprocess.run(["git", "-C", str(served / "repo.git"), "update-server-info"], check=True)
    build_sdist(served, "zeta", "1.0")
    (isolated["drive"] / "proj").mkdir()
    (isolated["drive"] / "proj" / "requirements.txt").write_text(
        "# what the project needs\nalpha==1.0  # pinned\n\n")
    with LoopbackServer(root=served) as server:
        profile = tmp_path / "urls.toml"
        profile.write_text(
            f'[pip]\nno_index = true\nfind_links = ["{wheelhouse}"]\n'
            f'packages = ["git+{server.url}/repo.git#subdirectory=python",\n'
            f'            "zeta @ {server.url}/zeta-1.0.tar.gz"]\n'
            'requirements = ["{drive}/proj/requirements.txt"]\n')
        first = restore(str(profile), python=str(fresh_venv))
        assert first.step("pip").outcome == CHANGED
        assert installed(fresh_venv) == {"hello-tools": "0.3", "zeta": "1.0", "alpha": "1.0"}
        assert wheelstore.wait() == []
        lock = lockfile.read(lockfile.path_for(load_profile(str(profile)),
                                               isolated["store"] / "profiles"))
        hello = lock.by_name()["hello-tools"]
        assert hello.vcs is not None and hello.vcs.commit == head_of(repo)
        assert lock.named["pip.packages[0]"] == "hello-tools"
        zeta = lock.by_name()["zeta"]
        assert zeta.archive is not None and zeta.built is not None
        stored = {p.name for p in (isolated["store"] / "wheels" / "built").rglob("*.whl")}
        assert stored == {hello.built.filename, zeta.built.filename}

        uv_log.write_text("")
        again = restore(str(profile), python=str(fresh_venv))
        assert again.step("pip").outcome == SATISFIED
        assert uv_log.read_text() == ""
    monkeypatch.setenv("BOOTSTRAP_WHEEL_CACHE", str(tmp_path / "local-vm2"))
    second = make_venv(tmp_path / "vm2")
    uv_log.write_text("")
    report = restore(str(profile), python=str(second))
    assert installed(second) == installed(fresh_venv)
    calls = uv_log.read_text().splitlines()
    assert len(calls) == 1 and "--offline" in calls[0].split(), calls
    assert any("(3 from the store)" in n for n in report.step("pip").details), \
        report.step("pip").notes


def test_a_requirements_file_line_that_is_an_option_is_refused_with_its_line(
        tmp_path, wheelhouse, fresh_venv, isolated):
    (isolated["drive"] / "requirements.txt").write_text("alpha\n--extra-index-url https://x.org\n")
    profile = parse(f'[pip]\nno_index = true\nfind_links = ["{wheelhouse}"]\n'
                    'requirements = ["{drive}/requirements.txt"]\n', source="r.toml")
    with pytest.raises(StepError) as caught:
        restore(profile, python=str(fresh_venv))
    error = caught.value
    assert "requirements.txt line 2" in error.what and "is a pip option" in error.what
    assert error.where.endswith("requirements.txt:2 (from r.toml: pip.requirements[0])")
    assert "index_url" in error.hint
    assert installed(fresh_venv) == {}  # refused before anything was installed


def needs_build_helper_sdist(folder):
    """An sdist whose build imports ``buildhelper``, which its build-system requires."""
    import io
    import tarfile

    from tests.support.wheels import project_files

    files = project_files("needsbuild", "1.0")
    files["pyproject.toml"] = files["pyproject.toml"].replace(
        "requires = []", 'requires = ["buildhelper"]')
    files["backend.py"] = files["backend.py"].replace(
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport buildhelper  # noqa: F401\n", 1)
    assert "import buildhelper" in files["backend.py"]
    files["PKG-INFO"] = "Metadata-Version: 2.1\nName: needsbuild\nVersion: 1.0\n"
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "needsbuild-1.0.tar.gz", "w:gz") as tf:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"needsbuild-1.0/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("isolated_build", [False, True])
def test_no_build_isolation_builds_against_the_targets_packages(tmp_path, fresh_venv,
                                                               isolated_build):
    from tests.support.venvs import uv

    helper = tmp_path / "helper"
    build_wheel(helper, "buildhelper", "1.0")
    import subprocess

    subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(fresh_venv), "--offline",
                    "--no-index", "--find-links", str(helper), "buildhelper"], check=True)
    links = tmp_path / "links"  # buildhelper is not here: only the target has it
    needs_build_helper_sdist(links)
    option = "" if isolated_build else ", no_build_isolation = true"
    profile = parse(f'[pip]\nno_index = true\nfind_links = ["{links}"]\n'
                    f'packages = [{{ requirement = "needsbuild"{option} }}]\n', source="b.toml")
    if isolated_build:  # the control: a fresh build environment cannot get buildhelper
        with pytest.raises(StepError):
            restore(profile, python=str(fresh_venv))
        assert "needsbuild" not in installed(fresh_venv)
    else:
        assert restore(profile, python=str(fresh_venv)).step("pip").outcome == CHANGED
        assert installed(fresh_venv)["needsbuild"] == "1.0"


def test_a_missing_requirements_file_is_named_and_a_dry_run_plans_around_it(
        tmp_path, wheelhouse, fresh_venv, isolated):
    profile = parse(f'[pip]\nno_index = true\nfind_links = ["{wheelhouse}"]\n'
                    'packages = ["alpha"]\nrequirements = ["{drive}/clone/requirements.txt"]\n',
                    source="m.toml")
    plan = restore(profile, python=str(fresh_venv), dry_run=True)
    assert any("does not exist yet" in n for n in plan.step("pip").notes)
    with pytest.raises(StepError) as caught:
        restore(profile, python=str(fresh_venv))
    assert "requirements file" in caught.value.what and "does not exist" in caught.value.what
    assert caught.value.where == "m.toml: pip.requirements[0]"
