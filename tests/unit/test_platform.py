"""Platform detection and defaults, and a profile's per-platform overrides in a restore."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bootstrap
from bootstrap.errors import EnvironmentMismatch
from bootstrap.platform import detect, detect_name

pytestmark = pytest.mark.usefixtures("clean_environ")
REPO = Path(__file__).resolve().parents[2]


COLAB_VM = {"COLAB_RELEASE_TAG": "release-colab-20260801-060000-RC00", "HOME": "/root",
            "BOOTSTRAP_COLAB_HOSTNAME": __file__}   # a file that exists: /var/colab/hostname
KAGGLE_GPU = {**COLAB_VM, "COLAB_RELEASE_TAG": "release-colab-external-images_20260514-060047_RC00",
              "KAGGLE_KERNEL_RUN_TYPE": "Interactive", "KAGGLE_URL_BASE": "https://www.kaggle.com",
              "KAGGLE_DATA_PROXY_URL": "https://dp.kaggle.net"}


def test_colab_is_detected_by_its_release_tag():
    platform = detect(COLAB_VM)
    assert (platform.name, platform.label) == ("colab", "Google Colab")
    assert platform.mountpoint == Path("/content/drive")
    assert platform.drive_root == Path("/content/drive/MyDrive")
    assert platform.store_root == Path("/content/drive/MyDrive/.bootstrap")
    assert platform.secret_sources == ("colab", "dotenv", "environ")
    assert platform.drive_origin == "default"


def test_kaggle_is_detected_by_its_run_type():
    platform = detect({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "HOME": "/root"})
    assert (platform.name, platform.label) == ("kaggle", "Kaggle")
    assert platform.drive_root == Path("/kaggle/working")
    assert platform.store_root == Path("/kaggle/working/.bootstrap")
    assert platform.mountpoint is None
    assert platform.secret_sources == ("kaggle", "dotenv", "environ")
    assert platform.kaggle_root == Path("/kaggle")


def test_kaggle_on_colabs_image_is_kaggle(fake_modules, monkeypatch):
    """Kaggle's GPU and CPU images are built on Colab's: its variables and google.colab too."""
    monkeypatch.delenv("BOOTSTRAP_PLATFORM")
    platform = detect(KAGGLE_GPU)
    assert (platform.name, platform.variant, platform.label) == ("kaggle", "vm", "Kaggle")
    assert platform.mountpoint is None and platform.secret_sources[0] == "kaggle"
    for only in ("KAGGLE_URL_BASE", "KAGGLE_DATA_PROXY_URL"):
        assert detect_name({**COLAB_VM, only: "x"}) == "kaggle"


def test_kaggles_tpu_image():
    platform = detect({"ISTPUVM": "1", "KAGGLE_KERNEL_RUN_TYPE": "Interactive", "HOME": "/r"})
    assert (platform.name, platform.variant, platform.label) == ("kaggle", "tpu",
                                                                 "Kaggle (TPU VM)")
    assert detect({"ISTPUVM": "1", "HOME": "/r"}).name == "kaggle"


def test_colab_enterprise_and_the_local_runtime_have_no_drive(tmp_path):
    enterprise = detect({**COLAB_VM, "VERTEX_PRODUCT": "COLAB_ENTERPRISE",
                         "HOME": str(tmp_path)})
    local = detect({**COLAB_VM, "BOOTSTRAP_COLAB_HOSTNAME": str(tmp_path / "no-such-file"),
                    "HOME": str(tmp_path)})
    store = tmp_path / ".local" / "share" / "notebook-bootstrap"
    for platform, label in ((enterprise, "Colab Enterprise"),
                            (local, "Colab runtime image (local runtime)")):
        assert (platform.name, platform.label, platform.mountpoint) == ("colab", label, None)
        assert (platform.store_root, platform.drive_root) == (store, store / "drive")
        assert len(platform.notes) == 1 and f"the store is {store}" in platform.notes[0]
    assert enterprise.secret_sources == ("dotenv", "environ")
    assert local.secret_sources == ("colab", "dotenv", "environ")
    chosen = detect({**COLAB_VM, "VERTEX_PRODUCT": "COLAB_ENTERPRISE", "BOOTSTRAP_STORE": "/s"})
    assert (chosen.store_root, chosen.notes) == (Path("/s"), ())


def test_colab_page_is_looked_up_in_the_running_kernel(monkeypatch):
    import IPython

    from bootstrap.platform import colab_page

    class Shell:
        kernel = object()
        parent_header: dict = {"header": {}, "metadata": {}}

    assert colab_page({}) == "process"             # pytest runs in no kernel
    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell)
    assert colab_page({}) == "kernel"               # papermill, VS Code: no colab metadata
    Shell.parent_header = {"metadata": {"colab": {"cell_id": "abc"}}}
    assert colab_page({}) == "page"
    assert colab_page({"BOOTSTRAP_COLAB_PAGE": "process"}) == "process"
    Shell.kernel = None
    assert colab_page({}) == "process"


def test_a_plain_machine_uses_the_xdg_data_folder(tmp_path):
    platform = detect({"HOME": str(tmp_path)})
    assert (platform.name, platform.label) == ("local", "local machine")
    assert platform.store_root == tmp_path / ".local" / "share" / "notebook-bootstrap"
    assert platform.drive_root == platform.store_root / "drive"
    assert platform.secret_sources == ("dotenv", "environ")
    xdg = detect({"HOME": str(tmp_path), "XDG_DATA_HOME": "/data"})
    assert xdg.store_root == Path("/data/notebook-bootstrap")


def test_google_colab_importable_means_colab(fake_modules, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_PLATFORM")
    assert detect_name({}) == "colab"
    assert detect_name({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}) == "kaggle"


def test_bootstrap_platform_wins():
    assert detect_name({"BOOTSTRAP_PLATFORM": "local", "COLAB_RELEASE_TAG": "x"}) == "local"
    assert detect_name({"BOOTSTRAP_PLATFORM": "kaggle"}) == "kaggle"


def test_store_and_drive_overrides(tmp_path):
    colab = {"COLAB_RELEASE_TAG": "x", "BOOTSTRAP_COLAB_HOSTNAME": __file__}
    assert detect({**colab, "BOOTSTRAP_STORE": "/s"}).store_root == Path("/s")
    assert detect({**colab, "BOOTSTRAP_STORE": "/s"}, store="/t").store_root == Path("/t")
    moved = detect({**colab, "BOOTSTRAP_DRIVE": "/d"})
    assert (moved.drive_root, moved.store_root, moved.drive_origin) == \
        (Path("/d"), Path("/d/.bootstrap"), "BOOTSTRAP_DRIVE")
    assert detect(colab, drive="/e").drive_origin == "--drive"
    local = detect({"HOME": str(tmp_path), "BOOTSTRAP_DRIVE": "/d"})
    assert (local.drive_root, local.store_root) == \
        (Path("/d"), tmp_path / ".local" / "share" / "notebook-bootstrap")
    assert detect(colab, store="~/st").store_root == Path.home() / "st"


def test_the_store_override_reaches_the_restore(tmp_path, monkeypatch):
    store = tmp_path / "elsewhere"
    (store / "profiles").mkdir(parents=True)
    (store / "profiles" / "mine.toml").write_text('[env]\nIN_STORE = "{store}"\n')
    bootstrap.restore("mine", store=str(store))
    assert os.environ["IN_STORE"] == str(store)


def test_nothing_is_detected_at_import():
    code = (
        "import os, sys\n"
        "import bootstrap, bootstrap.platform, bootstrap.runner, bootstrap.steps.gpu, "
        "bootstrap.steps.drive, bootstrap.steps.secrets\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('google', 'kaggle_secrets')]\n"
        "os.environ['KAGGLE_KERNEL_RUN_TYPE'] = 'Batch'\n"
        "print(bootstrap.platform.detect().name)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("BOOTSTRAP_PLATFORM", "COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests" / "fakes")])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    assert done.stdout == "kaggle\n"


PROFILE = """
name = "train"

