"""Tiny real wheels (and sdists) built by the tests, so installs need no internet."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Iterable, Mapping


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(folder: Path, name: str, version: str, *, requires: Iterable[str] = (),
                extras: Mapping[str, Iterable[str]] | None = None,
                modules: Mapping[str, str] | None = None) -> Path:
    """Write ``name-version-py3-none-any.whl`` into ``folder`` and return its path.

    By default the wheel holds one module named like the distribution whose
    ``VERSION`` attribute is the version, so a test can import it and check.
    """
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_").lower()
    modules = dict(modules or {f"{module}.py": f"VERSION = {version!r}\n"})
    dist_info = f"{module}-{version}.dist-info"
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {req}" for req in requires]
    for extra, reqs in (extras or {}).items():
        meta.append(f"Provides-Extra: {extra}")
        meta += [f'Requires-Dist: {req}; extra == "{extra}"' for req in reqs]
    files = {path: text.encode() for path, text in modules.items()}
    files[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: tests\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    files[f"{dist_info}/top_level.txt"] = (module + "\n").encode()
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name_in_zip, data in files.items():
            zf.writestr(name_in_zip, data)
    return path


def build_sdist(folder: Path, name: str, version: str, *, requires: Iterable[str] = (),
                modules: Mapping[str, str] | None = None) -> Path:
    """Write an sdist that carries its own in-tree PEP 517 backend.

    Building it needs no download: ``backend.py`` writes the same wheel as
    build_wheel would.
    """
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_").lower()
    modules = dict(modules or {f"{module}.py": f"VERSION = {version!r}\n"})
    base = f"{module}-{version}"
    reqs = ", ".join(repr(r) for r in requires)
    backend = (BACKEND_TEMPLATE
               .replace("@NAME@", name).replace("@VERSION@", version)
               .replace("@REQUIRES@", reqs).replace("@MODULES@", repr(modules)))
    pyproject = ("[build-system]\nrequires = []\nbuild-backend = \"backend\"\n"
                 "backend-path = [\".\"]\n"
                 f"[project]\nname = \"{name}\"\nversion = \"{version}\"\n")
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    path = folder / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for rel, text in {"pyproject.toml": pyproject, "backend.py": backend,
                          "PKG-INFO": pkg_info}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


BACKEND_TEMPLATE = '''
import base64, hashlib, zipfile

NAME, VERSION, REQUIRES, MODULES = "@NAME@", "@VERSION@", [@REQUIRES@], @MODULES@


def _h(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    module = NAME.replace("-", "_").lower()
    di = f"{module}-{VERSION}.dist-info"
    meta = [f"Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {VERSION}"]
    meta += [f"Requires-Dist: {r}" for r in REQUIRES]
    files = {p: t.encode() for p, t in MODULES.items()}
    files[di + "/METADATA"] = ("\\n".join(meta) + "\\n").encode()
    files[di + "/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    rec = [f"{p},{_h(d)},{len(d)}" for p, d in files.items()] + [di + "/RECORD,,"]
    files[di + "/RECORD"] = ("\\n".join(rec) + "\\n").encode()
    name = f"{module}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel_directory + "/" + name, "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return name


def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError
'''
