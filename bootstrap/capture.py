"""What this session changed, so ``bootstrap save`` can write it as a profile.

Nothing is recorded while the user works; the answer is read from the machine:

- Python distributions whose ``.dist-info`` folder appeared after the session
  started (its ctime: set when the folder was created here, whatever the
  installer or its cache did to mtimes; a base image's files keep the ctime of
  the image build). "Started" is ``since``, ``BOOTSTRAP_SESSION_START``, or the
  container's start (PID 1's start time; the boot time without a container).
  A baseline written at ``%load_ext`` (``take_baseline``) adds what changed
  after it even where timestamps say otherwise.
- apt packages the user asked for after the start, from apt's history log.
- Environment variables that differ from the environment the process started
  with (``/proc/self/environ``) or from the baseline; secrets become ``[secrets]``
  references and their values are never kept.
- The working directory (relative to the Drive root inside it), the Python
  version, the platform and the GPU, as a soft expectation.

Reads the file system, ``/proc``, apt's log, ``git`` in editable checkouts and
``nvidia-smi``; changes nothing except the baseline file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from .errors import OptionError
from .fileio import replace_bytes, sha256_bytes
from .redact import clean_url, is_secret
from .vmstate import boot_id, this_boot

TOOL_DIST = "notebook-bootstrap"
APT_HISTORY = "/var/log/apt/history.log"
DPKG_STATUS = "/var/lib/dpkg/status"
BASELINE_FORMAT = 1

#: Variables the shell, the kernel, IPython or the test runner set: never saved.
NOISE_NAMES = frozenset({
    "_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "TERM", "TERM_PROGRAM", "CLICOLOR",
    "CLICOLOR_FORCE", "FORCE_COLOR", "NO_COLOR", "PAGER", "GIT_PAGER", "MANPAGER", "LESS",
    "MPLBACKEND", "PS1", "PS2", "HISTFILE", "LS_COLORS", "DISPLAY", "SSH_AUTH_SOCK",
    "SSH_AGENT_PID", "KERNEL_ID", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONIOENCODING",
})
#: Prefixes of the same: Jupyter's, the debugger's, pytest's and our own settings.
NOISE_PREFIXES = ("JPY_", "PYDEVD", "KERNEL_", "IPYKERNEL", "BOOTSTRAP_", "PYTEST_", "VSCODE_")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEBIAN_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


@dataclass
class Capture:
    """What the session changed, as profile data plus notes for the user."""

    since: float
    packages: list[str] = field(default_factory=list)      # asked for, pinned
    constraints: list[str] = field(default_factory=list)   # came as dependencies, pinned
    find_links: list[str] = field(default_factory=list)
    git: list[dict[str, Any]] = field(default_factory=list)
    apt: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    info: dict[str, Any] = field(default_factory=dict)     # the [captured] table
    notes: list[str] = field(default_factory=list)


# -- when the session started -------------------------------------------------------

def parse_time(value: Any) -> float:
    """Seconds since the epoch from a number, a datetime, or an ISO 8601 / numeric string."""
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise OptionError(f"cannot read {text!r} as a time", where="since",
                          hint="give seconds since the epoch or an ISO 8601 time like "
                               "2026-05-21T09:30:00+00:00") from None


def boot_time(stat: str = "/proc/stat") -> float | None:
    try:
        with open(stat) as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def container_start(proc: str = "/proc") -> float | None:
    """When PID 1 started (the container, or the machine's init), from /proc."""
    booted = boot_time(os.path.join(proc, "stat"))
    if booted is None:
        return None
    try:
        with open(os.path.join(proc, "1", "stat")) as handle:
            raw = handle.read()
        # the command name may hold spaces and parentheses: fields start after the last ')'
        fields = raw.rsplit(")", 1)[1].split()
        ticks = int(fields[19])           # field 22, starttime, in clock ticks after boot
        return booted + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return booted


def session_start(since: Any = None, environ: Mapping[str, str] | None = None,
                  baseline: Mapping[str, Any] | None = None) -> float:
    """The time after which changes count as this session's."""
    environ = os.environ if environ is None else environ
    if since is not None:
        return parse_time(since)
    if environ.get("BOOTSTRAP_SESSION_START"):
        return parse_time(environ["BOOTSTRAP_SESSION_START"])
    started = container_start()
    if started is not None:
        return started
    if baseline is not None:
        return float(baseline["time"])
    raise OptionError("cannot tell when this session started (no /proc on this system)",
                      where="since", hint="set BOOTSTRAP_SESSION_START to the time the session "
                                          "started, or pass since=...")


# -- the baseline taken when the extension is loaded ----------------------------------

def baseline_path(environ: Mapping[str, str] | None = None) -> Path:
    from .vmstate import state_dir

    return state_dir(environ) / "baseline.json"


def _digest(value: str) -> str:
    # values are kept as digests only, so no secret reaches the disk
    return sha256_bytes(value)


def take_baseline(path: str | os.PathLike[str] | None = None, *, python: str | None = None,
                  force: bool = False) -> Path | None:
    """Record what is installed, the environment (as digests) and the cwd, once per VM.

    Cheap (folder listings, no metadata reads), so ``%load_ext`` can call it. An
    existing baseline of this boot and interpreter is kept: the earliest is the
    most useful. Never raises; returns the file, or None when it could not be written.
    """
    target = Path(path) if path is not None else baseline_path()
    try:
        if not force and load_baseline(target, python=python) is not None:
            return target
        data = {
            "format": BASELINE_FORMAT, "boot_id": boot_id(), "python": python or sys.executable,
            "time": time.time(), "cwd": os.getcwd(),
            "dirs": {str(d): sorted(e.name for e in _metadata_dirs(d))
                     for d in install_dirs(python)},
            "environ": {name: _digest(value) for name, value in os.environ.items()},
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_bytes(target, json.dumps(data).encode(), mode=0o600)
        return target
    except OSError:
        return None


def load_baseline(path: str | os.PathLike[str] | None = None, *, python: str | None = None
                  ) -> dict[str, Any] | None:
    """The baseline of this boot and interpreter (``python``, default this one), or None."""
    target = Path(path) if path is not None else baseline_path()
    try:
        data = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT
            or not this_boot(data)
            or data.get("python") != (python or sys.executable)):
        return None
    return data


# -- Python distributions ---------------------------------------------------------------

def install_dirs(python: str | None = None) -> list[Path]:
    """Where installers put distributions for ``python`` (default: this interpreter).

    Only these are searched: folders added to sys.path by .pth files or
    PYTHONPATH hold nothing pip or uv installed into this environment.
    """
    if python is None or _is_running(python):
        import site
        import sysconfig

        paths = sysconfig.get_paths()
        found = [paths.get("purelib"), paths.get("platlib")]
        if site.ENABLE_USER_SITE:
            found.append(site.getusersitepackages())
    else:
        from .interpreter import inspect

        found = [p for p in inspect(python).paths if p.endswith(("site-packages", "dist-packages"))]
    out: list[Path] = []
    for entry in found:
        if entry and os.path.isdir(entry) and Path(entry) not in out:
            out.append(Path(entry))
    return out


def _is_running(python: str) -> bool:
    from .interpreter import is_running

    return python == sys.executable or is_running(python)


def _metadata_dirs(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return [e for e in os.scandir(folder)
                if e.name.endswith((".dist-info", ".egg-info")) and e.is_dir()]
    except OSError:
        return []


def appeared(path: Path) -> float:
    """When a metadata folder came to this machine: the latest ctime/mtime of it and its files."""
    latest = 0.0
    for item in (path, path / "RECORD", path / "INSTALLER", path / "METADATA", path / "PKG-INFO"):
        try:
            st = item.stat()
        except OSError:
            continue
        latest = max(latest, st.st_ctime, st.st_mtime)
    return latest


@dataclass
class Dist:
    name: str               # canonical
    display: str            # as in METADATA
    version: str
    path: Path
    requested: bool
    direct: dict[str, Any] | None
    requires: list[str]


def changed_distributions(since: float, *, python: str | None = None,
                          baseline: Mapping[str, Any] | None = None,
                          notes: list[str] | None = None) -> list[Dist]:
    """Distributions installed or changed after ``since`` (or missing from the baseline)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    notes = [] if notes is None else notes
    before = {d: set(names) for d, names in (baseline or {}).get("dirs", {}).items()}
    seen: set[str] = set()
    out: list[Dist] = []
    for folder in install_dirs(python):
        known = before.get(str(folder))
        for entry in _metadata_dirs(folder):
            path = Path(entry.path)
            new = appeared(path) > since or (known is not None and entry.name not in known)
            if not new:
                continue
            dist = metadata.PathDistribution(path)
            name = dist.metadata["Name"] if dist.metadata else None
            if not name:
                continue
            key = canonicalize_name(name)
            if key in seen or key == TOOL_DIST:
                continue
            seen.add(key)
            if path.suffix == ".dist-info" and not (path / "RECORD").exists():
                notes.append(f"{name} {dist.version} looks half-installed (no RECORD); not saved")
                continue
            direct = None
            raw = dist.read_text("direct_url.json")
            if raw:
                try:
                    direct = json.loads(raw)
                except ValueError:
                    direct = None
            out.append(Dist(key, name, dist.version, path, _requested(dist, path),
                            direct, list(dist.requires or ())))
    return sorted(out, key=lambda d: d.name)


def _requested(dist: Any, path: Path) -> bool:
    """Whether the REQUESTED marker says the user named it. uv writes the marker for
    every distribution it installs (astral-sh/uv#13278), so only other installers' count."""
    installer = (dist.read_text("INSTALLER") or "").strip().lower()
    return installer != "uv" and (path / "REQUESTED").exists()


def dependencies(dists: Iterable[Dist], markers: Mapping[str, str]) -> set[str]:
    """Names some distribution in ``dists`` needs (extras left out: they are not known)."""
    needed: set[str] = set()
    for dist in dists:
        needed.update(name for name in _required_names(dist.requires, markers)
                      if name != dist.name)
    return needed


def _required_names(lines: Iterable[str], markers: Mapping[str, str]) -> Iterator[str]:
    """The canonical names of the requirements in ``lines`` whose markers hold here.

    Extras are left out (``extra`` is empty); a line that is not a requirement
    is skipped.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({**markers, "extra": ""}):
            continue
        yield canonicalize_name(req.name)


def _under(path: Path, root: Path | None) -> str | None:
    """``path`` as ``{drive}/...`` when it lies under the Drive root."""
    if root is None:
        return None
    try:
        rel = path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return "{drive}" if str(rel) == "." else f"{{drive}}/{rel.as_posix()}"


def entry_for(dist: Dist, cap: Capture, drive_root: Path | None) -> str | None:
    """The profile entry that reinstalls ``dist``, or None (then a note or a [[git]] says why)."""
    from .profile import check_requirement

    pin = f"{dist.display}=={dist.version}"
    direct = dist.direct
    if not direct or "url" not in direct:
        return pin
    url, had_credentials = clean_url(str(direct["url"]))
    if had_credentials:
        cap.notes.append(f"{dist.display}: removed credentials (a password, token or signature) "
                         "from its URL; a restore needs access another way")
    dir_info = direct.get("dir_info") or {}
    vcs = direct.get("vcs_info")
    if dir_info.get("editable"):
        editable_entry(dist, url, cap, drive_root)
        return None
    if vcs:
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        entry = f"{dist.display} @ {vcs.get('vcs', 'git')}+{url}" + (f"@{commit}" if commit else "")
    elif url.startswith("file://"):
        local = Path(urlsplit(url).path)
        folder = _under(local.parent, drive_root) if local.is_file() else None
        if folder is not None:
            if folder not in cap.find_links:
                cap.find_links.append(folder)
            return pin
        cap.notes.append(f"{dist.display} {dist.version} was installed from {local}, which a new "
                         "VM will not have; not saved (put the file on Drive and add its folder "
                         "to [pip] find_links)")
        return None
    else:
        entry = f"{dist.display} @ {url}"
    verdict = check_requirement(entry)
    if verdict:
        cap.notes.append(f"{dist.display}: {entry!r} {verdict[0]}; not saved")
        return None
    return entry


def editable_entry(dist: Dist, url: str, cap: Capture, drive_root: Path | None) -> None:
    """An editable install: a [[git]] entry when its folder is a checkout with an https remote."""
    folder = Path(urlsplit(url).path)
    remote, commit, dirty = _git_facts(folder)
    if remote and commit:
        remote, had_credentials = clean_url(remote)
        if had_credentials:
            cap.notes.append(f"{folder}: removed credentials from the git remote URL")
        cap.git.append({"url": remote, "ref": commit,
                        "dest": _under(folder, drive_root) or str(folder),
                        "install": True, "editable": True})
        if dirty:
            cap.notes.append(f"{folder} has uncommitted changes; a restore checks out "
                             f"{commit[:12]}")
        return
    cap.notes.append(f"{dist.display} is an editable install from {folder}, which has no https "
                     "git remote; not saved (profiles have no local-path pip entry yet: add it "
                     "by hand)")


def _git_facts(folder: Path) -> tuple[str | None, str | None, bool]:
    from . import process

    git = shutil.which("git")
    if git is None or not (folder / ".git").exists():
        return None, None, False

    def ask(*args: str) -> str | None:
        try:
            done = process.run([git, "-C", str(folder), *args], check=False, timeout=20)
        except Exception:  # a broken checkout just means "no remote"
            return None
        return done.output.strip() if done.returncode == 0 else None

    commit = ask("rev-parse", "HEAD")
    remote = ask("remote", "get-url", "origin")
    if remote is None:
        names = (ask("remote") or "").split()
        remote = ask("remote", "get-url", names[0]) if names else None
    if remote is not None and not remote.lower().startswith("https://"):
        remote = None
    dirty = bool(ask("status", "--porcelain", "--untracked-files=no"))
    return remote, commit, dirty


def tool_closure(dists: Mapping[str, Any], markers: Mapping[str, str]) -> set[str]:
    """notebook-bootstrap and every distribution it brought in (its dependencies, transitively).

    Walked over ``dists`` (canonical name -> importlib.metadata distribution of
    the target); where the target lacks the tool, its requirements come from
    this process's own installation.
    """
    from importlib import metadata

    seen = {TOOL_DIST}
    todo: list[Any] = [dists.get(TOOL_DIST)]
    if todo[0] is None:
        try:
            todo = [metadata.distribution(TOOL_DIST)]
        except metadata.PackageNotFoundError:
            return seen
    while todo:
        dist = todo.pop()
        lines = (dist.requires or ()) if dist is not None else ()
        for name in _required_names(lines, markers):
            if name not in seen:
                seen.add(name)
                todo.append(dists.get(name))
    return seen


def python_changes(cap: Capture, *, python: str | None = None,
                   baseline: Mapping[str, Any] | None = None,
                   drive_root: Path | None = None, keep: Iterable[str] = ()) -> None:
    """Fill ``cap`` with the session's distributions: asks in packages, the rest as constraints.

    An ask is a distribution with a REQUESTED marker (pip writes one for what
    was named on the command line; uv's marks everything and is ignored) or one
    that no other changed distribution needs. notebook-bootstrap and what it
    brought in are left out (the install cell brings them on every VM) unless
    named in ``keep`` (what the user's own profile lists).
    """
    from packaging.utils import canonicalize_name

    from .interpreter import inspect

    target = inspect(python or sys.executable)
    dists = changed_distributions(cap.since, python=python, baseline=baseline, notes=cap.notes)
    own = tool_closure(target.distributions(), target.markers()) - {
        canonicalize_name(name) for name in keep}
    left_out = sorted(d.name for d in dists if d.name in own)
    dists = [d for d in dists if d.name not in own]
    if left_out:
        cap.notes.append(f"not saved: {len(left_out)} package{'s' if len(left_out) != 1 else ''} "
                         f"of notebook-bootstrap itself ({', '.join(left_out[:6])}"
                         f"{', ...' if len(left_out) > 6 else ''}); the install cell brings "
                         "them on every VM")
    needed = dependencies(dists, target.markers())
    for dist in dists:
        entry = entry_for(dist, cap, drive_root)
        if entry is None:
            continue
        if dist.requested or dist.name not in needed:
            cap.packages.append(entry)
        else:
            cap.constraints.append(entry)
    if len(dists) > 150:
        cap.notes.append(f"{len(dists)} distributions look new since "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(cap.since))}; if the "
                         "base image is among them, set BOOTSTRAP_SESSION_START and save again")


# -- apt -------------------------------------------------------------------------------

_APT_OPTIONS_WITH_VALUE = {"-o", "-c", "-t", "--option", "--config-file", "--target-release",
                           "--default-release"}


def _apt_args(commandline: str) -> list[str]:
    """The package arguments of an ``apt(-get) install`` command line."""
    try:
        words = shlex.split(commandline)
    except ValueError:
        words = commandline.split()
    out, verb, skip = [], None, False
    for word in words[1:]:
        if skip:
            skip = False
        elif word in _APT_OPTIONS_WITH_VALUE:
            skip = True
        elif word.startswith("-"):
            continue
        elif verb is None:
            verb = word
        else:
            out.append(word)
    return out if verb in ("install", "reinstall") else []


def _apt_items(value: str) -> list[tuple[str, str]]:
    """``name:arch (version[, automatic]), ...`` -> [(name, "version[, automatic]")]."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"([^\s,()]+) \(([^)]*)\)", value)]


def dpkg_installed(status: str | os.PathLike[str] | None = None) -> set[str] | None:
    """Names dpkg lists as installed (read from its status file), or None when unreadable."""
    path = Path(status or os.environ.get("BOOTSTRAP_DPKG_STATUS") or DPKG_STATUS)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    found = set()
    for block in text.split("\n\n"):
        name = re.search(r"^Package: (\S+)", block, re.M)
        state = re.search(r"^Status: .* installed$", block, re.M)
        if name and state:
            found.add(name.group(1))
    return found


def apt_changes(since: float, *, history: str | os.PathLike[str] | None = None,
                dpkg_status: str | os.PathLike[str] | None = None,
                notes: list[str] | None = None) -> list[str]:
    """apt packages asked for after ``since``, from apt's history log, in order, still installed.

    An ``Install:`` item without ``automatic`` was asked for; an upgrade or a
    reinstall counts when the package was named on the command line. A later
    ``Remove:``/``Purge:`` drops it again, and so does dpkg no longer listing it. Pins typed
    on the command line (``name=version``) are kept; otherwise names only, since versions move
    with the image.
    """
    notes = [] if notes is None else notes
    path = Path(history or os.environ.get("BOOTSTRAP_APT_HISTORY") or APT_HISTORY)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    wanted: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                fields[key.strip()] = value.strip()
        start = fields.get("Start-Date")
        if not start:
            continue
        try:
            when = time.mktime(time.strptime(" ".join(start.split()), "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if when < since:
            continue
        typed = {}
        for arg in _apt_args(fields.get("Commandline", "")):
            qualified, _, version = arg.partition("=")
            name = qualified.split(":", 1)[0]       # drop an architecture like :amd64
            typed[name] = f"{name}={version}" if version else name
        for key in ("Install", "Upgrade", "Downgrade", "Reinstall"):
            for item, detail in _apt_items(fields.get(key, "")):
                name = item.split(":", 1)[0]
                asked = name in typed or (key == "Install" and "automatic" not in detail)
                if asked:
                    wanted.pop(name, None)
                    wanted[name] = typed.get(name, name)
        for key in ("Remove", "Purge"):
            for item, _ in _apt_items(fields.get(key, "")):
                wanted.pop(item.split(":", 1)[0], None)
    installed = dpkg_installed(dpkg_status) if wanted else None
    out = []
    for name, entry in wanted.items():
        if installed is not None and name not in installed:
            continue  # removed since, outside apt (dpkg -r)
        if _DEBIAN_NAME.match(name):
            out.append(entry)
        else:
            notes.append(f"apt package {entry!r} has an unusual name; not saved")
    return out


# -- environment variables --------------------------------------------------------------

def start_environ(path: str = "/proc/self/environ") -> dict[str, str] | None:
    """The environment this process started with, as the kernel keeps it; None if unreadable."""
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return None
    out = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            out[os.fsdecode(name)] = os.fsdecode(value)
    return out


def is_noise(name: str) -> bool:
    return name in NOISE_NAMES or name.startswith(NOISE_PREFIXES)


def portable(value: str, drive_root: Path | None) -> str:
    """``value`` as a profile string: braces doubled, the Drive root written ``{drive}``."""
    text = value.replace("{", "{{").replace("}", "}}")
    if drive_root is not None:
        root = str(drive_root).rstrip("/")
        if root:
            text = re.sub(re.escape(root) + r"(?=/|:|$)", "{drive}", text)
    return text


def env_changes(cap: Capture, *, environ: Mapping[str, str] | None = None,
                start: Mapping[str, str] | None = None, digests: Mapping[str, str] | None = None,
                drive_root: Path | None = None) -> None:
    """Variables set or changed in this session, against ``start`` values or baseline
    ``digests``."""
    environ = os.environ if environ is None else environ
    for name in sorted(environ):
        value = environ[name]
        if is_noise(name):
            continue
        if start is not None:
            old, existed = start.get(name), name in start
            if old == value:
                continue
        elif digests is not None:
            if digests.get(name) == _digest(value):
                continue
            old, existed = None, name in digests
        else:
            return
        if not _ENV_NAME.match(name):
            cap.notes.append(f"environment variable {name!r} has a name a profile cannot hold; "
                             "not saved")
            continue
        if is_secret(name, value):
            cap.secrets[name] = name
            cap.notes.append(f"{name} looks like a secret: saved as a [secrets] reference, not its "
                             f"value; keep it in the secret store (Colab: Secrets panel) as {name}")
            continue
        if existed and ((old and old in value) or name.endswith("PATH")):
            cap.notes.append(f"{name} was extended in this session; not saved, since it depends "
                             "on the image (add the new part in [env] by hand)")
            continue
        cap.env[name] = portable(value, drive_root)


# -- working directory, interpreter, GPU -------------------------------------------------

DEFAULT_CWDS = ("/content", "/kaggle/working")


def workdir_changes(cap: Capture, *, cwd: str | None = None, drive_root: Path | None = None,
                    start_cwd: str | None = None) -> None:
    here = Path(cwd or os.getcwd()).resolve()
    if drive_root is not None:
        try:
            rel = here.relative_to(drive_root.resolve())
            cap.workdir = rel.as_posix() if str(rel) != "." else "."
            return
        except (ValueError, OSError):
            pass
    ordinary = {str(Path(p).resolve()) for p in (*DEFAULT_CWDS, str(Path.home()), start_cwd) if p}
    if str(here) in ordinary:
        return
    cap.workdir = str(here)
    cap.notes.append(f"the working folder {here} is outside Drive; a new VM needs it to exist "
                     "(e.g. as a [[git]] dest)")


def gpu_info() -> tuple[str, float] | None:
    """(model, memory in GiB) of the first GPU, as the gpu step finds it; None without one."""
    from .gpus import probe

    found = probe()
    if not found.devices:
        return None
    first = found.devices[0]
    return first.name, first.memory_gib or 0.0


def machine_info(platform_name: str, python: str | None = None,
                 gpu: tuple[str, float] | None = None) -> dict[str, Any]:
    from .interpreter import inspect

    major, minor, _ = inspect(python or sys.executable).version
    info: dict[str, Any] = {"python": f"{major}.{minor}", "platform": platform_name}
    if gpu is not None:
        info["gpu"], info["gpu_memory_gib"] = gpu
    return info


def moved(profile: Any, ctx: Any) -> list[str]:
    """Notes on what differs from the machine the profile was saved on (``[captured]``)."""
    from .interpreter import inspect

    saved = getattr(profile, "captured", None)
    if saved is None:
        return []
    notes = []
    major, minor, _ = inspect(ctx.python).version
    if saved.python and saved.python != f"{major}.{minor}":
        notes.append(f"the profile was saved with Python {saved.python}; this is {major}.{minor} "
                     "(pinned packages may lack wheels for it)")
    if saved.platform and saved.platform != ctx.platform.name:
        notes.append(f"the profile was saved on {saved.platform}; this is {ctx.platform.name}")
    if saved.gpu:
        seen = ctx.state.get("gpu") or {}
        if "count" in seen:  # the gpu step ran in this restore: no second nvidia-smi call
            found = (seen["name"], seen["memory_gib"] or 0.0) if seen["name"] else None
        else:
            found = gpu_info()
        if found is None:
            notes.append(f"the profile was saved with a {saved.gpu}; this machine has no GPU")
        elif found[0] != saved.gpu:
            notes.append(f"the profile was saved with a {saved.gpu}"
                         f"{f' ({saved.gpu_memory_gib:g} GiB)' if saved.gpu_memory_gib else ''}; "
                         f"this machine has a {found[0]} ({found[1]:g} GiB)")
    return notes


# -- all of it ------------------------------------------------------------------------------

def capture(*, since: Any = None, python: str | None = None, platform: Any = None,
            environ: Mapping[str, str] | None = None, env_start: str = "process",
            cwd: str | None = None, apt_history: str | os.PathLike[str] | None = None,
            baseline: Mapping[str, Any] | None | bool = True, keep: Iterable[str] = ()
            ) -> Capture:
    """What this session changed. ``env_start``: compare the environment with the one the
    process started with ("process") or with the baseline's ("baseline", for the CLI,
    whose own process starts with the kernel's current environment). ``keep``: package
    names the user's profile lists, saved even when notebook-bootstrap needs them too."""
    from .platform import detect

    platform = detect() if platform is None else platform
    base = load_baseline(python=python) if baseline is True else (baseline or None)
    cap = Capture(since=session_start(since, baseline=base))
    drive_root = platform.drive_root
    python_changes(cap, python=python, baseline=base, drive_root=drive_root, keep=keep)
    cap.apt = apt_changes(cap.since, history=apt_history, notes=cap.notes)
    start = start_environ() if env_start == "process" else None
    digests = base.get("environ") if base is not None and start is None else None
    if start is None and digests is None:
        cap.notes.append("environment variables not saved: the starting environment is unknown "
                         "here (save from the notebook with %save_env)")
    env_changes(cap, environ=environ, start=start, digests=digests, drive_root=drive_root)
    workdir_changes(cap, cwd=cwd, drive_root=drive_root,
                    start_cwd=base.get("cwd") if base is not None else None)
    cap.info = machine_info(platform.name, python, gpu_info())
    return cap
