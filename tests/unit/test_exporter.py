"""Export: a profile as repo2docker, devcontainer and Ray files.

The exported setup script is run for real (a clone from a local git
repository, a download from a server on 127.0.0.1, a build with make, an
editable install into a fresh venv), repo2docker's own ``--no-build`` prints
the Dockerfile it would build when ``jupyter-repo2docker`` is installed (the
``export-test`` extra), and Ray's ``RuntimeEnv`` checks the runtime_env when
ray is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.exporter import export_profile, shell_word
from bootstrap.profile import parse
from tests.support.gitrepo import make_git_repo
from tests.support.httpserver import LoopbackServer
from tests.support.venvs import installed, make_venv

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "tests" / "notebooks"
SECRET = "hf_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1"

PROFILE = """\
version = 1
name = "vision"

[gpu]
required = true

[drive]

[secrets]
HF_TOKEN = "HF_TOKEN"

[env]
HF_HOME = "{drive}/hf-cache"
GREETING = "hello from the profile"

[apt]
packages = ["ffmpeg", "libsndfile1"]

[pip]
packages = ["transformers==4.46.3", "timm>=1.0",
            { requirement = "flash-attn==2.6.3", no_deps = true }]
extra_index_urls = ["https://download.pytorch.org/whl/cu121"]

[workdir]
path = "projects/vision"
create = true

[setup]
notebook = "{drive}/setup.ipynb"
"""


def write(tmp_path: Path, text: str, name: str = "vision.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    parse(text, source=name)  # the fixture itself is a valid profile
    return path


def repo2docker() -> str | None:
    found = shutil.which("jupyter-repo2docker")
    if found:
        return found
    beside = Path(sys.executable).parent / "jupyter-repo2docker"
    return str(beside) if beside.exists() else None


def dockerfile(folder: Path) -> str:
    tool = repo2docker()
    if tool is None:
        pytest.skip("jupyter-repo2docker is not installed (pip install -e '.[export-test]')")
    done = subprocess.run([tool, "--no-build", "--debug", str(folder)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FROM " in done.stdout
    return done.stdout


def test_repo2docker_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)  # a secret in the environment is never written
    result = export_profile(write(tmp_path, PROFILE), "repo2docker", tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in result.files) == ["README.md", "apt.txt", "postBuild",
                                                     "requirements.txt", "start"]
    assert (out / "apt.txt").read_text() == "ffmpeg\nlibsndfile1\n"
    assert (out / "requirements.txt").read_text() == (
        "--extra-index-url https://download.pytorch.org/whl/cu121\n"
        "transformers==4.46.3\ntimm>=1.0\n")
    post = (out / "postBuild").read_text()
    assert "--no-deps flash-attn==2.6.3" in post
    start = (out / "start").read_text()
    assert "export HF_HOME=\"${DRIVE}\"/hf-cache" in start
    assert "cd \"${DRIVE}\"/projects/vision" in start and start.endswith('exec "$@"\n')
    for name in ("postBuild", "start"):
        assert os.access(out / name, os.X_OK)
        subprocess.run(["bash", "-n", str(out / name)], check=True)
    readme = (out / "README.md").read_text()
    for item in ("[drive]", "[secrets] HF_TOKEN", "[gpu]", "[setup]"):
        assert any(line.startswith(item) for line in result.left_out)
        assert f"- {item}" in readme
    for path in out.rglob("*"):
        assert SECRET not in path.read_text()
    assert SECRET not in result.text()


def test_secret_values_in_a_profile_are_never_exported(tmp_path):
    text = (f'version = 1\n[env]\nWANDB_API_KEY = "{SECRET}"\nPLAIN = "x"\n'
            f'[[git]]\nurl = "https://user:{SECRET}@github.com/org/private"\ndest = "p"\n'
            f'[[run]]\nargv = ["huggingface-cli", "login", "--token", "{SECRET}"]\n'
            f'[[run]]\nargv = ["make"]\n')
    for target in ("repo2docker", "devcontainer", "ray"):
        result = export_profile(write(tmp_path, text), target, tmp_path / target)
        for path in result.files:
            assert SECRET not in path.read_text()
        assert SECRET not in result.text()
        left = "\n".join(result.left_out)
        assert "env.WANDB_API_KEY" in left
        if target != "ray":
            assert "git[0]" in left and "run[0]" in left
            assert "make" in (tmp_path / target).joinpath(
                "postBuild" if target == "repo2docker" else ".devcontainer/postCreate.sh"
            ).read_text()


def test_the_setup_script_does_what_a_restore_does(tmp_path):
    """postBuild, run for real: clone, download (sha256 checked), make, editable install."""
    origin = make_git_repo(tmp_path / "origin")
    payload = b"weights\n" * 100
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "w.bin").write_bytes(payload)
    venv = make_venv(tmp_path / "kernel", seed=True)
    home = tmp_path / "home"
    home.mkdir()
    with LoopbackServer(root=tmp_path / "www") as server:
        text = f"""\
