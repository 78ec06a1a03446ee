"""Fixtures that make this machine look like a Colab or Kaggle VM, or give it a GPU.

The fakes themselves live in ``tests/fakes`` (``nvidia-smi``, ``google.colab``,
``kaggle_secrets``) and follow the real interfaces; see their docstrings for the
environment variables that steer them. Import the fixtures into a test module:

    from tests.support.fakes import colab, fake_modules, gpu, kaggle  # noqa: F401

    def test_x(gpu, colab):
        gpu("t4")                 # nvidia-smi on PATH reports a Tesla T4
        colab.mountpoint          # tmp .../content/drive, not mounted yet
        step_context("")          # the Context a step gets on the machine faked

``write_profile`` writes a profile file for ``bootstrap.restore`` to read.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

FAKES = Path(__file__).resolve().parent.parent / "fakes"
_MODULES = ("google", "kaggle_secrets")


def write_profile(folder: Path, text: str, name: str = "p.toml") -> Path:
    """``text`` written as profile ``name`` in ``folder``; returns its path."""
    path = folder / name
    path.write_text(text)
    return path


def step_context(text: str) -> Any:
    """The Context a step gets for profile ``text`` on the platform detected now."""
    from bootstrap.context import Context
    from bootstrap.platform import detect
    from bootstrap.profile import parse
    from bootstrap.store import Store

    platform = detect()
    return Context(profile=parse(text, source="p.toml"), platform=platform,
                   store=Store(platform.store_root), python=sys.executable)


def _forget_fake_modules() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in _MODULES:
            del sys.modules[name]


@pytest.fixture(autouse=True)
def clean_environ():
    """os.environ as it was before the test: restore() sets variables (env, secrets) for real.
    For every test (a pytest plugin, see tests/conftest.py)."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def fake_modules(monkeypatch):
    """``tests/fakes`` first on sys.path; its modules are forgotten again afterwards."""
    _forget_fake_modules()
    monkeypatch.syspath_prepend(str(FAKES))
    yield FAKES
    _forget_fake_modules()


@pytest.fixture
def gpu(monkeypatch) -> Callable[[str], None]:
    """``gpu("t4")``: the fake nvidia-smi first on PATH, playing that scenario."""

    def use(scenario: str) -> None:
        monkeypatch.setenv("PATH", f"{FAKES}:{_path_without_nvidia_smi()}")
        monkeypatch.setenv("FAKE_NVIDIA_SMI", scenario)

    return use


def _path_without_nvidia_smi() -> str:
    import os

    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not (Path(p) / "nvidia-smi").exists())


@dataclass
class FakeColab:
    root: Path
    mountpoint: Path       # /content/drive of this test, not mounted
    hostname: Path         # stands for /var/colab/hostname
    drive: Path            # the user's Drive: what MyDrive shows once mounted
    log: Path              # one line per mount()/get() call of the fakes
    monkeypatch: Any

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def secrets(self, values: dict[str, Any]) -> Path:
        """Secrets in Colab's key-icon panel: {"NAME": "value"} or {"NAME": {"value", "access"}}."""
        path = self.root / "colab-secrets.json"
        path.write_text(json.dumps(values))
        self.monkeypatch.setenv("FAKE_COLAB_SECRETS", str(path))
        return path

    def without_ui(self) -> None:
        """A kernel not run from Colab's page: no /var/colab/hostname."""
        self.hostname.unlink()


@pytest.fixture
def colab(tmp_path, monkeypatch, fake_modules) -> FakeColab:
    """A Colab VM: detection, google.colab, a fresh /content/drive mountpoint."""
    root = tmp_path / "colab"
    (root / "content").mkdir(parents=True)
    (root / "var-colab").mkdir()
    hostname = root / "var-colab" / "hostname"
    hostname.write_text("colab-vm\n")
    drive = root / "user-drive"
    drive.mkdir()
    monkeypatch.setenv("BOOTSTRAP_PLATFORM", "colab")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-20260801-060000-RC00")
    monkeypatch.delenv("BOOTSTRAP_DRIVE", raising=False)
    monkeypatch.setenv("BOOTSTRAP_COLAB_MOUNTPOINT", str(root / "content" / "drive"))
    monkeypatch.setenv("FAKE_COLAB_HOSTNAME", str(hostname))
    monkeypatch.setenv("FAKE_COLAB_DRIVE", str(drive))
    monkeypatch.setenv("FAKE_COLAB_LOG", str(root / "calls.log"))
    for name in ("FAKE_COLAB_SECRETS", "FAKE_COLAB_MOUNT_FAILURES", "FAKE_COLAB_MOUNT_AUTH"):
        monkeypatch.delenv(name, raising=False)
    return FakeColab(root, root / "content" / "drive", hostname, drive, root / "calls.log",
                     monkeypatch)


@dataclass
class FakeKaggle:
    root: Path
    monkeypatch: Any

    def secrets(self, values: dict[str, str]) -> Path:
        """Secrets attached to this notebook (Add-ons > Secrets)."""
        path = self.root / "kaggle-secrets.json"
        path.write_text(json.dumps(values))
        self.monkeypatch.setenv("FAKE_KAGGLE_SECRETS", str(path))
        return path


@pytest.fixture
def kaggle(tmp_path, monkeypatch, fake_modules) -> FakeKaggle:
    """A Kaggle notebook session: detection and kaggle_secrets (Drive root stays the test's)."""
    root = tmp_path / "kaggle"
    root.mkdir()
    monkeypatch.delenv("BOOTSTRAP_PLATFORM", raising=False)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setenv("KAGGLE_USER_SECRETS_TOKEN", "a-session-token")
    for name in ("FAKE_KAGGLE_SECRETS", "FAKE_KAGGLE_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return FakeKaggle(root, monkeypatch)


class Lines:
    """A progress callback that keeps the output lines of running steps."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: Any) -> None:
        if event.kind == "line":
            self.lines.append(event.text)
