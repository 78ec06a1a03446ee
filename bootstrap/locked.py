"""Installing a profile's ``[pip]`` requirements from its pinned lock and the wheel store.

This is how the ``pip`` step installs plain PEP 508 requirements (it calls
:func:`install` from ``apply``). Two paths:

**The lock fits** (the usual case on a fresh VM): for each locked package not
installed at its pinned version, get its wheel onto local disk: from the
local wheel folder, else from the store, else download it (the URL and
sha256 are in the lock), else build it from its sdist with ``uv build``.
Every file's size is checked on the way (downloads and builds are hashed
too). Then ``uv pip install --offline --no-index --no-deps --no-build
--require-hashes`` of exactly those pins with the lock's sha256s: no
resolution, no network, no build, and uv hashes each wheel as it unpacks it,
so an altered file is refused before anything is installed (it is then found,
replaced and the install run once more). Wheels that are ready are installed
while sdists still build.

**No lock yet, or it no longer fits** (the profile changed, another Python,
the platform's own packages moved; the report says why), two ways, by where
the files come from:

- *from an index* (the usual first restore): the plain ``uv pip install``
  runs as it would without us, downloading while it unpacks, and ``uv pip
  compile`` resolves the same inputs at the same time for the lock, so the
  user waits no longer than for uv alone. Afterwards the lock is written and
  the installed wheels go into the store in the background: wheels from an
  index are fetched once more (the network is idle by then), and a wheel uv
  built from an sdist is taken from uv's cache, so no sdist is built twice.
- *only from folders on this machine* (``no_index`` and local find-links):
  nothing is downloaded, so the requirements are resolved once
  (``lock.resolve``) and the new lock is installed exactly as above: one
  resolution instead of two side by side, and the files copied for the
  install are the ones the store keeps. When the resolution fails, the
  plain ``uv pip install`` of ``steps/pip.py`` runs instead, with a note.

Left to the plain ``uv pip install`` of ``steps/pip.py`` (with a note saying
why): entries with a direct URL, entries that are tables with per-entry
options, and pip settings this module does not know (e.g. indexes scoped to
packages). ``[pip] lock = false`` turns the lock and store off for a profile.

Reads: ``[pip]``, the lock, the store's ``wheels/``, the local wheel folder, uv's cache.
Changes: the target's site-packages (through uv), the lock file, both wheel folders.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import lock as lockfile
from . import wheelstore
from .errors import StepError

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context
    from .steps import Check

#: [pip] keys this module understands; any other key with a non-default value
#: (added by later features) sends the install down the plain uv path.
KNOWN_KEYS = {"packages", "no_index", "index_url", "extra_index_urls", "find_links",
              "constraints", "lock"}

#: where a wheel came from, for the report
LOCAL, STORE, LINKS, DOWNLOAD, BUILD = "local", "store", "links", "download", "build"


def bypass_reason(pip: Any) -> str | None:
    """Why this [pip] section is installed without the lock (None: the lock applies)."""
    from packaging.requirements import InvalidRequirement, Requirement

    if getattr(pip, "lock", True) is False:
        return "lock = false"
    for field in dataclasses.fields(pip):
        if field.name in KNOWN_KEYS or field.metadata.get("internal"):
            continue
        default = (field.default if field.default is not dataclasses.MISSING
                   else field.default_factory() if field.default_factory is not dataclasses.MISSING
                   else None)
        if getattr(pip, field.name) != default:
            return f"the lock does not cover pip.{field.name}"
    for entry in pip.packages:
        if not isinstance(entry, str):
            return "entries with their own options are installed directly"
        try:
            if Requirement(entry).url:
                return "direct URL requirements are installed directly"
        except InvalidRequirement:
            return None if "{" in entry else "an entry is not a plain requirement"
    return None


@dataclass
class Inputs:
    """The profile's pip inputs, expanded for this machine."""

    requirements: list[str]
    constraints: list[str]
    options: list[str]
    digest: str


