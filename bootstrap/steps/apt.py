"""The ``apt`` step: Debian/Ubuntu system packages, installed with apt-get.

Reads: ``[apt] packages`` and ``remove``, the dpkg database (through ``dpkg-query``), the age
of this VM's last ``apt-get update`` and the store's ``debs/`` folder.
Changes: the system (``apt-get update`` and ``apt-get install``, as root), a
local archive cache (``ARCHIVES_DIR``) and the store's ``debs/`` folder.

``check`` asks ``dpkg-query`` once for the whole package database and decides
in this process which entries are missing, so a restore where everything is
installed starts no apt-get at all. A name counts as installed when a package
of that name is installed (dpkg status ``?i``) or an installed package
provides it (a virtual name like ``awk``); ``name=version`` needs exactly
that version.

``apply``:

- ``apt-get remove -y -- NAMES`` first, for the ``remove`` entries that are
  installed (a package of exactly that name; a package that only provides
  the name is left alone), so an image's conflicting package is gone before
  the installs.
- ``apt-get update --error-on=any`` runs only when the package lists are
  missing (no ``*_Packages`` file), or this step has not updated them within
  ``MAX_LISTS_AGE_HOURS`` on this VM (list files carry the server's dates, not
  ours, so a stamp of our own decides), or when apt could not find or fetch a
  package with the lists it had (then once more, and the install is retried).
- ``apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 --
  NAMES`` with ``DEBIAN_FRONTEND=noninteractive``; names always come after
  ``--`` and were checked against the Debian name rules before any process.
- The ``.deb`` files apt downloads land in our own archive cache (not
  ``/var/cache/apt/archives``, which container images clean after every
  install). Afterwards the .debs of the packages this install added (dpkg's
  names and versions, matched to apt's ``NAME_VERSION_ARCH.deb`` file names)
  are copied into the store's ``debs/``, and their names, sizes and sha256s
  are written to a small list, ``debs/sets/KEY.json``, KEY being a digest of
  the missing package names and the system release. On the next VM that list
  says which stored files to copy into the archive cache before
  ``apt-get install`` (each checked against its size and sha256: apt trusts
  any file of the right name and size in its cache), so apt downloads
  nothing it has fetched before, and no second apt-get run (``--print-uris``,
  which costs a full read of the lists) is needed to ask what it would fetch.
  Only those files are copied: Drive is slow per file.

Tests and unusual machines can add apt options (e.g. their own sources list)
with ``BOOTSTRAP_APT_OPTIONS="-oKey=value ..."``; ``-oDir::Cache::archives``
and ``-oDir::State::Lists`` there also move the archive cache and the lists
this step looks at. apt-get and dpkg-query are found on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from ..context import Context
from ..errors import EnvironmentMismatch, Problem, ProfileError, StepError
from ..fileio import copy_atomic, sha256_bytes, sha256_file
from ..process import display
from ..profile import Profile, check_apt_name
from . import Check

APT_GET = "apt-get"
DPKG_QUERY = "dpkg-query"
#: apt's default lists folder; ``-oDir::State::Lists`` in BOOTSTRAP_APT_OPTIONS moves it
LISTS_DIR = Path("/var/lib/apt/lists")
#: our archive cache; apt's own one is emptied by the Docker images' apt config
ARCHIVES_DIR = Path("/var/cache/notebook-bootstrap/apt-archives")
MAX_LISTS_AGE_HOURS = 24.0
LOCK_TIMEOUT_S = 120
UPDATE_TIMEOUT_S = 900.0
INSTALL_TIMEOUT_S = 3600.0
OPTIONS_ENV = "BOOTSTRAP_APT_OPTIONS"
#: ``apt-get update --error-on=any`` exists since apt 2.1.16
ERROR_ON_SINCE = (2, 1, 16)
STAMP_NAME = ".bootstrap-apt-update.stamp"

_QUERY_FORMAT = "${Package}\t${db:Status-Abbrev}\t${Version}\t${Provides}\n"
_OPTION = re.compile(r"^-o[A-Za-z0-9][A-Za-z0-9:_.+-]*=.*$", re.DOTALL)
_DEB_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.~_%-]*\.deb$")
# apt's messages when its lists do not know a package or point at files the
# mirror no longer has; both are cured by a fresh `apt-get update`.
#: apt's message when a dpkg run was killed half way (apt's English, like _NOT_FOUND)
_DPKG_INTERRUPTED = "dpkg was interrupted"
_NOT_FOUND = ("Unable to locate package", "has no installation candidate",
              "Failed to fetch", "Unable to fetch some archives")


def wanted(profile: Profile) -> bool:
    return profile.apt is not None and bool(profile.apt.packages or profile.apt.remove)


@dataclass
class Installed:
    """What dpkg knows: installed packages with their versions, and the names they provide."""

    versions: dict[str, set[str]] = field(default_factory=dict)
    provided: set[str] = field(default_factory=set)

    def why_missing(self, entry: str) -> str | None:
        name, sep, version = entry.partition("=")
        if sep:
            have = self.versions.get(name)
            if not have:
                return "not installed"
            if version not in have:
                return f"{', '.join(sorted(have))} installed, {version} wanted"
            return None
        if name in self.versions or name in self.provided:
            return None
        return "not installed"


@dataclass
class Plan:
    missing: list[str]
    update_reason: str | None
    apt_version: str | None
    installed: Installed = field(default_factory=Installed)   # dpkg before the install
    remove: list[str] = field(default_factory=list)           # installed, to be removed


@dataclass(frozen=True)
class StoredDeb:
    """A .deb kept in the store, as the store's list for a package set records it."""

    filename: str
    size: int
    sha256: str


