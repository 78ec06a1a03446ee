"""when = "gpu" | "no-gpu" | a platform: [pip] and [apt] entries are left out when the
profile is resolved; the GPU is asked for only when an entry depends on it."""

from __future__ import annotations

import pytest

from bootstrap import restore
from bootstrap.conditions import Facts, conditions, facts, resolve
from bootstrap.profile import parse
from bootstrap.report import CHANGED, SATISFIED
from tests.support.venvs import installed

pytestmark = pytest.mark.usefixtures("clean_environ")


def pip_profile(wheelhouse) -> str:
    return f"""
        [pip]
        no_index = true
        find_links = ["{wheelhouse}"]
        packages = [
          "alpha==1.0",
          {{ requirement = "delta==0.5", when = "gpu" }},
          {{ requirement = "beta==1.0", when = "no-gpu" }},
          {{ requirement = "gamma==3.1", when = "kaggle" }},
        ]
    """


def test_pip_entries_follow_the_gpu(wheelhouse, fresh_venv, started, gpu):
    profile = parse(pip_profile(wheelhouse), source="p.toml")
    first = restore(profile, python=str(fresh_venv))
    assert first.step("pip").outcome == CHANGED
    assert installed(fresh_venv) == {"alpha": "1.0", "beta": "1.0"}
    started.clear()
    assert restore(profile, python=str(fresh_venv)).step("pip").outcome == SATISFIED
    assert started == []            # no GPU entry... and so no nvidia-smi either (not on PATH)

    gpu("t4")
    on_gpu = restore(profile, python=str(fresh_venv))
    assert on_gpu.step("pip").outcome == CHANGED
    assert installed(fresh_venv)["delta"] == "0.5"


def test_the_gpu_is_asked_only_when_an_entry_depends_on_it():
    asked = []

    def probe():
        asked.append(1)
        return False, "no driver"

    plain = parse('[[run]]\nargv = ["true"]\nwhen = "colab"\n')
    assert conditions(plain) == {"colab"}
    assert facts(plain, "local", probe) == Facts("local") and asked == []
    gpu_entry = parse('[[run]]\nargv = ["true"]\nwhen = "no-gpu"\n')
    assert facts(gpu_entry, "local", probe).gpu is False and asked == [1]


def test_resolve_keeps_what_holds_and_the_profile_otherwise():
    profile = parse('[apt]\npackages = ["jq", { name = "nvtop", when = "gpu" }, '
                    '{ name = "htop", when = "local" }]\n', source="a.toml")
    kept = resolve(profile, Facts("local", gpu=False))
    assert kept.apt.packages == ["jq", "htop"]
    assert kept.source == "a.toml"
    assert resolve(profile, Facts("colab", gpu=True)).apt.packages == ["jq", "nvtop"]
    unchanged = parse('[pip]\npackages = ["a"]\n')
    assert resolve(unchanged, Facts("local")) is unchanged


def test_saving_keeps_a_conditional_apt_entry_and_adds_no_duplicate():
    import tomlkit

    from bootstrap.saving import merge_apt

    doc = tomlkit.parse('[apt]\npackages = ["jq", { name = "nvtop", when = "gpu" }]\n')
    merge_apt(doc, ["nvtop", "ffmpeg"])
    assert parse(tomlkit.dumps(doc)).apt.packages[1:] == [
        parse('[apt]\npackages = [{ name = "nvtop", when = "gpu" }]\n').apt.packages[0], "ffmpeg"]


def test_a_default_still_orders_after_the_step_that_sets_the_variable():
    from bootstrap import order

    profile = parse('[secrets]\nHF_TOKEN = "HF_TOKEN"\n'
                    '[[files]]\ndest = "/x"\ncontent = "{env:HF_TOKEN:-none}"\n')
    found = order.needs(profile, ["secrets", "files"])
    assert [n.line() for n in found] == [
        "files after secrets: files uses {env:HF_TOKEN}, set by [secrets]"]


def test_nvidia_smi_is_asked_once_for_conditions_and_the_gpu_step(tmp_path, gpu, monkeypatch):
    log = tmp_path / "nvidia-smi.log"
    monkeypatch.setenv("FAKE_NVIDIA_SMI_LOG", str(log))
    gpu("t4")
    profile = parse("""
        [gpu]
        min_memory_gib = 15

        [[run]]
        argv = ["touch", "built-with-cuda"]
        creates = "built-with-cuda"
        when = "gpu"
    """, source="g.toml")
    report = restore(profile)
    assert report.step("gpu").summary.startswith("Tesla T4")
    assert report.step("run").outcome == CHANGED and (tmp_path / "built-with-cuda").exists()
    calls = log.read_text().splitlines()
    # one probe: the CSV query and the table, once each
    assert len(calls) == 2 and calls[0].startswith("--query-gpu=") and calls[1] == ""

    # without a GPU condition the gpu step still asks, once
    log.unlink()
    restore(parse("[gpu]\nmin_memory_gib = 15\n", source="g.toml"))
    assert len(log.read_text().splitlines()) == 2