[gpu]
required = true
models = ["A100"]

[env]
WHERE = "base"
DATA = "{drive}/data"

[secrets]
TOKEN = "BASE_TOKEN"

[platforms.kaggle.gpu]
models = ["T4", "P100"]

[platforms.kaggle.env]
WHERE = "kaggle"

[platforms.kaggle.secrets]
TOKEN = "KAGGLE_TOKEN"
"""


def test_kaggle_overrides_apply_on_kaggle(tmp_path, gpu, kaggle, isolated):
    for name in ("WHERE", "DATA", "TOKEN"):
        os.environ.pop(name, None)
    gpu("t4x2")
    kaggle.secrets({"KAGGLE_TOKEN": "kaggle-token-value"})
    path = tmp_path / "train.toml"
    path.write_text(PROFILE)
    report = bootstrap.restore(path)
    assert report.platform == "Kaggle"
    assert [(r.name, r.outcome) for r in report.steps] == [
        ("gpu", "satisfied"), ("secrets", "changed"), ("env", "changed")]
    assert report.step("gpu").summary == "2 x Tesla T4, 15 GiB (driver 550.90.07, CUDA 12.4)"
    assert os.environ["WHERE"] == "kaggle"
    assert os.environ["DATA"] == f"{isolated['drive']}/data"
    assert os.environ["TOKEN"] == "kaggle-token-value"


def test_the_same_profile_elsewhere_keeps_its_base(tmp_path, gpu):
    os.environ.pop("WHERE", None)
    gpu("t4x2")
    path = tmp_path / "train.toml"
    path.write_text(PROFILE)
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(path)
    assert caught.value.what == "the GPU does not fit the profile: Tesla T4 is not one of A100"
    assert "WHERE" not in os.environ      # nothing after the GPU check ran


def test_kaggles_real_environment_says_kaggle_and_mounts_no_drive(tmp_path, kaggle, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_DRIVE")
    monkeypatch.delenv("BOOTSTRAP_STORE")
    assert os.environ["COLAB_RELEASE_TAG"]                 # Colab's image underneath
    (tmp_path / "k.toml").write_text('[drive]\n[env]\nOUT = "{drive}/out"\nS = "{store}"\n'
                                     '[workdir]\npath = "."\n')
    report = bootstrap.restore(tmp_path / "k.toml")
    assert report.platform == "Kaggle"
    assert report.headline().startswith("restore of k on Kaggle: ")
    assert report.step("drive").summary == f"Drive root {kaggle.working}"
    assert os.environ["OUT"] == f"{kaggle.working}/out"
    assert os.environ["S"] == f"{kaggle.working}/.bootstrap"
    assert kaggle.colab_calls() == []                      # no drive.mount, no userdata.get
