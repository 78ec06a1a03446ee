"""The gpu step against the fake nvidia-smi: what is found, what fails, and that it fails first."""

from __future__ import annotations

from pathlib import Path

import pytest

import bootstrap
from bootstrap import process
from bootstrap.errors import EnvironmentMismatch
from bootstrap.steps import gpu as gpu_step
from tests.support.fakes import step_context, write_profile
from tests.support.venvs import installed

pytestmark = pytest.mark.usefixtures("clean_environ")


# -- what nvidia-smi says ------------------------------------------------------------

@pytest.mark.parametrize("scenario, name, memory, driver, cuda, count", [
    ("t4", "Tesla T4", 15.0, "535.104.05", "12.2", 1),
    ("a100", "NVIDIA A100-SXM4-40GB", 40.0, "535.104.05", "12.2", 1),
    ("t4x2", "Tesla T4", 15.0, "550.90.07", "12.4", 2),
])
def test_probe_reads_the_query_and_the_cuda_version(gpu, scenario, name, memory, driver, cuda,
                                                    count):
    gpu(scenario)
    found = gpu_step.probe()
    assert found.reason is None and found.notes == ()
    assert len(found.devices) == count
    assert (found.devices[0].name, found.devices[0].memory_gib, found.devices[0].driver) == \
        (name, memory, driver)
    assert found.cuda == cuda


@pytest.mark.parametrize("scenario, reason", [
    ("none", "nvidia-smi exited with code 6: No devices were found"),
    ("nodriver", "nvidia-smi exited with code 9: NVIDIA-SMI has failed because it couldn't "
                 "communicate with the NVIDIA driver."),
    ("error", "nvidia-smi exited with code 18: Failed to initialize NVML: Driver/library "
              "version mismatch"),
])
def test_a_failing_nvidia_smi_means_no_gpu_with_its_reason(gpu, scenario, reason):
    gpu(scenario)
    found = gpu_step.probe()
    assert found.devices == ()
    assert found.reason.startswith(reason)
    assert found.describe() == f"no GPU: {found.reason}"


def test_a_hanging_nvidia_smi_is_stopped_at_the_time_limit(gpu, monkeypatch):
    gpu("hang")
    monkeypatch.setenv("BOOTSTRAP_GPU_TIMEOUT", "0.5")
    found = gpu_step.probe()
    assert found.describe() == "no GPU: nvidia-smi did not answer within 0.5 s"


def test_nvidia_smi_stuck_with_a_child_is_stopped_at_the_time_limit(gpu, monkeypatch):
    """The child holds the output pipe: the whole group is killed, nothing waits on it."""
    import time

    gpu("hang-child")
    monkeypatch.setenv("BOOTSTRAP_GPU_TIMEOUT", "1")
    start = time.monotonic()
    found = gpu_step.probe()
    assert found.describe() == "no GPU: nvidia-smi did not answer within 1 s"
    assert time.monotonic() - start < 3.5


