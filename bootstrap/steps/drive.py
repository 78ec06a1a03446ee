"""The ``drive`` step: the folder that outlives the VM is there (on Colab: Drive is mounted).

Reads: ``[drive]`` (``mount``, default true; ``mountpoint``, default the
platform's ``/content/drive``), the platform's Drive root and where it came
from (default, ``--drive`` or ``BOOTSTRAP_DRIVE``).
Changes: on Colab, mounts Google Drive with ``google.colab.drive.mount``;
elsewhere, creates the default Drive root folder when it is missing. A custom
``mountpoint`` moves ``{drive}`` to ``<mountpoint>/MyDrive`` for the steps
after this one (``ctx.platform`` is replaced; the store stays where it was
found).

When it runs: when the profile has ``[drive]``; on Colab also when the profile
needs Drive without saying so, that is when any value uses ``{drive}`` or
``{store}`` (the store lives on Drive there), a ``[[files]]`` entry copies
from the store, or a path is relative (relative paths are taken against the
Drive root). An absolute path such as ``/content/project`` needs no Drive.

On Colab Drive counts as mounted when a file system is mounted at the
mountpoint (``os.path.ismount``; Drive's is ``fuse.drive``) and shows
``MyDrive`` (or ``My Drive``); a ``MyDrive`` folder on the VM's own disk is
refused, as files kept there are lost with the VM. Mounting asks the notebook
page for access, so it is only tried from a kernel running a cell of the page
(``platform.colab_page``): a plain process (``!bootstrap restore`` in a cell)
or a kernel run from elsewhere (papermill, VS Code) uses a Drive that is
already mounted and otherwise fails at once, saying to run ``%restore_env``
in the notebook or to mount Drive in a cell first. Drive's "timeout during
initial read of root folder" is retried with a growing pause
(``RETRY_DELAYS``); an access dialog left unanswered past Colab's timeout is
said as such. Where Drive cannot be mounted at all (Colab Enterprise, Colab's
image as a local runtime: no ``ctx.platform.mountpoint``) the Drive root is a
plain folder, as on any machine. With ``mount = false`` the step only checks
that Drive is there, and so it does on Colab when ``--drive``/``BOOTSTRAP_DRIVE``
put the Drive root outside the mountpoint.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ..context import Context
from ..errors import BootstrapError, EnvironmentMismatch, StepError
from ..platform import KERNEL, PAGE, Platform, colab_page, detect
from ..profile import Profile, builtin_dir, is_path, is_url
from ..schema import to_data
from . import Check

#: pauses before the 2nd and 3rd mount attempt after Drive's root-folder timeout
RETRY_DELAYS = (10.0, 30.0)
#: how the step waits between attempts; tests replace it
sleep: Callable[[float], None] = time.sleep

_TIMEOUT_TEXT = "timeout during initial read of root folder"
#: how long Colab waits for the answer to its Drive access dialog (drive.mount's timeout_ms)
AUTH_TIMEOUT = 120.0
_IN_A_CELL = "from google.colab import drive; drive.mount('{mountpoint}')"


def wanted(profile: Profile) -> bool:
    if profile.drive is not None:
        return True
    return detect().mountpoint is not None and needs_drive(profile)


def needs_drive(profile: Profile) -> bool:
    """Whether the profile uses the Drive root without a ``[drive]`` section: a value
    with ``{drive}`` or ``{store}``, a copy from the store, or a relative path (those are
    taken against the Drive root). An absolute path, under /content or not, needs none."""
    data = to_data(profile)
    data.pop("platforms", None)
    if _mentions(data, ("{drive}", "{store}")):
        return True
    return any(path is not None and _relative(path) for path in _paths(profile))


def _relative(path: str) -> bool:
    return not path.startswith(("/", "~", "{"))


def _paths(profile: Profile) -> list[str | None]:
    """Every path of the profile that a relative value would put under the Drive root."""
    out: list[str | None] = []
    if profile.workdir is not None:
        out.append(profile.workdir.path)
    if profile.setup is not None:
        out += [profile.setup.notebook, profile.setup.cwd]
    for entry in profile.files:
        out += [entry.dest, entry.source]
        if entry.store is not None:
            out.append(entry.store)  # the store is on Drive
    out += [repo.dest for repo in profile.git]
    out += [command.cwd for command in [*profile.build, *profile.run]]
    if profile.pip is not None:
        out += [getattr(entry, "path", None) for entry in profile.pip.packages]
    return out


def _mentions(value: Any, needles: tuple[str, ...]) -> bool:
    if isinstance(value, str):
        return any(needle in value for needle in needles)
    if isinstance(value, dict):
        return any(_mentions(v, needles) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, needles) for v in value)
    return False


# -- Colab ----------------------------------------------------------------------

def is_mounted(mountpoint: Path) -> bool:
    """A file system is mounted there and shows ``MyDrive`` (``My Drive`` on older runtimes)."""
    return os.path.ismount(mountpoint) and (
        (mountpoint / "MyDrive").is_dir() or (mountpoint / "My Drive").is_dir())


def mount_type(mountpoint: Path) -> str | None:
    """The file system type mounted at ``mountpoint``, from the mount table.

    ``fuse.drive`` for Drive.
    """
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        fields = line.split()
        # the table writes a space in a path as \040
        if len(fields) > 2 and fields[1].replace("\\040", " ") == str(mountpoint):
            found = fields[2]   # the last mount at a path is the one in force
    return found


def drive_folder(mountpoint: Path) -> Path:
    spaced = mountpoint / "My Drive"
    return spaced if spaced.is_dir() and not (mountpoint / "MyDrive").is_dir() \
        else mountpoint / "MyDrive"


def unreachable(mountpoint: Path, *, where: str, how: str) -> EnvironmentMismatch:
    """Drive is not mounted and nothing here can show Colab's access dialog."""
    in_a_cell = _IN_A_CELL.format(mountpoint=mountpoint)
    if how == KERNEL:
        return EnvironmentMismatch(
            f"Google Drive is not mounted at {mountpoint}, and this kernel is not connected to "
            "Colab's page, which must ask you for access", where=where,
            hint=f"mount Drive in a cell of the notebook open in Colab ({in_a_cell}), then run "
                 "again")
    return EnvironmentMismatch(
        f"Google Drive is not mounted at {mountpoint}, and only the notebook can mount it",
        where=where,
        hint=f"run %restore_env in the notebook instead, or mount Drive in a cell first "
             f"({in_a_cell}) and run this again")


