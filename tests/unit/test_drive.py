"""The drive step: Colab's mount through the faked google.colab, and the plain Drive folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bootstrap
from bootstrap.errors import EnvironmentMismatch, StepError
from bootstrap.profile import parse
from bootstrap.runner import select
from bootstrap.steps import drive as drive_step
from tests.support.fakes import FAKES, step_context, write_profile

pytestmark = pytest.mark.usefixtures("clean_environ")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(drive_step, "sleep", waited.append)
    return waited


# -- elsewhere: a folder ----------------------------------------------------------------

def test_the_default_drive_root_is_created(tmp_path, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_DRIVE")
    root = tmp_path / "xdg" / "notebook-bootstrap" / "drive"
    report = bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    row = report.step("drive")
    assert (row.outcome, row.actions) == ("changed", [f"create {root}"])
    assert row.summary == f"created the Drive root {root}"
    assert root.is_dir()
    report = bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert report.step("drive").outcome == "satisfied"


@pytest.mark.parametrize("via", ["BOOTSTRAP_DRIVE", "--drive"])
def test_a_configured_drive_root_must_exist(tmp_path, monkeypatch, via):
    missing = tmp_path / "no-such-drive"
    options = {}
    if via == "--drive":
        options["drive"] = str(missing)
    else:
        monkeypatch.setenv("BOOTSTRAP_DRIVE", str(missing))
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, '[drive]\n[env]\nX = "{drive}"\n'), **options)
    error = caught.value
    assert error.what == f"the Drive root {missing} does not exist"
    assert error.where == f"{via} (the Drive root)"
    assert f"point {via} at the folder" in error.hint
    assert not missing.exists()
    assert [r.name for r in error.report.steps] == ["gpu", "drive"]


def test_an_existing_drive_root_is_satisfied(tmp_path, isolated):
    report = bootstrap.restore(write_profile(tmp_path, "[drive]\nmount = false\n"))
    assert report.step("drive").outcome == "satisfied"
    assert report.step("drive").summary == f"Drive root {isolated['drive']}"


def test_off_colab_the_step_runs_only_for_a_drive_section(tmp_path):
    implicit = parse('[env]\nX = "{drive}/x"\n[workdir]\npath = "p"\ncreate = true\n')
    assert "drive" not in [name for name, _ in select(implicit, (), ())]
    assert "drive" in [name for name, _ in select(parse("[drive]\n"), (), ())]


def test_folder_check_and_apply_on_a_context(tmp_path, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_DRIVE")
    ctx = step_context("[drive]\n")
    plan = drive_step.check(ctx)
    assert not plan.satisfied and not ctx.platform.drive_root.exists()
    drive_step.apply(ctx, plan)
    assert drive_step.check(ctx).satisfied


# -- Colab: mount -------------------------------------------------------------------------

def test_colab_mounts_drive_once(tmp_path, colab):
    profile = write_profile(tmp_path, '[drive]\n[env]\nDATA = "{drive}/data"\n')
    report = bootstrap.restore(profile)
    row = report.step("drive")
    assert row.outcome == "changed"
    assert row.actions == [f"mount Google Drive at {colab.mountpoint}"]
    assert row.summary == f"mounted Drive at {colab.mountpoint}"
    assert os.path.ismount(colab.mountpoint) and (colab.mountpoint / "MyDrive").is_dir()
    assert colab.calls() == [f"mount {colab.mountpoint}"]
    assert report.platform == "Google Colab"
    assert os.environ["DATA"] == f"{colab.mountpoint}/MyDrive/data"

    again = bootstrap.restore(profile)
    assert again.step("drive").outcome == "satisfied"
    assert colab.calls() == [f"mount {colab.mountpoint}"]  # mounted already: not called again


def test_colab_already_mounted_is_left_alone(tmp_path, colab):
    colab.mount_drive()
    report = bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert report.step("drive").outcome == "satisfied"
    assert colab.calls() == [f"mount {colab.mountpoint}"]     # the cell's mount only


def test_a_mydrive_folder_on_the_vms_disk_is_not_drive(tmp_path, colab):
    (colab.mountpoint / "MyDrive" / "projects").mkdir(parents=True)
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    error = caught.value
    assert error.what == (f"{colab.mountpoint / 'MyDrive'} is a folder on this VM's disk, not "
                          f"Google Drive: nothing is mounted at {colab.mountpoint}")
    assert "lost with the VM" in error.hint and f"!mv {colab.mountpoint} " in error.hint
    assert colab.calls() == []
    assert not os.path.ismount(colab.mountpoint)


def test_colab_mounts_when_the_profile_uses_drive_without_saying_so(tmp_path, colab):
    profile = parse('[env]\nOUT = "{drive}/out"\n')
    assert "drive" in [name for name, _ in select(profile, (), ())]
    assert "drive" not in [name for name, _ in select(parse('[env]\nA = "b"\n'), (), ())]
    for text in ('[workdir]\npath = "p"\n', '[setup]\nnotebook = "s.ipynb"\n',
                 '[pip]\nfind_links = ["{store}/wheels"]\n'):
        assert drive_step.needs_drive(parse(text)), text
    report = bootstrap.restore(write_profile(tmp_path, '[env]\nOUT = "{drive}/out"\n'))
    assert report.step("drive").outcome == "changed"
    assert colab.calls() == [f"mount {colab.mountpoint}"]


def test_colab_retries_drive_timeouts_with_growing_pauses(tmp_path, colab, pauses, monkeypatch):
    monkeypatch.setenv("FAKE_COLAB_MOUNT_FAILURES", "2")
    events = []
    report = bootstrap.restore(write_profile(tmp_path, "[drive]\n"), progress=events.append)
    assert report.step("drive").outcome == "changed"
    assert pauses == [10.0, 30.0]
    assert len(colab.calls()) == 3
    lines = [e.text for e in events if e.kind == "line" and e.step == "drive"]
    assert lines[0] == ("Drive timed out reading its root folder (attempt 1 of 3); "
                        "trying again in 10 s")


def test_colab_gives_up_after_three_timeouts(tmp_path, colab, pauses, monkeypatch):
    monkeypatch.setenv("FAKE_COLAB_MOUNT_FAILURES", "3")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    error = caught.value
    assert error.what == "Drive timed out reading its root folder 3 times"
    assert "timeout during initial read of root folder" in error.details
    assert "sub-folders" in error.hint
    assert pauses == [10.0, 30.0]
    assert not (colab.mountpoint / "MyDrive").exists()


def test_a_plain_process_on_colab_fails_fast_when_drive_is_not_mounted(tmp_path, colab):
    colab.without_page()
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    error = caught.value
    assert error.what == (f"Google Drive is not mounted at {colab.mountpoint}, and only the "
                          "notebook can mount it")
    assert error.hint == ("run %restore_env in the notebook instead, or mount Drive in a cell "
                          f"first (from google.colab import drive; drive.mount("
                          f"'{colab.mountpoint}')) and run this again")
    assert error.report.step("drive").outcome == "failed"
    assert colab.calls() == []


def test_the_fake_fails_in_a_plain_process_as_colab_does(colab):
    from google.colab import drive, userdata

    colab.without_page()
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'kernel'"):
        drive.mount(str(colab.mountpoint))
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'kernel'"):
        userdata.get("HF_TOKEN")
    colab.local_runtime()
    with pytest.raises(NotImplementedError, match="unsupported in this environment"):
        drive.mount(str(colab.mountpoint))


def test_the_fake_without_the_page_times_out_as_colab_does(colab, monkeypatch):
    """A kernel whose page does not answer: Drive's access request waits, then 'mount failed'."""
    from google.colab import _message, drive

    monkeypatch.delenv("FAKE_COLAB_PAGE")
    monkeypatch.setenv("FAKE_COLAB_PAGE_WAIT", "0")
    monkeypatch.setattr(_message.ipython, "get_kernelapp", lambda: object())  # a kernel
    with pytest.raises(ValueError, match="^mount failed$"):
        drive.mount(str(colab.mountpoint))
    monkeypatch.setenv("VERTEX_PRODUCT", "COLAB_ENTERPRISE")
    with pytest.raises(NotImplementedError, match="not supported in Colab Enterprise"):
        drive.mount(str(colab.mountpoint))


