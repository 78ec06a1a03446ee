"""The profiles in examples/recipes/: each validates, and each is restored for real
where this machine allows, with local stand-ins for what would be downloaded.

Stand-ins: a per-test copy of the recipe has its URLs replaced by local ones
(a git repository the test made, PEP 503 indexes on 127.0.0.1 serving tiny
wheels named like the real packages) and ``/content`` moved under tmp_path.
PyPI is stood in for through ``UV_DEFAULT_INDEX``. Left out: the gpu step (no
GPU builds here) and the apt step (it would need the network).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from bootstrap import restore
from bootstrap.profile import load
from bootstrap.report import CHANGED, SATISFIED
from tests.support.archives import tar_gz
from tests.support.fakes import Lines
from tests.support.gitrepo import git, make_git_repo
from tests.support.httpserver import LoopbackServer, self_signed_cert
from tests.support.index import simple_index
from tests.support.venvs import installed
from tests.support.wheels import build_wheel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"
JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")


# Restores write os.environ (the env step): clean_environ puts it back after each test.
pytestmark = pytest.mark.usefixtures("clean_environ")


def local_copy(tmp_path: Path, name: str, replace: dict[str, str]) -> Path:
    """A copy of recipe ``name`` with ``/content`` under tmp_path and ``replace`` applied."""
    text = (EXAMPLES / f"{name}.toml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("/content/", f"{tmp_path}/content/")
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """A PyPI stand-in and a PyTorch-index stand-in (which also hosts numpy and filelock,
    at versions that would win if it were asked for them)."""
    pypi = tmp_path_factory.mktemp("pypi")
    for name, version, requires in [
            ("numpy", "1.26.4", []), ("numpy", "2.1.0", []), ("filelock", "3.16.1", []),
            ("torch", "2.4.1", ["filelock", "numpy"]), ("einops", "0.8.0", []),
            ("py4j", "0.10.9.7", []), ("pyspark", "3.5.3", ["py4j==0.10.9.7"])]:
        build_wheel(pypi, name, version, requires=requires)
    pytorch = tmp_path_factory.mktemp("pytorch")
    build_wheel(pytorch, "torch", "2.4.1+cu121", requires=["filelock", "numpy"])
    build_wheel(pytorch, "torchvision", "0.19.1+cu121", requires=["torch==2.4.1", "numpy"])
    build_wheel(pytorch, "numpy", "1.26.99")
    build_wheel(pytorch, "filelock", "9.9")
    with simple_index(pypi) as pypi_srv, simple_index(pytorch) as pytorch_srv:
        yield pypi_srv, pytorch_srv


@pytest.fixture
def pypi(indexes, monkeypatch):
    monkeypatch.setenv("UV_DEFAULT_INDEX", indexes[0].url_for("/simple/"))
    return indexes[0]


def test_five_examples_validate():
    names = sorted(p.stem for p in EXAMPLES.glob("*.toml"))
    assert {"c-tool-from-git", "dataset-archive", "editable-subfolder", "java-pyspark",
            "torch-cuda-wheels"} <= set(names)   # and the rewrites (test_recipe_rewrites.py)
    for name in names:
        profile = load(EXAMPLES / f"{name}.toml")
        assert profile.name == name and profile.description


def test_c_tool_from_git(tmp_path):
    origin = make_git_repo(tmp_path / "origin", program="kilo")
    path = local_copy(tmp_path, "c-tool-from-git",
                      {"https://github.com/antirez/kilo": str(origin)})
    dest = tmp_path / "content" / "kilo"
    first = restore(path)
    assert first.step("run").outcome == CHANGED
    assert (dest / "kilo").is_file()            # cloned to dest by the git step, built there
    # [env] put the clone on PATH before the build; the program runs from there.
    assert subprocess.run(["kilo"], capture_output=True, text=True, check=True,
                          env=os.environ).stdout == "hello from C\n"
    second = restore(path)
    assert second.step("run").outcome == SATISFIED


def test_torch_from_the_cuda_index(tmp_path, indexes, pypi, fresh_venv, monkeypatch):
    pytorch = indexes[1]
    # Through a placeholder: the profile refuses plain http, the local server has no TLS.
    monkeypatch.setenv("PYTORCH_INDEX", pytorch.url_for("/simple/"))
    path = local_copy(tmp_path, "torch-cuda-wheels",
                      {"https://download.pytorch.org/whl/cu121": "{env:PYTORCH_INDEX}"})
    start_pytorch, start_pypi = len(pytorch.requests), len(pypi.requests)
    report = restore(path, python=str(fresh_venv), skip=["gpu"])
    asked_pytorch = [r.path for r in pytorch.requests[start_pytorch:]]
    asked_pypi = [r.path for r in pypi.requests[start_pypi:]]
    assert report.step("pip").outcome == CHANGED
    got = installed(fresh_venv)
    assert got["torch"] == "2.4.1+cu121" and got["torchvision"] == "0.19.1+cu121"
    assert got["numpy"] == "1.26.4" and got["filelock"] == "3.16.1"
    assert not [p for p in asked_pytorch if "numpy" in p or "filelock" in p], asked_pytorch
    assert not [p for p in asked_pypi if "torch" in p], asked_pypi
    assert restore(path, python=str(fresh_venv), skip=["gpu"]).step("pip").outcome == SATISFIED


def test_editable_subfolder_of_a_clone(tmp_path, pypi, fresh_venv):
    origin = make_git_repo(tmp_path / "origin", project="research-code", version="0.3.0")
    git(origin, "tag", "v0.3.0")
    path = local_copy(tmp_path, "editable-subfolder",
                      {"https://github.com/example/research-code": str(origin)})
    dest = tmp_path / "content" / "research-code"
    restore(path, python=str(fresh_venv))
    assert installed(fresh_venv) == {"einops": "0.8.0", "research-code": "0.3.0"}
    where = subprocess.run([str(fresh_venv), "-c", "import research_code as m; print(m.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(dest / "python" / "research_code.py")
    again = restore(path, python=str(fresh_venv))
    assert again.step("pip").outcome == SATISFIED


def test_dataset_archive(tmp_path, monkeypatch):
    cert = self_signed_cert(tmp_path)
    if cert is None:
        pytest.skip("no openssl to make a certificate for the local https server")
    served = tmp_path / "served"
    served.mkdir()
    archive = tar_gz({"labels.csv": b"circle,square\n1,0\n"})
    (served / "tiny-shapes.tar.gz").write_bytes(archive)
    digest = hashlib.sha256(archive).hexdigest()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert[0]))
    with LoopbackServer(served, tls=cert) as srv:
        path = local_copy(tmp_path, "dataset-archive", {
            "https://example.org/datasets/tiny-shapes.tar.gz": srv.url_for("tiny-shapes.tar.gz"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": digest})
        restore(path)
    data_dir = Path(os.environ["DATA_DIR"])
    assert data_dir == tmp_path / "content" / "data" / "tiny-shapes"
    assert (data_dir / "labels.csv").read_bytes() == b"circle,square\n1,0\n"


@pytest.mark.skipif(not (JAVA_HOME / "bin" / "java").exists(), reason="no OpenJDK 17 here")
def test_java_home_and_pyspark(tmp_path, pypi, fresh_venv):
    path = local_copy(tmp_path, "java-pyspark", {})
    lines = Lines()
    report = restore(path, python=str(fresh_venv), skip=["apt"], progress=lines)
    assert os.environ["JAVA_HOME"] == str(JAVA_HOME)
    assert os.environ["PATH"].startswith(f"{JAVA_HOME}/bin:")
    assert os.environ["PYSPARK_PYTHON"] == str(fresh_venv)
    assert installed(fresh_venv) == {"pyspark": "3.5.3", "py4j": "0.10.9.7"}
    assert any(line.startswith('openjdk version "17') for line in lines.lines), lines.lines
    assert report.step("run").outcome == SATISFIED   # a check never counts as a change
