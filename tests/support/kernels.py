"""Real ipykernels whose Python is a fresh virtual environment with this package installed.

The environment stands for a fresh notebook VM: a new ``uv venv`` into which the
real wheel of this checkout (built from the working tree by hatchling, so the
tests see uncommitted code) is installed with uv, offline. What a hosted image
preinstalls (ipykernel, IPython, packaging, uv, ...) comes from the test
runner's own site-packages through a ``.pth`` file, the way Colab's
``dist-packages`` sit under every user install: the suite needs no network,
and a profile's installs land in the venv's own site-packages, which comes
first on ``sys.path``.

    env = kernel_env(tmp_path / "k", project_wheel)     # KernelEnv
    nb = notebook("%load_ext bootstrap", "%restore_env p.toml")
    result = run_notebook(nb, env, cwd=tmp_path, monkeypatch=monkeypatch)
    result.nb.cells[1].outputs; result.messages(1)      # iopub msg types of cell 1

``JUPYTER_PATH`` points at a private kernelspec folder so nothing is
installed for the user.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.venvs import make_venv, uv

REPO = Path(__file__).resolve().parents[2]
KERNEL_NAME = "bootstrap-test"
#: modules the kernel needs from the runner's environment (the "base image")
BASE_MODULES = ("ipykernel", "IPython", "jupyter_client", "packaging", "tomlkit", "uv")


def project_version() -> str:
    for line in (REPO / "bootstrap" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "0"


def project_wheel(folder: Path) -> Path:
    """The real wheel of this working tree, built by its build backend (hatchling).

    Built from the files on disk, so the tests see uncommitted code, and laid
    out as ``pip install .`` installs it: ``bootstrap/`` with the magics as
    ``bootstrap/magics``, the profiles as ``bootstrap/_profiles``, the docs as
    ``bootstrap/_docs``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    code = "import sys\nfrom hatchling.build import build_wheel\nprint(build_wheel(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return folder / out.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """The real wheel of this working tree, built once per test run."""
    return project_wheel(tmp_path_factory.mktemp("project"))


def base_site_dirs() -> list[str]:
    """The runner's folders that hold what the kernel imports from the base image."""
    import importlib.util

    dirs: list[str] = []
    for name in BASE_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            raise RuntimeError(f"the test runner lacks {name}; install the test extras")
        folder = str(Path(spec.origin).resolve().parent.parent)
        if folder not in dirs:
            dirs.append(folder)
    for folder in site.getsitepackages():
        if os.path.isdir(folder) and folder not in dirs:
            dirs.append(folder)
    return dirs


@dataclass
class KernelEnv:
    python: Path
    jupyter_path: Path
    name: str = KERNEL_NAME
    env: dict[str, str] = field(default_factory=dict)

    @property
    def site_packages(self) -> Path:
        return next(self.python.parent.parent.glob("lib/python*/site-packages"))

    def install(self, *requirements: str, find_links: Path) -> None:
        """Preinstall test wheels, as if the base image had them."""
        subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(self.python),
                        "--offline", "--no-index", "--find-links", str(find_links),
                        *requirements], check=True)


def kernel_env(path: Path, wheel: Path, *, env: dict[str, str] | None = None) -> KernelEnv:
    """A fresh venv at ``path/venv`` with ``wheel`` installed and a kernelspec for it."""
    python = make_venv(path / "venv")
    subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(python), "--offline",
                    "--no-deps", str(wheel)], check=True)
    kenv = KernelEnv(python, path / "jupyter", env=dict(env or {}))
    (kenv.site_packages / "_base_image.pth").write_text("\n".join(base_site_dirs()) + "\n")
    spec_dir = kenv.jupyter_path / "kernels" / kenv.name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (bootstrap test)", "language": "python",
        "env": kenv.env,
    }))
    return kenv


def isolated_kernel_env(tmp_path: Path, wheel: Path, monkeypatch: Any, *,
                    env: dict[str, str] | None = None) -> KernelEnv:
    """``kernel_env`` under ``tmp_path/kernel``, with the user's cache folder in ``tmp_path``.

    The "what was restored on this VM" record and the local wheel cache then
    stay in the test.
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return kernel_env(tmp_path / "kernel", wheel, env=env)


def notebook(*sources: str, parameters: str | None = None) -> Any:
    """A notebook of code cells; ``parameters`` becomes a first cell tagged parameters."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python", "language":
                                 "python"}
    nb.metadata["language_info"] = {"name": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in sources)
    return nb


@dataclass
class Executed:
    nb: Any
    error: BaseException | None
    log: list[tuple[int, str, dict[str, Any]]]   # (cell index, msg_type, content)

    def messages(self, index: int) -> list[str]:
        return [kind for i, kind, _ in self.log if i == index]

    def text(self, index: int) -> str:
        """Everything cell ``index`` showed: streams, text/plain, errors' lines."""
        parts = []
        for out in self.nb.cells[index].get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("display_data", "execute_result"):
                parts.append(out.data.get("text/plain", ""))
            elif out.output_type == "error":
                parts.append("\n".join(out.traceback))
        return "\n".join(parts)


def kernel_environment(monkeypatch: Any, kenv: KernelEnv) -> None:
    """The environment a kernel started now inherits: the private kernelspec, no PYTHONPATH."""
    monkeypatch.setenv("JUPYTER_PATH", str(kenv.jupyter_path))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.delenv("PYTHONPATH", raising=False)


def run_notebook(nb: Any, kenv: KernelEnv, *, cwd: Path, monkeypatch: Any,
                 timeout: int = 120) -> Executed:
    """Execute ``nb`` in the kernel of ``kenv`` with nbclient; stops at the first error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    kernel_environment(monkeypatch, kenv)
    log: list[tuple[int, str, dict[str, Any]]] = []

    class Recording(NotebookClient):
        def process_message(self, msg, cell, cell_index):  # type: ignore[override]
            log.append((cell_index, msg["msg_type"], msg.get("content", {})))
            return super().process_message(msg, cell, cell_index)

    client = Recording(nb, kernel_name=kenv.name, timeout=timeout, startup_timeout=120,
                       resources={"metadata": {"path": str(cwd)}})
    error: BaseException | None = None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = exc
    return Executed(nb, error, log)
