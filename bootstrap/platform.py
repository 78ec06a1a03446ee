"""Where we run: Google Colab, Kaggle or a plain machine, and the defaults that follow.

Detection happens when asked (``detect()``), never at import. The answer gives
the Drive root (the folder that outlives the VM), the store root inside it,
the order in which secret sources are tried, and what the report should say
once about where the store lives.

Detection, first match wins:

- ``BOOTSTRAP_PLATFORM`` (colab, kaggle or local; for tests and unusual hosts);
- Kaggle: ``KAGGLE_KERNEL_RUN_TYPE`` (Interactive or Batch), ``KAGGLE_URL_BASE``
  or ``KAGGLE_DATA_PROXY_URL``; ``ISTPUVM=1`` is Kaggle's TPU image. Kaggle's
  GPU and CPU images are built on Colab's, so Colab's variables are set there
  too: Kaggle is asked first;
- Colab: ``COLAB_RELEASE_TAG``, or an importable ``google.colab``. Then
  ``VERTEX_PRODUCT=COLAB_ENTERPRISE`` is Colab Enterprise and a missing
  ``/var/colab/hostname`` is Colab's image run as a local runtime; on neither
  can Google Drive be mounted (colabtools raises NotImplementedError), so the
  store stays on this machine as on a plain one;
- else a plain machine.

Defaults per platform:

    platform  Drive root               store root                  secret sources
    colab     /content/drive/MyDrive   <drive>/.bootstrap          colab, dotenv, environ
    kaggle    /kaggle/working          /kaggle/working/.bootstrap  kaggle, dotenv, environ
    local     $XDG_DATA_HOME/notebook-bootstrap/drive
                                       $XDG_DATA_HOME/notebook-bootstrap
                                                                   dotenv, environ

Colab Enterprise and Colab's local runtime take the plain machine's folders
(Colab's secrets stay first on a local runtime, whose page still answers).

``--drive``/``BOOTSTRAP_DRIVE`` replace the Drive root (on Colab and Kaggle the
store moves with it); ``--store``/``BOOTSTRAP_STORE`` replace the store root.
``BOOTSTRAP_COLAB_MOUNTPOINT`` moves Colab's mountpoint,
``BOOTSTRAP_COLAB_HOSTNAME`` the file that marks a Colab VM and
``BOOTSTRAP_KAGGLE_ROOT`` the ``/kaggle`` folder (tests use them).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

COLAB_MOUNTPOINT = "/content/drive"
#: present on every Colab VM; colabtools refuses to mount Drive where it is missing
COLAB_HOSTNAME = "/var/colab/hostname"
KAGGLE_ROOT = "/kaggle"
KAGGLE_WORKING = "/kaggle/working"


@dataclass(frozen=True)
class Platform:
    name: str                 # "colab", "kaggle" or "local": the key of [platforms.NAME]
    drive_root: Path          # where the user's persistent files live
    store_root: Path          # the persistent folder of notebook-bootstrap
    mountpoint: Path | None   # Colab's Drive mountpoint; None where Drive cannot be mounted
    secret_sources: tuple[str, ...]
    #: where drive_root came from: "default", "--drive" or "BOOTSTRAP_DRIVE"
    drive_origin: str = "default"
    #: which runtime of the platform: "vm", "tpu" (Kaggle's TPU image), "enterprise"
    #: (Colab Enterprise) or "local-runtime" (Colab's image off a Colab VM)
    variant: str = "vm"
    #: said once in the report: where the store lives when that is not obvious
    notes: tuple[str, ...] = ()
    #: Kaggle's /kaggle folder (``input/`` holds attached datasets); None elsewhere
    kaggle_root: Path | None = None

    @property
    def label(self) -> str:
        return _LABELS.get((self.name, self.variant)) \
            or {"colab": "Google Colab", "kaggle": "Kaggle"}.get(self.name, "local machine")


_LABELS = {("colab", "enterprise"): "Colab Enterprise",
           ("colab", "local-runtime"): "Colab runtime image (local runtime)",
           ("kaggle", "tpu"): "Kaggle (TPU VM)"}
_KAGGLE_VARIABLES = ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "KAGGLE_DATA_PROXY_URL")


def cache_home(environ: Mapping[str, str] | None = None) -> Path:
    """This package's folder in the user's cache: VM-local, gone with the VM.

    ``$XDG_CACHE_HOME/notebook-bootstrap``, default ``~/.cache/notebook-bootstrap``.
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME", "~"), ".cache")
    return Path(base).expanduser() / "notebook-bootstrap"


def _data_home(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")).expanduser()
                                               / ".local" / "share")
    return Path(base) / "notebook-bootstrap"


def detect_name(environ: Mapping[str, str] | None = None) -> str:
    return _detect(os.environ if environ is None else environ)[0]


def _detect(environ: Mapping[str, str]) -> tuple[str, str]:
    """(platform, variant)."""
    forced = environ.get("BOOTSTRAP_PLATFORM")
    if forced in ("colab", "kaggle", "local"):
        return forced, _variant(forced, environ)
    if any(name in environ for name in _KAGGLE_VARIABLES) or environ.get("ISTPUVM") == "1":
        return "kaggle", _variant("kaggle", environ)
    if "COLAB_RELEASE_TAG" in environ or _colab_importable():
        return "colab", _variant("colab", environ)
    return "local", "vm"


