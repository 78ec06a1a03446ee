"""Fixtures of the wheel-store tests: a PEP 503 index on 127.0.0.1 serving the session's
test wheels and one sdist, and the VM-local wheel folder (waited on after each test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap import wheelstore
from tests.support.index import simple_index
from tests.support.wheels import build_sdist


@pytest.fixture(scope="module")
def packages(tmp_path_factory, wheelhouse) -> Path:
    """The session's test wheels plus zeta, which exists only as an sdist."""
    folder = tmp_path_factory.mktemp("index-files")
    for wheel in wheelhouse.glob("*.whl"):
        shutil.copy2(wheel, folder)
    build_sdist(folder, "zeta", "1.0")
    return folder


@pytest.fixture
def index(packages):
    with simple_index(packages) as server:
        yield server


@pytest.fixture
def local_cache(tmp_path, monkeypatch) -> Path:
    """The VM-local wheel folder; store saves still running are waited for afterwards."""
    folder = tmp_path / "local-wheels"
    monkeypatch.setenv("BOOTSTRAP_WHEEL_CACHE", str(folder))
    yield folder
    wheelstore.wait()
