"""Real setup recipes rewritten as profiles (examples/recipes/): restored for real with
local stand-ins, then restored again: every step satisfied, no process started but
the check entries.

Stand-ins: a per-test copy of the recipe has its download URLs pointed at a server on
127.0.0.1 holding archives built here (real C sources built with the real make, cc and
cmake; shell scripts standing for julia, kaggle, yt-dlp and whisper), PyPI stood in for
by a local index of tiny wheels named like the real packages, and ``/content``,
``/usr`` and ``/opt`` moved under tmp_path. Left out: the gpu step, and the apt step
(it would need the network; tests/e2e/test_apt_real.py covers it).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bootstrap import restore
from bootstrap.profile import dump, load, parse
from bootstrap.report import CHANGED, SATISFIED, SKIPPED
from tests.support.gitrepo import git
from tests.support.httpserver import LoopbackServer
from tests.support.index import simple_index
from tests.support.venvs import installed
from tests.support.wheels import build_wheel, write_wheel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"
REWRITES = ["bwa-samtools", "drive-train-zip", "julia-ijulia", "kaggle-competition-data",
            "llama-cpp-cuda", "mujoco-py", "python38-venv", "selenium-chromium",
            "spark-tarball", "ta-lib", "tesseract-ocr", "whisper-transcribe"]
SKIP = ["gpu", "apt"]

pytestmark = pytest.mark.usefixtures("clean_environ")


# -- stand-ins ---------------------------------------------------------------------------

def tarball(members: dict[str, bytes | str], compression: str = "gz") -> bytes:
    """A .tar.gz/.tar.bz2 of regular files; names ending in ``*`` are executable."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tf:
        for name, data in members.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name.rstrip("*"))
            info.size, info.mode = len(raw), 0o755 if name.endswith("*") else 0o644
            tf.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def c_program(name: str, says: str) -> str:
    return f'#include <stdio.h>\nint main(void) {{ puts("{says}"); return 0; }}\n'


def script_wheel(folder: Path, name: str, version: str, scripts: dict[str, str]) -> None:
    """A wheel whose console scripts run the given Python source (a stand-in CLI)."""
    module = name.replace("-", "_").lower()
    files = {f"{module}/__init__.py": f"__version__ = {version!r}\n".encode()}
    points = []
    for command, source in scripts.items():
        func = command.replace("-", "_")
        files[f"{module}/cli_{func}.py"] = f"def main():\n{source}".encode()
        points.append(f"{command} = {module}.cli_{func}:main")
    files[f"{module}-{version}.dist-info/entry_points.txt"] = \
        ("[console_scripts]\n" + "\n".join(points) + "\n").encode()
    write_wheel(folder, name, version, files)


@pytest.fixture(scope="module")
def pypi(tmp_path_factory):
    """One PyPI stand-in for every recipe: tiny wheels named like the real packages."""
    folder = tmp_path_factory.mktemp("pypi")
    for name, version in [("pandas", "2.0.3"), ("numpy", "1.24.4"), ("yfinance", "0.2.40"),
                          ("alpaca-trade-api", "3.2.0"), ("tqdm", "4.66.5"),
                          ("numba", "0.60.0"), ("mujoco-py", "2.1.2.14"),
                          ("findspark", "2.0.1"), ("pyspark", "3.1.1"),
                          ("selenium", "4.25.0"), ("pytesseract", "0.3.13"),
                          ("pip", "24.2")]:
        build_wheel(folder, name, version)
    write_wheel(folder, "ta-lib", "0.4.32", {"talib/__init__.py": b"__version__ = '0.4.32'\n"})
    script_wheel(folder, "kaggle", "1.6.17", {"kaggle": (
        "    import sys, os, zipfile, io\n"
        "    a = sys.argv[1:]\n"
        "    comp, where = a[a.index('-c') + 1], a[a.index('-p') + 1]\n"
        "    assert os.environ['KAGGLE_USERNAME'] and os.environ['KAGGLE_KEY']\n"
        "    inner = io.BytesIO()\n"
        "    with zipfile.ZipFile(inner, 'w') as z: z.writestr('images/1.png', 'png')\n"
        "    os.makedirs(where, exist_ok=True)\n"
        "    with zipfile.ZipFile(os.path.join(where, comp + '.zip'), 'w') as z:\n"
        "        z.writestr('train.zip', inner.getvalue()); z.writestr('depths.csv', 'id,z')\n")})
    script_wheel(folder, "yt-dlp", "2024.10.7", {"yt-dlp": (
        "    import sys\n"
        "    out = sys.argv[sys.argv.index('--output') + 1]\n"
        "    open(out + '.wav', 'wb').write(b'RIFF')\n")})
    script_wheel(folder, "openai-whisper", "20240930", {"whisper": (
        "    import sys\n"
        "    name = sys.argv[1].rsplit('.', 1)[0]\n"
        "    open(name + '.vtt', 'w').write('WEBVTT\\n')\n")})
    with simple_index(folder) as server:
        yield server


