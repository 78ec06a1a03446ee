"""Installing a profile's ``[pip]`` requirements from its pinned lock and the wheel store.

This is how the ``pip`` step installs plain PEP 508 requirements (it calls
:func:`install` from ``apply``):

1. read the lock beside the profile (``bootstrap.lock``); when there is none,
   or it no longer fits (the profile changed, another Python, the platform's
   own packages moved), say why and resolve once with ``uv pip compile``;
2. for each locked package not installed at its pinned version, get its
   wheel onto local disk: from the local wheel folder, else from the store,
   else download it (the URL and sha256 are in the lock), else build it from
   its sdist with ``uv build`` (once: the wheel goes into the store). Every
   file is verified against the lock first;
3. install exactly those pins with ``uv pip install --offline --no-index
   --find-links LOCAL --no-deps --no-build``: no resolution, no network, no
   build. Wheels that are ready are installed while sdists still build;
4. write the lock when it is new or learned a built wheel's hash, and save
   new wheels into the store in the background.

Left to the plain ``uv pip install`` path (with a note saying why): entries
with a direct URL, entries that are tables with per-entry options, and pip
settings this module does not know (e.g. indexes scoped to packages).
``[pip] lock = false`` turns the lock and store off for a profile.

Reads: ``[pip]``, the lock, the store's ``wheels/``, the local wheel folder.
Changes: the target's site-packages (through uv), the lock file, both wheel folders.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
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
LOCAL, STORE, DOWNLOAD, BUILD = "local", "store", "download", "build"


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


# -- getting the wheels ---------------------------------------------------------------------

class Fetcher:
    """Gets each locked package's wheel into the local folder, verified."""

    def __init__(self, ctx: Context, local: Path, options: list[str]) -> None:
        self.ctx = ctx
        self.local = local
        self.store_wheels = ctx.store.wheels
        self.options = options
        self.notes: list[str] = []
        self.to_save: list[tuple[Path, wheelstore.Wheel]] = []
        self._lock = threading.Lock()
        self._sessions = threading.local()
        self._opened: list[Any] = []
        self._builds = threading.Semaphore(max(1, (os.cpu_count() or 2) // 2))

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def get(self, pkg: lockfile.Package) -> str:
        """Make ``local/<wheel>`` hold pkg's verified wheel; return where it came from."""
        artifact = pkg.wheel or pkg.built
        damaged = None
        if artifact is not None:
            wheel = self.wheel(artifact, built=pkg.wheel is None)
            here = self.local / artifact.filename
            if here.is_file():
                try:
                    wheelstore.verify(here, wheel)
                    return LOCAL
                except wheelstore.Damaged:
                    here.unlink(missing_ok=True)
            try:
                wheelstore.copy_verified(wheelstore.store_path(self.store_wheels, wheel), here,
                                         wheel)
                return STORE
            except FileNotFoundError:
                pass
            except wheelstore.Damaged as exc:
                damaged = exc
                self.note(f"the store's {artifact.filename} is damaged ({exc.what}); "
                          + ("fetching it again" if pkg.wheel else "building it again"))
        try:
            if pkg.wheel is not None:
                self.download(pkg.wheel, self.local / pkg.wheel.filename)
                self.to_save_add(self.local / pkg.wheel.filename, self.wheel(pkg.wheel))
                return DOWNLOAD
            assert pkg.sdist is not None
            self.build(pkg)
            return BUILD
        except StepError as exc:
            if damaged is not None:
                raise StepError(f"{artifact.filename} in the store is damaged and could not be "
                                f"fetched again: {exc.what}", step="pip",
                                where=str(damaged.path),
                                details="\n".join(filter(None, [f"the file {damaged.what}",
                                                                 exc.where, exc.details])),
                                hint="restore with the network on (the file is fetched again "
                                     "and the store repaired), or delete the file") from None
            raise

    @staticmethod
    def wheel(artifact: lockfile.Artifact, *, built: bool = False) -> wheelstore.Wheel:
        return wheelstore.Wheel(artifact.filename, artifact.sha256, artifact.size, built)

    def to_save_add(self, path: Path, wheel: wheelstore.Wheel) -> None:
        with self._lock:
            self.to_save.append((path, wheel))
        wheelstore.save(self.store_wheels, path, wheel)

    def download(self, artifact: lockfile.Artifact, dest: Path) -> None:
        url = artifact.url
        if not url:
            raise StepError(f"the lock has no URL for {artifact.filename}", step="pip",
                            hint="run `bootstrap lock PROFILE --upgrade` to resolve again")
        wheel = self.wheel(artifact)
        if url.startswith("file:") or "://" not in url:
            from urllib.request import url2pathname

            from urllib.parse import urlsplit

            source = Path(url2pathname(urlsplit(url).path)) if url.startswith("file:") else Path(url)
            try:
                wheelstore.copy_verified(source, dest, wheel)
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

        self.ctx.say(f"downloading {artifact.filename}")
        download(url, dest, sha256=artifact.sha256, progress=False, retries=2,
                 session=self.session(), allow_http=True, connect_timeout=10,
                 read_timeout=60)

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

    def build(self, pkg: lockfile.Package) -> None:
        """Build pkg's sdist into a wheel once; record it in ``pkg.built``."""
        from .steps.pip import uv_binary, uv_environment

        assert pkg.sdist is not None
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=self.local))
        try:
            sdist = work / pkg.sdist.filename
            self.download(pkg.sdist, sdist)
            out = work / "out"
            env, _ = uv_environment(self.ctx.environ)
            with self._builds:
                self.ctx.say(f"building {pkg.sdist.filename} (once: the wheel goes into the store)")
                self.ctx.run([uv_binary(), "build", "--quiet", "--wheel", "--python", self.ctx.python,
                              "--out-dir", str(out), *self.options, str(sdist)], env=env,
                             cwd=str(work), hint=f"building {pkg.name} {pkg.version} from source "
                                                 "failed; its output is above")
            built = sorted(out.glob("*.whl"))
            if len(built) != 1:
                raise StepError(f"building {pkg.sdist.filename} gave {len(built)} wheels, not 1",
                                step="pip", where=str(out), hint="check the package's build")
            digest, size = wheelstore.hash_file(built[0])
            pkg.built = lockfile.Artifact(built[0].name, digest, None, size)
            dest = self.local / built[0].name
            os.replace(built[0], dest)
            self.to_save_add(dest, self.wheel(pkg.built, built=True))
        finally:
            shutil.rmtree(work, ignore_errors=True)


