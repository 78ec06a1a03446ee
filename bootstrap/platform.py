"""Where we run: Google Colab, Kaggle or a plain machine, and the defaults that follow.

Detection happens when asked (``detect()``), never at import. The answer gives
the Drive root (the folder that outlives the VM), the store root inside it and
the order in which secret sources are tried.

Detection, first match wins: ``BOOTSTRAP_PLATFORM`` (colab, kaggle or local;
for tests and unusual hosts), ``COLAB_RELEASE_TAG`` (set on every Colab VM),
``KAGGLE_KERNEL_RUN_TYPE`` (Interactive or Batch on Kaggle), an importable
``google.colab``; else a plain machine.

Defaults per platform:

    platform  Drive root               store root                  secret sources
    colab     /content/drive/MyDrive   <drive>/.bootstrap          colab, dotenv, environ
    kaggle    /kaggle/working          /kaggle/working/.bootstrap  kaggle, dotenv, environ
    local     $XDG_DATA_HOME/notebook-bootstrap/drive
                                       $XDG_DATA_HOME/notebook-bootstrap
                                                                   dotenv, environ

``--drive``/``BOOTSTRAP_DRIVE`` replace the Drive root (on Colab and Kaggle the
store moves with it); ``--store``/``BOOTSTRAP_STORE`` replace the store root.
``BOOTSTRAP_COLAB_MOUNTPOINT`` moves Colab's mountpoint (tests use it).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

COLAB_MOUNTPOINT = "/content/drive"
KAGGLE_WORKING = "/kaggle/working"


@dataclass(frozen=True)
class Platform:
    name: str                 # "colab", "kaggle" or "local"
    drive_root: Path          # where the user's persistent files live
    store_root: Path          # the persistent folder of notebook-bootstrap
    mountpoint: Path | None   # Colab's Drive mountpoint; None where nothing is mounted
    secret_sources: tuple[str, ...]
    #: where drive_root came from: "default", "--drive" or "BOOTSTRAP_DRIVE"
    drive_origin: str = "default"

    @property
    def label(self) -> str:
        return {"colab": "Google Colab", "kaggle": "Kaggle"}.get(self.name, "local machine")


def _data_home(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")).expanduser()
                                               / ".local" / "share")
    return Path(base) / "notebook-bootstrap"


def detect_name(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    forced = environ.get("BOOTSTRAP_PLATFORM")
    if forced in ("colab", "kaggle", "local"):
        return forced
    if "COLAB_RELEASE_TAG" in environ:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in environ:
        return "kaggle"
    try:
        if importlib.util.find_spec("google.colab") is not None:
            return "colab"
    except (ImportError, ValueError):
        pass
    return "local"


def detect(environ: Mapping[str, str] | None = None, *, store: str | os.PathLike[str] | None = None,
           drive: str | os.PathLike[str] | None = None) -> Platform:
    """Describe this machine; ``store``/``drive`` (or BOOTSTRAP_STORE/BOOTSTRAP_DRIVE) override."""
    environ = os.environ if environ is None else environ
    name = detect_name(environ)
    mountpoint: Path | None = None
    if name == "colab":
        mountpoint = Path(environ.get("BOOTSTRAP_COLAB_MOUNTPOINT", COLAB_MOUNTPOINT))
        drive_root = mountpoint / "MyDrive"
        store_root = drive_root / ".bootstrap"
        secrets: tuple[str, ...] = ("colab", "dotenv", "environ")
    elif name == "kaggle":
        drive_root = Path(KAGGLE_WORKING)
        store_root = drive_root / ".bootstrap"
        secrets = ("kaggle", "dotenv", "environ")
    else:
        drive_root = _data_home(environ) / "drive"
        store_root = _data_home(environ)
        secrets = ("dotenv", "environ")
    drive_origin = "--drive" if drive else "BOOTSTRAP_DRIVE" if environ.get("BOOTSTRAP_DRIVE") \
        else "default"
    drive_override = drive or environ.get("BOOTSTRAP_DRIVE")
    if drive_override:
        drive_root = Path(drive_override).expanduser()
        if name != "local":
            store_root = drive_root / ".bootstrap"
    store_override = store or environ.get("BOOTSTRAP_STORE")
    if store_override:
        store_root = Path(store_override).expanduser()
    return Platform(name, drive_root, store_root, mountpoint, secrets, drive_origin)