def mount(mountpoint: Path, *, where: str, say: Callable[[str], None] | None = None,
          environ: Mapping[str, str] | None = None) -> None:
    """``google.colab.drive.mount(mountpoint)``, retried on Drive's root-folder timeout.

    Raises EnvironmentMismatch at once when Colab's page cannot be reached or
    this runtime cannot mount at all, StepError for every other refusal, each
    with what to do about it.
    """
    how = colab_page(environ)
    if how != PAGE:
        raise unreachable(mountpoint, where=where, how=how)
    try:
        from google.colab import drive as colab_drive
    except ImportError:
        raise EnvironmentMismatch(
            "google.colab is not importable, so Drive cannot be mounted", where=where,
            hint="this is not a Colab runtime: unset BOOTSTRAP_PLATFORM=colab, or set "
                 "mount = false in [drive] and point BOOTSTRAP_DRIVE at a folder") from None
    attempts = len(RETRY_DELAYS) + 1
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        try:
            colab_drive.mount(str(mountpoint), timeout_ms=int(AUTH_TIMEOUT * 1000))
            return
        except NotImplementedError as exc:
            raise EnvironmentMismatch(
                "Google Drive cannot be mounted on this runtime", where=where, details=str(exc),
                hint="keep the store and your files on this machine's disk or another "
                     "persistent folder: set BOOTSTRAP_STORE and BOOTSTRAP_DRIVE") from None
        except AttributeError as exc:
            # colabtools' get_ipython().kernel in a process without a kernel
            if "kernel" not in str(exc):
                raise
            raise unreachable(mountpoint, where=where, how="process") from None
        except ValueError as exc:
            message = str(exc)
            if _TIMEOUT_TEXT in message and attempt < attempts:
                delay = RETRY_DELAYS[attempt - 1]
                if say is not None:
                    say(f"Drive timed out reading its root folder (attempt {attempt} of "
                        f"{attempts}); trying again in {delay:g} s")
                sleep(delay)
                continue
            if _TIMEOUT_TEXT in message:
                raise StepError(
                    f"Drive timed out reading its root folder {attempts} times", where=where,
                    details=message,
                    hint="a Drive with very many files in its root folder is slow to "
                         "mount: move files into sub-folders, or mount it in a cell and "
                         "run the restore again") from None
            if message == "mount failed" and time.monotonic() - started >= AUTH_TIMEOUT:
                raise StepError(
                    f"Drive was not mounted: Colab's access dialog got no answer within "
                    f"{AUTH_TIMEOUT:g} s", where=where, details=message,
                    hint="run again and answer the dialog (Connect to Google Drive) when it "
                         "shows, or mount Drive in a cell first: "
                         + _IN_A_CELL.format(mountpoint=mountpoint)) from None
            if message.startswith("Mountpoint"):
                hint = ("use an empty folder whose parent exists, with no space in its name "
                        "and no symlink, as [drive] mountpoint")
            else:
                hint = ("mount Drive in a cell to see Colab's own messages ("
                        + _IN_A_CELL.format(mountpoint=mountpoint) + "), then run again")
            raise StepError(f"Colab could not mount Drive at {mountpoint}: {message}",
                            where=where, hint=hint) from None
        except Exception as exc:
            # google.colab._message.MessageError: the user closed or refused the
            # authorisation dialog. Other errors are bugs and keep their traceback.
            if type(exc).__name__ != "MessageError":
                raise
            raise StepError(f"Drive was not mounted: {exc}", where=where,
                            hint="allow notebook-bootstrap's request for access to Google "
                                 "Drive in the dialog, or mount it in a cell: "
                                 + _IN_A_CELL.format(mountpoint=mountpoint)) from None