@pytest.fixture
def index(pypi, monkeypatch):
    monkeypatch.setenv("UV_DEFAULT_INDEX", pypi.url_for("/simple/"))
    return pypi


@pytest.fixture
def www(tmp_path):
    """A plain http server on 127.0.0.1 (the profile accepts http only to this machine)."""
    folder = tmp_path / "www"
    folder.mkdir()
    with LoopbackServer(folder) as server:
        server.folder = folder
        yield server


def local_copy(tmp_path: Path, name: str, replace: dict[str, str]) -> Path:
    """Recipe ``name`` with ``replace`` applied and /content, /opt moved under tmp_path."""
    text = (EXAMPLES / f"{name}.toml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    for root in ("/content/", "/opt/"):
        text = text.replace(f'"{root}', f'"{tmp_path}{root}')
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def restore_twice(path: Path, started, *, checks: int = 0, **options):
    """Restore, then restore again: every step satisfied, only the checks started."""
    first = restore(path, skip=SKIP, **options)
    started.clear()
    second = restore(path, skip=SKIP, **options)
    for row in second.steps:
        assert row.outcome in (SATISFIED, SKIPPED), (row.name, row.outcome, row.summary)
    assert len(started) == checks, started
    return first, second


# -- every rewrite validates, and the older profiles still do -----------------------------

def test_every_recipe_validates_and_says_where_it_came_from():
    names = sorted(p.stem for p in EXAMPLES.glob("*.toml"))
    assert set(REWRITES) <= set(names)
    for name in names:
        profile = load(EXAMPLES / f"{name}.toml")
        assert profile.name == name and profile.description
        assert parse(dump(profile), source=f"{name}.toml") == profile   # the new keys round-trip
    for name in REWRITES:
        text = (EXAMPLES / f"{name}.toml").read_text()
        assert "# The notebook version (github.com/" in text, name   # the source is named


# -- restores -----------------------------------------------------------------------------

def test_ta_lib_builds_before_pip_and_checks_after(tmp_path, www, index, fresh_venv, started,
                                                   isolated):
    (www.folder / "ta-lib-0.4.0-src.tar.gz").write_bytes(tarball({
        "ta-lib/configure*": "#!/bin/sh\nfor a; do case $a in --prefix=*) "
                             "echo \"PREFIX=${a#--prefix=}\" > config.mk;; esac; done\n",
        "ta-lib/Makefile": "include config.mk\nall: libta_lib.a\n"
                           "libta_lib.a: ta.c\n\tcc -c ta.c -o ta.o && ar rcs libta_lib.a ta.o\n"
                           "install: all\n\tmkdir -p $(PREFIX)/include/ta-lib $(PREFIX)/lib\n"
                           "\tcp ta_libc.h $(PREFIX)/include/ta-lib/\n"
                           "\tcp libta_lib.a $(PREFIX)/lib/\n",
        "ta-lib/ta.c": "int ta_version(void) { return 4; }\n",
        "ta-lib/ta_libc.h": "int ta_version(void);\n"}))
    usr = tmp_path / "usr"
    path = local_copy(tmp_path, "ta-lib", {
        "https://downloads.sourceforge.net/project/ta-lib/ta-lib/0.4.0/":
            www.url_for("/").rstrip("/") + "/",
        '"--prefix=/usr"': f'"--prefix={usr}"',
        '"/usr/include/ta-lib/ta_libc.h"': f'"{usr}/include/ta-lib/ta_libc.h"'})
    first, second = restore_twice(path, started, checks=1, python=str(fresh_venv))
    assert [r.name for r in first.steps if r.outcome != SKIPPED] == ["files", "build", "pip", "run"]
    assert (usr / "lib" / "libta_lib.a").is_file()
    assert any("trusted on first use" in n for n in first.step("files").notes)
    assert "run[0] (TA-Lib imports) check passed: TA-Lib 0.4.32" in first.step("run").notes
    assert "cupy-cuda12x" not in installed(fresh_venv)            # when = "gpu": no GPU here
    assert (isolated["store"] / "profiles" / "locks").is_dir()


def test_bwa_samtools_from_source_and_the_data_sets(tmp_path, www, started, monkeypatch):
    (www.folder / "bwa-0.7.17.tar.bz2").write_bytes(tarball({
        "bwa-0.7.17/Makefile": "bwa: main.c\n\tcc -o bwa main.c\n",
        "bwa-0.7.17/main.c": c_program("bwa", "Program: bwa (stand-in)")}, "bz2"))
    (www.folder / "samtools-1.15.1.tar.bz2").write_bytes(tarball({
        "samtools-1.15.1/configure*": "#!/bin/sh\necho 'CC=cc' > config.mk\n",
        "samtools-1.15.1/Makefile": ("include config.mk\nsamtools: main.c\n"
                                     "\t$(CC) -o samtools main.c\n"),
        "samtools-1.15.1/main.c": c_program("samtools", "samtools (stand-in)")}, "bz2"))
    for name, member in (("genome", "genome/ref.fa"), ("reads", "reads/r1.fq"),
                         ("bam", "bam/s1.bam")):
        (www.folder / f"{name}.tar.gz").write_bytes(tarball({member: f">{name}\n"}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = www.url_for("/").rstrip("/") + "/"
    path = local_copy(tmp_path, "bwa-samtools", {
        "https://github.com/lh3/bwa/releases/download/v0.7.17/": root,
        "https://github.com/samtools/samtools/releases/download/1.15.1/": root,
        "https://github.com/CropEvol/lecture/raw/master/textbook_2022/datasets/": root,
        '"/usr/bin/bwa"': f'"{bin_dir}/bwa"', '"/usr/bin/samtools"': f'"{bin_dir}/samtools"'})
    first, _ = restore_twice(path, started, checks=2)
    assert subprocess.run(["bwa"], capture_output=True, text=True).stdout.startswith("Program: bwa")
    assert (tmp_path / "content" / "data" / "genome" / "genome" / "ref.fa").is_file()
    assert first.step("run").outcome == CHANGED


def test_julia_runs_its_kernel_install_once(tmp_path, www, started, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (www.folder / "julia-1.9.3-linux-x86_64.tar.gz").write_bytes(tarball({
        # --version answers; -e CODE is logged, makes IJulia's kernel folder, and prints
        # the kernel folder's parent when asked for it.
        "julia-1.9.3/bin/julia*": "#!/bin/sh\nkernels=\"$HOME/.local/share/jupyter/kernels\"\n"
                                  "case \"$1 $2\" in --version*) echo 'julia version 1.9.3';;\n"
                                  "*kerneldir*) printf %s \"$kernels\";;\n"
                                  "*) echo \"$2\" >> \"$HOME/julia.log\"; "
                                  "mkdir -p \"$kernels/julia-1.9\";; esac\n"}))
    path = local_copy(tmp_path, "julia-ijulia", {
        "https://julialang-s3.julialang.org/bin/linux/x64/1.9/":
            www.url_for("/").rstrip("/") + "/"})
    first, second = restore_twice(path, started, checks=1)
    log = (tmp_path / "home" / "julia.log").read_text().splitlines()
    assert len(log) == 2 and log[0].startswith("import Pkg")   # ran once, both commands
    cpus = len(os.sched_getaffinity(0))
    assert f'"JULIA_NUM_THREADS" => "{cpus}"' in log[1]
    kernels = tmp_path / "home" / ".local" / "share" / "jupyter" / "kernels"
    assert [p.name for p in kernels.iterdir()] == ["Julia-1.9"]   # renamed as the original does
    assert second.step("run").summary == "1 command done; 1 check passed"


def test_kaggle_data_with_the_token_from_secrets(tmp_path, index, fresh_venv, started,
                                                  monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    monkeypatch.setenv("PATH", f"{fresh_venv.parent}{os.pathsep}{os.environ['PATH']}")
    path = local_copy(tmp_path, "kaggle-competition-data", {})
    first, second = restore_twice(path, started, python=str(fresh_venv))
    assert (tmp_path / "content" / "tgs" / "train" / "images" / "1.png").read_text() == "png"
    assert second.variables == {"TRAIN_DIR": f"{tmp_path}/content/tgs/train"}


def test_llama_cpp_builds_for_the_cpu_here(tmp_path, started):
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.10)\nproject(llama C)\n"
        "set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)\n"
        "add_executable(llama-cli main.c)\n")
    (origin / "main.c").write_text(c_program("llama-cli", "version: 1 (stand-in)"))
    git(origin, "init", "-q", "-b", "master")
    git(origin, "add", ".")
    git(origin, "commit", "-q", "-m", "stand-in")
    path = local_copy(tmp_path, "llama-cpp-cuda", {"https://github.com/ggerganov/llama.cpp":
                                                   str(origin)})
    first, _ = restore_twice(path, started, checks=1)
    notes = first.step("run").notes
    assert any(n.startswith('run[0] left out: when = "gpu"') for n in notes), notes
    assert (tmp_path / "content" / "llama.cpp" / "build" / "bin" / "llama-cli").is_file()
    assert "run[2] (llama.cpp is ready) check passed: version: 1 (stand-in)" in notes


def test_mujoco_binaries_bashrc_and_library_path(tmp_path, www, index, fresh_venv, started,
                                                 monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    (www.folder / "mujoco210-linux-x86_64.tar.gz").write_bytes(tarball({
        "mujoco210/bin/libmujoco210.so": b"\x7fELF stand-in"}))
    path = local_copy(tmp_path, "mujoco-py", {
        "https://mujoco.org/download/": www.url_for("/").rstrip("/") + "/"})
    restore_twice(path, started, python=str(fresh_venv))
    assert (home / ".mujoco" / "mujoco210" / "bin" / "libmujoco210.so").is_file()
    assert (home / ".bashrc").read_text() == \
        f"export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:{home}/.mujoco/mujoco210/bin\n"
    assert os.environ["LD_LIBRARY_PATH"] == f":{home}/.mujoco/mujoco210/bin"
    assert installed(fresh_venv) == {"mujoco-py": "2.1.2.14"}


def test_python38_venv_made_by_uv_with_its_packages(tmp_path, index, started):
    base = f"python{sys.version_info[0]}.{sys.version_info[1]}"   # stands for "3.8"
    path = local_copy(tmp_path, "python38-venv", {'python = "3.8"': f'python = "{base}"'})
    first, second = restore_twice(path, started, checks=1)
    python = tmp_path / "content" / "venv" / "bin" / "python"
    assert first.python == str(python)
    assert installed(python) == {"pip": "24.2"}
    assert second.variables == {"VENV_PYTHON": str(python)}


def test_spark_from_the_tarball(tmp_path, www, index, fresh_venv, started):
    (www.folder / "spark-3.1.1-bin-hadoop3.2.tgz").write_bytes(tarball({
        "spark-3.1.1-bin-hadoop3.2/bin/spark-submit*": "#!/bin/sh\necho spark 3.1.1\n"}))
    path = local_copy(tmp_path, "spark-tarball", {
        "https://archive.apache.org/dist/spark/spark-3.1.1/": www.url_for("/").rstrip("/") + "/"})
    first, second = restore_twice(path, started, python=str(fresh_venv))
    spark_home = tmp_path / "content" / "spark" / "spark-3.1.1-bin-hadoop3.2"
    assert os.environ["SPARK_HOME"] == str(spark_home)
    assert second.variables == {"SPARK_HOME": str(spark_home)}
    assert installed(fresh_venv) == {"findspark": "2.0.1", "pyspark": "3.1.1"}


def test_training_zip_and_checkpoint_from_drive(tmp_path, isolated, started):
    drive = isolated["drive"]
    import zipfile

    with zipfile.ZipFile(drive / "train.zip", "w") as archive:
        archive.writestr("train/cat/1.jpg", "jpg")
    (drive / "resnet50_fconv_model_best.pth.tar").write_bytes(b"weights")
    path = local_copy(tmp_path, "drive-train-zip", {})
    first, second = restore_twice(path, started, drive=str(drive))
    assert (tmp_path / "content" / "data" / "train" / "train" / "cat" / "1.jpg").is_file()
    assert second.variables["CHECKPOINT"] == \
        f"{tmp_path}/content/data/resnet50_fconv_model_best.pth.tar"


def test_whisper_transcript_in_the_workdir(tmp_path, index, fresh_venv, started, monkeypatch):
    monkeypatch.setenv("PATH", f"{fresh_venv.parent}{os.pathsep}{os.environ['PATH']}")
    path = local_copy(tmp_path, "whisper-transcribe", {})
    first, second = restore_twice(path, started, python=str(fresh_venv))
    folder = tmp_path / "content" / "transcripts"
    assert (folder / "audio.vtt").read_text() == "WEBVTT\n"   # ran in the [workdir]
    assert Path.cwd() == folder
    assert second.variables == {"TRANSCRIPT": str(folder / "audio.vtt")}


@pytest.mark.parametrize("name", ["selenium-chromium", "tesseract-ocr"])
def test_apt_recipes_plan_their_steps(name, tmp_path):
    # apt itself is covered elsewhere; here the plan: apt first, checks after pip.
    path = local_copy(tmp_path, name, {})
    plan = restore(path, dry_run=True, skip=["gpu", "apt"])
    names = [r.name for r in plan.steps if r.outcome != SKIPPED]
    assert names[-2:] == ["pip", "run"]