def inputs(ctx: Context) -> Inputs:
    from .steps.pip import install_options

    pip = ctx.profile.pip
    assert pip is not None
    reqs = [ctx.expand(e, f"pip.packages[{i}]") for i, e in enumerate(pip.packages)]
    cons = [ctx.expand(c, f"pip.constraints[{i}]") for i, c in enumerate(pip.constraints)]
    return Inputs(reqs, cons, install_options(ctx), lockfile.inputs_digest(pip))


def as_wheel(artifact: lockfile.Artifact, *, built: bool = False) -> wheelstore.Wheel:
    return wheelstore.Wheel(artifact.filename, artifact.sha256, artifact.size, built)


def installed_wheel(pkg: lockfile.Package) -> wheelstore.Wheel | None:
    """The wheel a locked package installs: the index's, else the one built from its sdist
    (None while it has not been built)."""
    artifact = pkg.wheel or pkg.built
    return None if artifact is None else as_wheel(artifact, built=pkg.wheel is None)


# -- getting one file -----------------------------------------------------------------------

def fetch_artifact(artifact: lockfile.Artifact, dest: Path, session: Any = None, *,
                   sha256: bool = True) -> None:
    """Put the verified file at ``dest``: copied from a local path or downloaded from its URL.

    ``sha256=False`` checks only the size of a local copy, for a caller that
    hashes the file next anyway (``wheelstore.put``); downloads are always hashed.
    """
    url = artifact.url
    if not url:
        raise StepError(f"the lock has no URL for {artifact.filename}", step="pip",
                        hint="run `bootstrap lock PROFILE --upgrade` to resolve again")
    if url.startswith("file:") or "://" not in url:
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        source = Path(url2pathname(urlsplit(url).path)) if url.startswith("file:") else Path(url)
        try:
            wheelstore.copy_verified(source, dest, as_wheel(artifact), sha256=sha256,
                                     link=False)
        except FileNotFoundError:
            raise StepError(f"{artifact.filename} is not at {source} any more", step="pip",
                            where=url, hint="put the file back, or run `bootstrap lock "
                                            "PROFILE --upgrade` to resolve again") from None
        except wheelstore.Damaged as exc:
            raise StepError(f"{artifact.filename} does not match the lock: {exc.what}",
                            step="pip", where=url,
                            hint="the file changed since the lock was made; run "
                                 "`bootstrap lock PROFILE --upgrade`") from None
        return
    from .fetch import download

    if session is None:
        import requests

        with requests.Session() as own:
            download(url, dest, sha256=artifact.sha256, progress=False, retries=2,
                     session=own, allow_http=True)
    else:
        download(url, dest, sha256=artifact.sha256, progress=False, retries=2,
                 session=session, allow_http=True)


def build_wheel(ctx: Context, pkg: lockfile.Package, local: Path, options: list[str]) -> Path:
    """Build pkg's sdist into a wheel in ``local``; record it in ``pkg.built``.

    Quiet (it may run on a worker thread): uv's output is in the error when it fails.
    """
    from .steps.pip import uv_binary, uv_environment

    assert pkg.sdist is not None
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=local))
    try:
        sdist = work / pkg.sdist.filename
        fetch_artifact(pkg.sdist, sdist)
        out = work / "out"
        env, _ = uv_environment(ctx.environ)
        ctx.run([uv_binary(), "build", "--quiet", "--wheel", "--python", ctx.python,
                 "--out-dir", str(out), *options, str(sdist)], env=env, cwd=str(work),
                on_line=None,
                hint=f"building {pkg.name} {pkg.version} from source failed; its output is above")
        built = sorted(out.glob("*.whl"))
        if len(built) != 1:
            raise StepError(f"building {pkg.sdist.filename} gave {len(built)} wheels, not 1",
                            step="pip", where=str(out), hint="check the package's build")
        digest, size = wheelstore.hash_file(built[0])
        pkg.built = lockfile.Artifact(built[0].name, digest, None, size)
        # under its hash, like in the store: another build of the same sdist (another
        # restore at once) must not replace this file under the same name
        dest = wheelstore.store_path(local, as_wheel(pkg.built, built=True))
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built[0], dest)
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the lock fits: install exactly it -------------------------------------------------------