def test_a_plain_process_uses_a_mounted_drive(tmp_path, colab):
    colab.mount_drive()
    colab.without_page()
    report = bootstrap.restore(write_profile(tmp_path, '[drive]\n[env]\nD = "{drive}"\n'))
    assert report.step("drive").outcome == "satisfied"
    assert os.environ["D"] == str(colab.mountpoint / "MyDrive")


def test_a_kernel_not_connected_to_the_page_fails_fast(tmp_path, colab, monkeypatch):
    monkeypatch.setenv("BOOTSTRAP_COLAB_PAGE", "kernel")
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert caught.value.what == (f"Google Drive is not mounted at {colab.mountpoint}, and this "
                                 "kernel is not connected to Colab's page, which must ask you "
                                 "for access")
    assert caught.value.hint.startswith("mount Drive in a cell of the notebook open in Colab")
    assert colab.calls() == []


def test_an_access_dialog_answered_late_says_so(tmp_path, colab, monkeypatch):
    monkeypatch.setenv("FAKE_COLAB_MOUNT_AUTH", "late")
    monkeypatch.setattr(drive_step, "AUTH_TIMEOUT", 0.2)
    monkeypatch.setenv("FAKE_COLAB_PAGE_WAIT", "0.3")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert caught.value.what == ("Drive was not mounted: Colab's access dialog got no answer "
                                 "within 0.2 s")
    assert caught.value.details == "mount failed"
    assert not os.path.ismount(colab.mountpoint)