version = 1
[env]
GREETING = "hi {{{{there}}}}"
[pip]
packages = [{{ path = "repo/python", editable = true }}]
[[git]]
url = "{origin.as_uri()}"
dest = "/content/repo"
[[files]]
url = "{server.url_for('/w.bin')}"
sha256 = "{hashlib.sha256(payload).hexdigest()}"
dest = "weights/w.bin"
[[run]]
argv = ["make"]
cwd = "repo"
creates = "hello"
[[run]]
shell = "echo \\"$GREETING\\" > greeting.txt"
creates = "greeting.txt"
"""
        export_profile(write(tmp_path, text), "repo2docker", tmp_path / "out")
        env = dict(os.environ, REPO_DIR=str(home), KERNEL_PYTHON_PREFIX=str(venv.parent.parent),
                   PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        for _ in range(2):  # the second run finds everything in place
            done = subprocess.run(["bash", str(tmp_path / "out" / "postBuild")], cwd=home,
                                  env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
    assert (home / "repo" / "hello.c").is_file()          # /content became the repository
    assert os.access(home / "repo" / "hello", os.X_OK)    # make ran in the clone
    assert (home / "weights" / "w.bin").read_bytes() == payload
    assert (home / "greeting.txt").read_text() == "hi {there}\n"
    assert installed(venv).get("hello-tools") == "0.3"


def test_a_download_with_the_wrong_sha256_stops_the_script(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "w.bin").write_bytes(b"changed")
    with LoopbackServer(root=tmp_path / "www") as server:
        text = (f'version = 1\n[[files]]\nurl = "{server.url_for("/w.bin")}"\n'
                f'sha256 = "{"0" * 64}"\ndest = "w.bin"\n')
        export_profile(write(tmp_path, text), "repo2docker", tmp_path / "out")
        done = subprocess.run(["bash", str(tmp_path / "out" / "postBuild")], cwd=tmp_path,
                              env=dict(os.environ, REPO_DIR=str(tmp_path / "home")),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


def test_requirements_files_and_downloads_trusted_on_first_use_export(tmp_path, wheelhouse):
    """What an imported notebook holds: a requirements file read at restore and downloads
    without a sha256. postBuild, run for real, installs the file's packages and downloads
    and unpacks the archive, without a digest to check (a note says so)."""
    import tarfile
    import zipfile

    (tmp_path / "www").mkdir()
    with zipfile.ZipFile(tmp_path / "www" / "data.zip", "w") as archive:
        archive.writestr("train/a.txt", "a")
    (tmp_path / "b.txt").write_text("b")
    with tarfile.open(tmp_path / "www" / "more", "w:gz") as archive:  # no suffix to go by
        archive.add(tmp_path / "b.txt", arcname="b.txt")
    (tmp_path / "www" / "w.bin").write_bytes(b"weights")
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    (home / "proj" / "requirements.txt").write_text("beta\n")
    venv = make_venv(tmp_path / "kernel", seed=True)
    with LoopbackServer(root=tmp_path / "www") as server:
        text = f"""\