def test_no_nvidia_smi_on_path_means_no_gpu(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert gpu_step.probe().describe() == \
        "no GPU: nvidia-smi is not on PATH (no NVIDIA driver on this machine)"


def test_nvidia_smi_is_asked_exactly_the_query_then_the_table(gpu, tmp_path, monkeypatch):
    gpu("t4")
    log = tmp_path / "smi.log"
    monkeypatch.setenv("FAKE_NVIDIA_SMI_LOG", str(log))
    gpu_step.probe()
    assert log.read_text().splitlines() == [
        "--query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits", ""]


def test_parsing_skips_warning_lines_and_unknown_memory():
    lines = ["WARNING: infoROM is corrupted at gpu 0000:00:04.0", "Tesla T4, 15360, 535.104.05",
             "NVIDIA GH200 480GB, [N/A], 550.54.15", ""]
    devices = gpu_step.parse_query(lines)
    assert [(d.name, d.memory_mib) for d in devices] == [("Tesla T4", 15360),
                                                          ("NVIDIA GH200 480GB", None)]
    assert gpu_step.parse_cuda(["| NVIDIA-SMI 580.95.05   Driver Version: 580.95.05   "
                                "CUDA Version: 13.0     |"]) == "13.0"


@pytest.mark.parametrize("name, model, hit", [
    ("Tesla T4", "T4", True), ("NVIDIA A100-SXM4-40GB", "A100", True),
    ("NVIDIA L4", "l4", True), ("NVIDIA L40S", "L4", False), ("NVIDIA H100 80GB HBM3", "H1", False),
])
def test_models_match_whole_words(name, model, hit):
    assert gpu_step.matches_model(name, model) is hit


# -- the step through restore() --------------------------------------------------------

def test_the_report_always_shows_the_gpu(gpu, tmp_path):
    gpu("t4")
    report = bootstrap.restore(write_profile(tmp_path, 'env = { A = "1" }\n'))
    row = report.step("gpu")
    assert row.outcome == "satisfied"
    assert row.summary == "Tesla T4, 15 GiB (driver 535.104.05, CUDA 12.2)"
    assert "Tesla T4, 15 GiB" in report.text()
    assert {k: row.data[k] for k in ("name", "memory_gib", "driver", "cuda", "count")} == \
        {"name": "Tesla T4", "memory_gib": 15.0, "driver": "535.104.05", "cuda": "12.2",
         "count": 1}


def test_without_a_requirement_no_gpu_is_fine(gpu, tmp_path):
    gpu("none")
    report = bootstrap.restore(write_profile(tmp_path, "[gpu]\nmodels = [\"A100\"]\n"))
    assert report.step("gpu").outcome == "satisfied"
    assert report.step("gpu").summary.startswith("no GPU: nvidia-smi exited with code 6")


@pytest.mark.parametrize("scenario, spec, ok", [
    ("t4", 'models = ["T4", "L4"]', True),
    ("t4", 'models = ["A100"]', False),
    ("a100", 'models = ["A100"]', True),
    ("t4", "min_memory_gib = 15", True),
    ("t4", "min_memory_gib = 16", False),
    ("a100", "min_memory_gib = 39.5", True),
    ("t4", 'min_cuda = "12.2"', True),
    ("t4", 'min_cuda = "12.4"', False),
    ("t4x2", 'min_cuda = "12.4"', True),
    ("t4x2", 'min_cuda = "12.10"', False),
])
def test_requirements(gpu, tmp_path, scenario, spec, ok):
    gpu(scenario)
    path = write_profile(tmp_path, f"[gpu]\nrequired = true\n{spec}\n")
    if ok:
        assert bootstrap.restore(path).step("gpu").outcome == "satisfied"
    else:
        with pytest.raises(EnvironmentMismatch) as caught:
            bootstrap.restore(path)
        assert caught.value.what.startswith("the GPU does not fit the profile: ")
        assert caught.value.where == f"p.toml: gpu.{spec.split()[0]}"
        assert caught.value.report.step("gpu").outcome == "failed"


def test_a_miss_names_what_was_found(gpu, tmp_path):
    gpu("t4")
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, '[gpu]\nrequired = true\n'
                                          'models = ["A100", "L4"]\n'
                                          "min_memory_gib = 20\n"))
    error = caught.value
    assert error.what == ("the GPU does not fit the profile: Tesla T4 is not one of A100, L4; "
                          "Tesla T4 has 15 GiB, 20 GiB wanted")
    assert error.where == "p.toml: [gpu]"
    assert error.details == "found Tesla T4, 15 GiB (driver 535.104.05, CUDA 12.2)"
    assert error.exit_code == 4