@pytest.mark.parametrize("where", ["local runtime", "enterprise"])
def test_where_drive_cannot_exist_the_store_stays_on_this_machine(tmp_path, colab, monkeypatch,
                                                                 where):
    monkeypatch.delenv("BOOTSTRAP_STORE")
    if where == "enterprise":
        colab.enterprise()
    else:
        colab.local_runtime()
    report = bootstrap.restore(write_profile(tmp_path, '[drive]\n[env]\nS = "{store}"\n'))
    store = tmp_path / "xdg" / "notebook-bootstrap"
    assert os.environ["S"] == str(store)
    assert report.platform == ("Colab Enterprise" if where == "enterprise"
                               else "Colab runtime image (local runtime)")
    assert report.step("drive").summary == f"created the Drive root {store / 'drive'}"
    assert [n for n in report.notes if "Google Drive cannot be mounted" in n] == [
        report.notes[0]]
    assert f"the store is {store}" in report.notes[0]
    assert colab.calls() == []


def test_colab_mount_false_only_checks(tmp_path, colab):
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\nmount = false\n"))
    assert caught.value.what == f"Drive is not mounted at {colab.mountpoint}"
    assert caught.value.where == "p.toml: drive.mount"
    assert colab.calls() == []
    colab.mount_drive()
    assert bootstrap.restore(write_profile(tmp_path, "[drive]\nmount = false\n")) \
        .step("drive").outcome == "satisfied"


def test_colab_refuses_a_mountpoint_with_files(tmp_path, colab):
    colab.mountpoint.mkdir()
    (colab.mountpoint / "stray.txt").write_text("x")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert caught.value.what == (f"Colab could not mount Drive at {colab.mountpoint}: "
                                 "Mountpoint must not already contain files")
    assert "empty folder" in caught.value.hint


def test_colab_refused_authorisation(tmp_path, colab, monkeypatch):
    monkeypatch.setenv("FAKE_COLAB_MOUNT_AUTH", "denied")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert caught.value.what == ("Drive was not mounted: "
                                 "Error: credential propagation was unsuccessful")