version = 1
[pip]
requirements = ["{{drive}}/proj/requirements.txt"]
[[files]]
url = "{server.url_for('/data.zip')}"
dest = "/content/data"
unpack = true
[[files]]
url = "{server.url_for('/more')}"
dest = "more"
unpack = true
[[files]]
url = "{server.url_for('/w.bin')}"
dest = "weights/w.bin"
"""
        path = write(tmp_path, text)
        result = export_profile(path, "repo2docker", tmp_path / "out")
        assert sum("no sha256 in the profile" in note for note in result.notes) == 3
        assert not (tmp_path / "out" / "requirements.txt").exists()   # the file is in the repo
        post = (tmp_path / "out" / "postBuild").read_text()
        assert "sha256sum" not in post and "None" not in post
        assert '-m pip install --no-cache-dir -r "${DRIVE}"/proj/requirements.txt' in post
        env = dict(os.environ, REPO_DIR=str(home), KERNEL_PYTHON_PREFIX=str(venv.parent.parent),
                   PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse),
                   PIP_DISABLE_PIP_VERSION_CHECK="1")
        done = subprocess.run(["bash", str(tmp_path / "out" / "postBuild")], cwd=home, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (home / "data" / "train" / "a.txt").read_text() == "a"
    assert (home / "more" / "b.txt").read_text() == "b"
    assert (home / "weights" / "w.bin").read_bytes() == b"weights"
    assert installed(venv).get("beta") == "1.0" and installed(venv).get("alpha") == "2.0"

    result = export_profile(path, "devcontainer", tmp_path / "dev")
    script = (tmp_path / "dev" / ".devcontainer" / "postCreate.sh").read_text()
    assert '-r "${DRIVE}"/proj/requirements.txt' in script and "sha256sum" not in script
    result = export_profile(path, "ray", tmp_path / "ray")
    assert any(item.startswith("pip.requirements {drive}/proj/requirements.txt")
               for item in result.left_out)


def test_requirements_come_from_the_lock_with_sha256s(tmp_path, isolated, wheelhouse):
    from bootstrap import lock_profile

    store_profiles = isolated["store"] / "profiles"
    store_profiles.mkdir(parents=True)
    (store_profiles / "locked.toml").write_text(
        f'version = 1\n[pip]\npackages = ["beta"]\nno_index = true\n'
        f'find_links = ["{wheelhouse}"]\n')
    _, lock, _ = lock_profile("locked")
    result = export_profile("locked", "repo2docker", tmp_path / "out")
    lines = ["--no-index"] + (tmp_path / "out" / "requirements.txt").read_text().splitlines()
    # the wheel folder stays behind, so --no-index would leave pip nothing to install from
    assert any("no_index is left out" in note for note in result.notes)
    expected = []
    for pkg in sorted(lock.packages, key=lambda p: p.name):
        wheel = next(wheelhouse.glob(f"{pkg.name}-{pkg.version}-*.whl"))
        expected.append(f"{pkg.name}=={pkg.version} --hash=sha256:"
                        f"{hashlib.sha256(wheel.read_bytes()).hexdigest()}")
    assert lines[1:] == expected == ["alpha==2.0 --hash=sha256:" + expected[0].split(":")[-1],
                                     expected[1]]
    python = ".".join(map(str, sys.version_info[:2]))
    assert (tmp_path / "out" / "runtime.txt").read_text() == f"python-{python}\n"
    assert any(str(wheelhouse) in item for item in result.left_out)  # a folder on this machine

    # a profile changed since it was locked: the lock no longer speaks for it
    (store_profiles / "locked.toml").write_text('version = 1\n[pip]\npackages = ["beta<2"]\n')
    result = export_profile("locked", "repo2docker", tmp_path / "again")
    assert (tmp_path / "again" / "requirements.txt").read_text() == "beta<2\n"
    assert any("another [pip] section" in note for note in result.notes)


def test_repo2docker_accepts_the_export_and_installs_the_same_packages(tmp_path):
    result = export_profile(write(tmp_path, PROFILE), "repo2docker", tmp_path / "out")
    text = dockerfile(tmp_path / "out")
    assert "apt-get install --yes --no-install-recommends ffmpeg libsndfile1" in text
    assert 'pip install --no-cache-dir -r "requirements.txt"' in text
    assert "./postBuild" in text and 'R2D_ENTRYPOINT="${REPO_DIR}/start"' in text
    assert result.files  # and what it installs is the requirements.txt checked above


def test_repo2docker_accepts_an_imported_notebook(tmp_path, isolated):
    from bootstrap.importer import import_notebook

    imported = import_notebook(NOTEBOOKS / "colab_sd_webui.ipynb", name="webui")
    export_profile("webui", "repo2docker", tmp_path / "out")
    text = dockerfile(tmp_path / "out")
    assert f"--no-install-recommends {' '.join(imported.profile.apt.packages)}" in text
    requirements = (tmp_path / "out" / "requirements.txt").read_text().splitlines()
    assert requirements == ["--extra-index-url https://download.pytorch.org/whl/cu118",
                            *imported.profile.pip.packages]
    post = (tmp_path / "out" / "postBuild").read_text()
    assert ("git clone --depth 1 --branch v2.6 https://github.com/camenduru/stable-diffusion-webui"
            ' "${DRIVE}"/stable-diffusion-webui') in post
    # the aria2c download, imported as a [[files]] entry without a sha256, after the clone
    download = next(line for line in post.splitlines() if "4x-UltraSharp.pth" in line)
    assert "curl -fsSL" in download and "sha256sum" not in download
    assert post.index("git clone") < post.index(download)

    # a -r of the clone's requirements file: installed from the clone, after it is made
    import_notebook(NOTEBOOKS / "colab_yolo.ipynb", name="yolo")
    export_profile("yolo", "repo2docker", tmp_path / "yolo")
    post = (tmp_path / "yolo" / "postBuild").read_text()
    install = '-m pip install --no-cache-dir -r "${DRIVE}"/yolov5/requirements.txt'
    assert post.index('git clone --depth 1 https://github.com/ultralytics/yolov5') < \
        post.index(install)
    dockerfile(tmp_path / "yolo")


#: top-level properties of devcontainer.json in the devcontainer spec (containers.dev,
#: devContainer.base.schema.json) that the export may write, with the JSON type each takes
DEVCONTAINER_KEYS = {"name": str, "image": str, "build": dict, "containerEnv": dict,
                     "postCreateCommand": (str, list, dict), "hostRequirements": dict,
                     "secrets": dict}


def test_devcontainer_follows_the_spec(tmp_path):
    result = export_profile(write(tmp_path, PROFILE), "devcontainer", tmp_path / "out")
    folder = tmp_path / "out" / ".devcontainer"
    config = json.loads((folder / "devcontainer.json").read_text())
    for key, value in config.items():
        assert key in DEVCONTAINER_KEYS and isinstance(value, DEVCONTAINER_KEYS[key]), key
    # the spec: exactly one of image, build.dockerfile (or dockerComposeFile)
    assert "image" not in config and set(config["build"]) == {"dockerfile"}
    assert (folder / config["build"]["dockerfile"]).is_file()
    assert config["containerEnv"] == {"HF_HOME": "${containerWorkspaceFolder}/hf-cache",
                                      "GREETING": "hello from the profile"}
    assert all(isinstance(v, str) for v in config["containerEnv"].values())
    assert config["hostRequirements"] == {"gpu": True}
    assert config["secrets"] == {"HF_TOKEN": {"description": "the secret 'HF_TOKEN' of the "
                                                             "notebook profile"}}
    assert config["postCreateCommand"] == "bash .devcontainer/postCreate.sh"
    subprocess.run(["bash", "-n", str(folder / "postCreate.sh")], check=True)
    docker = (folder / "Dockerfile").read_text()
    assert docker.startswith("FROM mcr.microsoft.com/devcontainers/python:1-3.12\n")
    assert "--no-install-recommends \\\n       ffmpeg libsndfile1" in docker
    assert "COPY requirements.txt /tmp/bootstrap/" in docker
    assert (folder / "requirements.txt").read_text().endswith("transformers==4.46.3\ntimm>=1.0\n")
    assert any(item.startswith("[workdir]") for item in result.left_out)


def test_constraints_go_beside_the_requirements(tmp_path):
    text = 'version = 1\n[pip]\npackages = ["alpha"]\nconstraints = ["delta==0.5"]\n'
    export_profile(write(tmp_path, text), "repo2docker", tmp_path / "r2d")
    assert (tmp_path / "r2d" / "requirements.txt").read_text() == "-c constraints.txt\nalpha\n"
    assert (tmp_path / "r2d" / "constraints.txt").read_text() == "delta==0.5\n"
    export_profile(write(tmp_path, text), "devcontainer", tmp_path / "dc")
    docker = (tmp_path / "dc" / ".devcontainer" / "Dockerfile").read_text()
    assert "COPY constraints.txt requirements.txt /tmp/bootstrap/" in docker
    result = export_profile(write(tmp_path, text), "ray", tmp_path / "ray")
    assert any(item.startswith("pip.constraints") for item in result.left_out)
    if repo2docker() is not None:
        # repo2docker sees the -c line and copies the whole folder before pip runs
        built = dockerfile(tmp_path / "r2d")
        assert built.index("COPY --chown=0:0 src/ ${REPO_DIR}/") < \
            built.index('pip install --no-cache-dir -r "requirements.txt"')


def test_devcontainer_without_packages_uses_the_image(tmp_path):
    export_profile(write(tmp_path, 'version = 1\n[env]\nA = "b"\n'), "devcontainer",
                   tmp_path / "out")
    config = json.loads((tmp_path / "out" / ".devcontainer" / "devcontainer.json").read_text())
    assert config == {"name": "vision", "image": "mcr.microsoft.com/devcontainers/python:1-3.12",
                      "containerEnv": {"A": "b"}}


def test_ray_runtime_env(tmp_path, isolated):
    text = PROFILE.replace('HF_HOME = "{drive}/hf-cache"', 'HF_HOME = "{drive}/hf-cache"\n'
                           'LD_LIBRARY_PATH = "{env:LD_LIBRARY_PATH}:/opt/x"')
    result = export_profile(write(tmp_path, text), "ray", tmp_path / "out")
    runtime_env = json.loads((tmp_path / "out" / "runtime_env.json").read_text())
    assert runtime_env == {
        "pip": {"packages": ["--extra-index-url https://download.pytorch.org/whl/cu121",
                             "transformers==4.46.3", "timm>=1.0"], "pip_check": False},
        "env_vars": {"GREETING": "hello from the profile",
                     "LD_LIBRARY_PATH": "${LD_LIBRARY_PATH}:/opt/x"}}
    left = "\n".join(result.left_out)
    for item in ("[apt]", "env.HF_HOME", "[workdir]", "no_deps", "[secrets] HF_TOKEN"):
        assert item in left
    # the working folder, once it exists here, is what Ray uploads with the job
    (isolated["drive"] / "projects" / "vision").mkdir(parents=True)
    export_profile(write(tmp_path, text), "ray", tmp_path / "out")
    runtime_env = json.loads((tmp_path / "out" / "runtime_env.json").read_text())
    assert runtime_env["working_dir"] == str(isolated["drive"] / "projects" / "vision")
    ray = pytest.importorskip("ray", reason="ray is not installed (an optional check)")
    from ray.runtime_env import RuntimeEnv

    checked = RuntimeEnv(**runtime_env)
    assert checked.env_vars() == runtime_env["env_vars"]
    assert checked.pip_config()["packages"] == runtime_env["pip"]["packages"]
    assert checked.working_dir() == runtime_env["working_dir"]
    assert ray is not None


def test_shell_words_quote_literals_and_expand_placeholders():
    assert shell_word("{drive}/a b") == "\"${DRIVE}\"'/a b'"
    assert shell_word("{env:HOME}/x;rm -rf /") == "\"${HOME}\"'/x;rm -rf /'"
    assert shell_word("{{literal}}") == "'{'literal'}'"
    done = subprocess.run(["bash", "-c", "DRIVE=/d; printf %s " + shell_word("{drive}/a b;$X")],
                          capture_output=True, text=True, check=True)
    assert done.stdout == "/d/a b;$X"


def test_faces_agree_and_bad_input_is_an_option_error(tmp_path, isolated):
    from IPython.core.interactiveshell import InteractiveShell

    import bootstrap
    from bootstrap.errors import OptionError

    path = write(tmp_path, PROFILE)
    api = bootstrap.export_profile(path, "ray", tmp_path / "api")
    done = subprocess.run([sys.executable, "-m", "bootstrap", "export", str(path), "--to", "ray",
                           str(tmp_path / "cli")], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "not carried over" in done.stdout and "[apt]" in done.stdout
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "bootstrap")
        shell.run_line_magic("export_env", f"{path} --to ray {tmp_path / 'magic'}")
    finally:
        InteractiveShell.clear_instance()
    for face in ("cli", "magic"):
        for name in ("runtime_env.json", "README.md"):
            assert (tmp_path / face / name).read_text() == (tmp_path / "api" / name).read_text()
    assert len(api.files) == 2
    with pytest.raises(OptionError):
        export_profile(path, "docker", tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(OptionError):
        export_profile(path, "ray", tmp_path / "file")
    bad = subprocess.run([sys.executable, "-m", "bootstrap", "export", str(path), "--to",
                          "docker", str(tmp_path / "y")], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert bad.returncode == 2


@pytest.mark.parametrize("notebook", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_every_imported_notebook_exports_to_every_engine(notebook, tmp_path, isolated):
    from bootstrap.importer import import_notebook

    profile = import_notebook(NOTEBOOKS / notebook).profile
    for target in ("repo2docker", "devcontainer", "ray"):
        result = export_profile(profile.name, target, tmp_path / target)
        for path in result.files:
            if path.name in ("postBuild", "start") or path.suffix == ".sh":
                subprocess.run(["bash", "-n", str(path)], check=True)
            elif path.suffix == ".json":
                json.loads(path.read_text())
    apt = (tmp_path / "repo2docker" / "apt.txt")
    if repo2docker() is not None:
        text = dockerfile(tmp_path / "repo2docker")
        if apt.exists():
            assert " ".join(apt.read_text().split()) in text
        if (tmp_path / "repo2docker" / "requirements.txt").exists():
            assert 'pip install --no-cache-dir -r "requirements.txt"' in text