class Fetcher:
    """Gets each locked package's wheel into the local folder, verified (thread-safe)."""

    def __init__(self, ctx: Context, local: Path, options: list[str]) -> None:
        self.ctx = ctx
        self.local = local
        self.store_wheels = ctx.store.wheels
        self.options = options
        self.notes: list[str] = []
        self.saving = 0
        self._lock = threading.Lock()
        self._sessions = threading.local()
        self._opened: list[Any] = []
        self._builds = threading.Semaphore(max(1, (os.cpu_count() or 2) // 2))
        self._to_save: list[tuple[Path, wheelstore.Wheel]] = []

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def get(self, pkg: lockfile.Package, *, sha256: bool = False) -> str:
        """Make ``local/<wheel>`` hold pkg's wheel; return where it came from.

        Files from the local folder and the store are checked for their size
        here and for their sha256 by uv as it installs them (``--require-hashes``),
        unless ``sha256`` asks for the full check here (after uv refused one).
        Downloads and builds are always hashed here.
        """
        wheel = installed_wheel(pkg)
        damaged = None
        if wheel is not None:
            here = wheelstore.store_path(self.local, wheel)
            if here.is_file():
                try:
                    wheelstore.verify(here, wheel, sha256=sha256)
                    return LOCAL
                except wheelstore.Damaged:
                    here.unlink(missing_ok=True)
            try:
                wheelstore.copy_verified(wheelstore.store_path(self.store_wheels, wheel), here,
                                         wheel, sha256=sha256)
                return STORE
            except FileNotFoundError:
                pass
            except wheelstore.Damaged as exc:
                damaged = exc
                self.note(f"the store's {wheel.filename} is damaged ({exc.what}); "
                          + ("fetching it again" if pkg.wheel else "building it again"))
        try:
            if pkg.wheel is not None:
                here = self.local / pkg.wheel.filename
                # into a folder of this restore's own, then renamed: other restores on
                # this VM may fetch the same file at the same time. A local copy is
                # checked for its size only: uv hashes it as it installs it, and the
                # store's copy is hashed as it is saved.
                with tempfile.TemporaryDirectory(prefix=".fetch-", dir=self.local) as tmp:
                    fetch_artifact(pkg.wheel, Path(tmp, pkg.wheel.filename), self.session(),
                                   sha256=False)
                    os.replace(Path(tmp, pkg.wheel.filename), here)
                self.save(here, as_wheel(pkg.wheel))
                url = pkg.wheel.url or ""
                return LINKS if url.startswith("file:") or "://" not in url else DOWNLOAD
            with self._builds:
                here = build_wheel(self.ctx, pkg, self.local, self.options)
            assert pkg.built is not None
            self.save(here, as_wheel(pkg.built, built=True))
            return BUILD
        except StepError as exc:
            if damaged is not None and wheel is not None:
                raise StepError(
                    f"{wheel.filename} in the store is damaged and could not be fetched "
                    f"again: {exc.what}", step="pip", where=str(damaged.path),
                    details="\n".join(filter(None, [f"the file {damaged.what}", exc.where,
                                                    exc.details])),
                    hint="restore with the network on (the file is fetched again and the "
                         "store repaired), or delete the file") from None
            raise

    def repair(self, pkgs: list[lockfile.Package]) -> list[str]:
        """Hash each of these wheels in the local folder; get damaged ones again, fully
        checked. Returns the names of the packages whose wheel was replaced."""
        replaced = []
        for pkg in pkgs:
            wheel = installed_wheel(pkg)
            if wheel is None:
                continue
            here = wheelstore.store_path(self.local, wheel)
            try:
                wheelstore.verify(here, wheel)
                continue
            except wheelstore.Damaged as exc:
                here.unlink(missing_ok=True)
                self.note(f"uv refused {wheel.filename}: it {exc.what}; getting it again")
            self.get(pkg, sha256=True)
            replaced.append(pkg.name)
        return replaced

    def save(self, path: Path, wheel: wheelstore.Wheel) -> None:
        """Keep a fetched or built wheel for the store; it is saved once uv has installed
        it (``installed``), which hashed it, so a hardlink into the store needs no check."""
        with self._lock:
            again = [i for i, (_, w) in enumerate(self._to_save) if w.filename == wheel.filename]
            if again:  # fetched once more after uv refused the first copy
                self._to_save[again[0]] = (path, wheel)
            else:
                self.saving += 1
                self._to_save.append((path, wheel))

    def installed(self, pkgs: list[lockfile.Package]) -> None:
        """uv installed these: queue their new wheels for the store."""
        names = {w.filename for w in map(installed_wheel, pkgs) if w is not None}
        with self._lock:
            ready = [(p, w) for p, w in self._to_save if w.filename in names]
            self._to_save = [(p, w) for p, w in self._to_save if w.filename not in names]
        for path, wheel in ready:
            wheelstore.save(self.store_wheels, path, wheel, checked=True)

    def session(self) -> Any:
        sess = getattr(self._sessions, "session", None)
        if sess is None:
            import requests

            sess = self._sessions.session = requests.Session()
            with self._lock:
                self._opened.append(sess)
        return sess

    def close(self) -> None:
        for sess in self._opened:
            sess.close()
        self._opened.clear()


def uv_install_locked(ctx: Context, fetcher: Fetcher, pkgs: list[lockfile.Package],
                      reinstall: list[str]) -> None:
    """``uv pip install`` exactly these wheels, offline, each with the sha256 the lock records.

    uv sees a folder of links to just these files (the local folder may hold
    other builds of the same version) and a requirements file of pins with
    hashes. When uv refuses the install, each file is hashed here: damaged ones
    are replaced (``Fetcher.repair``) and uv runs once more; with none damaged,
    uv's own error stands.
    """
    import tempfile

    from .steps.pip import uv_binary, uv_environment

    env, _ = uv_environment(ctx.environ)
    local = fetcher.local
    for attempt in (1, 2):
        folder = Path(tempfile.mkdtemp(prefix=".install-", dir=local))
        try:
            lines = []
            for pkg in pkgs:
                wheel = installed_wheel(pkg)
                assert wheel is not None
                here = wheelstore.store_path(local, wheel)
                try:
                    os.link(here, folder / wheel.filename)
                except OSError:  # a file system without hardlinks
                    shutil.copyfile(here, folder / wheel.filename)
                lines.append(f"{pkg.pin} --hash=sha256:{wheel.sha256}\n")
            (folder / "requirements.txt").write_text("".join(lines))
            argv = [uv_binary(), "pip", "install", "--python", ctx.python, "--offline",
                    "--no-index", "--find-links", str(folder), "--no-deps", "--no-build",
                    "--require-hashes"]
            for name in reinstall:
                argv += ["--reinstall-package", name]
            try:
                ctx.run(argv + ["-r", str(folder / "requirements.txt")], env=env,
                        hint="uv could not install the locked wheels; its message is above")
                fetcher.installed(pkgs)
                return
            except StepError:
                if attempt == 2 or not fetcher.repair(pkgs):
                    raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def install_exactly(ctx: Context, fetcher: Fetcher, todo: list[lockfile.Package],
                    reinstall: list[str]) -> dict[str, str]:
    """Get every wheel (in parallel) and install; wheels that are ready go in while sdists build."""
    sources: dict[str, str] = {}
    if not todo:
        return sources
    builds = [p for p in todo if p.wheel is None and p.built is None]
    others = [p for p in todo if p not in builds]
    from .steps.pip import uv_binary

    uv_binary()  # first in this thread: sysconfig's lazy set-up is not thread-safe
    ctx.say(f"installing {len(todo)} locked package{'s' if len(todo) != 1 else ''}"
            + (f" ({len(builds)} to build from source)" if builds else ""))
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=min(8, len(todo)), thread_name_prefix="bootstrap-fetch")
    try:
        # builds first: they take longest, so they should start first
        futures = [(p, pool.submit(fetcher.get, p)) for p in builds + others]
        for pkg, future in futures[len(builds):]:
            sources[pkg.name] = future.result()
        if builds and others:
            # the rest are sdists still building: install what is ready meanwhile
            uv_install_locked(ctx, fetcher, others,
                              [n for n in reinstall if n not in {b.name for b in builds}])
        for pkg, future in futures[:len(builds)]:
            sources[pkg.name] = future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if builds and others:
        uv_install_locked(ctx, fetcher, builds,
                          [n for n in reinstall if n in {b.name for b in builds}])
    else:
        uv_install_locked(ctx, fetcher, todo, reinstall)
    return sources


# -- a first restore from an index: uv installs while the lock is made -----------------------------------

def install_while_locking(ctx: Context, spec: Inputs, installed: dict[str, str],
                          old: lockfile.Lock | None) -> lockfile.Lock | None:
    """The plain ``uv pip install`` and, at the same time, ``uv pip compile`` for the lock.

    Returns the lock, or None when it could not be made (noted; the install stands).
    """
    from .steps.pip import uv_binary, uv_environment

    made: dict[str, Any] = {}
    uv_binary()  # first in this thread: sysconfig's lazy set-up is not thread-safe

    def resolve() -> None:
        try:
            made["lock"] = lockfile.resolve(ctx, spec.requirements, inputs=spec.digest,
                                            options=spec.options, constraints=spec.constraints,
                                            installed=installed, old=old, quiet=True,
                                            background=True)
        except BaseException as exc:  # noqa: BLE001 - reported below, on this thread
            made["error"] = exc

    locking = threading.Thread(target=resolve, name="bootstrap-lock")
    locking.start()
    try:
        env, _ = uv_environment(ctx.environ)
        argv = [uv_binary(), "pip", "install", "--python", ctx.python, *spec.options]
        with tempfile.TemporaryDirectory(prefix="bootstrap-pip-") as tmp:
            if spec.constraints:
                constraints = os.path.join(tmp, "constraints.txt")
                Path(constraints).write_text("\n".join(spec.constraints) + "\n")
                argv += ["--constraint", constraints]
            ctx.run(argv + ["--", *spec.requirements], env=env,
                    hint="uv could not install the requirements; its message is above")
    finally:
        locking.join()
    error = made.get("error")
    if error is not None:
        if not isinstance(error, StepError):
            raise error
        ctx.note(f"could not make the lock ({error.what}); installed without it")
        return None
    return made["lock"]


def uv_cache_dir(ctx: Context) -> Path | None:
    import subprocess

    from .steps.pip import uv_binary, uv_environment

    env, _ = uv_environment(ctx.environ)
    try:
        out = subprocess.run([uv_binary(), "cache", "dir"], env=env, capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def harvest_built(ctx: Context, pkgs: list[lockfile.Package], local: Path) -> int:
    """Take the wheels uv just built from sdists out of its cache into the store; return how
    many were found (the others keep ``built = None`` and are built again later).

    uv keeps each wheel it builds as a ``.whl`` file under ``sdists-v*/`` in its
    cache (its unpacked index wheels are no use: they are not wheel files).
    """
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    from .interpreter import inspect
    from .lock import target_tags, wheel_rank

    wanted = [p for p in pkgs if p.wheel is None and p.sdist is not None and p.built is None]
    if not wanted:
        return 0
    cache = uv_cache_dir(ctx)
    tags = target_tags(inspect(ctx.python))
    built: dict[tuple[str, Any], list[Path]] = {}
    for folder in cache.glob("sdists-v*") if cache is not None else ():
        for path in folder.rglob("*.whl"):
            try:
                name, version, _, _ = parse_wheel_filename(path.name)
            except (InvalidWheelFilename, InvalidVersion):
                continue
            if wheel_rank(path.name, tags) is not None:
                built.setdefault((name, version), []).append(path)
    found_count = 0
    for pkg in wanted:
        try:
            found = built.get((pkg.name, Version(pkg.version)), [])
        except InvalidVersion:
            continue
        if not found:
            continue
        newest = max(found, key=lambda p: p.stat().st_mtime)
        digest, size = wheelstore.hash_file(newest)
        pkg.built = lockfile.Artifact(newest.name, digest, None, size)
        wheel = as_wheel(pkg.built, built=True)
        here = wheelstore.store_path(local, wheel)
        try:
            wheelstore.copy_verified(newest, here, wheel)
        except (OSError, wheelstore.Damaged):
            pkg.built = None
            continue
        wheelstore.save(ctx.store.wheels, here, wheel)
        found_count += 1
    return found_count


def all_local(pip: Any, options: list[str]) -> bool:
    """Whether every file can only come from this machine: no index, and each
    find-links entry a folder here."""
    links = [v for f, v in zip(options, options[1:]) if f == "--find-links"]
    return bool(pip.no_index) and len(lockfile.local_dirs(options)) == len(links)


def install_from_index(ctx: Context, spec: Inputs, before: dict[str, str],
                       old: lockfile.Lock | None, path: Path, local: Path) -> bool:
    """A first restore (or a lock that no longer fits) with an index: uv installs as it
    would alone, downloading in parallel with unpacking, while the lock is resolved;
    then the lock is written and its wheels are saved to the store in the background."""
    from importlib import invalidate_caches

    from .steps.pip import record_changes, versions
    from .store import write_atomic

    lock = install_while_locking(ctx, spec, before, old)
    invalidate_caches()
    if lock is not None:
        now = versions(ctx)
        drift = [p for p in lock.packages if now.get(p.name) != p.version]
        if drift:  # the index changed between the two resolutions: the lock wins
            ctx.note("uv installed other versions than the lock records ("
                     + ", ".join(f"{p.name} {now.get(p.name)} != {p.version}" for p in drift)
                     + "); installing the locked ones")
            fetcher = Fetcher(ctx, local, spec.options)
            try:
                install_exactly(ctx, fetcher, drift, [])
            finally:
                fetcher.close()
            for text in fetcher.notes:
                ctx.note(text)
        queued = harvest_built(ctx, [p for p in lock.packages if not p.base], local)
        write_atomic(path, lockfile.dump(lock, profile=ctx.profile.source).encode())
        ctx.detail(f"{'wrote' if old is None else 'updated'} {path} "
                 f"({len(lock.packages)} package{'s' if len(lock.packages) != 1 else ''})")
        queued += fill_store(ctx, lock, path, local, spec.options)
        if queued:
            ctx.detail(f"saving {queued} wheel{'s' if queued != 1 else ''} to the store in the "
                     "background")
        ctx.state["pip"]["lock"] = str(path)
    invalidate_caches()
    record_changes(ctx, before)
    return True


def fill_store(ctx: Context, lock: lockfile.Lock, lock_path: Path, local: Path,
               options: list[str]) -> int:
    """Queue the lock's wheels that the store lacks; return how many were queued."""
    from .store import write_atomic

    store_wheels = ctx.store.wheels
    queued = 0
    for pkg in lock.packages:
        if pkg.base:
            continue  # the platform's own: not ours to keep
        if pkg.wheel is not None:
            wheel = as_wheel(pkg.wheel)
            target = wheelstore.store_path(store_wheels, wheel)
            if target.is_file() and (wheel.size is None or target.stat().st_size == wheel.size):
                continue

            def job(pkg: lockfile.Package = pkg, wheel: wheelstore.Wheel = wheel) -> bool:
                assert pkg.wheel is not None
                here = local / pkg.wheel.filename
                try:  # put() hashes what reaches the store: the size will do here
                    wheelstore.verify(here, wheel, sha256=False)
                except wheelstore.Damaged:
                    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=local) as tmp:
                        fetch_artifact(pkg.wheel, Path(tmp, pkg.wheel.filename), sha256=False)
                        os.replace(Path(tmp, pkg.wheel.filename), here)
                return wheelstore.put(store_wheels, here, wheel)

            wheelstore.background(pkg.wheel.filename, job)
            queued += 1
        elif pkg.sdist is not None and pkg.built is None:
            # uv's cache did not have the wheel it built: build it once more, off the clock
            def build_job(pkg: lockfile.Package = pkg) -> bool:
                here = build_wheel(ctx, pkg, local, options)
                assert pkg.built is not None
                saved = wheelstore.put(store_wheels, here, as_wheel(pkg.built, built=True))
                try:
                    current = lockfile.read(lock_path)
                except ValueError:
                    return saved
                if current is not None and current.inputs == lock.inputs:
                    same = current.by_name().get(pkg.name)
                    if same is not None and same.version == pkg.version and same.built is None:
                        same.built = pkg.built
                        write_atomic(lock_path, lockfile.dump(current, profile=ctx.profile.source).encode())
                return saved

            wheelstore.background(pkg.sdist.filename, build_job)
            queued += 1
    return queued


# -- the step's entry point ---------------------------------------------------------------

def install(ctx: Context, plan: Check) -> bool:
    """Install the profile's requirements through the lock; False when it does not apply."""
    pip = ctx.profile.pip
    assert pip is not None
    reason = bypass_reason(pip)
    if reason is not None:
        if reason != "lock = false":
            ctx.note(f"installed without the lock: {reason}")
        return False
    for error in wheelstore.wait():  # store work left from an earlier restore in this process
        ctx.note(error)

    from importlib import invalidate_caches

    from .interpreter import inspect
    from .steps.pip import record_changes, uv_environment, versions
    from .store import write_atomic

    for setting in uv_environment(ctx.environ)[1]:
        ctx.note(f"ignored {setting} from the environment for this install")
    before = versions(ctx)
    interp = inspect(ctx.python)
    spec = inputs(ctx)
    path = lockfile.path_for(ctx.profile, ctx.store.profiles)
    old = None
    try:
        old = lockfile.read(path)
    except ValueError as exc:
        ctx.note(f"{path.name} {exc}; resolving again")
    reason = "no lock yet" if old is None else lockfile.misfit(old, spec.digest, interp, before)
    if old is not None and reason is None:
        if not any(before.get(p.name) != p.version for p in old.packages) \
                and not broken(plan, old, before):
            reason = "it is installed, yet the requirements do not hold"
    local = wheelstore.local_dir(ctx.environ)
    local.mkdir(parents=True, exist_ok=True)

    if reason is None:
        assert old is not None
        lock = old
        known = {p.name: (p.built, p.wheel.size if p.wheel else None) for p in lock.packages}
    else:
        # Resolve once, then install exactly that, like any locked restore: one
        # resolution, every file hashed once, and what was fetched is what the
        # store keeps (nothing is downloaded twice).
        if old is not None:
            ctx.note(f"{path.name} no longer fits: {reason}; resolved again")
        if not all_local(ctx.profile.pip, spec.options):
            return install_from_index(ctx, spec, before, old, path, local)
        try:
            lock = lockfile.resolve(ctx, spec.requirements, inputs=spec.digest,
                                    options=spec.options, constraints=spec.constraints,
                                    installed=before, old=old, quiet=True)
        except StepError as exc:
            ctx.note(f"could not make the lock ({exc.what}); installed without it")
            return False
        known = None
    todo = [p for p in lock.packages if before.get(p.name) != p.version]
    reinstall = broken(plan, lock, before)
    todo += [p for p in lock.packages if p.name in reinstall and p not in todo]
    fetcher = Fetcher(ctx, local, spec.options)
    try:
        sources = install_exactly(ctx, fetcher, todo, reinstall)
    finally:
        fetcher.close()
    for text in fetcher.notes:
        ctx.note(text)
    for pkg in todo:  # indexes need not say how big a file is; the lock keeps it once known
        if pkg.wheel is not None and pkg.wheel.size is None:
            here = local / pkg.wheel.filename
            if here.is_file():
                pkg.wheel.size = here.stat().st_size
    if known is None or any((p.built, p.wheel.size if p.wheel else None) != known.get(p.name)
                            for p in lock.packages):
        write_atomic(path, lockfile.dump(lock, profile=ctx.profile.source).encode())
        ctx.detail(f"updated {path}" if known is not None or old is not None else
                 f"wrote {path} ({len(lock.packages)} package"
                 f"{'s' if len(lock.packages) != 1 else ''})")
    counts = {k: sum(1 for v in sources.values() if v == k)
              for k in (LOCAL, STORE, LINKS, DOWNLOAD, BUILD)}
    parts = [f"{n} {label}" for label, n in (("from the local wheel folder", counts[LOCAL]),
                                              ("from the store", counts[STORE]),
                                              ("from find-links folders", counts[LINKS]),
                                              ("downloaded", counts[DOWNLOAD]),
                                              ("built from source", counts[BUILD])) if n]
    ctx.detail(f"installed {len(todo)} locked package{'s' if len(todo) != 1 else ''} from "
             f"{path.name}" + (f" ({', '.join(parts)})" if parts else ""))
    if fetcher.saving:
        ctx.detail(f"saving {fetcher.saving} new wheel{'s' if fetcher.saving != 1 else ''} to "
                 "the store in the background")
    ctx.state["pip"]["sources"] = sources
    ctx.state["pip"]["lock"] = str(path)
    invalidate_caches()
    record_changes(ctx, before)
    return True


def broken(plan: Check, lock: lockfile.Lock, installed: dict[str, str]) -> list[str]:
    """Locked packages the check found unmet though their version is the pinned one."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned = lock.by_name()
    out = []
    for missing in plan.data or ():
        try:
            name = canonicalize_name(Requirement(missing.requirement).name)
        except Exception:  # noqa: BLE001 - anything odd here just means "not broken"
            continue
        pkg = pinned.get(name)
        if pkg is not None and installed.get(name) == pkg.version:
            out.append(name)
    return out


# -- the `bootstrap lock` command -------------------------------------------------------------

def lock_profile(profile: Any, *, upgrade: bool = False, python: str | None = None,
                 store: Any = None, progress: Any = None) -> tuple[Path, lockfile.Lock, list[str]]:
    """Resolve ``profile``'s [pip] section and write its lock; return (path, lock, changes).

    Without ``upgrade`` the versions of the current lock and of what is installed
    are kept where they still fit; with it, everything is resolved afresh.
    Nothing is installed.
    """
    from .context import Context
    from .errors import OptionError
    from .platform import detect
    from .profile import Profile, load
    from .runner import target_python
    from .steps.pip import versions
    from .store import Store, write_atomic

    platform = detect(store=store)
    the_store = Store(platform.store_root)
    if not isinstance(profile, Profile):
        profile = load(profile, profiles_dir=the_store.profiles)
    profile = profile.for_platform(platform.name)
    if profile.pip is None or not profile.pip.packages:
        raise OptionError(f"profile {profile.name or profile.origin} has no [pip] packages to lock",
                          where=profile.origin, hint="add packages under [pip]")
    reason = bypass_reason(profile.pip)
    if reason is not None:
        raise OptionError(f"this profile is installed without a lock: {reason}",
                          where=f"{profile.origin}: [pip]",
                          hint="only plain PEP 508 requirements are locked")
    ctx = Context(profile=profile, platform=platform, store=the_store,
                  python=target_python(python), progress=progress)
    ctx.step = "pip"
    spec = inputs(ctx)
    path = lockfile.path_for(profile, the_store.profiles)
    try:
        old = lockfile.read(path)
    except ValueError:
        old = None
    have = versions(ctx)
    lock = lockfile.resolve(ctx, spec.requirements, inputs=spec.digest, options=spec.options,
                            constraints=spec.constraints, installed={} if upgrade else have,
                            old=None if upgrade else old, upgrade=upgrade)
    for pkg in lock.packages:  # what the platform has already is its own, for the fit check
        pkg.base = have.get(pkg.name) == pkg.version and not (
            old is not None and pkg.name in old.by_name() and not old.by_name()[pkg.name].base)
    write_atomic(path, lockfile.dump(lock, profile=os.path.basename(profile.origin or "")).encode())
    return path, lock, changes(old, lock)


def changes(old: lockfile.Lock | None, new: lockfile.Lock) -> list[str]:
    before = {p.name: p.version for p in old.packages} if old else {}
    after = {p.name: p.version for p in new.packages}
    out = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name not in before:
            out.append(f"{name} {after[name]} added")
        elif name not in after:
            out.append(f"{name} {before[name]} removed")
        else:
            out.append(f"{name} {before[name]} -> {after[name]}")
    return out
