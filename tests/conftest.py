"""Shared fixtures: an isolated store and Drive, fresh virtual environments, test wheels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.venvs import make_venv
from tests.support.wheels import build_wheel

REPO = Path(__file__).resolve().parent.parent

# shared fixtures: the fakes (and the autouse environment cleaning), the uv-call log
pytest_plugins = ["tests.support.fakes", "tests.support.uvlog", "tests.support.processes",
                  "tests.support.storeindex", "tests.support.kernels"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own store, Drive and local wheel folder, and looks like a plain
    machine."""
    for name in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE", "BOOTSTRAP_STORE",
                 "BOOTSTRAP_DRIVE", "UV_CONSTRAINT", "UV_BUILD_CONSTRAINT", "UV_INDEX_URL",
                 "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_DEFAULT_INDEX", "UV_INDEX",
                 "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOOTSTRAP_PLATFORM", "local")
    store = tmp_path / "store"
    drive = tmp_path / "drive"
    drive.mkdir()
    monkeypatch.setenv("BOOTSTRAP_STORE", str(store))
    monkeypatch.setenv("BOOTSTRAP_DRIVE", str(drive))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BOOTSTRAP_STATE_DIR", str(tmp_path / "vm-state"))
    # the VM-local wheel folder: a test's own, never the user's ~/.cache
    monkeypatch.setenv("BOOTSTRAP_WHEEL_CACHE", str(tmp_path / "local-wheels"))
    monkeypatch.chdir(tmp_path)
    return {"store": store, "drive": drive}


@pytest.fixture(scope="session", autouse=True)
def uv_cache(tmp_path_factory):
    """One uv cache for the whole run, apart from the user's."""
    cache = tmp_path_factory.mktemp("uv-cache")
    old = os.environ.get("UV_CACHE_DIR")
    os.environ["UV_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("UV_CACHE_DIR", None)
    else:
        os.environ["UV_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """A folder of small real wheels: alpha 1.0/2.0, beta (needs alpha), gamma[fast]."""
    folder = tmp_path_factory.mktemp("wheels")
    build_wheel(folder, "alpha", "1.0")
    build_wheel(folder, "alpha", "2.0")
    build_wheel(folder, "beta", "1.0", requires=["alpha>=1.0"])
    build_wheel(folder, "delta", "0.5")
    build_wheel(folder, "gamma", "3.1", extras={"fast": ["delta>=0.5"]})
    return folder


@pytest.fixture
def fresh_venv(tmp_path) -> Path:
    """A new virtual environment standing for a fresh VM's Python."""
    return make_venv(tmp_path / "venv")
