"""Benchmark: one profile restored by pip, by uv and by notebook-bootstrap, side by side.

    /work/main/.venv/bin/python tests/perf/bench_restore.py            # 7 rounds
    /work/main/.venv/bin/python tests/perf/bench_restore.py --quick    # 1 round, a smoke test

Not part of the test suite (pytest collects test_*.py only). The first run
downloads its inputs once from PyPI into tests/perf/out/inputs/ (gitignored):
the wheels of a realistic 30-package profile, and the sdist of ``regex`` (a C
extension that must be compiled, whose build takes several times as long as
installing the rest). Everything measured after that is offline, from that
local folder.

Two profiles: ``wheels`` (the 30 packages) and ``sdist`` (the same plus
regex). For each, in rounds (every method once per round, so a busy moment
on a shared machine hits all of them alike), each into a fresh venv:

- pip:         ``pip install --no-index --find-links DIR -r req.txt`` (the venv's pip,
               default settings, so it compiles bytecode; no cache)
- uv cold:     ``uv pip install --offline --no-index --find-links DIR`` with an empty cache
- uv warm:     the same with a cache filled beforehand
- ours empty:  ``bootstrap restore`` with an empty store and no lock (resolves, fills
               the store, writes the lock), empty uv cache and local wheel folder
- ours store:  ``bootstrap restore`` with the store and lock of an earlier run; empty uv
               cache and local wheel folder, as on a fresh VM
- ours no-op:  ``bootstrap restore`` again where everything holds (CLI: a new process,
               imports included; in-process: a warm interpreter, as in a kernel)
- raw tar x:   extracting a tar of the finished site-packages into a fresh folder (what
               the disk allows)

A third profile, ``apt`` (only as root on a machine with apt-get; it installs
and then purges real Debian packages), restores ``APT_PACKAGES`` with their
dependencies the same way, in rounds, each from a state where none of them is
installed and no .deb is cached on the machine, as on a fresh VM:

- apt-get:     ``apt-get install -y --no-install-recommends`` (every .deb downloaded)
- ours empty:  ``bootstrap restore`` of an [apt] profile with an empty store (downloads,
               installs, keeps the .debs in the store)
- ours store:  the same with the store of an earlier run (the .debs come from the store)
- ours no-op:  ``bootstrap restore`` again where everything holds

The package lists are updated once before the rounds, so no method pays for
``apt-get update``.

notebook-bootstrap runs from this checkout with its bytecode compiled first
(``compileall``), as after ``pip install``; so a machine where
PYTHONDONTWRITEBYTECODE is set does not charge a recompile to every run.

It prints a table per profile (median, min-max, ratio to uv cold) and the
speed targets it is held to, and writes tests/perf/out/bench.json. The store here is
on the local disk (wheels are hardlinked into it); on Colab it is on Drive,
where copying the wheels costs extra, which this does not measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUT = HERE / "out"

#: the profile: 30 packages (31 installed), ~160 MB (numpy and pandas are the big ones)
PACKAGES = [
    "attrs", "certifi", "charset-normalizer", "click", "filelock", "fsspec", "pandas",
    "idna", "iniconfig", "jinja2", "markdown-it-py", "markupsafe", "mdurl", "more-itertools",
    "numpy", "packaging", "platformdirs", "pluggy", "pygments", "pytest", "python-dateutil",
    "pytz", "pyyaml", "requests", "rich", "six", "tqdm", "typing-extensions", "tzdata",
    "urllib3",
]
#: a C extension only offered as an sdist in the folder; setuptools builds it
SDIST = "regex==2026.11.15"
BUILD_DEPS = ["setuptools", "wheel"]

METHODS = ["pip", "uv cold", "uv warm", "ours empty", "ours store", "ours no-op cli",
           "ours no-op in-process", "raw tar x"]

#: the apt profile: what Colab notebooks often add (OCR, PDF tools, graphs): 19 .debs, ~12 MB
APT_PACKAGES = ["graphviz", "poppler-utils", "tesseract-ocr"]
APT_METHODS = ["apt-get", "ours empty", "ours store", "ours no-op cli"]


# -- helpers --------------------------------------------------------------------------------

def uv() -> str:
    sys.path.insert(0, str(REPO))
    from bootstrap.uv import binary as uv_binary

    return uv_binary()


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        log: Path | None = None) -> float:
    """Run argv, return its wall time; fail loudly (with the output) when it fails.

    The disk is synced first, so writes left over from the previous method (and
    the deletion of its venv) are not charged to this one.
    """
    os.sync()
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    if log is not None:
        with open(log, "a") as handle:
            handle.write(f"$ {' '.join(argv)}\n{proc.stdout}\n")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout[-4000:]}")
    return seconds


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "PIP_", "BOOTSTRAP_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(extra)
    return env


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def machine() -> dict[str, object]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    uv_version = subprocess.run([uv(), "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory": mem,
            "python": platform.python_version(), "uv": uv_version,
            "system": f"{platform.system()} {platform.release()}",
            "loadavg_start": os.getloadavg()}


# -- inputs, once ---------------------------------------------------------------------------

def inputs() -> Path:
    """The offline wheel folder: downloaded once, reused by later runs."""
    folder = OUT / "inputs" / "wheels"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--isolated", "--quiet",
           "--disable-pip-version-check", "--dest", str(folder)]
    print("downloading the benchmark's wheels once from PyPI ...", flush=True)
    run(pip + ["--only-binary", ":all:", *PACKAGES, *BUILD_DEPS])
    run(pip + ["--no-binary", ":all:", "--no-deps", SDIST])
    done.write_text("\n".join(sorted(p.name for p in folder.iterdir())) + "\n")
    return folder


def compile_package() -> None:
    """Compile notebook-bootstrap's bytecode, as installing it with pip does."""
    run([sys.executable, "-m", "compileall", "-q", str(REPO / "bootstrap"), str(REPO / "magics")])


