"""Real git repositories made by the tests, and a small Python project that installs offline.

    repo = GitRepo.create(tmp_path / "origin")
    repo.commit({"README": "one\\n"}, "first")
    repo.tag("v1")                           # annotated; lightweight=True for a plain tag
    repo.url                                 # a file:// URL to clone from

The project files (``project_files``) build with an in-tree PEP 517 backend
that needs no download and supports PEP 660 editable installs (a ``.pth``
file pointing at the checkout), so uv can install a clone with the network
off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT = shutil.which("git") or "git"
_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "tests", "GIT_AUTHOR_EMAIL": "tests@example.invalid",
        "GIT_COMMITTER_NAME": "tests", "GIT_COMMITTER_EMAIL": "tests@example.invalid"}


@dataclass
class GitRepo:
    path: Path

    @classmethod
    def create(cls, path: Path, branch: str = "main") -> GitRepo:
        path.mkdir(parents=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", branch)
        return repo

    def git(self, *args: str) -> str:
        env = {**os.environ, **_ENV}
        return subprocess.run([GIT, "-C", str(self.path), *args], env=env, check=True,
                              capture_output=True, text=True, timeout=60).stdout.strip()

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def commit(self, files: dict[str, str], message: str) -> str:
        for rel, text in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, lightweight: bool = False) -> None:
        if lightweight:
            self.git("tag", name)
        else:
            self.git("tag", "-a", name, "-m", f"release {name}")

    def branch(self, name: str) -> None:
        self.git("checkout", "-q", "-b", name)

    def switch(self, name: str) -> None:
        self.git("checkout", "-q", name)


def head_of(checkout: Path) -> str:
    return subprocess.run([GIT, "-C", str(checkout), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **_ENV}).stdout.strip()


def project_files(name: str, version: str) -> dict[str, str]:
    """pyproject.toml, the in-tree backend and one module whose VERSION is ``version``."""
    module = name.replace("-", "_")
    return {
        "pyproject.toml": (
            "[build-system]\nrequires = []\nbuild-backend = \"backend\"\n"
            "backend-path = [\"_build\"]\n\n"
            f"[project]\nname = \"{name}\"\nversion = \"{version}\"\n"),
        "_build/backend.py": BACKEND.replace("@NAME@", name).replace("@VERSION@", version),
        f"{module}/__init__.py": f"VERSION = {version!r}\n",
    }


BACKEND = '''"""A PEP 517/660 backend with no dependencies: a wheel, or an editable .pth wheel."""
import base64, hashlib, os, zipfile

NAME, VERSION = "@NAME@", "@VERSION@"
MODULE = NAME.replace("-", "_")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _h(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(directory, files):
    dist_info = f"{MODULE}-{VERSION}.dist-info"
    files = dict(files)
    files[dist_info + "/METADATA"] = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n".encode()
    files[dist_info + "/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    record = [f"{p},{_h(d)},{len(d)}" for p, d in files.items()] + [dist_info + "/RECORD,,"]
    files[dist_info + "/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = f"{MODULE}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {}
    for folder, _, names in os.walk(os.path.join(ROOT, MODULE)):
        for n in names:
            if n.endswith(".py"):
                full = os.path.join(folder, n)
                with open(full, "rb") as f:
                    files[os.path.relpath(full, ROOT).replace(os.sep, "/")] = f.read()
    return _wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {f"_{MODULE}_editable.pth": (ROOT + "\\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError
'''
