"""Installing what a lock selects: every wheel onto local disk, then one offline uv install.

For each selected package not installed at its pinned version, its wheel is
put into the VM-local wheel folder: found there already, copied from the store,
downloaded (the URL and sha256 are in the lock), or built here with ``uv
build`` from its sdist, its direct URL's file or its VCS commit. Every file's
size is checked on the way (downloads and builds are hashed too). Then ``uv pip
install --offline --no-index --no-deps --no-build --require-hashes`` of exactly
those pins with their sha256s: no resolution, no network, no build, and uv
hashes each wheel as it unpacks it, so an altered file is refused before
anything is installed (it is then found, replaced and the install run once
more). Wheels that are ready are installed while others still build.

Where the store is slow (Drive), a wheel that can also be downloaded is taken
from whichever source delivers it first: both start, the first complete and
verified copy wins (``Fetcher.race``), so the store never makes a restore
slower than the index alone.

Every new wheel goes to the store once uv has installed (and so hashed) it:
downloaded ones so an index-less VM can restore from the store alone, built
ones because building is the costliest step of all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import uv, wheelstore
from .errors import StepError
from .lock import Artifact, Package, Selected

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context

#: where a wheel came from, for the report
LOCAL, STORE, LINKS, DOWNLOAD, BUILD = "local", "store", "links", "download", "build"
SOURCES = ((LOCAL, "from the local wheel folder"), (STORE, "from the store"),
           (LINKS, "from find-links folders"), (DOWNLOAD, "downloaded"),
           (BUILD, "built from source"))


def as_wheel(artifact: Artifact, *, built: bool = False) -> wheelstore.Wheel:
    return wheelstore.Wheel(artifact.filename, artifact.sha256, artifact.size, built)


def installed_wheel(item: Selected) -> wheelstore.Wheel | None:
    """The wheel a selected package installs (None while it has not been built)."""
    if item.wheel is None:
        return None
    return as_wheel(item.wheel, built=item.wheel is item.package.built)


def is_local(url: str) -> bool:
    return url.startswith("file:") or "://" not in url


def local_path(url: str) -> Path:
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    return Path(url2pathname(urlsplit(url).path)) if url.startswith("file:") else Path(url)


def fetch_artifact(artifact: Artifact, dest: Path, session: Any = None, *,
                   sha256: bool = True) -> None:
    """Put the verified file at ``dest``: copied from a local path or downloaded from its URL.

    ``sha256=False`` checks only the size of a local copy, for a caller that
    hashes the file next anyway; downloads are always hashed.
    """
    url = artifact.url
    if not url:
        raise StepError(f"the lock has no URL for {artifact.filename}", step="pip",
                        hint="run `bootstrap lock PROFILE --upgrade` to resolve again")
    if is_local(url):
        source = local_path(url)
        try:
            wheelstore.copy_verified(source, dest, as_wheel(artifact), sha256=sha256, link=False)
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


def build_wheel(ctx: Context, pkg: Package, local: Path, options: list[str], *,
                no_build_isolation: bool = False) -> Path:
    """Build pkg's wheel from its sdist, direct URL or VCS commit into ``local``; record it
    in ``pkg.built``. Quiet (it runs on a worker thread): uv's output is in the error."""
    from .fileio import hash_file

    work = Path(tempfile.mkdtemp(prefix=".build-", dir=local))
    try:
        if pkg.vcs is not None:
            source = work / "checkout"
            url = pkg.vcs.url
            ctx.run(["git", "clone", "--quiet", "--no-checkout", "--", url, str(source)],
                    on_line=None, hint=f"cloning {url} failed; its output is above")
            ctx.run(["git", "-C", str(source), "checkout", "--quiet", pkg.vcs.commit],
                    on_line=None, hint=f"commit {pkg.vcs.commit} of {url} is not there any more")
            if pkg.vcs.subdirectory:
                source = source / pkg.vcs.subdirectory
        else:
            artifact = pkg.archive or pkg.sdist
            assert artifact is not None
            source = work / artifact.filename
            fetch_artifact(artifact, source)
        out = work / "out"
        env, _ = uv.environment(ctx.environ)
        ctx.run(uv.build_wheel(ctx.python, str(source), str(out),
                               no_build_isolation=no_build_isolation, options=options),
                env=env, cwd=str(work), on_line=None,
                hint=f"building {pkg.name} {pkg.version} from source failed; its output is above")
        built = sorted(out.glob("*.whl"))
        if len(built) != 1:
            raise StepError(f"building {pkg.source} gave {len(built)} wheels, not 1",
                            step="pip", where=str(out), hint="check the package's build")
        digest, size = hash_file(built[0])
        pkg.built = Artifact(built[0].name, digest, None, size)
        # under its hash, like in the store: another build of the same source (another
        # restore at once) must not replace this file under the same name
        dest = wheelstore.store_path(local, as_wheel(pkg.built, built=True))
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built[0], dest)
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)