# -- settings ----------------------------------------------------------------------

def extra_options(environ: Mapping[str, str]) -> list[str]:
    """The ``-oKey=value`` options from BOOTSTRAP_APT_OPTIONS (nothing else is accepted)."""
    raw = environ.get(OPTIONS_ENV, "")
    try:
        words = shlex.split(raw)
    except ValueError as exc:
        raise StepError(f"{OPTIONS_ENV} cannot be split into words: {exc}", where=OPTIONS_ENV,
                        hint="write it like -oKey=value -oOther=value") from None
    for word in words:
        if not _OPTION.match(word):
            raise StepError(f"{OPTIONS_ENV} holds {word!r}, which is not an -oKey=value option",
                            where=OPTIONS_ENV,
                            hint="only apt configuration options are accepted there, "
                                 "written like -oDir::Etc::SourceList=/path")
    return words


def option_value(options: Iterable[str], key: str) -> str | None:
    """The last value given for ``key`` (apt keys are case-insensitive)."""
    found = None
    for word in options:
        name, _, value = word[2:].partition("=")
        if name.lower() == key.lower():
            found = value
    return found


def _apt_dir(options: list[str], key: str, default: Path, base: str) -> Path:
    value = option_value(options, key)
    if not value:
        return default
    path = Path(value)
    # apt takes a relative directory against its parent setting (Dir::State, Dir::Cache)
    return path if path.is_absolute() else Path(base) / path


def lists_dir(options: list[str]) -> Path:
    return _apt_dir(options, "Dir::State::Lists", LISTS_DIR, "/var/lib/apt")


def archives_dir(options: list[str]) -> Path:
    return _apt_dir(options, "Dir::Cache::archives", ARCHIVES_DIR, "/var/cache/apt")


def find_program(name: str, environ: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=environ.get("PATH", os.defpath))


def is_root() -> bool:
    return os.geteuid() == 0


# -- check -------------------------------------------------------------------------

def validated_names(ctx: Context) -> list[str]:
    """The profile's entries, refused before any process when one is not a Debian name.

    The profile loader checks them too; this guards profiles built in code.
    """
    assert ctx.profile.apt is not None
    problems = []
    for key in ("packages", "remove"):
        for i, entry in enumerate(getattr(ctx.profile.apt, key)):
            verdict = check_apt_name(entry) if isinstance(entry, str) else \
                ("is not a string", None)
            if verdict:
                problems.append(Problem(ctx.where(f"apt.{key}[{i}]"), verdict[0], entry,
                                        verdict[1]))
    if problems:
        raise ProfileError(problems, source=ctx.where("").removesuffix(": "))
    return list(dict.fromkeys(ctx.profile.apt.packages))


def query(ctx: Context) -> Installed:
    """Read the whole dpkg database with one ``dpkg-query`` call."""
    program = find_program(DPKG_QUERY, ctx.environ)
    if program is None:
        raise EnvironmentMismatch(
            "dpkg-query is not on this machine, so it is not a Debian or Ubuntu system",
            step="apt", where=ctx.where("[apt]"),
            hint="the [apt] section needs Debian or Ubuntu (Colab and Kaggle are); move it "
                 "under [platforms.colab] / [platforms.kaggle], or leave it out with --skip apt")
    lines: list[str] = []
    ctx.run([program, "-W", f"-f={_QUERY_FORMAT}"], on_line=lines.append, timeout=60,
            hint="dpkg-query could not read the dpkg database")
    return parse_query(lines)


