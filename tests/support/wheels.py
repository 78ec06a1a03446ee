"""Tiny real wheels, sdists and source projects built by the tests, so installs need no internet.

    build_wheel(folder, "alpha", "1.0")              # folder/alpha-1.0-py3-none-any.whl
    build_sdist(folder, "alpha", "1.0")              # folder/alpha-1.0.tar.gz
    write_project(folder, "hello-tools", "0.3")      # pyproject.toml + backend.py + module

By default a distribution holds one module named like it whose ``VERSION``
attribute is the version, so a test can import it and check.

Source projects (and sdists) carry one in-tree PEP 517/660 build backend
(``BACKEND``) that needs no download: ``build_wheel`` packs the project's
modules, and ``build_editable`` makes a wheel holding only a ``.pth`` file that
puts the project folder on ``sys.path``, so edits to the source show at once.
The backend writes its wheels with a copy of :func:`write_wheel`, the same
function ``build_wheel`` here uses.
"""

from __future__ import annotations

import inspect
import io
import json
import tarfile
from pathlib import Path
from typing import Iterable, Mapping


def write_wheel(directory: str | Path, name: str, version: str, files: Mapping[str, bytes],
                requires: Iterable[str] = (),
                extras: Mapping[str, Iterable[str]] | None = None) -> str:
    """Write ``<module>-<version>-py3-none-any.whl`` into ``directory``: ``files`` (path ->
    bytes) and a dist-info with these requirements. Returns the wheel's file name.

    Self-contained (imports inside): the in-tree backend carries a copy of this source.
    """
    import base64
    import hashlib
    import os
    import zipfile

    module = name.replace("-", "_").lower()
    dist_info = f"{module}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {req}" for req in requires]
    for extra, reqs in (extras or {}).items():
        meta.append(f"Provides-Extra: {extra}")
        meta += [f'Requires-Dist: {req}; extra == "{extra}"' for req in reqs]
    files = dict(files)
    files[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: tests\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    files[f"{dist_info}/top_level.txt"] = (module + "\n").encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, filename), "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return filename


def _modules(name: str, version: str, modules: Mapping[str, str] | None,
             package: bool) -> dict[str, str]:
    """``modules``, or by default one module (``package``: a package) holding ``VERSION``."""
    if modules:
        return dict(modules)
    module = name.replace("-", "_").lower()
    return {f"{module}/__init__.py" if package else f"{module}.py": f"VERSION = {version!r}\n"}


def build_wheel(folder: Path, name: str, version: str, *, requires: Iterable[str] = (),
                extras: Mapping[str, Iterable[str]] | None = None,
                modules: Mapping[str, str] | None = None) -> Path:
    """Write ``name-version-py3-none-any.whl`` into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {path: text.encode()
             for path, text in _modules(name, version, modules, False).items()}
    return folder / write_wheel(folder, name, version, files, requires, extras)


BACKEND = ('"""An in-tree PEP 517/660 build backend written by the tests: '
           'no dependencies, no downloads."""\n' r'''from __future__ import annotations

import os

NAME, VERSION, REQUIRES, MODULES, RECORD_ENV = @SETTINGS@
ROOT = os.path.dirname(os.path.abspath(__file__))
MODULE = NAME.replace("-", "_").lower()


@WRITE_WHEEL@

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {}
    for rel in MODULES:
        with open(os.path.join(ROOT, rel), "rb") as handle:
            files[rel] = handle.read()
    if RECORD_ENV:  # what the build saw, for tests of the environment builds run in
        seen = {name: os.environ.get(name) for name in RECORD_ENV}
        files[MODULE + "_build.py"] = ("ENV = " + repr(seen) + "\n").encode()
    return write_wheel(wheel_directory, NAME, VERSION, files, REQUIRES)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = {"__editable__." + MODULE + ".pth": (ROOT + "\n").encode()}
    return write_wheel(wheel_directory, NAME, VERSION, pth, REQUIRES)


def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError
''')


def project_files(name: str, version: str, *, requires: Iterable[str] = (),
                  modules: Mapping[str, str] | None = None, package: bool = False,
                  record_env: Iterable[str] = ()) -> dict[str, str]:
    """The files of a buildable project: pyproject.toml, backend.py and its modules.

    By default one module ``<name>.py`` (``package``: ``<name>/__init__.py``) whose
    ``VERSION`` is the version. With ``record_env`` a (non-editable) build adds
    ``<name>_build.py`` whose ``ENV`` holds those variables as the build saw them.
    """
    modules = _modules(name, version, modules, package)
    settings = repr((name, version, list(requires), sorted(modules), list(record_env)))
    backend = (BACKEND.replace("@SETTINGS@", settings)
               .replace("@WRITE_WHEEL@", inspect.getsource(write_wheel)))
    pyproject = ("[build-system]\nrequires = []\nbuild-backend = \"backend\"\n"
                 "backend-path = [\".\"]\n\n"
                 f"[project]\nname = \"{name}\"\nversion = \"{version}\"\n"
                 f"dependencies = {json.dumps(list(requires))}\n")
    return {"pyproject.toml": pyproject, "backend.py": backend, **modules}


def write_project(folder: Path, name: str, version: str, **options) -> Path:
    """Write :func:`project_files` (same options) into ``folder``; returns the folder."""
    for rel, text in project_files(name, version, **options).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def build_sdist(folder: Path, name: str, version: str, *, requires: Iterable[str] = (),
                modules: Mapping[str, str] | None = None) -> Path:
    """Write ``name-version.tar.gz``: the project of :func:`project_files` and PKG-INFO."""
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{name.replace('-', '_').lower()}-{version}"
    files = project_files(name, version, requires=requires, modules=modules)
    files["PKG-INFO"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    path = folder / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
