"""Fresh virtual environments standing for a fresh VM's Python, and what is in them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def uv() -> str:
    from bootstrap.uv import binary as uv_binary

    return uv_binary()


def make_venv(path: Path, *, seed: bool = False) -> Path:
    """A fresh virtual environment (uv venv); returns its python."""
    argv = [uv(), "venv", "--quiet", "--python", sys.executable, str(path)]
    if seed:
        argv.insert(3, "--seed")
    subprocess.run(argv, check=True)
    return path / "bin" / "python"


def installed(python: Path) -> dict[str, str]:
    """name -> version of what is installed in the venv of ``python`` (read from disk)."""
    from bootstrap.interpreter import Interpreter, inspect

    inspect.cache_clear()
    interp: Interpreter = inspect(str(python))
    return {name: dist.version for name, dist in interp.distributions().items()}