def test_not_required_turns_a_miss_into_a_note(gpu, tmp_path):
    gpu("t4")
    report = bootstrap.restore(write_profile(tmp_path, '[gpu]\nmodels = ["A100"]\n'))
    row = report.step("gpu")
    assert row.outcome == "satisfied"
    assert row.notes == ["gpu.models not met: Tesla T4 is not one of A100 (informational: "
                         "required = false)"]


def test_one_fitting_device_of_several_is_enough(gpu, tmp_path):
    gpu("t4x2")
    report = bootstrap.restore(write_profile(tmp_path, '[gpu]\nrequired = true\nmodels = ["T4"]\n'))
    assert report.step("gpu").summary == "2 x Tesla T4, 15 GiB (driver 550.90.07, CUDA 12.4)"
    assert report.step("gpu").data["count"] == 2


@pytest.mark.parametrize("platform, hint", [
    ("colab", "Runtime > Change runtime type"),
    ("kaggle", "Settings > Accelerator"),
    ("local", "a matching NVIDIA GPU and driver"),
])
def test_no_gpu_when_required_fails_with_the_platform_hint(gpu, tmp_path, monkeypatch, platform,
                                                           hint):
    gpu("nodriver")
    monkeypatch.setenv("BOOTSTRAP_PLATFORM", platform)
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[gpu]\nrequired = true\n"))
    error = caught.value
    assert error.what.startswith("this runtime has no GPU (nvidia-smi exited with code 9: "
                                 "NVIDIA-SMI has failed")
    assert error.where == "p.toml: gpu.required"
    assert hint in error.hint
    assert f"[platforms.{platform}.gpu]" in error.hint


def test_a_hang_when_required_fails_within_the_limit(gpu, tmp_path, monkeypatch):
    gpu("hang")
    monkeypatch.setenv("BOOTSTRAP_GPU_TIMEOUT", "0.5")
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[gpu]\nrequired = true\n"))
    assert caught.value.what == "this runtime has no GPU (nvidia-smi did not answer within 0.5 s)"


def test_a_dry_run_reports_the_mismatch_too(gpu, tmp_path):
    gpu("none")
    with pytest.raises(EnvironmentMismatch):
        bootstrap.restore(write_profile(tmp_path, "[gpu]\nrequired = true\n"), dry_run=True)


def test_a_missing_gpu_stops_the_restore_before_anything_is_installed(
        gpu, tmp_path, monkeypatch, fresh_venv, wheelhouse):
    started: list[list[str]] = []
    real_run = process.run

    def spy(argv, **kwargs):
        started.append([str(a) for a in argv])
        return real_run(argv, **kwargs)

    monkeypatch.setattr(process, "run", spy)
    profile = write_profile(tmp_path, f"""
[gpu]
required = true
models = ["T4"]

[pip]
packages = ["alpha==1.0"]
no_index = true
find_links = ["{wheelhouse}"]
""")
    gpu("none")
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(profile, python=str(fresh_venv))
    assert [r.name for r in caught.value.report.steps] == ["gpu"]
    assert {Path(argv[0]).name for argv in started} == {"nvidia-smi"}
    assert "alpha" not in installed(fresh_venv)

    # The same profile on a T4 runtime goes on and installs: the test above could fail.
    gpu("t4")
    report = bootstrap.restore(profile, python=str(fresh_venv))
    assert [(r.name, r.outcome) for r in report.steps] == [("gpu", "satisfied"),
                                                           ("pip", "changed")]
    assert installed(fresh_venv)["alpha"] == "1.0"
    assert any(Path(argv[0]).name == "uv" for argv in started)


# -- check() on a Context --------------------------------------------------------------

def test_check_puts_the_gpu_in_the_state(gpu):
    gpu("a100")
    ctx = step_context("[gpu]\nrequired = true\nmin_memory_gib = 40\n")
    result = gpu_step.check(ctx)
    assert result.satisfied and result.actions == []
    assert ctx.state["gpu"]["name"] == "NVIDIA A100-SXM4-40GB"
    assert ctx.state["gpu"]["memory_gib"] == 40.0
    assert ctx.state["gpu"]["devices"] == [{"name": "NVIDIA A100-SXM4-40GB", "memory_gib": 40.0,
                                            "driver": "535.104.05"}]