# -- installing -----------------------------------------------------------------------------

def uv_install(ctx: Context, local: Path, pins: list[str], reinstall: list[str]) -> None:
    from .steps.pip import uv_binary, uv_environment

    env, _ = uv_environment(ctx.environ)
    argv = [uv_binary(), "pip", "install", "--python", ctx.python, "--offline", "--no-index",
            "--find-links", str(local), "--no-deps", "--no-build"]
    for name in reinstall:
        argv += ["--reinstall-package", name]
    ctx.run(argv + ["--", *pins], env=env,
            hint="uv could not install the locked wheels; its message is above")


def install(ctx: Context, plan: Check) -> bool:
    """Install the profile's requirements through the lock; False when it does not apply."""
    pip = ctx.profile.pip
    assert pip is not None
    reason = bypass_reason(pip)
    if reason is not None:
        if reason != "lock = false":
            ctx.note(f"installed without the lock: {reason}")
        return False
    for error in wheelstore.wait():  # saves left from an earlier restore in this process
        ctx.note(error)
    from .steps.pip import uv_environment

    for setting in uv_environment(ctx.environ)[1]:
        ctx.note(f"ignored {setting} from the environment for this install")

    from importlib import invalidate_caches

    from .interpreter import inspect
    from .steps.pip import record_changes, versions
    from .store import write_atomic

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
    lock = old
    if lock is not None and reason is None:
        todo = [p for p in lock.packages if before.get(p.name) != p.version]
        if not todo and not _broken(plan, lock, before):
            reason = "it is installed, yet the requirements do not hold"
    if reason is not None:
        if old is not None:
            ctx.note(f"{path.name} no longer fits: {reason}; resolved again")
        ctx.say("resolving the requirements (once; the result is kept in "
                f"{path.name})")
        try:
            lock = lockfile.resolve(ctx, spec.requirements, inputs=spec.digest,
                                    options=spec.options, constraints=spec.constraints,
                                    installed=before, old=old)
        except StepError as exc:
            # uv install gives the clearer message when the requirements cannot be met,
            # and a lock-only problem must not stop the restore
            ctx.note(f"could not make the lock ({exc.what}); installing without it")
            return False
    assert lock is not None
    known_before = {p.name: (p.built, p.wheel.size if p.wheel else None) for p in lock.packages}
    todo = [p for p in lock.packages if before.get(p.name) != p.version]
    reinstall = _broken(plan, lock, before)
    todo += [p for p in lock.packages if p.name in reinstall and p not in todo]

    local = wheelstore.local_dir(ctx.environ)
    local.mkdir(parents=True, exist_ok=True)
    fetcher = Fetcher(ctx, local, spec.options)
    try:
        sources = _fetch_and_install(ctx, fetcher, todo, local, reinstall)
    finally:
        fetcher.close()
    for text in fetcher.notes:
        ctx.note(text)

    for pkg in todo:  # indexes need not say how big a file is; the lock keeps it once known
        if pkg.wheel is not None and pkg.wheel.size is None:
            here = local / pkg.wheel.filename
            if here.is_file():
                pkg.wheel.size = here.stat().st_size
    if lock is not old or any((p.built, p.wheel.size if p.wheel else None)
                              != known_before.get(p.name) for p in lock.packages):
        write_atomic(path, lockfile.dump(lock, profile=ctx.source).encode())
        ctx.note(f"{'wrote' if old is None else 'updated'} {path}")
    invalidate_caches()
    counts = {k: sum(1 for v in sources.values() if v == k) for k in (LOCAL, STORE, DOWNLOAD, BUILD)}
    parts = [f"{n} {label}" for label, n in (("from the local wheel folder", counts[LOCAL]),
                                              ("from the store", counts[STORE]),
                                              ("downloaded", counts[DOWNLOAD]),
                                              ("built from source", counts[BUILD])) if n]
    ctx.note(f"installed {len(todo)} locked package{'s' if len(todo) != 1 else ''}"
             + (f" ({', '.join(parts)})" if parts else ""))
    if fetcher.to_save:
        ctx.note(f"saving {len(fetcher.to_save)} new wheel{'s' if len(fetcher.to_save) != 1 else ''}"
                 " to the store in the background")
    ctx.state["pip"]["lock"] = str(path)
    ctx.state["pip"]["sources"] = sources
    record_changes(ctx, before)
    return True