def parse_query(lines: Iterable[str]) -> Installed:
    found = Installed()
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3:
            continue  # not a record (a warning on the merged output)
        name, abbrev, version = parts[0], parts[1], parts[2]
        # db:Status-Abbrev is want, state, error flag ("ii ", "hi ", "rc ", "un ");
        # the package is there when its state is "i" (installed) and no error.
        if len(abbrev) < 2 or abbrev[1] != "i" or abbrev[2:].strip():
            continue
        found.versions.setdefault(name, set()).add(version)
        provides = parts[3] if len(parts) > 3 else ""
        for item in provides.split(","):
            virtual = item.strip().split(" ")[0].split(":")[0]
            if virtual:
                found.provided.add(virtual)
    return found


def update_reason(options: list[str], now: float | None = None) -> str | None:
    """Why the package lists need ``apt-get update`` now, or None when they are fresh."""
    lists = lists_dir(options)
    try:
        has_packages = any(_is_packages_file(p.name) for p in lists.iterdir())
    except OSError:
        has_packages = False
    if not has_packages:
        return f"no package lists in {lists}"
    stamp = archives_dir(options) / STAMP_NAME
    try:
        recorded = stamp.read_text().strip()
        age = (time.time() if now is None else now) - stamp.stat().st_mtime
    except OSError:
        return "the lists were not updated on this VM yet"
    if recorded != str(lists):
        return "the lists were not updated on this VM yet"
    if age > MAX_LISTS_AGE_HOURS * 3600:
        return f"the lists are {age / 3600:.0f} h old"
    return None


def _is_packages_file(name: str) -> bool:
    return name.endswith("_Packages") or "_Packages." in name


def check(ctx: Context) -> Check:
    names = validated_names(ctx)
    assert ctx.profile.apt is not None
    unwanted = list(dict.fromkeys(ctx.profile.apt.remove))
    options = extra_options(ctx.environ)
    installed = query(ctx)
    missing = [(n, why) for n in names if (why := installed.why_missing(n))]
    # Only a package of that very name is removed, never one that merely provides it.
    remove = [name for name in unwanted if name in installed.versions]
    if not missing and not remove:
        summary = f"{len(names)} package{'s' if len(names) != 1 else ''} installed"
        if unwanted:
            summary += f", {len(unwanted)} absent"
        return Check(True, summary)
    reason = update_reason(options) if missing else None
    actions = [f"remove {name} ({', '.join(sorted(installed.versions[name]))} installed)"
               for name in remove]
    actions += [f"apt-get update ({reason})"] if reason else []
    actions += [f"install {name} ({why})" for name, why in missing]
    if not is_root():
        actions.append("(needs root)")
    apt_version = sorted(installed.versions.get("apt", {""}))[-1] or None
    parts = [f"{len(missing)} of {len(names)} packages to install"] if missing else []
    parts += [f"{len(remove)} to remove"] if remove else []
    return Check(False, ", ".join(parts), actions,
                 Plan([n for n, _ in missing], reason, apt_version, installed, remove))


# -- apply -------------------------------------------------------------------------

def supports_error_on(apt_version: str | None) -> bool:
    if not apt_version:
        return True  # unknown: assume a current apt
    match = re.match(r"^(?:\d+:)?(\d+)\.(\d+)(?:\.(\d+))?", apt_version)
    if not match:
        return True
    found = tuple(int(x or 0) for x in match.groups())
    return found >= ERROR_ON_SINCE