def _mountpoint(ctx: Context) -> Path:
    custom = ctx.profile.drive.mountpoint if ctx.profile.drive is not None else None
    if custom:
        return Path(ctx.expand(custom, "drive.mountpoint")).expanduser()
    return ctx.platform.mountpoint or Path("/content/drive")


def _follow(ctx: Context, mountpoint: Path) -> None:
    """Make ``{drive}`` and relative paths use this mountpoint's Drive folder."""
    platform = ctx.platform
    if platform.drive_origin != "default" or platform.mountpoint == mountpoint:
        return
    ctx.platform = dataclasses.replace(platform, mountpoint=mountpoint,
                                       drive_root=drive_folder(mountpoint))


def _colab_check(ctx: Context, mount_wanted: bool) -> Check:
    mountpoint = _mountpoint(ctx)
    _follow(ctx, mountpoint)
    root = ctx.platform.drive_root
    if is_mounted(mountpoint):
        if not root.is_dir():
            raise _missing_root(ctx, root)
        kind = mount_type(mountpoint)
        return Check(True, f"Drive mounted at {mountpoint} ({root}"
                           + (f", {kind})" if kind and kind != "fuse.drive" else ")"))
    stray = next((mountpoint / name for name in ("MyDrive", "My Drive")
                  if (mountpoint / name).exists()), None)
    if stray is not None and not os.path.ismount(mountpoint):
        raise EnvironmentMismatch(
            f"{stray} is a folder on this VM's disk, not Google Drive: nothing is mounted at "
            f"{mountpoint}", where=ctx.where("[drive]"),
            hint=f"files kept there are lost with the VM; move {mountpoint} away (e.g. "
                 f"!mv {mountpoint} {mountpoint}.local) so that Drive can be mounted there, "
                 "then run again")
    if not mount_wanted:
        raise EnvironmentMismatch(
            f"Drive is not mounted at {mountpoint}", where=ctx.where("drive.mount"),
            hint="mount it in a cell first (" + _IN_A_CELL.format(mountpoint=mountpoint)
                 + "), or set mount = true in [drive]")
    how = colab_page(ctx.environ)
    if how != PAGE:
        raise unreachable(mountpoint, where=ctx.where("[drive]"), how=how)
    return Check(False, f"mount Drive at {mountpoint}",
                 [f"mount Google Drive at {mountpoint}"], ("mount", mountpoint))