def _broken(plan: Check, lock: lockfile.Lock, installed: dict[str, str]) -> list[str]:
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


def _fetch_and_install(ctx: Context, fetcher: Fetcher, todo: list[lockfile.Package], local: Path,
                       reinstall: list[str]) -> dict[str, str]:
    """Get every wheel (in parallel) and install; wheels that are ready go in while sdists build."""
    sources: dict[str, str] = {}
    if not todo:
        return sources
    builds = [p for p in todo if p.wheel is None and p.built is None]
    others = [p for p in todo if p not in builds]
    pool = ThreadPoolExecutor(max_workers=min(8, len(todo)), thread_name_prefix="bootstrap-fetch")
    try:
        # builds first: they take longest, so they should start first
        futures = [(p, pool.submit(fetcher.get, p)) for p in builds + others]
        for pkg, future in futures[len(builds):]:
            sources[pkg.name] = future.result()
        if builds and others:
            # the rest are sdists still building: install what is ready meanwhile
            uv_install(ctx, local, [p.pin for p in others], [n for n in reinstall
                                                              if n not in {b.name for b in builds}])
        for pkg, future in futures[:len(builds)]:
            sources[pkg.name] = future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if builds and others:
        uv_install(ctx, local, [p.pin for p in builds], [n for n in reinstall
                                                          if n in {b.name for b in builds}])
    else:
        uv_install(ctx, local, [p.pin for p in todo], reinstall)
    return sources


# -- the `bootstrap lock` command -------------------------------------------------------------

def lock_profile(profile: Any, *, upgrade: bool = False, python: str | None = None,
                 store: Any = None, progress: Any = None) -> tuple[Path, lockfile.Lock, list[str]]:
    """Resolve ``profile``'s [pip] section and write its lock; return (path, lock, changes).

    Without ``upgrade`` the versions of the current lock and of what is installed
    are kept where they still fit; with it, everything is resolved afresh.
    """
    from .context import Context
    from .errors import OptionError
    from .interpreter import inspect
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
    installed = versions(ctx) if not upgrade else {}
    inspect(ctx.python)
    lock = lockfile.resolve(ctx, spec.requirements, inputs=spec.digest, options=spec.options,
                            constraints=spec.constraints, installed=installed, old=old,
                            upgrade=upgrade)
    if upgrade:  # still mark what the platform already has, for the fit check
        have = versions(ctx)
        for pkg in lock.packages:
            pkg.base = have.get(pkg.name) == pkg.version
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