def test_colab_custom_mountpoint_moves_the_drive_placeholder(tmp_path, colab):
    custom = colab.root / "content" / "gdrive"
    bootstrap.restore(write_profile(tmp_path, f'[drive]\nmountpoint = "{custom}"\n'
                                      '[env]\nWHERE = "{drive}"\n'))
    assert os.environ["WHERE"] == str(custom / "MyDrive")
    assert colab.calls() == [f"mount {custom}"]


def test_colab_check_and_apply_on_a_context(colab):
    ctx = step_context("[drive]\n")
    plan = drive_step.check(ctx)
    assert (plan.satisfied, plan.data) == (False, ("mount", colab.mountpoint))
    drive_step.apply(ctx, plan)
    assert drive_step.check(ctx).satisfied


# -- Colab: the store is on Drive -----------------------------------------------------------

def test_a_fresh_colab_vm_mounts_drive_to_find_a_saved_profile(colab, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_STORE")
    saved = colab.drive / ".bootstrap" / "profiles" / "vision.toml"
    saved.parent.mkdir(parents=True)
    saved.write_text('[env]\nFROM_DRIVE = "{store}"\n')
    report = bootstrap.restore("vision")
    assert os.environ["FROM_DRIVE"] == str(colab.mountpoint / "MyDrive" / ".bootstrap")
    assert report.step("drive").outcome == "satisfied"   # mounted before the lookup
    assert colab.calls() == [f"mount {colab.mountpoint}"]


def test_a_profile_in_the_store_cannot_be_found_from_a_plain_process(colab, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_STORE")
    colab.without_page()
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore("vision")
    assert caught.value.what == (f"Google Drive is not mounted at {colab.mountpoint}, and only "
                                 "the notebook can mount it")
    assert caught.value.hint.startswith("profile 'vision' is looked up in the store on Drive; "
                                        "run %restore_env in the notebook instead")
    assert colab.calls() == []


def test_a_profile_file_needs_no_early_mount(tmp_path, colab, monkeypatch):
    monkeypatch.delenv("BOOTSTRAP_STORE")
    report = bootstrap.restore(write_profile(tmp_path, '[env]\nA = "b"\n'))
    assert [r.name for r in report.steps] == ["gpu", "env"]
    assert colab.calls() == []


def test_colab_with_a_drive_root_off_drive_mounts_nothing(tmp_path, colab, monkeypatch):
    elsewhere = tmp_path / "local-drive"
    elsewhere.mkdir()
    monkeypatch.setenv("BOOTSTRAP_DRIVE", str(elsewhere))
    report = bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert report.step("drive").summary == f"Drive root {elsewhere}"
    assert colab.calls() == []


def test_colab_with_a_drive_root_inside_drive_mounts_and_checks_it(tmp_path, colab, monkeypatch):
    inside = colab.mountpoint / "MyDrive" / "work"
    monkeypatch.setenv("BOOTSTRAP_DRIVE", str(inside))
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert caught.value.what == f"the Drive root {inside} does not exist"
    assert colab.calls() == [f"mount {colab.mountpoint}"]
    (colab.drive / "work").mkdir()
    report = bootstrap.restore(write_profile(tmp_path, "[drive]\n"))
    assert report.step("drive").outcome == "satisfied"


def test_a_shipped_profile_is_restored_when_drive_cannot_mount(tmp_path, colab, monkeypatch):
    import bootstrap.profile

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "starter.toml").write_text('[env]\nSTARTER = "yes"\n')
    monkeypatch.setattr(bootstrap.profile, "builtin_dir", lambda: shipped)
    monkeypatch.setattr(drive_step, "builtin_dir", lambda: shipped)
    monkeypatch.delenv("BOOTSTRAP_STORE")
    colab.without_page()
    report = bootstrap.restore("starter")
    assert os.environ["STARTER"] == "yes"
    assert [r.name for r in report.steps] == ["gpu", "env"]
    assert colab.calls() == []


def test_only_paths_on_drive_make_a_colab_restore_mount(tmp_path, colab):
    for text in ('[workdir]\npath = "/content/project"\ncreate = true\n',
                 '[[files]]\ndest = "/content/x.cfg"\ncontent = "x"\n',
                 '[setup]\nnotebook = "/content/setup.ipynb"\n',
                 '[[run]]\nargv = ["true"]\ncwd = "/content"\n'):
        assert not drive_step.needs_drive(parse(text)), text
    for text in ('[[files]]\ndest = "/content/x.zip"\nsource = "{drive}/data/x.zip"\n',
                 '[[files]]\ndest = "/content/x.zip"\nstore = "data/x.zip"\n',
                 '[[run]]\nargv = ["true"]\ncwd = "repo"\n',
                 '[pip]\npackages = [{ path = "repo/python" }]\n'):
        assert drive_step.needs_drive(parse(text)), text
    workdir = tmp_path / "content" / "project"
    report = bootstrap.restore(write_profile(
        tmp_path, f'[workdir]\npath = "{workdir}"\ncreate = true\n'))
    assert report.step("drive") is None
    assert colab.calls() == []



# -- `!bootstrap restore` in a cell: a plain process on the Colab VM ----------------------

def _plain_process(colab, *argv: str) -> subprocess.CompletedProcess:
    """The CLI in a new process with the VM's environment and nothing of the page."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BOOTSTRAP_PLATFORM", "BOOTSTRAP_STORE", "BOOTSTRAP_DRIVE",
                        "FAKE_COLAB_PAGE", "BOOTSTRAP_COLAB_PAGE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(FAKES)])
    return subprocess.run([sys.executable, "-m", "bootstrap", *argv], env=env, text=True,
                          capture_output=True, timeout=60)


def test_bootstrap_restore_in_a_cell_without_drive_fails_fast_and_short(colab):
    saved = colab.drive / ".bootstrap" / "profiles" / "vision.toml"
    saved.parent.mkdir(parents=True)
    saved.write_text('[secrets]\nHF_TOKEN = "HF_TOKEN"\n')
    started = time.monotonic()
    done = _plain_process(colab, "restore", "vision")
    seconds = time.monotonic() - started
    assert done.returncode == 4, done.stderr
    assert seconds < 20
    assert "Traceback" not in done.stderr + done.stdout
    assert "AttributeError" not in done.stderr
    assert f"Google Drive is not mounted at {colab.mountpoint}, and only the notebook can " \
           "mount it" in done.stderr
    assert "run %restore_env in the notebook instead, or mount Drive in a cell first" \
        in done.stderr
    assert len(done.stderr.splitlines()) <= 4
    assert colab.calls() == []


def test_bootstrap_restore_in_a_cell_uses_a_mounted_drive_and_the_environment(colab):
    saved = colab.drive / ".bootstrap" / "profiles" / "vision.toml"
    saved.parent.mkdir(parents=True)
    saved.write_text('[drive]\n[secrets]\nHF_TOKEN = "HF_SECRET"\n[env]\nOUT = "{drive}/out"\n')
    colab.mount_drive()
    colab.monkeypatch.delenv("HF_TOKEN", raising=False)
    colab.monkeypatch.setenv("HF_SECRET", "hf_from_the_environment_0123456789")
    done = _plain_process(colab, "restore", "vision")
    assert done.returncode == 0, done.stderr
    assert "hf_from_the_environment" not in done.stdout + done.stderr
    assert "Colab's secrets can only be read from the notebook page, not from a plain " \
           "process" in done.stdout
    assert "HF_TOKEN from the environment" in done.stdout
    assert f"Drive mounted at {colab.mountpoint}" in done.stdout
    assert colab.calls() == [f"mount {colab.mountpoint}"]      # the cell's own mount