def test_check_without_gpu_records_the_reason(gpu):
    gpu("none")
    ctx = step_context("")
    assert gpu_step.check(ctx).satisfied
    assert ctx.state["gpu"]["name"] is None
    assert ctx.state["gpu"]["reason"] == "nvidia-smi exited with code 6: No devices were found"


# -- TPU runtimes ---------------------------------------------------------------------

def test_probe_tpu_needs_the_vms_word_and_counts_its_chips(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    for n in range(4):
        (dev / f"accel{n}").touch()
    assert gpu_step.probe_tpu({}, dev=dev) is None      # /dev/accel* alone: maybe NVIDIA's
    tpu = gpu_step.probe_tpu({"TPU_ACCELERATOR_TYPE": "v3-8", "ISTPUVM": "1"}, dev=dev)
    assert (tpu.kind, tpu.chips, tpu.describe()) == ("v3-8", 4, "TPU v3-8 (4 chips)")
    v5e = tmp_path / "dev5"
    (v5e / "vfio").mkdir(parents=True)
    for name in ("0", "1", "vfio"):
        (v5e / "vfio" / name).touch()
    assert gpu_step.probe_tpu({"TPU_ACCELERATOR_TYPE": "v5litepod-2"}, dev=v5e).chips == 2
    assert gpu_step.probe_tpu({"ISTPUVM": "1"}, dev=tmp_path / "none").describe() == \
        "TPU runtime"


def tpu_runtime(monkeypatch, tmp_path) -> None:
    """Kaggle's TPU VM: no nvidia-smi, ISTPUVM=1 and the accelerator type."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("ISTPUVM", "1")
    monkeypatch.setenv("TPU_ACCELERATOR_TYPE", "v3-8")


def test_a_tpu_runtime_is_reported_as_such(tmp_path, monkeypatch):
    tpu_runtime(monkeypatch, tmp_path)
    report = bootstrap.restore(write_profile(tmp_path, '[gpu]\naccelerator = "tpu"\n'
                                                       'required = true\n'))
    summary = report.step("gpu").summary
    assert summary.startswith("TPU v3-8") and summary.endswith(", no NVIDIA GPU")
    assert report.step("gpu").data["tpu"]["kind"] == "v3-8"


def test_a_profile_for_a_gpu_on_a_tpu_runtime_says_it_is_a_tpu(tmp_path, monkeypatch):
    tpu_runtime(monkeypatch, tmp_path)
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, "[gpu]\nrequired = true\n"))
    assert caught.value.what.startswith("this runtime has no GPU (it is a TPU runtime: TPU v3-8")


def test_a_profile_can_require_a_tpu(tmp_path, gpu):
    gpu("t4")
    with pytest.raises(EnvironmentMismatch) as caught:
        bootstrap.restore(write_profile(tmp_path, '[gpu]\naccelerator = "tpu"\nrequired = true\n'))
    error = caught.value
    assert error.what == ("this runtime has no TPU (Tesla T4, 15 GiB (driver 535.104.05, "
                          "CUDA 12.2))")
    assert error.where == "p.toml: gpu.accelerator"
    assert error.hint.startswith("run on a TPU VM")
    report = bootstrap.restore(write_profile(tmp_path, '[gpu]\naccelerator = "tpu"\n'))
    assert report.step("gpu").notes[-1].startswith('gpu.accelerator = "tpu" not met: this '
                                                   "runtime has no TPU")


def test_accelerator_is_gpu_or_tpu(tmp_path):
    from bootstrap.errors import ProfileError

    with pytest.raises(ProfileError, match="is not gpu or tpu"):
        bootstrap.restore(write_profile(tmp_path, '[gpu]\naccelerator = "npu"\n'))
