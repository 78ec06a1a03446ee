"""Real git repositories made by the tests.

    repo = GitRepo.create(tmp_path / "origin")
    repo.commit(project_files("nbgitdemo", "1.0", package=True), "first")
    repo.tag("v1")                           # annotated; lightweight=True for a plain tag
    repo.url                                 # a file:// URL to clone from

    origin = make_git_repo(tmp_path / "origin")      # hello.c, a Makefile, python/ project
    clone(origin, tmp_path / "checkout")

Every git command runs with a fixed identity and without the system's or the
user's configuration, so the tests behave the same on any machine.
(``project_files`` comes from tests.support.wheels: a project whose in-tree
backend needs no download, so uv can install a clone with the network off.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.wheels import write_project

GIT = shutil.which("git") or "git"
_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "tests", "GIT_AUTHOR_EMAIL": "tests@example.invalid",
        "GIT_COMMITTER_NAME": "tests", "GIT_COMMITTER_EMAIL": "tests@example.invalid"}


def git(folder: Path, *args: str) -> str:
    """Run git in ``folder`` with the fixed identity; return its stdout, stripped."""
    return subprocess.run([GIT, "-C", str(folder), *args], env={**os.environ, **_ENV},
                          check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


@dataclass
class GitRepo:
    path: Path

    @classmethod
    def create(cls, path: Path, branch: str = "main") -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", branch)
        return repo

    def git(self, *args: str) -> str:
        return git(self.path, *args)

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
    return git(checkout, "rev-parse", "HEAD")


def clone(origin: Path, dest: Path) -> Path:
    """``git clone`` ``origin`` (a local path) into ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(dest.parent, "clone", "--quiet", str(origin), str(dest))
    return dest


HELLO_C = """#include <stdio.h>
int main(void) { printf("hello from C\\n"); return 0; }
"""

# Recipe lines start with a tab, as make requires.
MAKEFILE = """@PROGRAM@: hello.c
\t$(CC) -O0 -o @PROGRAM@ hello.c
"""


def make_git_repo(folder: Path, *, program: str = "hello", project: str = "hello-tools",
                  version: str = "0.3", python_dir: str = "python") -> Path:
    """A repository with one commit: ``hello.c`` and a ``Makefile`` that builds it into
    ``program`` at the top, and a Python project (in-tree backend) in ``python_dir``.
    Returns the folder."""
    repo = GitRepo.create(folder)
    write_project(folder / python_dir, project, version)
    repo.commit({"hello.c": HELLO_C, "Makefile": MAKEFILE.replace("@PROGRAM@", program)},
                "hello")
    return folder