class _Apt:
    """apt-get with this restore's options, environment and output handling."""

    def __init__(self, ctx: Context, plan: Plan) -> None:
        self.ctx = ctx
        program = find_program(APT_GET, ctx.environ)
        if program is None:
            raise EnvironmentMismatch(
                "apt-get is not on this machine", step="apt", where=ctx.where("[apt]"),
                hint="the [apt] section needs Debian or Ubuntu with apt; leave it out with "
                     "--skip apt or move it under [platforms.colab]")
        self.program = program
        self.extra = extra_options(ctx.environ)
        self.archives = archives_dir(self.extra)
        self.lists = lists_dir(self.extra)
        self.env = dict(ctx.environ)
        self.env["DEBIAN_FRONTEND"] = "noninteractive"
        # The messages _could_not_find looks for are apt's English ones.
        self.env["LC_ALL"] = "C.UTF-8"
        self.env.pop("LANGUAGE", None)
        self.error_on = supports_error_on(plan.apt_version)
        self.updated = False

    def options(self) -> list[str]:
        # BOOTSTRAP_APT_OPTIONS last: apt lets a later -o win.
        return ["-q", f"-oDir::Cache::archives={self.archives}",
                f"-oDPkg::Lock::Timeout={LOCK_TIMEOUT_S}", *self.extra]

    def update(self, reason: str) -> None:
        self.ctx.say(f"apt-get update: {reason}")
        _ensure_dir(self.lists / "partial")  # apt refuses a lists folder without it
        argv = [self.program, "update", *self.options()]
        if self.error_on:
            argv.insert(2, "--error-on=any")
        else:
            self.ctx.note("this apt is older than 2.1.16: apt-get update cannot be told to "
                          "fail on download errors")
        self.ctx.run(argv, env=self.env, timeout=UPDATE_TIMEOUT_S,
                     hint="apt-get update failed: check the network and the sources in "
                          "/etc/apt/sources.list(.d); its message is above")
        self.updated = True
        try:
            self.archives.mkdir(parents=True, exist_ok=True)
            (self.archives / STAMP_NAME).write_text(str(self.lists) + "\n")
        except OSError:
            pass  # no stamp only means another update next time

    def install_options(self, names: list[str]) -> list[str]:
        # name=version asks for that version, also when it is older than the one
        # installed; without this apt-get -y refuses to go back.
        pinned = ["--allow-downgrades"] if any("=" in n for n in names) else []
        return ["-y", "--no-install-recommends", *pinned, *self.options()]

    def remove(self, names: list[str]) -> None:
        argv = [self.program, "remove", "-y", *self.options(), "--", *names]
        self.ctx.run(argv, env=self.env, timeout=INSTALL_TIMEOUT_S,
                     hint=f"apt could not remove {' '.join(names)}; its message is above "
                          "(a package others need is removed with them only when apt "
                          "may: check what depends on it)")

    def install(self, names: list[str]) -> None:
        argv = [self.program, "install", *self.install_options(names),
                # keep a changed config file and take the default answer: no prompts
                "-oDpkg::Options::=--force-confdef", "-oDpkg::Options::=--force-confold",
                "--", *names]
        try:
            self.ctx.run(argv, env=self.env, timeout=INSTALL_TIMEOUT_S,
                         hint=_install_hint(names))
        except StepError as error:
            if _DPKG_INTERRUPTED in (error.details or ""):
                # not the profile's fault: an earlier install was stopped half way
                error.what = "dpkg was interrupted by an earlier install and must finish first"
                error.hint = ("finish it as root with dpkg --configure -a (in a notebook cell: "
                              "!dpkg --configure -a), then restore again; the profile is fine")
            raise


def _install_hint(names: list[str]) -> str:
    return (f"apt could not install {' '.join(names)}; check the names (apt-cache search "
            "NAME) and that this release has them; its message is above")


def _could_not_find(error: StepError) -> bool:
    text = error.details or ""
    return any(marker in text for marker in _NOT_FOUND)


def apply(ctx: Context, plan: Check) -> None:
    data: Plan = plan.data
    if not is_root():
        verb, names = ("install", data.missing) if data.missing else ("remove", data.remove)
        raise EnvironmentMismatch(
            f"{'installing' if data.missing else 'removing'} apt packages needs root",
            step="apt", where=ctx.where(f"apt.{'packages' if data.missing else 'remove'}"),
            hint=f"run as root (Colab and Kaggle do), or {verb} them first with "
                 f"sudo {display(['apt-get', verb, '--', *names])}; "
                 "or leave the step out with --skip apt")
    apt = _Apt(ctx, data)
    if data.remove:
        # Before the installs: an image's conflicting package goes first.
        apt.remove(data.remove)
        ctx.note(f"removed {', '.join(data.remove)}")
        ctx.state["apt"]["removed"] = list(data.remove)
    if not data.missing:
        return
    _ensure_dir(apt.archives / "partial")
    if data.update_reason:
        apt.update(data.update_reason)

    debs_list = ctx.store.debs / "sets" / f"{set_key(data.missing)}.json"
    reused = restore_debs(ctx, read_debs_list(ctx, debs_list), apt.archives)
    _retrying(apt, lambda: apt.install(data.missing))
    used = added_debs(data.installed, query(ctx), apt.archives)
    kept = keep_debs(ctx, used, reused, debs_list)
    if reused:
        ctx.detail(f"reused {len(reused)} .deb file{'s' if len(reused) != 1 else ''} "
                 "from the store")
    if kept:
        ctx.detail(f"kept {kept} .deb file{'s' if kept != 1 else ''} in the store for the "
                 "next VM")
    ctx.state["apt"]["installed"] = list(data.missing)


def _retrying(apt: _Apt, action):
    """Run ``action``; when apt could not find or fetch a package, update once and retry."""
    try:
        return action()
    except StepError as error:
        if apt.updated or not _could_not_find(error):
            raise
    apt.update("apt could not find or fetch a package with the lists it had")
    return action()


