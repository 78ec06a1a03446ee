"""[variables] in a real kernel: %restore_env sets them as notebook variables, and the
run-once and check entries of the same profile behave there as on the command line."""

from __future__ import annotations

import pytest

from tests.support.kernels import (
    KernelEnv,
    isolated_kernel_env,
    notebook,
    run_notebook,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def kenv(tmp_path, project, monkeypatch) -> KernelEnv:
    return isolated_kernel_env(tmp_path, project, monkeypatch)


def test_variables_reach_the_next_cell(kenv, tmp_path, monkeypatch):
    profile = tmp_path / "vars.toml"
    profile.write_text(f"""
version = 1
[[files]]
dest = "{tmp_path}/project/config.txt"
content = "root={{drive}}\\n"

[[run]]
name = "prepare once"
argv = ["sh", "-c", "echo prepared >> log.txt"]
cwd = "{tmp_path}/project"
once = true

[variables]
PROJECT_ROOT = "{tmp_path}/project"
CONFIG = "{tmp_path}/project/config.txt"
""")
    nb = notebook("%load_ext bootstrap",
                  f"%restore_env {profile}",
                  "print(open(CONFIG).read().strip(), PROJECT_ROOT)",
                  f"%restore_env {profile}")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch)
    assert done.error is None, done.error
    root, where = done.text(2).split()
    assert root.startswith("root=/") and where == f"{tmp_path}/project"
    assert "[variables] set PROJECT_ROOT, CONFIG in this notebook" in done.text(1)
    again = done.text(3)
    assert again.startswith("restore of vars on local machine: 4 satisfied"), again
    assert (tmp_path / "project" / "log.txt").read_text() == "prepared\n"   # once
