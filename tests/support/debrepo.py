"""A tiny real .deb in a local apt repository with its own sources list, for real apt tests.

    reason = debrepo.unavailable()           # None when real apt can be used here
    repo = debrepo.make(tmp_path)            # builds the .deb and the repository
    monkeypatch.setenv("BOOTSTRAP_APT_OPTIONS", repo.options)
    ...
    debrepo.remove_package(repo.package)     # in teardown

apt is pointed at the repository with options only (its own sources list, no
source parts, its own lists folder and archive cache, no binary caches), so
the machine's sources and lists are never read or changed. The repository is
a ``copy:`` one rather than ``file:``: apt uses ``file:`` packages where they
lie, while ``copy:`` puts them into the archive cache as a download would,
which is what the step keeps in the store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "nbbootstrap-testpkg"
VERSION = "1.0"
INSTALLED_FILE = Path(f"/usr/share/doc/{PACKAGE}/hello.txt")


def unavailable() -> str | None:
    """Why real apt cannot be used here, or None."""
    if os.geteuid() != 0:
        return "real apt needs root"
    if not Path("/etc/debian_version").exists():
        return "real apt needs Debian or Ubuntu"
    for tool in ("apt-get", "dpkg-deb", "dpkg-query", "dpkg"):
        if shutil.which(tool) is None:
            return f"real apt needs {tool}"
    return None


@dataclass
class Repo:
    root: Path            # the repository folder (the .deb and Packages)
    deb: Path
    lists: Path
    archives: Path
    options: str          # for BOOTSTRAP_APT_OPTIONS
    package: str = PACKAGE


def build_deb(folder: Path, name: str = PACKAGE, version: str = VERSION) -> Path:
    tree = folder / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: notebook-bootstrap tests <tests@example.invalid>\n"
        "Description: test package of notebook-bootstrap\n one file under /usr/share/doc\n")
    doc = tree / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "hello.txt").write_text("hello from a test package\n")
    out = folder / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)],
                   check=True, capture_output=True, timeout=60)
    return out


def write_packages(repo: Path) -> None:
    """The repository index: dpkg-scanpackages when installed, else written here."""
    scan = shutil.which("dpkg-scanpackages")
    if scan:
        result = subprocess.run([scan, ".", "/dev/null"], cwd=repo, check=True,
                                capture_output=True, text=True, timeout=60)
        (repo / "Packages").write_text(result.stdout)
        return
    entries = []
    for deb in sorted(repo.glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "--field", str(deb)], check=True,
                                 capture_output=True, text=True, timeout=60).stdout
        data = deb.read_bytes()
        entries.append(control.rstrip("\n") + f"\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    (repo / "Packages").write_text("\n".join(entries))


def make(folder: Path) -> Repo:
    root = folder / "repo"
    root.mkdir(parents=True)
    deb = build_deb(root)
    write_packages(root)
    sources = folder / "sources.list"
    sources.write_text(f"deb [trusted=yes] copy:{root} ./\n")
    lists, archives = folder / "lists", folder / "archives"
    options = " ".join([
        f"-oDir::Etc::SourceList={sources}", "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={lists}", f"-oDir::Cache::archives={archives}",
        "-oDir::Cache::pkgcache=", "-oDir::Cache::srcpkgcache=",
        # the test folders are private to root; apt's download user cannot read them
        "-oAPT::Sandbox::User=root",
    ])
    return Repo(root, deb, lists, archives, options)


def status(package: str = PACKAGE) -> str | None:
    """dpkg's abbreviated status ("ii " when installed), None when dpkg does not know it."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "--", package],
                            capture_output=True, text=True, timeout=60)
    return result.stdout if result.returncode == 0 else None


def remove_package(package: str = PACKAGE) -> None:
    if status(package) is not None:
        subprocess.run(["dpkg", "--purge", "--", package], check=True, capture_output=True,
                       timeout=300)


def recording_apt_get(folder: Path, log: Path) -> Path:
    """A folder with an ``apt-get`` that logs its argv to ``log`` and runs the real one."""
    real = shutil.which("apt-get")
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "apt-get"
    wrapper.write_text("#!/bin/sh\n"
                       f"printf '%s\\n' \"$*\" >> '{log}'\n"
                       f"exec '{real}' \"$@\"\n")
    wrapper.chmod(0o755)
    return folder