#: how long a sound store takes to start a file, and its read speed, for ``head_start``
STORE_FIRST_BYTE_S = 0.25
STORE_BYTES_PER_S = 60e6


def head_start(wheel: wheelstore.Wheel) -> float:
    """Seconds the store's copy of ``wheel`` gets before the index is asked as well."""
    return STORE_FIRST_BYTE_S + (wheel.size or 0) / STORE_BYTES_PER_S


class Fetcher:
    """Gets each selected package's wheel into the local folder, verified (thread-safe)."""

    def __init__(self, ctx: Context, local: Path, options: list[str],
                 no_build_isolation: frozenset[str] = frozenset()) -> None:
        self.ctx = ctx
        self.local = local
        self.store_wheels = ctx.store.wheels
        self.options = options
        self.no_build_isolation = no_build_isolation
        self.notes: list[str] = []
        self.saving = 0
        self._lock = threading.Lock()
        self._sessions = threading.local()
        self._opened: list[Any] = []
        self._builds = threading.Semaphore(max(1, (os.cpu_count() or 2) // 2))
        self._to_save: list[tuple[Path, wheelstore.Wheel]] = []
        # race the store against the index only where the store may be the slower
        self.race_store = wheelstore.is_slow(self.store_wheels)

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def get(self, item: Selected, *, sha256: bool = False) -> str:
        """Make ``local/<wheel>`` hold the item's wheel; return where it came from.

        Files from the local folder and the store are checked for their size
        here and for their sha256 by uv as it installs them (``--require-hashes``),
        unless ``sha256`` asks for the full check here (after uv refused one).
        Downloads and builds are always hashed here.
        """
        wheel = installed_wheel(item)
        damaged = None
        if wheel is not None:
            here = wheelstore.store_path(self.local, wheel)
            if here.is_file():
                try:
                    wheelstore.verify(here, wheel, sha256=sha256)
                    return LOCAL
                except wheelstore.Damaged:
                    here.unlink(missing_ok=True)
            stored = wheelstore.store_path(self.store_wheels, wheel)
            try:
                if self.race_store and not wheel.built and item.wheel is not None \
                        and item.wheel.url and not is_local(item.wheel.url) and stored.is_file():
                    return self.race(item, stored, wheel, sha256=sha256)
                wheelstore.copy_verified(stored, here, wheel, sha256=sha256)
                return STORE
            except FileNotFoundError:
                pass
            except wheelstore.Damaged as exc:
                damaged = exc
                self.note(f"the store's {wheel.filename} is damaged ({exc.what}); "
                          + ("building it again" if wheel.built else "fetching it again"))
        try:
            if not item.build and item.wheel is not None and not wheel.built:  # type: ignore[union-attr]
                return self.download(item)
            with self._builds:
                here = build_wheel(self.ctx, item.package, self.local, self.options,
                                   no_build_isolation=item.package.name in self.no_build_isolation)
            assert item.package.built is not None
            item.wheel = item.package.built
            item.build = False
            self.save(here, as_wheel(item.package.built, built=True))
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

    def download(self, item: Selected, cancel: threading.Event | None = None) -> str:
        """Fetch the item's wheel from its URL into the local folder."""
        art = item.wheel
        assert art is not None
        here = self.local / art.filename
        # into a folder of this restore's own, then renamed: other restores on this VM
        # may fetch the same file at the same time
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=self.local) as tmp:
            fetch_artifact(art, Path(tmp, art.filename), self.session(), sha256=False)
            if cancel is not None and cancel.is_set():
                return STORE  # the other source won meanwhile
            os.replace(Path(tmp, art.filename), here)
        self.save(here, as_wheel(art))
        return LINKS if is_local(art.url or "") else DOWNLOAD

    def race(self, item: Selected, stored: Path, wheel: wheelstore.Wheel, *,
             sha256: bool) -> str:
        """Copy from the store, and download too when the copy is late; keep whichever is
        complete first (a hedged request).

        The store sits on Drive on Colab, which can read slower than an index
        downloads: racing both means the store never makes a restore slower. But
        both at once compete for the VM's CPUs and disk, so the download starts
        only when the store's copy has not finished within ``head_start`` (what a
        sound store needs for the file); measured with the benchmark's emulated
        Drive, starting both at once cost more than either alone. The store's copy
        stops as soon as the download has won; a download that lost finishes on
        its own thread and is thrown away.
        """
        here = wheelstore.store_path(self.local, wheel)
        done = threading.Event()

        def from_store() -> str:
            tmp = self.local / f".store-{os.getpid()}-{threading.get_ident()}-{wheel.filename}"
            try:
                if wheelstore.copy_unless(stored, tmp, wheel, done, sha256=sha256):
                    os.replace(tmp, here)
            finally:
                tmp.unlink(missing_ok=True)
            return STORE

        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bootstrap-race")
        pending = {pool.submit(from_store)}
        wait(pending, timeout=head_start(wheel))
        if not all(f.done() and f.exception() is None for f in pending):
            pending.add(pool.submit(self.download, item, done))  # the store is late: hedge
        pool.shutdown(wait=False)
        errors: list[BaseException] = []
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                error = future.exception()
                if error is not None:
                    errors.append(error)
                    continue
                if done.is_set():
                    continue  # the other one was first
                done.set()
                damaged = [e for e in errors if isinstance(e, wheelstore.Damaged)]
                for error in damaged:
                    self.note(f"the store's {wheel.filename} is damaged ({error.what}); "
                              "downloaded it again")
                if not damaged:
                    # the store has this file already: reading it back to check it would
                    # cost what the race saved (a damaged one is replaced by the download)
                    self.unsave(wheel)
                return future.result()
        raise next((e for e in errors if not isinstance(e, wheelstore.Damaged)), errors[-1])

    def repair(self, items: list[Selected]) -> list[str]:
        """Hash each of these wheels in the local folder; get damaged ones again, fully
        checked. Returns the names of the packages whose wheel was replaced."""
        replaced = []
        for item in items:
            wheel = installed_wheel(item)
            if wheel is None:
                continue
            here = wheelstore.store_path(self.local, wheel)
            try:
                wheelstore.verify(here, wheel)
                continue
            except wheelstore.Damaged as exc:
                here.unlink(missing_ok=True)
                self.note(f"uv refused {wheel.filename}: it {exc.what}; getting it again")
            self.get(item, sha256=True)
            replaced.append(item.package.name)
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

    def unsave(self, wheel: wheelstore.Wheel) -> None:
        """Do not save this wheel after all (the store has it)."""
        with self._lock:
            kept = [(p, w) for p, w in self._to_save if w.filename != wheel.filename]
            self.saving -= len(self._to_save) - len(kept)
            self._to_save = kept

    def installed(self, items: list[Selected]) -> None:
        """uv installed these: queue their new wheels for the store."""
        names = {w.filename for w in map(installed_wheel, items) if w is not None}
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


def uv_install(ctx: Context, fetcher: Fetcher, items: list[Selected],
               reinstall: list[str]) -> None:
    """``uv pip install`` exactly these wheels, offline, each with the sha256 the lock records.

    uv sees a folder of links to just these files (the local folder may hold
    other builds of the same version) and a requirements file of pins with
    hashes. When uv refuses the install, each file is hashed here: damaged ones
    are replaced (``Fetcher.repair``) and uv runs once more; with none damaged,
    uv's own error stands.
    """
    env, _ = uv.environment(ctx.environ)
    local = fetcher.local
    for attempt in (1, 2):
        folder = Path(tempfile.mkdtemp(prefix=".install-", dir=local))
        try:
            lines = []
            for item in items:
                wheel = installed_wheel(item)
                assert wheel is not None
                here = wheelstore.store_path(local, wheel)
                try:
                    os.link(here, folder / wheel.filename)
                except OSError:  # a file system without hardlinks
                    shutil.copyfile(here, folder / wheel.filename)
                lines.append(f"{item.package.pin} --hash=sha256:{wheel.sha256}\n")
            (folder / "requirements.txt").write_text("".join(lines))
            try:
                ctx.run(uv.install_exactly(ctx.python, str(folder),
                                           str(folder / "requirements.txt"), reinstall),
                        env=env, hint="uv could not install the locked wheels; its message "
                                      "is above")
                fetcher.installed(items)
                return
            except StepError:
                if attempt == 2 or not fetcher.repair(items):
                    raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def install(ctx: Context, fetcher: Fetcher, todo: list[Selected],
            reinstall: list[str]) -> dict[str, str]:
    """Get every wheel (in parallel) and install; wheels that are ready go in while others
    build. Returns where each package's wheel came from."""
    sources: dict[str, str] = {}
    if not todo:
        return sources
    builds = [s for s in todo if s.build]
    others = [s for s in todo if not s.build]
    uv.binary()  # first in this thread: sysconfig's lazy set-up is not thread-safe
    ctx.say(f"installing {len(todo)} locked package{'s' if len(todo) != 1 else ''}"
            + (f" ({len(builds)} to build from source)" if builds else ""))
    pool = ThreadPoolExecutor(max_workers=min(8, len(todo)), thread_name_prefix="bootstrap-fetch")
    built_names = {b.package.name for b in builds}
    try:
        # builds first: they take longest, so they should start first
        futures = [(s, pool.submit(fetcher.get, s)) for s in builds + others]
        for item, future in futures[len(builds):]:
            sources[item.package.name] = future.result()
        if builds and others:
            # the rest are still building: install what is ready meanwhile
            uv_install(ctx, fetcher, others, [n for n in reinstall if n not in built_names])
        for item, future in futures[:len(builds)]:
            sources[item.package.name] = future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if builds and others:
        uv_install(ctx, fetcher, builds, [n for n in reinstall if n in built_names])
    else:
        uv_install(ctx, fetcher, todo, reinstall)
    return sources
