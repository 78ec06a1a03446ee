"""Real IPython kernels on fresh virtual environments, driven with nbclient.

    python = make_kernel_venv(tmp_path / "kvenv")         # fresh venv, pip inside
    nb = run_cells(python, ["import sys", "print(sys.prefix)"], cwd=tmp_path,
                   env=kernel_env(python))
    output(nb.cells[1])                                    # "/tmp/.../kvenv\n"

The venv stands for a fresh VM's Python: its own site-packages holds only
pip (from the interpreter's bundled ensurepip wheel, so no network), and a
``.pth`` file puts this checkout and the test runner's site-packages (ipykernel,
packaging, tomlkit...) after it on ``sys.path``, like the packages of a base
image. pip and uv install into the venv's own site-packages only, and
``tests.support.venvs.installed(python)`` lists just those. ``uv`` is linked
into the venv's ``bin`` like the uv binary Colab ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from tests.support.venvs import uv

REPO = Path(__file__).resolve().parents[2]


def _bundled_wheels() -> Path:
    import ensurepip

    return Path(ensurepip.__file__).parent / "_bundled"


def make_kernel_venv(path: Path, *, pip: bool = True) -> Path:
    """A fresh venv that can run an IPython kernel of this checkout; returns its python."""
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(path)], check=True)
    python = path / "bin" / "python"
    if pip:
        subprocess.run([uv(), "pip", "install", "--quiet", "--offline", "--no-index",
                        "--find-links", str(_bundled_wheels()), "--python", str(python), "pip"],
                       check=True)
    site = next(path.glob("lib/python*/site-packages"))
    shared = [str(REPO), sysconfig.get_paths()["purelib"]]
    (site / "zz_test_base_image.pth").write_text("\n".join(shared) + "\n")
    link = path / "bin" / "uv"
    if not link.exists():
        link.symlink_to(uv())
    return python


def kernel_env(python: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment, with the venv activated (PATH, VIRTUAL_ENV) and ``extra``."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    venv = python.parent.parent
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.update(extra or {})
    return env


def run_cells(python: Path, cells: Sequence[str], *, cwd: Path, env: Mapping[str, str],
              timeout: float = 180, kernel_dir: Path | None = None) -> Any:
    """Execute ``cells`` in a new kernel on ``python``; returns the executed notebook.

    A cell that raises stops the run with nbclient's CellExecutionError (its
    message holds the traceback).
    """
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    name = f"bootstrap-test-{uuid.uuid4().hex[:8]}"
    specs = kernel_dir or (cwd / ".kernels")
    spec = specs / name
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python"}))
    km = KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(
        kernel_dirs=[str(specs)]))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": name, "display_name": name, "language": "python"}
    client = NotebookClient(nb, km=km, timeout=timeout, startup_timeout=120,
                            allow_errors=False, resources={"metadata": {"path": str(cwd)}})
    try:
        # we made the manager, so nbclient would leave the kernel running: ask it to clean up
        client.execute(env=dict(env), cleanup_kc=True)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
            km.cleanup_resources()
    return nb


def output(cell: Any) -> str:
    """The text a cell printed (streams and text/plain results)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"] + "\n")
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "".join(parts)
