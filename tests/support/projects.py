"""Source trees the tests build and install without network: a Python project
with an in-tree PEP 517/660 backend, and a git repository holding it next to a
tiny C program with a Makefile.

    from tests.support.projects import write_project, make_git_repo

    write_project(folder, "hello-tools", "0.3")     # pyproject.toml + backend.py + module
    repo = make_git_repo(tmp_path / "origin")       # a real repository, one commit

The backend builds a wheel holding the project's modules and, for editable
installs (PEP 660 ``build_editable``), a wheel holding only a ``.pth`` file that
puts the source folder on ``sys.path``, so edits to the source show at once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable, Mapping

BACKEND = '''
"""An in-tree build backend written by the tests: no downloads, wheels and editables."""
import base64, hashlib, os, zipfile

NAME, VERSION, REQUIRES, MODULES = @NAME@, @VERSION@, @REQUIRES@, @MODULES@
RECORD_ENV = @RECORD_ENV@
HERE = os.path.dirname(os.path.abspath(__file__))


def _h(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _module():
    return NAME.replace("-", "_").lower()


def _metadata():
    meta = ["Metadata-Version: 2.1", "Name: " + NAME, "Version: " + VERSION]
    meta += ["Requires-Dist: " + r for r in REQUIRES]
    return ("\\n".join(meta) + "\\n").encode()


def _write(wheel_directory, files):
    di = _module() + "-" + VERSION + ".dist-info"
    files = dict(files)
    files[di + "/METADATA"] = _metadata()
    files[di + "/WHEEL"] = (b"Wheel-Version: 1.0\\nGenerator: tests\\n"
                            b"Root-Is-Purelib: true\\nTag: py3-none-any\\n")
    rec = [p + "," + _h(d) + "," + str(len(d)) for p, d in files.items()] + [di + "/RECORD,,"]
    files[di + "/RECORD"] = ("\\n".join(rec) + "\\n").encode()
    name = _module() + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {}
    for rel in MODULES:
        with open(os.path.join(HERE, rel), "rb") as handle:
            files[rel] = handle.read()
    if RECORD_ENV:  # what the build saw, for tests of the environment builds run in
        seen = {name: os.environ.get(name) for name in RECORD_ENV}
        files[_module() + "_build.py"] = ("ENV = " + repr(seen) + "\\n").encode()
    return _write(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write(wheel_directory, {"__editable__." + _module() + ".pth": (HERE + "\\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError
'''


def write_project(folder: Path, name: str, version: str, *, requires: Iterable[str] = (),
                  modules: Mapping[str, str] | None = None,
                  record_env: Iterable[str] = ()) -> Path:
    """Write a buildable project into ``folder``; by default one module ``<name>.py``
    whose ``VERSION`` is the version. With ``record_env`` a (non-editable) build adds
    ``<name>_build.py`` whose ``ENV`` holds those variables as the build saw them.
    Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_").lower()
    modules = dict(modules or {f"{module}.py": f"VERSION = {version!r}\n"})
    for rel, text in modules.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    backend = (BACKEND.replace("@NAME@", repr(name)).replace("@VERSION@", repr(version))
               .replace("@REQUIRES@", repr(list(requires)))
               .replace("@MODULES@", repr(sorted(modules)))
               .replace("@RECORD_ENV@", repr(list(record_env))))
    (folder / "backend.py").write_text(backend)
    (folder / "pyproject.toml").write_text(
        "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n\n"
        f"[project]\nname = \"{name}\"\nversion = \"{version}\"\n")
    return folder


HELLO_C = """#include <stdio.h>
int main(void) { printf("hello from C\\n"); return 0; }
"""

# Recipe lines start with a tab, as make requires.
MAKEFILE = """@PROGRAM@: hello.c
\t$(CC) -O0 -o @PROGRAM@ hello.c
"""


def git(folder: Path, *args: str) -> str:
    """Run git in ``folder`` with a fixed identity; return its stdout."""
    env_args = ["-c", "user.name=tests", "-c", "user.email=tests@example.invalid",
                "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", *env_args, *args], cwd=folder, check=True,
                          capture_output=True, text=True)
    return done.stdout


def make_git_repo(folder: Path, *, program: str = "hello", project: str = "hello-tools",
                  version: str = "0.3", python_dir: str = "python") -> Path:
    """A repository with one commit: ``hello.c`` and a ``Makefile`` that builds it into
    ``program`` at the top, and a Python project (in-tree backend) in ``python_dir``.
    Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hello.c").write_text(HELLO_C)
    (folder / "Makefile").write_text(MAKEFILE.replace("@PROGRAM@", program))
    write_project(folder / python_dir, project, version)
    git(folder, "init", "--quiet")
    git(folder, "add", "-A")
    git(folder, "commit", "--quiet", "-m", "hello")
    return folder


def clone(origin: Path, dest: Path) -> Path:
    """``git clone`` ``origin`` (a local path) into ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(dest.parent, "clone", "--quiet", str(origin), str(dest))
    return dest


def step_available(name: str) -> bool:
    """Whether this build has a real ``name`` step, not the "not available yet" stand-in."""
    import importlib

    module = importlib.import_module(f"bootstrap.steps.{name}")
    return "not available yet in this build" not in (module.__doc__ or "")


def simple_index(folder: Path) -> dict[str, object]:
    """Routes for a LoopbackServer that make ``folder``'s wheels a PEP 503 index.

    ``/simple/<name>/`` lists the wheels of one project; the wheels themselves are
    served from the server's root (pass ``root=folder``). Every request is
    recorded by the server, so a test can prove which projects were asked for.
    """
    from urllib.parse import quote

    from tests.support.httpserver import send_bytes

    projects: dict[str, list[str]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        name = wheel.name.split("-")[0].replace("_", "-").lower()
        projects.setdefault(name, []).append(wheel.name)
    routes: dict[str, object] = {}
    for name, files in projects.items():
        links = "".join(f'<a href="/{quote(f)}">{f}</a><br>\n' for f in files)
        page = f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()

        def handler(req, page=page):
            send_bytes(req, page, honor_range=False, content_type="text/html")

        routes[f"/simple/{name}/"] = handler
    return routes
