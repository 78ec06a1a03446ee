"""The target Python: its site-packages, environment markers and installed distributions.

Read in-process from the file system (``importlib.metadata`` over the target's
paths), so checking whether requirements hold starts no process for a
virtual environment or the running interpreter.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import OptionError


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
        """Installed distributions by canonical name; the first on the path wins."""
        from packaging.utils import canonicalize_name

        found: dict[str, metadata.Distribution] = {}
        for dist in metadata.distributions(path=list(self.paths)):
            name = dist.metadata["Name"] if dist.metadata else None
            if not name:
                continue
            found.setdefault(canonicalize_name(name), dist)
        return found

    @property
    def site_packages(self) -> Path:
        for entry in self.paths:
            if entry.endswith(("site-packages", "dist-packages")):
                return Path(entry)
        return Path(self.paths[-1])


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
        raise OptionError(f"no Python at {python}", where="--python",
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