def _colab_importable() -> bool:
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


def _variant(name: str, environ: Mapping[str, str]) -> str:
    if name == "kaggle":
        return "tpu" if environ.get("ISTPUVM") == "1" else "vm"
    if name == "colab":
        if environ.get("VERTEX_PRODUCT") == "COLAB_ENTERPRISE":
            return "enterprise"
        if not os.path.exists(environ.get("BOOTSTRAP_COLAB_HOSTNAME", COLAB_HOSTNAME)):
            return "local-runtime"
    return "vm"


def detect(environ: Mapping[str, str] | None = None, *, store: str | os.PathLike[str] | None = None,
           drive: str | os.PathLike[str] | None = None) -> Platform:
    """Describe this machine; ``store``/``drive`` (or BOOTSTRAP_STORE/BOOTSTRAP_DRIVE) override."""
    environ = os.environ if environ is None else environ
    name, variant = _detect(environ)
    mountpoint: Path | None = None
    kaggle_root: Path | None = None
    secrets: tuple[str, ...]
    if name == "colab" and variant == "vm":
        mountpoint = Path(environ.get("BOOTSTRAP_COLAB_MOUNTPOINT", COLAB_MOUNTPOINT))
        drive_root = mountpoint / "MyDrive"
        store_root = drive_root / ".bootstrap"
        secrets = ("colab", "dotenv", "environ")
    elif name == "kaggle":
        kaggle_root = Path(environ.get("BOOTSTRAP_KAGGLE_ROOT", KAGGLE_ROOT))
        drive_root = kaggle_root / "working"
        store_root = drive_root / ".bootstrap"
        secrets = ("kaggle", "dotenv", "environ")
    else:
        drive_root = _data_home(environ) / "drive"
        store_root = _data_home(environ)
        secrets = ("colab", "dotenv", "environ") if variant == "local-runtime" \
            else ("dotenv", "environ")
    drive_origin = "--drive" if drive else "BOOTSTRAP_DRIVE" if environ.get("BOOTSTRAP_DRIVE") \
        else "default"
    drive_override = drive or environ.get("BOOTSTRAP_DRIVE")
    if drive_override:
        drive_root = Path(drive_override).expanduser()
        if name != "local" and not (name == "colab" and variant != "vm"):
            store_root = drive_root / ".bootstrap"
    store_override = store or environ.get("BOOTSTRAP_STORE")
    if store_override:
        store_root = Path(store_override).expanduser()
    notes = _store_notes(name, variant, store_root, bool(store_override or drive_override))
    return Platform(name, drive_root, store_root, mountpoint, secrets, drive_origin, variant,
                    notes, kaggle_root)


def _store_notes(name: str, variant: str, store_root: Path, chosen: bool) -> tuple[str, ...]:
    """What the report says once when the default store may not outlive the session."""
    if chosen:
        return ()
    if name == "colab" and variant == "enterprise":
        return (f"Google Drive cannot be mounted on Colab Enterprise: the store is {store_root} "
                "on this runtime's disk; set BOOTSTRAP_STORE to a folder that outlives it",)
    if name == "colab" and variant == "local-runtime":
        return (f"Google Drive cannot be mounted in Colab's image run as a local runtime: the "
                f"store is {store_root} in this container; set BOOTSTRAP_STORE to a folder "
                "mounted from the host to keep it",)
    return ()


# -- can Colab's page be reached? --------------------------------------------------
#
# Mounting Drive and reading Colab's secrets both ask the notebook page, through
# the kernel that runs the page's cell (google.colab._message). Without such a
# kernel they fail in ways that say nothing to the user: a plain process
# (`!bootstrap restore` in a cell) gets AttributeError: 'NoneType' object has no
# attribute 'kernel'; a kernel run from elsewhere (papermill, VS Code) waits for
# an answer that never comes (2 minutes for Drive, 10 s per secret).

PAGE = "page"         # a kernel running a cell that Colab's page sent
KERNEL = "kernel"     # a kernel, but its request came from another client
PROCESS = "process"   # no kernel at all


def colab_page(environ: Mapping[str, str] | None = None) -> str:
    """How this code reaches Colab's page: PAGE, KERNEL or PROCESS.

    Colab's page sends every cell with ``metadata.colab`` in the request
    (colabtools reads the cell id from there); other clients do not. Only an
    IPython that is already imported is looked at. ``BOOTSTRAP_COLAB_PAGE``
    (page, kernel or process) overrides the answer.
    """
    environ = os.environ if environ is None else environ
    forced = environ.get("BOOTSTRAP_COLAB_PAGE")
    if forced in (PAGE, KERNEL, PROCESS):
        return forced
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if getattr(shell, "kernel", None) is None:
        return PROCESS
    header = getattr(shell, "parent_header", None)
    metadata = header.get("metadata") if isinstance(header, dict) else None
    return PAGE if isinstance(metadata, dict) and "colab" in metadata else KERNEL
