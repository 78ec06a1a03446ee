"""Stand-in ``apt-get`` and ``dpkg-query`` programs that record how they were called.

They are real executables put first on PATH, so the apt step runs them as it
would run apt: the tests then read the recorded argv lists (and the
environment apt would see) instead of mocking Python functions. They keep a
tiny package world in their folder:

- ``installed.txt``: ``name version`` lines, what the fake dpkg-query reports
  as installed (status ``ii``);
- ``available.txt``: names apt-get can install; ``after-update.txt``: names it
  only finds once ``apt-get update`` has run (stale lists);
- ``FAKE_DPKG_INTERRUPTED`` in the environment: an install fails as after a
  killed dpkg run;
- ``calls.jsonl``: one JSON object per call: ``argv`` (without the program),
  ``program``, ``frontend`` (DEBIAN_FRONTEND) and, for an install, which
  .debs were ``downloaded`` and which were already in the archive cache
  (``cached``).

Every fake .deb holds the bytes ``DEB_BYTES`` so a test knows its checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

DEB_BYTES = b"!<arch>\nfake deb\n"
DEB_SHA256 = hashlib.sha256(DEB_BYTES).hexdigest()

_COMMON = r'''
import json, os, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARGS = sys.argv[1:]

def record(**extra):
    entry = {"program": os.path.basename(sys.argv[0]), "argv": ARGS,
             "frontend": os.environ.get("DEBIAN_FRONTEND"), **extra}
    with open(HERE / "calls.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")

def names(path):
    p = HERE / path
    return [l.split()[0] for l in p.read_text().splitlines() if l.strip()] if p.exists() else []

def option(key, default=None):
    for a in ARGS:
        if a.startswith("-o") and a[2:].split("=", 1)[0].lower() == key.lower():
            default = a.split("=", 1)[1]
    return default
'''

_DPKG_QUERY = _COMMON + r'''
record()
apt = os.environ.get("FAKE_APT_VERSION", "2.6.1")
print(f"apt\tii \t{apt}\t")
print("removed-pkg\trc \t1.0\t")
installed = HERE / "installed.txt"
for line in installed.read_text().splitlines() if installed.exists() else []:
    name, version = line.split()
    provides = "awk" if name == "mawk" else ""
    print(f"{name}\tii \t{version}\t{provides}")
'''

_APT_GET = _COMMON + r'''
DEB = @DEB@
command = next(a for a in ARGS if not a.startswith("-"))
pkgs = ARGS[ARGS.index("--") + 1:] if "--" in ARGS else []
updated = (HERE / "updated").exists()
known = set(names("available.txt")) | (set(names("after-update.txt")) if updated else set())
archives = Path(option("Dir::Cache::archives"))
if command == "update":
    record()
    if os.environ.get("FAKE_APT_UPDATE_FAILS"):
        print("E: Failed to fetch http://deb.example/dists/x/InRelease  Could not resolve host")
        sys.exit(100)
    lists = Path(option("Dir::State::Lists", "/nonexistent"))
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "deb.example_dists_x_main_binary-amd64_Packages").write_text("")
    (HERE / "updated").write_text("")
    sys.exit(0)
if os.environ.get("FAKE_DPKG_INTERRUPTED"):
    # apt's own words when an earlier dpkg run was killed half way
    record()
    print("E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct "
          "the problem. ")
    sys.exit(100)
if command == "remove":
    record()
    have = [l for l in (HERE / "installed.txt").read_text().splitlines() if l.strip()]
    gone = [l for l in have if l.split()[0] in pkgs]
    if len(gone) != len(pkgs):
        print(f"E: Unable to locate package {pkgs[0]}")
        sys.exit(100)
    (HERE / "installed.txt").write_text("".join(l + "\n" for l in have if l not in gone))
    print(f"Removing {' '.join(pkgs)} ...")
    sys.exit(0)
unknown = [p for p in pkgs if p.split("=")[0] not in known]
if unknown:
    record()
    print("Reading package lists...")
    print(f"E: Unable to locate package {unknown[0]}")
    sys.exit(100)
files = {p: f"{p.split('=')[0]}_1.0_all.deb" for p in pkgs}
cached = sorted(f for f in files.values() if (archives / f).exists())
for f in files.values():
    if not (archives / f).exists():
        (archives / f).write_bytes(DEB)
record(cached=cached, downloaded=sorted(set(files.values()) - set(cached)))
with open(HERE / "installed.txt", "a") as out:
    for p in pkgs:
        name, _, version = p.partition("=")
        out.write(f"{name} {version or '1.0'}\n")
print(f"Setting up {' '.join(pkgs)} ...")
'''


def _write(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def install(folder: Path, *, available: list[str] = (), after_update: list[str] = (),
            installed: dict[str, str] | None = None) -> Path:
    """Write the fakes into ``folder`` and return it (put it first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "dpkg-query", _DPKG_QUERY)
    _write(folder / "apt-get", _APT_GET.replace("@DEB@", repr(DEB_BYTES)))
    (folder / "available.txt").write_text("".join(f"{n}\n" for n in available))
    (folder / "after-update.txt").write_text("".join(f"{n}\n" for n in after_update))
    (folder / "installed.txt").write_text(
        "".join(f"{n} {v}\n" for n, v in (installed or {}).items()))
    return folder


def calls(folder: Path, program: str | None = None) -> list[dict]:
    path = folder / "calls.jsonl"
    if not path.exists():
        return []
    out = [json.loads(line) for line in path.read_text().splitlines()]
    return [c for c in out if program is None or c["program"] == program]


def on_path(folder: Path) -> str:
    return f"{folder}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