# -- one profile ----------------------------------------------------------------------------

class Bench:
    def __init__(self, name: str, packages: list[str], wheels: Path, work: Path, uv_bin: str):
        self.name = name
        self.packages = packages
        self.wheels = wheels
        self.work = fresh(work)
        self.uv = uv_bin
        self.log = work / "commands.log"
        self.req = work / "requirements.txt"
        self.req.write_text("\n".join(packages) + "\n")
        self.times: dict[str, list[float]] = {m: [] for m in METHODS}
        self.warm_cache = work / "uv-warm-cache"
        self.store = work / "store-warm"
        self.profile_warm = work / "profile-warm" / f"{name}.toml"
        self.tar = work / "site-packages.tar"

    # a profile file in ``folder``; its lock goes to the store it is restored with
    def profile(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.toml"
        listed = ", ".join(json.dumps(p) for p in self.packages)
        path.write_text(f'version = 1\nname = "{self.name}"\n\n[pip]\npackages = [{listed}]\n'
                        f'no_index = true\nfind_links = [{json.dumps(str(self.wheels))}]\n')
        return path

    def venv(self, path: Path, *, pip: bool = False) -> Path:
        if path.exists():
            shutil.rmtree(path)
        if pip:  # the stdlib way: pip comes from ensurepip, offline
            run([sys.executable, "-m", "venv", str(path)], env=clean_env())
        else:
            run([self.uv, "venv", "--quiet", "--python", sys.executable, str(path)],
                env=clean_env())
        return path / "bin" / "python"

    def ours(self, profile: Path, python: Path, store: Path, local: Path, cache: Path) -> float:
        env = clean_env(PYTHONPATH=str(REPO), UV_CACHE_DIR=str(cache),
                        BOOTSTRAP_WHEEL_CACHE=str(local), BOOTSTRAP_PLATFORM="local",
                        BOOTSTRAP_DRIVE=str(self.work / "drive"),
                        XDG_DATA_HOME=str(self.work / "xdg"))
        return run([sys.executable, "-m", "bootstrap", "restore", str(profile), "--python",
                    str(python), "--store", str(store), "-q"], env=env, log=self.log)

    def setup(self) -> None:
        """What the warm methods start from: a warm uv cache, a store and lock, a tar."""
        (self.work / "drive").mkdir(exist_ok=True)
        python = self.venv(self.work / "setup-venv")
        run([self.uv, "pip", "install", "--quiet", "--python", str(python), "--offline",
             "--no-index", "--find-links", str(self.wheels), "-r", str(self.req)],
            env=clean_env(UV_CACHE_DIR=str(self.warm_cache)))
        site = next((python.parent.parent / "lib").glob("python*/site-packages"))
        run(["tar", "-cf", str(self.tar), "-C", str(site.parent), site.name])
        shutil.rmtree(python.parent.parent)
        python = self.venv(self.work / "setup-venv")
        self.ours(self.profile(self.profile_warm.parent), python, self.store,
                  self.work / "setup-local", self.work / "setup-cache")
        for folder in ("setup-venv", "setup-local", "setup-cache"):
            shutil.rmtree(self.work / folder)

    def round(self, i: int, *, with_pip: bool) -> None:
        w = fresh(self.work / f"round-{i}")
        t = self.times
        uvi = [self.uv, "pip", "install", "--quiet", "--offline", "--no-index",
               "--find-links", str(self.wheels), "-r", str(self.req)]

        if with_pip:
            python = self.venv(w / "pip-venv", pip=True)
            t["pip"].append(run([str(python), "-m", "pip", "install", "--quiet", "--no-index",
                                 "--find-links", str(self.wheels), "--no-cache-dir",
                                 "--disable-pip-version-check", "-r", str(self.req)],
                                env=clean_env(PIP_CONFIG_FILE=os.devnull), log=self.log))
            shutil.rmtree(w / "pip-venv")

        python = self.venv(w / "venv")
        t["uv cold"].append(run(uvi + ["--python", str(python)],
                                env=clean_env(UV_CACHE_DIR=str(fresh(w / "cache"))),
                                log=self.log))
        shutil.rmtree(w / "venv")
        shutil.rmtree(w / "cache")

        python = self.venv(w / "venv")
        t["uv warm"].append(run(uvi + ["--python", str(python)],
                                env=clean_env(UV_CACHE_DIR=str(self.warm_cache)),
                                log=self.log))
        shutil.rmtree(w / "venv")

        python = self.venv(w / "venv")
        t["ours empty"].append(self.ours(self.profile(w / "profile"), python,
                                         fresh(w / "store"), fresh(w / "local"),
                                         fresh(w / "cache")))
        for folder in ("venv", "store", "local", "cache", "profile"):
            shutil.rmtree(w / folder)

        python = self.venv(w / "venv")
        t["ours store"].append(self.ours(self.profile_warm, python, self.store,
                                         fresh(w / "local"), fresh(w / "cache")))
        t["ours no-op cli"].append(self.ours(self.profile_warm, python, self.store,
                                             w / "local", w / "cache"))
        t["ours no-op in-process"].append(self.in_process(python))
        shutil.rmtree(w / "venv")

        target = fresh(w / "raw")
        t["raw tar x"].append(run(["tar", "-xf", str(self.tar), "-C", str(target)]))
        shutil.rmtree(w)

    def in_process(self, python: Path) -> float:
        """Median of repeated restores in one warm interpreter (as in a kernel)."""
        code = (
            "import json, statistics, sys, time\n"
            "import bootstrap\n"
            "args = dict(python=sys.argv[2], store=sys.argv[3])\n"
            "bootstrap.restore(sys.argv[1], **args)\n"
            "times = []\n"
            "for _ in range(10):\n"
            "    t = time.perf_counter(); r = bootstrap.restore(sys.argv[1], **args)\n"
            "    times.append(time.perf_counter() - t)\n"
            "    assert not r.changed\n"
            "print(json.dumps(statistics.median(times)))\n")
        env = clean_env(PYTHONPATH=str(REPO), BOOTSTRAP_PLATFORM="local",
                        BOOTSTRAP_DRIVE=str(self.work / "drive"),
                        XDG_DATA_HOME=str(self.work / "xdg"))
        out = subprocess.run([sys.executable, "-c", code, str(self.profile_warm), str(python),
                              str(self.store)], env=env, capture_output=True, text=True,
                             check=True).stdout
        return float(out.strip())


# -- an index served here, at a documented speed -------------------------------------------------

#: Colab's downloads from package indexes are often well over 100 MB/s (PLATFORM-FACTS):
#: the local index serves 100 MB/s in all, and answers each request after 10 ms
INDEX_MBPS = 100.0
INDEX_LATENCY = 0.010
#: the emulated Drive mount (tests/perf/slowfs.py): tens of MB/s for large files and a
#: slow first access per file (PLATFORM-FACTS); 30 MB/s and 0.1 s per open
DRIVE_MBPS = 30.0
DRIVE_OPEN_LATENCY = 0.1


class Pacer:
    """One link: bytes go through at ``mbps`` in all, whoever sends them."""

    def __init__(self, mbps: float) -> None:
        import threading

        self.rate = mbps * 1e6
        self.lock = threading.Lock()
        self.free_at = time.monotonic()

    def take(self, size: int) -> None:
        with self.lock:
            start = max(self.free_at, time.monotonic())
            self.free_at = start + size / self.rate
            until = self.free_at
        delay = until - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def paced_index(folder: Path, *, mbps: float = INDEX_MBPS, latency: float = INDEX_LATENCY):
    """A PEP 503 index of ``folder`` on 127.0.0.1 (not started): /simple/<project>/ pages and
    /files/<name>, each answer after ``latency``, the bytes paced to ``mbps``."""
    import hashlib
    import html
    import re

    sys.path.insert(0, str(REPO))
    from tests.support.httpserver import LoopbackServer, parse_range

    pace = Pacer(mbps)

    def send(req, data: bytes, content_type: str = "application/octet-stream") -> None:
        time.sleep(latency)
        status, body, extra = 200, data, {"Accept-Ranges": "bytes"}
        rng = parse_range(req.headers.get("Range"), len(data))
        if isinstance(rng, tuple):
            status, body = 206, data[rng[0]:rng[1] + 1]
            extra["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{len(data)}"
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            req.send_header(name, value)
        req.end_headers()
        if req.command == "HEAD":
            return
        view = memoryview(body)
        for start in range(0, len(body), 256 * 1024):
            chunk = view[start:start + 256 * 1024]
            pace.take(len(chunk))
            req.wfile.write(chunk)

    files = sorted(p for p in folder.iterdir()
                   if p.suffix == ".whl" or p.name.endswith(".tar.gz"))
    projects: dict[str, list[Path]] = {}
    for path in files:
        name = re.sub(r"[-_.]+", "-", path.name.split("-", 1)[0]).lower()
        projects.setdefault(name, []).append(path)
    server = LoopbackServer(root=None)

    def page(body: str):
        data = f"<!DOCTYPE html><html><body>{body}</body></html>".encode()
        return lambda req: send(req, data, "text/html")

    server.route("/simple/", page("".join(f'<a href="{p}/">{p}</a>' for p in projects)))
    for project, paths in projects.items():
        links = "".join(f'<a href="/files/{html.escape(p.name)}#sha256='
                        f'{hashlib.sha256(p.read_bytes()).hexdigest()}">{html.escape(p.name)}</a>'
                        for p in paths)
        server.route(f"/simple/{project}/", page(links))
    def serve(data: bytes):
        return lambda req: send(req, data)

    for path in files:
        server.route(f"/files/{path.name}", serve(path.read_bytes()))
    return server


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple/"


# -- a real profile: a scoped index, an sdist by URL, a no_deps entry, plain requirements -----

REAL_SCOPED = "numpy"      # served only by the scoped index, as torch by the CUDA one
REAL_NO_DEPS = "rich"      # a table entry with no_deps = true
REAL_METHODS = ["uv cold", "ours empty", "ours store", "ours no-op cli"]


class RealBench:
    """The profile a GPU recipe writes, from indexes served here: each into a fresh venv."""

    def __init__(self, wheels: Path, work: Path, uv_bin: str):
        self.work = fresh(work)
        self.uv = uv_bin
        self.log = work / "commands.log"
        self.times: dict[str, list[float]] = {m: [] for m in REAL_METHODS}
        self.index_requests: list[int] = []    # during "ours store": must stay 0
        scoped, default = fresh(work / "scoped-files"), fresh(work / "default-files")
        sdist = next(wheels.glob(SDIST.split("==")[0] + "-*.tar.gz"))
        for path in wheels.iterdir():
            if path.name.startswith("."):
                continue
            target = scoped if path.name.startswith(REAL_SCOPED + "-") else default
            os.link(path, target / path.name)
        self.scoped = paced_index(scoped).start()
        self.default = paced_index(default).start()
        plain = [p for p in PACKAGES if p not in (REAL_SCOPED, REAL_NO_DEPS)]
        self.direct = f"{SDIST.split('==')[0]} @ {self.default.url}/files/{sdist.name}"
        listed = ", ".join(json.dumps(p) for p in [*plain, REAL_SCOPED, self.direct])
        self.profile = work / "profile" / "real.toml"
        self.profile.parent.mkdir()
        self.profile.write_text(
            f'version = 1\nname = "real"\n\n[pip]\n'
            f'index_url = "{self.default.url}/simple/"\n'
            f'packages = [{listed},\n  {{ requirement = "{REAL_NO_DEPS}", no_deps = true }}]\n\n'
            f'[[pip.indexes]]\nurl = "{self.scoped.url}/simple/"\npackages = ["{REAL_SCOPED}"]\n')
        # what a uv user writes for the same: the scoped index through [tool.uv.sources]
        self.uv_inputs = work / "uv-inputs"
        (self.uv_inputs / "scoped").mkdir(parents=True)
        (self.uv_inputs / "req.in").write_text("\n".join([*plain, self.direct]) + "\n")
        (self.uv_inputs / "scoped" / "pyproject.toml").write_text(
            f'[project]\nname = "scoped"\nversion = "0"\ndependencies = ["{REAL_SCOPED}"]\n'
            f'[tool.uv.sources]\n{REAL_SCOPED} = {{ index = "scoped" }}\n'
            f'[[tool.uv.index]]\nname = "scoped"\nurl = "{self.scoped.url}/simple/"\n'
            'explicit = true\n')
        self.store = work / "store-warm"

    def close(self) -> None:
        self.scoped.stop()
        self.default.stop()

    def venv(self, path: Path) -> Path:
        if path.exists():
            shutil.rmtree(path)
        run([self.uv, "venv", "--quiet", "--python", sys.executable, str(path)], env=clean_env())
        return path / "bin" / "python"

    def ours(self, python: Path, store: Path, local: Path, cache: Path) -> float:
        env = clean_env(PYTHONPATH=str(REPO), UV_CACHE_DIR=str(cache),
                        BOOTSTRAP_WHEEL_CACHE=str(local), BOOTSTRAP_PLATFORM="local",
                        BOOTSTRAP_DRIVE=str(self.work / "drive"),
                        XDG_DATA_HOME=str(self.work / "xdg"))
        return run([sys.executable, "-m", "bootstrap", "restore", str(self.profile), "--python",
                    str(python), "--store", str(store), "-q"], env=env, log=self.log)

    def uv_cold(self, python: Path, cache: Path) -> float:
        env = clean_env(UV_CACHE_DIR=str(cache))
        index = ["--index-url", f"{self.default.url}/simple/"]
        first = run([self.uv, "pip", "install", "--quiet", "--python", str(python), *index,
                     "-r", str(self.uv_inputs / "req.in"),
                     "-r", str(self.uv_inputs / "scoped" / "pyproject.toml")],
                    env=env, log=self.log)
        return first + run([self.uv, "pip", "install", "--quiet", "--python", str(python),
                            *index, "--no-deps", REAL_NO_DEPS], env=env, log=self.log)

    def setup(self) -> None:
        (self.work / "drive").mkdir(exist_ok=True)
        python = self.venv(self.work / "setup-venv")
        self.ours(python, self.store, self.work / "setup-local", self.work / "setup-cache")
        for folder in ("setup-venv", "setup-local", "setup-cache"):
            shutil.rmtree(self.work / folder)

    def round(self, i: int) -> None:
        w = fresh(self.work / f"round-{i}")
        t = self.times
        python = self.venv(w / "venv")
        t["uv cold"].append(self.uv_cold(python, fresh(w / "cache")))
        shutil.rmtree(w / "venv")
        shutil.rmtree(w / "cache")

        python = self.venv(w / "venv")
        t["ours empty"].append(self.ours(python, fresh(w / "store"), fresh(w / "local"),
                                         fresh(w / "cache")))
        for folder in ("venv", "store", "local", "cache"):
            shutil.rmtree(w / folder)

        python = self.venv(w / "venv")
        before = self.scoped.count() + self.default.count()
        t["ours store"].append(self.ours(python, self.store, fresh(w / "local"),
                                         fresh(w / "cache")))
        self.index_requests.append(self.scoped.count() + self.default.count() - before)
        t["ours no-op cli"].append(self.ours(python, self.store, w / "local", w / "cache"))
        shutil.rmtree(w)


# -- the store on an emulated Drive -------------------------------------------------------------

DRIVE_METHODS = ["uv cold", "ours lock, no store", "ours drive store",
                 "ours drive store, index down"]


class DriveBench:
    """The wheels profile from an index served here at INDEX_MBPS, with the store on a FUSE
    mount throttled to DRIVE_MBPS and DRIVE_OPEN_LATENCY per open (tests/perf/slowfs.py)."""

    def __init__(self, wheels: Path, work: Path, uv_bin: str):
        self.work = fresh(work)
        self.uv = uv_bin
        self.log = work / "commands.log"
        self.times: dict[str, list[float]] = {m: [] for m in DRIVE_METHODS}
        self.index = paced_index(wheels).start()
        self.backing = fresh(work / "drive-backing")
        self.mount = fresh(work / "drive")
        self.fuse = subprocess.Popen(
            [sys.executable, str(HERE / "slowfs.py"), str(self.backing), str(self.mount),
             "--mbps", str(DRIVE_MBPS), "--open-latency", str(DRIVE_OPEN_LATENCY)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if any(line.split()[1] == str(self.mount)
                   for line in Path("/proc/self/mounts").read_text().splitlines()):
                break
            time.sleep(0.1)
        else:
            self.close()
            raise SystemExit("drive benchmark: the FUSE mount did not come up")
        listed = ", ".join(json.dumps(p) for p in PACKAGES)
        self.profile = work / "profile" / "drive.toml"
        self.profile.parent.mkdir()
        self.profile.write_text(f'version = 1\nname = "drive"\n\n[pip]\npackages = [{listed}]\n'
                                'index_url = "{env:BENCH_INDEX}"\n')
        self.req = work / "requirements.txt"
        self.req.write_text("\n".join(PACKAGES) + "\n")
        self.store = self.mount / "store-warm"       # on the emulated Drive
        self.lock_only = work / "store-lock-only"    # the lock, no wheels, on the local disk
        self.offline_ok: list[bool] = []

    def close(self) -> None:
        subprocess.run(["fusermount3", "-u", str(self.mount)], check=False)
        self.fuse.wait(timeout=30)
        self.index.stop()

    def venv(self, path: Path) -> Path:
        if path.exists():
            shutil.rmtree(path)
        run([self.uv, "venv", "--quiet", "--python", sys.executable, str(path)], env=clean_env())
        return path / "bin" / "python"

    def ours(self, python: Path, store: Path, local: Path, cache: Path, index: str) -> float:
        env = clean_env(PYTHONPATH=str(REPO), UV_CACHE_DIR=str(cache),
                        BOOTSTRAP_WHEEL_CACHE=str(local), BOOTSTRAP_PLATFORM="local",
                        BOOTSTRAP_DRIVE=str(self.work / "drive-root"), BENCH_INDEX=index,
                        XDG_DATA_HOME=str(self.work / "xdg"))
        return run([sys.executable, "-m", "bootstrap", "restore", str(self.profile), "--python",
                    str(python), "--store", str(store), "-q"], env=env, log=self.log)

    def setup(self) -> None:
        (self.work / "drive-root").mkdir(exist_ok=True)
        python = self.venv(self.work / "setup-venv")
        self.ours(python, self.store, self.work / "setup-local", self.work / "setup-cache",
                  f"{self.index.url}/simple/")
        shutil.copytree(self.store / "profiles", self.lock_only / "profiles")
        for folder in ("setup-venv", "setup-local", "setup-cache"):
            shutil.rmtree(self.work / folder)

    def round(self, i: int) -> None:
        w = fresh(self.work / f"round-{i}")
        t = self.times
        index = f"{self.index.url}/simple/"
        python = self.venv(w / "venv")
        t["uv cold"].append(run([self.uv, "pip", "install", "--quiet", "--python", str(python),
                                 "--index-url", index, "-r", str(self.req)],
                                env=clean_env(UV_CACHE_DIR=str(fresh(w / "cache"))),
                                log=self.log))
        shutil.rmtree(w / "venv")
        shutil.rmtree(w / "cache")

        # the same restore without the store: the lock, every wheel from the index
        python = self.venv(w / "venv")
        store = w / "store"
        shutil.copytree(self.lock_only, store)
        t["ours lock, no store"].append(self.ours(python, store, fresh(w / "local"),
                                                  fresh(w / "cache"), index))
        for folder in ("venv", "store", "local", "cache"):
            shutil.rmtree(w / folder)

        python = self.venv(w / "venv")
        t["ours drive store"].append(self.ours(python, self.store, fresh(w / "local"),
                                               fresh(w / "cache"), index))
        shutil.rmtree(w / "venv")

        python = self.venv(w / "venv")
        t["ours drive store, index down"].append(self.ours(
            python, self.store, fresh(w / "local2"), fresh(w / "cache2"), closed_port_url()))
        self.offline_ok.append(True)  # run() raises when a restore fails
        shutil.rmtree(w)


# -- the apt profile --------------------------------------------------------------------------

def drive_unavailable() -> str | None:
    """Why the emulated Drive cannot be mounted here (None: it can)."""
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"it needs mfusepy and libfuse ({exc})"
    if not shutil.which("fusermount3") or not os.path.exists("/dev/fuse"):
        return "it needs fusermount3 (Debian: fuse3) and /dev/fuse"
    return None


def apt_unavailable() -> str | None:
    """Why the apt profile cannot run here (None: it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "it needs root"
    if not shutil.which("apt-get") or not shutil.which("dpkg-query"):
        return "it needs apt-get and dpkg-query"
    return None


def dpkg_installed() -> set[str]:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {line.split("\t")[0] for line in out.splitlines()
            if "\t" in line and line.split("\t")[1].startswith("ii")}


class AptBench:
    """Real apt installs of APT_PACKAGES, purged again after every method."""

    def __init__(self, work: Path):
        self.work = fresh(work)
        self.log = work / "commands.log"
        self.times: dict[str, list[float]] = {m: [] for m in APT_METHODS}
        self.store = work / "store-warm"
        self.archives = work / "archives"          # our archive cache (BOOTSTRAP_APT_OPTIONS)
        self.plain_archives = work / "plain-archives"  # apt-get's, emptied per round
        self.base = dpkg_installed()
        self.profile = work / "profile" / "apt.toml"
        self.profile.parent.mkdir()
        listed = ", ".join(json.dumps(p) for p in APT_PACKAGES)
        self.profile.write_text(f'version = 1\nname = "apt"\n\n[apt]\npackages = [{listed}]\n')
        self.env = clean_env(PYTHONPATH=str(REPO), BOOTSTRAP_PLATFORM="local",
                             BOOTSTRAP_DRIVE=str(work / "drive"),
                             XDG_DATA_HOME=str(work / "xdg"),
                             BOOTSTRAP_APT_OPTIONS=f"-oDir::Cache::archives={self.archives}",
                             DEBIAN_FRONTEND="noninteractive")
        (work / "drive").mkdir()

    def purge(self) -> None:
        """Remove what the last method installed, and every .deb it left on the machine."""
        added = sorted(dpkg_installed() - self.base)
        if added:
            run(["apt-get", "purge", "-y", "-qq", "--", *added], env=self.env, log=self.log)
        left = dpkg_installed() - self.base
        if left:
            raise SystemExit(f"apt benchmark: could not purge {sorted(left)}")
        for folder in (self.archives, self.plain_archives):
            for deb in folder.glob("*.deb") if folder.is_dir() else ():
                deb.unlink()
            (folder / "partial").mkdir(parents=True, exist_ok=True)

    def ours(self, store: Path) -> float:
        return run([sys.executable, "-m", "bootstrap", "restore", str(self.profile), "--only",
                    "apt", "--store", str(store), "-q"], env=self.env, log=self.log)

    def setup(self) -> None:
        already = [p for p in APT_PACKAGES if p in self.base]
        if already:
            raise SystemExit(f"apt benchmark: {', '.join(already)} already installed; it "
                             "installs and purges them, so run it where they are not")
        self.purge()
        # fresh lists once, for every method (our stamp too, so our step does not update)
        run(["apt-get", "update", "-qq", "--error-on=any"], env=self.env, log=self.log)
        self.ours(self.store)  # fills the warm store
        self.purge()

    def round(self, i: int) -> None:
        t = self.times
        t["apt-get"].append(run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
             f"-oDir::Cache::archives={self.plain_archives}", "--", *APT_PACKAGES],
            env=self.env, log=self.log))
        self.purge()
        empty = fresh(self.work / f"store-{i}")
        t["ours empty"].append(self.ours(empty))
        shutil.rmtree(empty)
        self.purge()
        t["ours store"].append(self.ours(self.store))
        t["ours no-op cli"].append(self.ours(self.store))
        self.purge()


def apt_table(times: dict[str, list[float]]) -> tuple[str, dict[str, dict]]:
    summary = {m: stats(v) for m, v in times.items() if v}
    base = summary["apt-get"]["median"]
    lines = ["profile 'apt'", f"  {'method':<24}{'median':>10}{'min - max':>22}{'x apt-get':>11}"]
    for method, s in summary.items():
        lines.append(f"  {method:<24}{fmt(s['median']):>10}"
                     f"{fmt(s['min']) + ' - ' + fmt(s['max']):>22}{s['median'] / base:>10.2f}x")
    return "\n".join(lines), summary


# -- startup costs --------------------------------------------------------------------------

def startup_costs(rounds: int) -> dict[str, object]:
    """``import bootstrap`` / ``import magics`` and ``%load_ext bootstrap`` in IPython."""
    env = clean_env(PYTHONPATH=str(REPO))
    code = ("import time; t = time.perf_counter(); import bootstrap; a = time.perf_counter(); "
            "import magics; b = time.perf_counter(); print(a - t, b - a)")
    imports = []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        imports.append((float(out[0]), float(out[1])))
    load = ("import time\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "shell = InteractiveShell.instance()\n"
            "t = time.perf_counter()\n"
            "try:\n"
            "    shell.run_line_magic('load_ext', 'bootstrap')\n"
            "except Exception as exc:\n"
            "    print('error', type(exc).__name__, exc)\n"
            "else:\n"
            "    print('ok', time.perf_counter() - t)\n")
    loads: list[float] = []
    error = None
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True,
                             text=True).stdout.strip().splitlines()
        last = out[-1] if out else "error no output"
        if last.startswith("ok "):
            loads.append(float(last.split()[1]))
        else:
            error = last
            break
    return {"import bootstrap": [a for a, _ in imports], "import magics": [b for _, b in imports],
            "%load_ext bootstrap": loads, "%load_ext error": error}


# -- report -----------------------------------------------------------------------------------

def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(name: str, times: dict[str, list[float]]) -> tuple[str, dict[str, dict]]:
    """The profile's table, and its summary: median, min, max, n and the ratio to uv cold
    (``x uv cold``) of each method."""
    summary = {m: stats(v) for m, v in times.items() if v}
    base = summary["uv cold"]["median"]
    for s in summary.values():
        s["x uv cold"] = round(s["median"] / base, 3)
    lines = [f"profile {name!r}",
             f"  {'method':<24}{'median':>10}{'min - max':>22}{'x uv cold':>11}"]
    for method, s in summary.items():
        lines.append(f"  {method:<24}{fmt(s['median']):>10}"
                     f"{fmt(s['min']) + ' - ' + fmt(s['max']):>22}{s['median'] / base:>10.2f}x")
    return "\n".join(lines), summary


def bars(results: dict[str, dict[str, dict]],
         startup: dict[str, object]) -> list[tuple[str, bool, str]]:
    out = []

    def ratio(profile: str, a: str, b: str, limit: float, label: str) -> None:
        s = results.get(profile, {})
        if a in s and b in s:
            r = s[a]["median"] / s[b]["median"]
            out.append((label, r <= limit, f"{r:.2f} (bar {limit})"))

    ratio("sdist", "ours store", "uv cold", 0.25, "with sdist: ours, warm store <= 0.25 x uv cold")
    ratio("wheels", "ours store", "uv cold", 1.1, "wheels only: ours, warm store <= 1.1 x uv cold")
    ratio("wheels", "ours store", "raw tar x", 2.0,
          "wheels only: ours, warm store <= 2 x raw tar x")
    ratio("wheels", "ours empty", "uv cold", 1.15,
          "wheels only: ours, empty store <= 1.15 x uv cold")
    ratio("sdist", "ours empty", "uv cold", 1.15,
          "with sdist: ours, empty store <= 1.15 x uv cold")
    ratio("real", "ours store", "uv cold", 0.2,
          "real profile: ours, store (fresh VM) <= 0.2 x uv cold")
    ratio("drive", "ours drive store", "ours lock, no store", 1.0,
          "store on Drive: ours, drive store <= 1.0 x the same restore without it")
    ratio("drive", "ours drive store", "uv cold", 1.15,
          "store on Drive: ours, drive store <= 1.15 x uv cold")
    real = results.get("real", {})
    if "_index_requests" in real:
        asked = real["_index_requests"]
        out.append(("real profile: index requests of a fresh VM with the store == 0",
                    not any(asked), str(asked)))
    drive = results.get("drive", {})
    if "ours drive store, index down" in drive:
        out.append(("store on Drive: a restore with the index down works", True,
                    fmt(drive["ours drive store, index down"]["median"])))
    for profile in ("wheels", "sdist"):
        s = results.get(profile, {})
        if "ours no-op cli" in s:
            v = s["ours no-op cli"]["median"]
            out.append((f"{profile}: no-op from the CLI <= 300 ms", v <= 0.3, fmt(v)))
        if "ours no-op in-process" in s:
            v = s["ours no-op in-process"]["median"]
            out.append((f"{profile}: no-op in-process <= 50 ms", v <= 0.05, fmt(v)))
    apt = results.get("apt", {})
    if "apt-get" in apt:  # no bar: how the store compares with apt-get's own downloads
        for method in ("ours empty", "ours store"):
            r = apt[method]["median"] / apt["apt-get"]["median"]
            out.append((f"apt: {method} / apt-get (information, no bar)", True, f"{r:.2f}"))
    loads = startup.get("%load_ext bootstrap") or []
    if loads:
        v = statistics.median(loads)  # type: ignore[arg-type]
        out.append(("%load_ext bootstrap <= 30 ms over IPython", v <= 0.03, fmt(v)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, a smoke test")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per profile (default 7)")
    parser.add_argument("--pip-rounds", type=int, default=3,
                        help="rounds that include pip, the slowest method (default 3)")
    parser.add_argument("--only", nargs="+", choices=("wheels", "sdist", "apt", "real", "drive"),
                        help="these profiles only")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    pip_rounds = min(rounds, 1 if args.quick else args.pip_rounds)

    wheels = inputs() if args.only != ["apt"] else OUT / "inputs" / "wheels"
    compile_package()
    uv_bin = uv()
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory']}, {info['system']}, "
          f"Python {info['python']}, {info['uv']}", flush=True)
    sdist_name = SDIST.split("==")[0]
    profiles = {"wheels": PACKAGES, "sdist": PACKAGES + [sdist_name], "apt": APT_PACKAGES,
                "real": PACKAGES, "drive": PACKAGES}
    if args.only:
        profiles = {name: profiles[name] for name in args.only}
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=OUT))
    results: dict[str, dict[str, dict]] = {}
    tables = []
    try:
        for name, packages in profiles.items():
            if name == "apt":
                why = apt_unavailable()
                if why:
                    print(f"[apt] left out: {why}", flush=True)
                    tables.append(f"profile 'apt': left out ({why})")
                    continue
                apt = AptBench(work / name)
                print("[apt] setting up (apt-get update, the warm store) ...", flush=True)
                try:
                    apt.setup()
                    for i in range(rounds):
                        print(f"[apt] round {i + 1}/{rounds}", flush=True)
                        apt.round(i)
                finally:
                    apt.purge()
                text, summary = apt_table(apt.times)
                results[name] = summary
                results[name]["_raw"] = apt.times  # type: ignore[assignment]
                tables.append(text)
                print(text, flush=True)
                continue
            if name in ("real", "drive"):
                why = None if name == "real" else drive_unavailable()
                if why:
                    print(f"[drive] left out: {why}", flush=True)
                    tables.append(f"profile 'drive': left out ({why})")
                    continue
                other = (RealBench if name == "real" else DriveBench)(wheels, work / name, uv_bin)
                print(f"[{name}] setting up (the store and lock of an earlier VM) ...",
                      flush=True)
                try:
                    other.setup()
                    for i in range(rounds):
                        print(f"[{name}] round {i + 1}/{rounds}", flush=True)
                        other.round(i)
                finally:
                    other.close()
                text, summary = table(name, other.times)
                if name == "drive":
                    base = summary["ours lock, no store"]["median"]
                    for s in summary.values():
                        s["x without store"] = round(s["median"] / base, 3)
                    summary["_emulation"] = {  # type: ignore[assignment]
                        "drive_mbps": DRIVE_MBPS, "drive_open_latency_s": DRIVE_OPEN_LATENCY,
                        "index_mbps": INDEX_MBPS, "index_latency_s": INDEX_LATENCY}
                    text += (f"\n  (store on a FUSE mount at {DRIVE_MBPS:g} MB/s, "
                             f"{DRIVE_OPEN_LATENCY:g} s per open; index at {INDEX_MBPS:g} MB/s, "
                             f"{INDEX_LATENCY * 1000:g} ms per request)")
                else:
                    summary["_index_requests"] = other.index_requests  # type: ignore[assignment]
                    text += f"\n  index requests during 'ours store': {other.index_requests}"
                results[name] = summary
                results[name]["_raw"] = other.times  # type: ignore[assignment]
                tables.append(text)
                print(text, flush=True)
                continue
            bench = Bench(name, packages, wheels, work / name, uv_bin)
            print(f"[{name}] setting up (warm cache, store and lock, tar) ...", flush=True)
            bench.setup()
            for i in range(rounds):
                print(f"[{name}] round {i + 1}/{rounds}", flush=True)
                bench.round(i, with_pip=i < pip_rounds)
            text, summary = table(name, bench.times)
            results[name] = summary
            results[name]["_raw"] = bench.times  # type: ignore[assignment]
            tables.append(text)
            print(text, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    startup = startup_costs(5 if not args.quick else 2)
    info["loadavg_end"] = os.getloadavg()

    print()
    print(f"machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory']}, "
          f"Python {info['python']}, {info['uv']}; load average "
          f"{info['loadavg_start'][0]:.1f} at the start, {info['loadavg_end'][0]:.1f} at the end")
    for text in tables:
        print(text)
    imp = startup["import bootstrap"]
    mag = startup["import magics"]
    load_ext = startup["%load_ext bootstrap"]
    print(f"import bootstrap {fmt(statistics.median(imp))}, import magics "  # type: ignore[arg-type]
          f"{fmt(statistics.median(mag))}" + (  # type: ignore[arg-type]
              f", %load_ext bootstrap in IPython {fmt(statistics.median(load_ext))}"  # type: ignore[arg-type]
              if load_ext else
              f", %load_ext bootstrap: {startup['%load_ext error']}"))
    checks = bars({k: {m: s for m, s in v.items() if m not in ("_raw", "_emulation")}
                   for k, v in results.items()},
                  startup)
    print("bars:")
    for label, ok, value in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}: {value}")
    OUT.mkdir(exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(
        {"machine": info, "rounds": rounds, "pip_rounds": pip_rounds, "packages": PACKAGES,
         "sdist": SDIST, "apt_packages": APT_PACKAGES,
         "inputs": sorted(p.name for p in (wheels.iterdir() if wheels.is_dir() else ())
                          if p.is_file() and not p.name.startswith(".")),
         "results": results, "startup": startup,
         "bars": [{"bar": b, "ok": ok, "value": v} for b, ok, v in checks]}, indent=2) + "\n")
    print(f"wrote {OUT / 'bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
