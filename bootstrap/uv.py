"""uv, the installer: where its binary is, the environment it runs in, and every command line.

Every uv process of notebook-bootstrap is built here, so the settings that
must hold for all of them (which interpreter, which environment variables are
cleared) are decided once. Callers run the argv through ``Context.run``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence

from .errors import StepError

#: uv settings read from the environment that silently change what gets
#: installed; Colab's image presets the first two to a file that does not exist.
OVERRIDES = ("UV_CONSTRAINT", "UV_BUILD_CONSTRAINT", "UV_OVERRIDE", "UV_EXCLUDE_NEWER",
             "UV_RESOLUTION", "UV_PRERELEASE", "UV_NO_BUILD_ISOLATION", "UV_PYTHON",
             "UV_SYSTEM_PYTHON", "UV_BREAK_SYSTEM_PACKAGES", "UV_TORCH_BACKEND",
             "UV_NO_VERIFY_HASHES")


def binary() -> str:
    """The uv executable: BOOTSTRAP_UV, else the one of the ``uv`` package, else PATH's."""
    override = os.environ.get("BOOTSTRAP_UV")
    if override:
        return override
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise StepError("uv is not installed", step="pip",
                    hint="pip install uv (notebook-bootstrap depends on it)")


def environment(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """A copy of ``environ`` without uv settings that would change the install, and the
    ``NAME=value`` settings that were cleared (for the report)."""
    env = dict(environ)
    cleared = [f"{name}={env.pop(name)}" for name in OVERRIDES if name in env]
    return env, cleared


def pip_install(python: str, *args: str) -> list[str]:
    """``uv pip install`` into ``python`` with ``args`` (options, then requirements)."""
    return [binary(), "pip", "install", "--python", python, *args]


def install_exactly(python: str, folder: str, requirements: str,
                    reinstall: Sequence[str] = ()) -> list[str]:
    """Install the pinned, hashed requirements file from the wheels of ``folder`` alone:
    no index, no network, no build, no resolution (``--no-deps``)."""
    argv = pip_install(python, "--offline", "--no-index", "--find-links", folder, "--no-deps",
                       "--no-build", "--require-hashes")
    for name in reinstall:
        argv += ["--reinstall-package", name]
    return argv + ["--requirement", requirements]


def compile_lock(python: str, output: str, inputs: Sequence[str], options: Sequence[str], *,
                 no_deps: bool = False, upgrade: bool = False,
                 upgrade_packages: Sequence[str] = (), constraints: str | None = None,
                 background: bool = False, pylock: bool = True) -> list[str]:
    """``uv pip compile`` of ``inputs`` (requirements files, pyproject.toml files) into a
    PEP 751 ``output``. uv keeps the versions an existing ``output`` names where it
    can; ``upgrade`` or ``upgrade_packages`` take the newest instead. ``background``:
    at a lower CPU priority (``nice``). ``pylock=False``: a requirements file of pins.
    """
    nice = shutil.which("nice") if background else None
    argv = [*([nice, "-n", "10"] if nice else []), binary(), "pip", "compile", "--quiet",
            "--python", python, "--output-file", output, *options]
    argv += ["--format", "pylock.toml"] if pylock else ["--no-header", "--no-annotate"]
    if no_deps:
        argv.append("--no-deps")
    if upgrade:
        argv.append("--upgrade")
    for name in upgrade_packages:
        argv += ["--upgrade-package", name]
    if constraints:
        argv += ["--constraint", constraints]
    return argv + list(inputs)


def build_wheel(python: str, source: str, out_dir: str, *,
                no_build_isolation: bool = False, options: Sequence[str] = ()) -> list[str]:
    """``uv build`` of one wheel from ``source`` (an sdist or a source folder)."""
    argv = [binary(), "build", "--quiet", "--wheel", "--python", python, "--out-dir", out_dir,
            *options]
    if no_build_isolation:
        argv.append("--no-build-isolation")
    return argv + [source]


def venv(base: str, path: str, *, system_site_packages: bool = False) -> list[str]:
    """``uv venv`` at ``path`` from the interpreter ``base`` (a path or a version)."""
    argv = [binary(), "venv", "--quiet", "--python", base]
    if system_site_packages:
        argv.append("--system-site-packages")
    return argv + [path]
