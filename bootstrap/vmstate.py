"""What was restored on this VM: a small JSON record on the VM's local disk.

The record lives outside the store on purpose: the store outlives the VM, this
record must not. It sits in ``$XDG_CACHE_HOME/notebook-bootstrap/`` (default
``~/.cache``; ``BOOTSTRAP_STATE_DIR`` overrides) and carries the kernel's boot
id (``/proc/sys/kernel/random/boot_id``), so a record that survived a reboot
or was copied to another machine is ignored rather than believed. A kernel
restart keeps it: same VM, same boot id.

Written after a successful restore (not a dry run), masked of secrets; read by ``%env_status``,
which re-checks it with a dry run to say whether it still holds.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .platform import cache_home

FILE_NAME = "vm-state.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass
class Restored:
    """One successful restore: what to run again to check that it still holds."""

    profile: str                      # the profile's name, for people
    spec: str                         # what was asked for: a name, path or URL
    store: str                        # the store root it was looked up in
    python: str                       # the interpreter packages went into
    only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    boot_id: str | None = None
    at: float = 0.0                   # time.time() when it finished
    headline: str = ""                # the report's one-line summary

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("BOOTSTRAP_STATE_DIR"):
        return Path(environ["BOOTSTRAP_STATE_DIR"]).expanduser()
    return cache_home(environ)


def state_path(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / FILE_NAME


def boot_id() -> str | None:
    """This boot's id (Linux); None where the system does not say."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def this_boot(data: Any) -> bool:
    """Whether ``data`` (a record read back from the local state folder) was written on
    this boot: one that survived a reboot or was copied from another VM does not count."""
    return isinstance(data, dict) and data.get("boot_id") == boot_id()


def record(restored: Restored, environ: Mapping[str, str] | None = None) -> Path:
    """Write ``restored`` as the last restore on this VM; raises StoreError on failure."""
    from .fileio import write_atomic
    from .redact import mask

    # a spec given as a URL may carry a token: the record keeps it masked
    restored.spec, restored.headline = mask(restored.spec), mask(restored.headline)
    restored.profile = mask(restored.profile)
    if restored.boot_id is None:
        restored.boot_id = boot_id()
    if not restored.at:
        restored.at = time.time()
    path = state_path(environ)
    write_atomic(path, (json.dumps(asdict(restored), indent=1) + "\n").encode())
    return path


def last(environ: Mapping[str, str] | None = None) -> Restored | None:
    """The last restore on this VM, or None (none yet, unreadable, or from another boot)."""
    path = state_path(environ)
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not this_boot(data):
        return None
    try:
        return Restored(**{k: v for k, v in data.items() if k in Restored.__dataclass_fields__})
    except TypeError:
        return None


# -- markers: "this ran on this VM" -------------------------------------------------
#
# One marker per thing that ran (a setup notebook, a ``once = true`` entry), in
# ``KIND-markers/KEY.json`` of the state folder. The key is a digest of what ran
# (the notebook and its parameters, the entry's content), so an edited entry
# has another key and runs again; the boot id makes a marker from before a
# reboot count for nothing. ``--force`` is the caller's: it just does not ask.

def mark_path(kind: str, key: str, environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / f"{kind}-markers" / f"{key}.json"


def find_mark(kind: str, key: str, environ: Mapping[str, str] | None = None
              ) -> dict[str, Any] | None:
    """The marker ``key`` of ``kind`` written on this boot, or None."""
    try:
        data = json.loads(mark_path(kind, key, environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not this_boot(data) or data.get("key") != key:
        return None
    return data


def save_mark(kind: str, key: str, data: Mapping[str, Any],
              environ: Mapping[str, str] | None = None) -> Path:
    """Record that ``key`` of ``kind`` ran on this VM; raises StoreError on failure.

    The folder is private to the user: a marker may hold values a setup notebook
    exported."""
    from .errors import StoreError
    from .fileio import write_atomic

    path = mark_path(kind, key, environ)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot keep a marker: {exc.strerror}", where=str(path.parent),
                         hint="check that the local state folder (BOOTSTRAP_STATE_DIR, "
                              "default ~/.cache/notebook-bootstrap) is writable") from None
    record_ = {**data, "key": key, "boot_id": boot_id(), "at": time.time()}
    write_atomic(path, (json.dumps(record_, ensure_ascii=False, indent=1, sort_keys=True)
                        + "\n").encode())
    return path