def _ensure_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepError(f"cannot create a folder for apt: {exc.strerror}",
                        where=str(path), hint="check free space and permissions") from None


def set_key(names: list[str]) -> str:
    """The key of a package set's list of .debs: the names and this system's release."""
    release = ""
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        pass
    ident = "\n".join(line for line in release.splitlines()
                      if line.startswith(("ID=", "VERSION_ID=", "VERSION_CODENAME=")))
    data = json.dumps({"packages": sorted(names), "release": ident,
                       "machine": os.uname().machine}, sort_keys=True)
    return sha256_bytes(data)[:16]


def deb_identity(filename: str) -> tuple[str, str] | None:
    """(package, version) of apt's archive file name ``NAME_VERSION_ARCH.deb`` (the
    version's ``:`` written ``%3a``); None for any other name."""
    from urllib.parse import unquote

    if not _DEB_FILE.match(filename):
        return None
    parts = filename[:-len(".deb")].split("_")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], unquote(parts[1])


def added_debs(before: Installed, after: Installed, archives: Path) -> list[Path]:
    """The archive cache's .debs of the packages the install added or changed."""
    try:
        files = sorted(archives.glob("*.deb"))
    except OSError:
        return []
    out = []
    for path in files:
        ident = deb_identity(path.name)
        if ident is None:
            continue
        name, version = ident
        if version in after.versions.get(name, ()) and version not in before.versions.get(name, ()):
            out.append(path)
    return out


def read_debs_list(ctx: Context, path: Path) -> list[StoredDeb]:
    """The store's list of .debs for this package set; empty when there is none (a note
    when it cannot be read)."""
    try:
        data = json.loads(path.read_text())
        return [StoredDeb(str(d["filename"]), int(d["size"]), str(d["sha256"]))
                for d in data["debs"] if _DEB_FILE.match(str(d["filename"]))]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        ctx.note(f"ignored {path}: it cannot be read ({exc}); apt downloads everything")
        return []


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _copy_atomic(src: Path, dest: Path) -> None:
    copy_atomic(src, dest)


def restore_debs(ctx: Context, stored: list[StoredDeb], archives: Path) -> dict[str, StoredDeb]:
    """Copy the store's .debs of this package set into the archive cache.

    A stored file is used only when its size and sha256 are the ones recorded
    when it was kept: apt itself trusts any file of the right size in its cache.
    Returns the files copied, by name.
    """
    reused: dict[str, StoredDeb] = {}
    folder = ctx.store.debs
    for item in stored:
        src, dest = folder / item.filename, archives / item.filename
        try:
            if dest.is_file() and dest.stat().st_size == item.size:
                continue  # on this VM already
            if not src.is_file() or src.stat().st_size != item.size:
                continue
            if _sha256(src) != item.sha256:
                ctx.note(f"ignored {item.filename} in the store: its checksum does not match")
                continue
            _copy_atomic(src, dest)
        except OSError as exc:
            ctx.note(f"could not reuse {item.filename} from the store: {exc.strerror or exc}")
            continue
        reused[item.filename] = item
    return reused


def keep_debs(ctx: Context, used: list[Path], reused: dict[str, StoredDeb],
              debs_list: Path) -> int:
    """Copy the .debs this install used into the store and record them in ``debs_list``;
    return how many files were copied. A failure is only a note."""
    from ..fileio import write_atomic

    kept = 0
    folder = ctx.store.debs
    entries = []
    for src in used:
        try:
            item = reused.get(src.name) or StoredDeb(src.name, src.stat().st_size, _sha256(src))
            entries.append(item)
            if src.name in reused:
                continue  # it came from the store
            dest = folder / src.name
            if dest.is_file() and dest.stat().st_size == item.size and \
                    _sha256(dest) == item.sha256:
                continue  # a good copy is there already (kept by another package set)
            folder.mkdir(parents=True, exist_ok=True)
            _copy_atomic(src, dest)
        except OSError as exc:
            ctx.note(f"could not keep {src.name} in the store: {exc.strerror or exc}")
            continue
        kept += 1
    listed = [{"filename": e.filename, "size": e.size, "sha256": e.sha256} for e in entries]
    try:
        old = json.loads(debs_list.read_text()).get("debs")
    except (OSError, ValueError, AttributeError):
        old = None
    if listed and listed != old:
        try:
            debs_list.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(debs_list, (json.dumps({"debs": listed}, indent=1) + "\n").encode())
        except OSError as exc:
            ctx.note(f"could not write {debs_list}: {exc.strerror or exc}")
    return kept
