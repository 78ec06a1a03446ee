"""The target Python: its site-packages, environment markers and installed distributions.

Read in-process from the file system (``importlib.metadata`` over the target's
paths), so checking whether requirements hold starts no process for a
virtual environment or the running interpreter.

A distribution an interrupted or killed installer left half done is not taken
as installed: a ``.dist-info`` without METADATA (or holding only temp files),
one an installer wrote (INSTALLER) without RECORD, or one whose RECORD names a
top-level module or package that is not there. ``half_installed`` lists them
and ``repair`` removes their ``.dist-info`` so the next install puts them back.
Folders already found sound are remembered by their modification times, so a
restore with nothing to do re-reads no RECORD.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import NoInterpreter, OptionError

#: how much of a RECORD is read to find the distribution's top-level names
RECORD_HEAD = 4096
#: a folder changed less than this long ago is read again next time (see _listing)
RACY_S = 2.0
# folder -> (mtime, sorted names) of the folders on the path, while unchanged
_listings: dict[str, tuple[int, list[str]]] = {}
# (site folder, .dist-info name) -> (site mtime, .dist-info mtime) of folders found sound
_sound: dict[tuple[str, str], tuple[int, int]] = {}


@dataclass(frozen=True)
class HalfInstalled:
    """A ``.dist-info`` an installer left half done, and why it does not count."""

    path: Path
    reason: str

    @property
    def label(self) -> str:
        return self.path.name[:-len(".dist-info")]


@dataclass(frozen=True)
class Interpreter:
    executable: str
    paths: tuple[str, ...]          # sys.path entries that hold distributions
    version: tuple[int, int, int]

    def markers(self) -> dict[str, str]:
        from packaging.markers import default_environment

        env = dict(default_environment())
        major, minor, micro = self.version
        env["python_version"] = f"{major}.{minor}"
        env["python_full_version"] = f"{major}.{minor}.{micro}"
        env["implementation_version"] = env["python_full_version"]
        return env

    def distributions(self) -> dict[str, metadata.Distribution]:
        """Installed distributions by canonical name; the first on the path wins.

        Names and versions come from the ``NAME-VERSION.dist-info`` folder names
        (what pip and uv write), so no METADATA file is parsed here: parsing
        every one costs milliseconds per distribution, and Colab has hundreds.
        The returned objects are real ``importlib.metadata`` distributions; their
        other metadata is read only when asked for.
        """
        from packaging.utils import canonicalize_name

        found: dict[str, metadata.Distribution] = {}
        for entry in self.paths:
            listing = _listing(entry)
            if listing is None:
                continue
            names = listing[1]
            broken = {half.path.name for half in _half_installed(entry, *listing)}
            for item in names:
                if item in broken:
                    continue
                if item.endswith(".dist-info"):
                    stem = item[:-len(".dist-info")]
                elif item.endswith(".egg-info"):
                    stem = ""  # legacy layouts: the name alone, or name-version-pyX.Y
                else:
                    continue
                parts = stem.split("-")
                path = Path(entry, item)
                if len(parts) == 2 and parts[0] and parts[1]:
                    key = canonicalize_name(parts[0])
                    if key not in found:
                        found[key] = _Installed(path, parts[1])
                    continue
                dist = metadata.PathDistribution(path)
                meta = dist.metadata
                name = meta["Name"] if meta else None
                if name:
                    found.setdefault(canonicalize_name(name), dist)
        return found

    def half_installed(self) -> list[HalfInstalled]:
        """The distributions left half installed (see the module docstring)."""
        out = []
        for entry in self.paths:
            listing = _listing(entry)
            if listing is not None:
                out.extend(_half_installed(entry, *listing))
        return out

    @property
    def site_packages(self) -> Path:
        for entry in self.paths:
            if entry.endswith(("site-packages", "dist-packages")):
                return Path(entry)
        return Path(self.paths[-1])


class _Installed(metadata.PathDistribution):
    """A distribution whose version was read from its folder name."""

    def __init__(self, path: Path, version: str) -> None:
        super().__init__(path)
        self._folder_version = version

    @property
    def version(self) -> str:  # type: ignore[override]
        return self._folder_version


def is_running(python: str) -> bool:
    try:
        return os.path.samefile(python, sys.executable) and sys.prefix == _prefix_of(python)
    except OSError:
        return False


def _prefix_of(python: str) -> str:
    venv = Path(python).parent.parent
    return str(venv) if (venv / "pyvenv.cfg").is_file() else sys.base_prefix


@functools.lru_cache(maxsize=16)
def inspect(python: str) -> Interpreter:
    """Describe the interpreter at ``python`` without running it where possible."""
    exe = Path(python)
    if not exe.exists():
        raise NoInterpreter(python, where="--python",
                            hint="give the path of a python executable, e.g. VENV/bin/python")
    if python == sys.executable or is_running(python):
        paths = tuple(p for p in sys.path if p and os.path.isdir(p))
        return Interpreter(python, paths, tuple(sys.version_info[:3]))  # type: ignore[arg-type]
    venv = exe.parent.parent
    cfg = venv / "pyvenv.cfg"
    if cfg.is_file():
        settings = dict(
            (k.strip(), v.strip()) for k, _, v in
            (line.partition("=") for line in cfg.read_text().splitlines() if "=" in line))
        version = settings.get("version_info") or settings.get("version") or ""
        numbers = re.findall(r"\d+", version)
        system = settings.get("include-system-site-packages", "false").lower() == "true"
        sites = sorted(venv.glob("lib/python*/site-packages"))
        if len(numbers) >= 2 and sites and not system:
            parts = [int(n) for n in numbers[:3]] + [0] * (3 - len(numbers[:3]))
            return Interpreter(python, tuple(str(s) for s in sites),
                               (parts[0], parts[1], parts[2]))
    try:
        out = subprocess.run([python, "-c", "import sys, json; print(json.dumps("
                              "[sys.path, list(sys.version_info[:3])]))"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise OptionError(f"cannot run {python}: {exc}", where="--python",
                          hint="give the path of a working python executable") from None
    path, version = json.loads(out)
    paths = tuple(p for p in path if p and os.path.isdir(p))
    return Interpreter(python, paths, tuple(version))  # type: ignore[arg-type]


def _listing(entry: str) -> tuple[int, list[str]] | None:
    """(modification time, sorted names) of the folder ``entry``; None if it cannot be read.

    Remembered while the folder's mtime stays the same, except for a folder
    changed in the last RACY_S seconds (a change within the same clock tick
    would not show in its mtime).
    """
    try:
        mtime = os.stat(entry).st_mtime_ns
    except OSError:
        return None
    cached = _listings.get(entry)
    if cached is not None and cached[0] == mtime:
        return cached
    try:
        names = sorted(os.listdir(entry))
    except OSError:
        return None
    if not _racy(mtime):
        _listings[entry] = (mtime, names)
    return mtime, names


def _racy(mtime_ns: int) -> bool:
    return time.time_ns() - mtime_ns < RACY_S * 1e9


def _half_installed(entry: str, site_mtime: int, names: list[str]) -> list[HalfInstalled]:
    """The half-installed ``.dist-info`` folders among ``names`` (the listing of ``entry``).

    Only in folders an installer could have written here (writable): a read-only
    system folder is not ours to judge or repair.
    """
    if not os.access(entry, os.W_OK):
        return []
    stems: set[str] | None = None
    out = []
    for item in names:
        if not item.endswith(".dist-info"):
            continue
        path = os.path.join(entry, item)
        try:
            stamp = (site_mtime, os.stat(path).st_mtime_ns)
        except OSError:
            continue
        if _sound.get((entry, item)) == stamp:
            continue
        if stems is None:
            stems = {name.split(".", 1)[0] for name in names}
        reason = _why_half(Path(path), stems)
        if reason is not None:
            out.append(HalfInstalled(Path(path), reason))
        elif not _racy(stamp[1]):
            _sound[(entry, item)] = stamp
    return out


def _why_half(path: Path, stems: set[str]) -> str | None:
    try:
        inside = set(os.listdir(path))
    except OSError as exc:
        return f"its .dist-info cannot be read ({exc.strerror})"
    if "METADATA" not in inside:
        return "its .dist-info has no METADATA" + (" (only temporary files)" if inside else "")
    if "INSTALLER" not in inside:
        return None  # written by a system package manager, not an installer we can judge
    if "RECORD" not in inside:
        return "its .dist-info has no RECORD"
    try:
        with open(path / "RECORD", "rb") as handle:
            head = handle.read(RECORD_HEAD).decode("utf-8", "replace")
    except OSError as exc:
        return f"its RECORD cannot be read ({exc.strerror})"
    lines = head.splitlines()
    if len(head) == RECORD_HEAD and lines:
        lines.pop()  # cut in the middle
    for line in lines:
        first = line.split(",", 1)[0].strip('"').split("/", 1)[0]
        if not first or first in ("..", path.name) or first.endswith((".dist-info", ".data")) \
                or first == "__pycache__":
            continue
        if first.split(".", 1)[0] not in stems:
            return f"{first} is missing, which its RECORD lists"
    return None


def repair(python: str) -> list[str]:
    """Remove the ``.dist-info`` of every half-installed distribution of ``python``.

    Returns one line per distribution for the report. The installer that runs next
    installs them again where something still asks for them.
    """
    import shutil

    done = []
    for half in inspect(python).half_installed():
        try:
            shutil.rmtree(half.path)
        except OSError as exc:
            done.append(f"{half.label} is half installed ({half.reason}) and could not be "
                        f"removed: {exc.strerror}")
            continue
        done.append(f"{half.label} was half installed ({half.reason}): removed its "
                    ".dist-info to install it again")
    return done
