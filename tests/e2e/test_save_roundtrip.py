"""Save in one real kernel, restore in another on a fresh venv: the same packages, env, folder.

The wheelhouse stands for PyPI: both kernels start with pip and uv pointed at
it (PIP_FIND_LINKS, UV_FIND_LINKS), as a VM starts with PyPI configured.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bootstrap.profile import load
from tests.support.kernelvenv import kernel_env, make_kernel_venv, output, run_cells
from tests.support.venvs import installed

pytestmark = pytest.mark.slow

TOKEN = "hf_" + "Xk4fQ9" * 6


def _index_env(wheelhouse: Path, tmp_path: Path) -> dict[str, str]:
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse),
            "UV_NO_INDEX": "1", "UV_FIND_LINKS": str(wheelhouse),
            "BOOTSTRAP_APT_HISTORY": str(tmp_path / "no-apt-history.log")}


def test_save_in_one_kernel_restore_in_another(tmp_path, isolated, wheelhouse):
    drive, store = isolated["drive"], isolated["store"]
    project = drive / "projects" / "demo"
    project.mkdir(parents=True)

    # -- session 1: set things up the usual way, then %save_env --------------------------
    first = make_kernel_venv(tmp_path / "vm1")
    env = kernel_env(first, {**_index_env(wheelhouse, tmp_path),
                             "BOOTSTRAP_SESSION_START": str(time.time())})
    nb = run_cells(first, [
        # what the extension's load hook does
        "%load_ext bootstrap\nimport bootstrap.capture\nbootstrap.capture.take_baseline()",
        "!pip install --quiet beta delta",
        "!uv pip install --quiet gamma",
        f"import os\nos.environ['DEMO_MODE'] = 'fast'\nos.environ['HF_TOKEN'] = {TOKEN!r}\n"
        f"os.chdir({str(project)!r})",
        "%save_env demo",
        # the shell face sees the notebook's variables through the baseline
        "import sys\n!{sys.executable} -m bootstrap save demo --dry-run",
    ], cwd=tmp_path, env=env)
    saved_output = output(nb.cells[4])
    cli_output = output(nb.cells[5])
    assert 'DEMO_MODE = "fast"' in cli_output and 'HF_TOKEN = "HF_TOKEN"' in cli_output, \
        cli_output
    assert TOKEN not in cli_output and "# dry run" in cli_output
    assert "saved profile demo" in saved_output, saved_output
    assert "HF_TOKEN looks like a secret" in saved_output
    session = installed(first)
    assert {"alpha", "beta", "delta", "gamma"} <= set(session)

    profile = load("demo", profiles_dir=store / "profiles")
    assert profile.pip.packages == ["beta==1.0", "delta==0.5", "gamma==3.1"]
    assert profile.pip.constraints == ["alpha==2.0"]
    assert profile.env == {"DEMO_MODE": "fast"}
    assert profile.secrets == {"HF_TOKEN": "HF_TOKEN"}
    assert profile.workdir.path == "projects/demo"
    assert profile.captured.platform == "local"
    # the token is nowhere in the store, on Drive, or in the baseline
    assert TOKEN.encode() not in (tmp_path / "vm-state" / "baseline.json").read_bytes()
    for folder in (store, drive):
        for path in folder.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path

    # -- session 2: a fresh VM restores it -----------------------------------------------
    second = make_kernel_venv(tmp_path / "vm2")
    assert set(installed(second)) == {"pip"}
    env = kernel_env(second, {**_index_env(wheelhouse, tmp_path), "HF_TOKEN": TOKEN})
    nb = run_cells(second, [
        "%load_ext bootstrap\n%restore_env demo",
        "import os, json\nprint(json.dumps({'mode': os.environ.get('DEMO_MODE'), "
        "'cwd': os.getcwd()}))",
    ], cwd=tmp_path, env=env)
    facts = json.loads(output(nb.cells[1]).strip().splitlines()[-1])
    assert installed(second) == session
    assert facts == {"mode": "fast", "cwd": str(project)}