# -- elsewhere -----------------------------------------------------------------

def _missing_root(ctx: Context, root: Path) -> BootstrapError:
    origin = ctx.platform.drive_origin
    if origin == "default":
        return EnvironmentMismatch(
            f"the Drive root {root} does not exist", where="the default Drive root",
            hint="set BOOTSTRAP_DRIVE (or --drive) to the folder that holds your persistent "
                 "files")
    return EnvironmentMismatch(
        f"the Drive root {root} does not exist", where=f"{origin} (the Drive root)",
        hint=f"create the folder, or point {origin} at the folder that holds your "
             "persistent files")


def _folder_check(ctx: Context) -> Check:
    root = ctx.platform.drive_root
    if root.is_dir():
        return Check(True, f"Drive root {root}")
    if root.exists():
        raise EnvironmentMismatch(f"the Drive root {root} is not a folder",
                                  where=f"{ctx.platform.drive_origin} (the Drive root)",
                                  hint="point it at a folder")
    if ctx.platform.drive_origin != "default":
        raise _missing_root(ctx, root)
    return Check(False, f"create the Drive root {root}", [f"create {root}"], ("create", root))


# -- the step ------------------------------------------------------------------

def check(ctx: Context) -> Check:
    mount_wanted = ctx.profile.drive.mount if ctx.profile.drive is not None else True
    if ctx.platform.mountpoint is not None and _on_drive(ctx):
        return _colab_check(ctx, mount_wanted)
    return _folder_check(ctx)


def _on_drive(ctx: Context) -> bool:
    """On Colab, unless --drive/BOOTSTRAP_DRIVE put the Drive root outside the mountpoint."""
    root = ctx.platform.drive_root
    mountpoint = _mountpoint(ctx)
    return ctx.platform.drive_origin == "default" or root == mountpoint \
        or mountpoint in root.parents


def apply(ctx: Context, plan: Check) -> None:
    action, path = plan.data
    if action == "mount":
        mount(path, where=ctx.where("[drive]"), say=ctx.say, environ=ctx.environ)
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepError(f"cannot create the Drive root {path}: {exc.strerror}",
                        where="the default Drive root",
                        hint="set BOOTSTRAP_DRIVE or --drive to a folder you can write") from None


# -- before the profile is looked up --------------------------------------------

def before_lookup(platform: Platform, spec: str) -> None:
    """On Colab, mount Drive before a profile name is looked up in the store on it.

    A fresh VM has no Drive yet, so ``%restore_env vision`` would not find the
    profile saved in ``MyDrive/.bootstrap``. Paths and URLs need no store; a
    store moved off Drive (``BOOTSTRAP_STORE``) needs no mount. When mounting
    fails and a shipped profile has this name, the restore goes on with it.
    """
    mountpoint = platform.mountpoint
    if platform.name != "colab" or mountpoint is None or is_url(spec) or is_path(spec):
        return
    if mountpoint not in platform.store_root.parents or is_mounted(mountpoint):
        return
    try:
        mount(mountpoint, where=f"the store {platform.store_root}")
    except BootstrapError as error:
        if (builtin_dir() / f"{spec}.toml").is_file():
            return
        error.hint = (f"profile {spec!r} is looked up in the store on Drive; "
                      + (error.hint or "mount Drive first"))
        raise
