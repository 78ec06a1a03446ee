"""Fixtures that make this machine look like a Colab or Kaggle VM, or give it a GPU.

The fakes themselves live in ``tests/fakes`` (``nvidia-smi``, ``google.colab``,
``kaggle_secrets``) and follow the real interfaces; see their docstrings for the
environment variables that steer them. The fixtures are a pytest plugin
(``pytest_plugins`` in ``tests/conftest.py``): a test names them and gets them:

    def test_x(gpu, colab):
        gpu("t4")                 # nvidia-smi on PATH reports a Tesla T4
        colab.mountpoint          # tmp .../content/drive, not mounted yet
        step_context("")          # the Context a step gets on the machine faked

``write_profile`` writes a profile file for ``bootstrap.restore`` to read.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support.httpserver import LoopbackServer

FAKES = Path(__file__).resolve().parent.parent / "fakes"
_MODULES = ("google", "kaggle_secrets", "kaggle_web_client")


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

    def without_page(self) -> None:
        """A plain process on the VM (``!bootstrap restore`` in a cell): no kernel, no page."""
        self.monkeypatch.delenv("FAKE_COLAB_PAGE", raising=False)
        self.monkeypatch.delenv("BOOTSTRAP_COLAB_PAGE", raising=False)

    def local_runtime(self) -> None:
        """Colab's runtime image off a Colab VM: no /var/colab/hostname."""
        self.hostname.unlink()

    def enterprise(self) -> None:
        """Colab Enterprise: Vertex AI's runtime, where Drive cannot be mounted."""
        self.monkeypatch.setenv("VERTEX_PRODUCT", "COLAB_ENTERPRISE")

    def mount_drive(self) -> None:
        """Mount Drive as a cell of the notebook would (a real mount; no page needed here)."""
        from google.colab import drive

        drive._mount(str(self.mountpoint), ephemeral=False)


def unmount_under(root: Path) -> None:
    """Unmount every file system mounted at or below ``root``, deepest first."""
    import os
    import subprocess

    prefix = str(root.resolve())
    with open("/proc/self/mounts") as table:
        points = [line.split()[1].replace("\\040", " ") for line in table]
    for point in sorted({p for p in points if p == prefix or p.startswith(prefix + os.sep)},
                        key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


@pytest.fixture
def colab(tmp_path, monkeypatch, fake_modules):
    """A Colab VM, this process running a cell of the notebook open in Colab's page:
    detection, google.colab, a fresh /content/drive mountpoint (what the fake mounts there
    is unmounted again afterwards)."""
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
    monkeypatch.setenv("BOOTSTRAP_COLAB_HOSTNAME", str(hostname))
    monkeypatch.setenv("FAKE_COLAB_HOSTNAME", str(hostname))
    monkeypatch.setenv("FAKE_COLAB_DRIVE", str(drive))
    monkeypatch.setenv("FAKE_COLAB_LOG", str(root / "calls.log"))
    # the page answers this process, and the restore knows it (no kernel runs the tests)
    monkeypatch.setenv("FAKE_COLAB_PAGE", "connected")
    monkeypatch.setenv("BOOTSTRAP_COLAB_PAGE", "page")
    for name in ("FAKE_COLAB_SECRETS", "FAKE_COLAB_MOUNT_FAILURES", "FAKE_COLAB_MOUNT_AUTH",
                 "FAKE_COLAB_PAGE_WAIT", "VERTEX_PRODUCT"):
        monkeypatch.delenv(name, raising=False)
    yield FakeColab(root, root / "content" / "drive", hostname, drive, root / "calls.log",
                    monkeypatch)
    unmount_under(root)


@dataclass
class FakeKaggle:
    root: Path             # stands for /kaggle: input/ (attached datasets), working/
    monkeypatch: Any

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def working(self) -> Path:
        return self.root / "working"

    def colab_calls(self) -> list[str]:
        """Calls into google.colab's drive and userdata (importable on Kaggle too)."""
        log = self.root / "colab-calls.log"
        return log.read_text().splitlines() if log.exists() else []

    service: Any = None    # Kaggle's secret service: a LoopbackServer on 127.0.0.1
    attached: dict[str, str] = field(default_factory=dict)
    #: label -> an HTTP status the service answers for it (a label of "*": for every one)
    statuses: dict[str, int] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)

    def secrets(self, values: dict[str, str]) -> None:
        """Secrets attached to this notebook (Add-ons > Secrets)."""
        self.attached.clear()
        self.attached.update(values)

    def offline(self) -> None:
        """The notebook's internet is off: the service cannot be reached at all."""
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.monkeypatch.setenv("KAGGLE_URL_BASE", f"http://127.0.0.1:{port}")

    def asked(self) -> list[str]:
        """The labels the service was asked for, in order."""
        return list(self.labels)

    def _answer(self, request: Any) -> None:
        from tests.support.httpserver import send_bytes

        body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
        label = body["Label"]
        self.labels.append(label)
        status = self.statuses.get(label, self.statuses.get("*"))
        if status is not None:
            request.send_response(status)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        if label in self.attached:
            answer = {"wasSuccessful": True, "result": {"secret": self.attached[label]}}
        else:
            answer = {"errors": [f"No user secrets exist for kernel id 12345678 and label "
                                 f"{label}"], "error": {"code": 5, "details": []},
                      "wasSuccessful": False}
        send_bytes(request, json.dumps(answer).encode(), honor_range=False,
                   content_type="application/json")


@pytest.fixture
def kaggle(tmp_path, monkeypatch, fake_modules):
    """A Kaggle notebook session: detection, kaggle_secrets, an empty /kaggle/input and
    /kaggle/working (the Drive root and store stay the test's unless it unsets them)."""
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    monkeypatch.setenv("BOOTSTRAP_KAGGLE_ROOT", str(root))
    monkeypatch.setenv("FAKE_COLAB_LOG", str(root / "colab-calls.log"))
    monkeypatch.delenv("BOOTSTRAP_PLATFORM", raising=False)
    # Kaggle's GPU and CPU images are built on Colab's: its variables are there too
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-external-images_20260514-060047_RC00")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setenv("KAGGLE_USER_SECRETS_TOKEN", "a-session-token")
    monkeypatch.setenv("KAGGLE_DATA_PROXY_URL", "https://dp.kaggle.net")
    monkeypatch.delenv("ISTPUVM", raising=False)
    fake = FakeKaggle(root, monkeypatch)
    with LoopbackServer() as service:
        fake.service = service
        service.route("/requests/GetUserSecretByLabelRequest", fake._answer)
        monkeypatch.setenv("KAGGLE_URL_BASE", service.url)
        yield fake


class Lines:
    """A progress callback that keeps the output lines of running steps."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: Any) -> None:
        if event.kind == "line":
            self.lines.append(event.text)
