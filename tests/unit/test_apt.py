"""The apt step's check and apply, against recording stand-ins for apt-get and dpkg-query.

The stand-ins (tests/support/fakeapt.py) are real programs on PATH that log
their argv; the real apt-get is exercised in tests/e2e/test_apt_real.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bootstrap
from bootstrap.errors import EnvironmentMismatch, ProfileError, StepError
from bootstrap.profile import Apt, Profile, parse
from bootstrap.report import CHANGED, PLANNED, SATISFIED
from bootstrap.steps import apt
from tests.support import fakeapt

REPO = Path(__file__).resolve().parents[2]
BAD_NAMES = ["-oAPT::Update::Pre-Invoke::=x", "vim;id", "../x"]
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the apt step installs only as root and refuses before "
                                       "running apt-get otherwise")


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Fake apt on PATH; the step's lists and archive cache in tmp."""
    fakes = fakeapt.install(tmp_path / "fakes", available=["curl", "ffmpeg", "jq"])
    monkeypatch.setenv("PATH", fakeapt.on_path(fakes))
    lists, archives = tmp_path / "lists", tmp_path / "archives"
    monkeypatch.setenv("BOOTSTRAP_APT_OPTIONS",
                       f"-oDir::State::Lists={lists} -oDir::Cache::archives={archives}")
    return {"fakes": fakes, "lists": lists, "archives": archives}


def profile(*names: str) -> Profile:
    return parse("[apt]\npackages = [" + ", ".join(f'"{n}"' for n in names) + "]\n",
                 source="t.toml")


def fresh_lists(world, age_s: float = 0) -> None:
    """Lists as a recent `apt-get update` of this step leaves them."""
    world["lists"].mkdir(parents=True, exist_ok=True)
    (world["lists"] / "deb.example_dists_x_main_binary-amd64_Packages.lz4").write_text("")
    world["archives"].mkdir(parents=True, exist_ok=True)
    stamp = world["archives"] / apt.STAMP_NAME
    stamp.write_text(f"{world['lists']}\n")
    then = time.time() - age_s
    os.utime(stamp, (then, then))


def apt_calls(world) -> list[list[str]]:
    return [c["argv"] for c in fakeapt.calls(world["fakes"], "apt-get")]


def verbs(world) -> list[str]:
    return [a[0] for a in apt_calls(world)]


# -- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_when_the_profile_loads(name):
    with pytest.raises(ProfileError) as info:
        profile("curl", name)
    assert "t.toml: apt.packages[1]: is not a Debian package name" in str(info.value)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_in_a_profile_built_in_code_start_no_process(world, name):
    with pytest.raises(ProfileError) as info:
        bootstrap.restore(Profile(apt=Apt(packages=["curl", name])))
    assert "apt.packages[1]: is not a Debian package name" in str(info.value)
    assert fakeapt.calls(world["fakes"]) == []  # neither dpkg-query nor apt-get ran


def test_options_from_the_environment_must_be_apt_options(world, monkeypatch):
    monkeypatch.setenv("BOOTSTRAP_APT_OPTIONS", "-oDebug::X=1 --allow-unauthenticated")
    with pytest.raises(StepError) as info:
        bootstrap.restore(profile("curl"))
    assert "'--allow-unauthenticated', which is not an -oKey=value option" in str(info.value)
    assert fakeapt.calls(world["fakes"]) == []


# -- check ------------------------------------------------------------------------------

def test_installed_packages_are_satisfied_without_apt_get(world):
    fakeapt.install(world["fakes"], installed={"curl": "7.88", "jq": "1.6", "mawk": "1.3"})
    report = bootstrap.restore(profile("curl", "jq=1.6", "awk"))  # awk: provided by mawk
    row = report.step("apt")
    assert (row.outcome, row.summary) == (SATISFIED, "3 packages installed")
    assert [c["program"] for c in fakeapt.calls(world["fakes"])] == ["dpkg-query"]


def test_check_reports_what_is_missing_and_why(world):
    fakeapt.install(world["fakes"], installed={"jq": "1.5"})  # removed-pkg: state "rc"
    report = bootstrap.restore(profile("curl", "jq=1.6", "removed-pkg"), dry_run=True)
    row = report.step("apt")
    assert row.outcome == PLANNED
    assert row.summary == "3 of 3 packages to install"
    assert row.actions[:4] == [
        f"apt-get update (no package lists in {world['lists']})",
        "install curl (not installed)",
        "install jq=1.6 (1.5 installed, 1.6 wanted)",
        "install removed-pkg (not installed)",  # only config files left ("rc")
    ]
    assert apt_calls(world) == []


def test_parse_query_reads_states_versions_and_provides():
    found = apt.parse_query([
        "libc6\tii \t2.36-9\t", "libc6\tii \t2.36-9\t",       # two architectures
        "old\trc \t1.0\t", "half\tiF \t1.0\t", "held\thi \t2.0\t",
        "mawk\tii \t1.3.4\tawk", "gcc-12\tii \t12.2\tc-compiler, gcc-12-base:any (= 12)",
        "dpkg-query: no packages found matching x",
    ])
    assert found.why_missing("libc6") is None and found.why_missing("held=2.0") is None
    assert found.why_missing("old") == "not installed"
    assert found.why_missing("half") == "not installed"   # unpacked, not configured
    assert found.why_missing("awk") is None and found.why_missing("c-compiler") is None
    assert found.why_missing("gcc-12-base") is None


def test_no_dpkg_query_is_a_clear_environment_mismatch(world, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(EnvironmentMismatch) as info:
        bootstrap.restore(profile("curl"))
    assert "not a Debian or Ubuntu system" in info.value.what
    assert "--skip apt" in info.value.hint and info.value.exit_code == 4


def test_not_root_is_a_clear_environment_mismatch(tmp_path):
    """As a user other than root, a missing package stops with a hint (real dpkg-query)."""
    if not os.path.exists("/usr/bin/dpkg-query"):
        pytest.skip("needs dpkg-query (a Debian or Ubuntu machine)")
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "p.toml").write_text('[apt]\npackages = ["nbbootstrap-surely-missing"]\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "BOOTSTRAP_PLATFORM": "local",
           "BOOTSTRAP_STORE": str(folder / "store"), "BOOTSTRAP_DRIVE": str(folder),
           "PYTHONPATH": str(REPO)}
    # As root, the restore drops to the user "nobody" once its modules are
    # loaded (nobody may not be able to read this interpreter's folders).
    code = (
        "import os, sys\n"
        "import bootstrap, bootstrap.runner, bootstrap.session, bootstrap.report\n"
        "import bootstrap.profile as p\n"
        "from bootstrap import steps\n"
        "from bootstrap.errors import BootstrapError\n"
        "for name in steps.ORDER: steps.load(name)\n"
        f"profile = p.load({str(folder / 'p.toml')!r})\n"
        "if os.geteuid() == 0:\n"
        "    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "print(os.geteuid(), flush=True)\n"
        "try:\n"
        "    bootstrap.restore(profile)\n"
        "except BootstrapError as error:\n"
        "    print(error, file=sys.stderr); sys.exit(error.exit_code)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() != "0"  # really not root
    assert proc.returncode == 4, proc.stderr
    assert "error: installing apt packages needs root" in proc.stderr
    assert "sudo apt-get install -- nbbootstrap-surely-missing" in proc.stderr


# -- apply --------------------------------------------------------------------------------

@needs_root
def test_install_updates_missing_lists_then_installs_with_safe_options(world):
    fakeapt.install(world["fakes"], available=["curl", "jq"], installed={"jq": "1.6"})
    report = bootstrap.restore(profile("jq", "curl"))
    assert report.step("apt").outcome == CHANGED
    assert verbs(world) == ["update", "install"]
    update, install = apt_calls(world)
    assert update[:2] == ["update", "--error-on=any"]
    assert "-oDPkg::Lock::Timeout=120" in install
    assert install[:3] == ["install", "-y", "--no-install-recommends"]
    assert "--allow-downgrades" not in install
    assert install[install.index("--"):] == ["--", "curl"]   # only the missing one
    calls = fakeapt.calls(world["fakes"], "apt-get")
    assert {c["frontend"] for c in calls} == {"noninteractive"}
    # the postcondition holds, and the lists now carry this step's stamp
    assert (world["archives"] / apt.STAMP_NAME).read_text().strip() == str(world["lists"])


@needs_root
def test_a_pinned_version_may_go_back(world):
    fakeapt.install(world["fakes"], available=["jq"], installed={"jq": "1.7"})
    fresh_lists(world)
    bootstrap.restore(profile("jq=1.0"))
    install = apt_calls(world)[-1]
    assert "--allow-downgrades" in install and install[-2:] == ["--", "jq=1.0"]


@needs_root
def test_fresh_lists_are_not_updated_again(world):
    fresh_lists(world, age_s=3600)
    bootstrap.restore(profile("curl"))
    assert verbs(world) == ["install"]


@needs_root
def test_lists_older_than_the_limit_are_updated(world):
    fresh_lists(world, age_s=(apt.MAX_LISTS_AGE_HOURS + 1) * 3600)
    report = bootstrap.restore(profile("curl"))
    assert verbs(world) == ["update", "install"]
    assert report.step("apt").actions[0] == "apt-get update (the lists are 25 h old)"


@needs_root
def test_a_package_the_lists_do_not_know_triggers_one_update_and_a_retry(world):
    fakeapt.install(world["fakes"], available=[], after_update=["ffmpeg"])
    fresh_lists(world)
    report = bootstrap.restore(profile("ffmpeg"))
    assert report.step("apt").outcome == CHANGED
    assert verbs(world) == ["install", "update", "install"]


@needs_root
def test_an_unknown_package_fails_after_a_single_update(world):
    fresh_lists(world)
    with pytest.raises(StepError) as info:
        bootstrap.restore(profile("no-such-pkg"))
    assert verbs(world) == ["install", "update", "install"]
    error = info.value
    assert error.what == "apt-get failed with exit code 100"
    assert "E: Unable to locate package no-such-pkg" in error.details
    assert "apt-cache search" in error.hint
    assert error.where.endswith("-- no-such-pkg")


@needs_root
def test_a_failing_update_stops_with_its_output(world, monkeypatch):
    monkeypatch.setenv("FAKE_APT_UPDATE_FAILS", "1")
    with pytest.raises(StepError) as info:
        bootstrap.restore(profile("curl"))
    assert verbs(world) == ["update"]
    assert "Could not resolve host" in info.value.details
    assert "check the network" in info.value.hint


@needs_root
def test_old_apt_gets_no_error_on_option_and_a_note(world, monkeypatch):
    monkeypatch.setenv("FAKE_APT_VERSION", "2.0.9")
    report = bootstrap.restore(profile("curl"))
    assert verbs(world) == ["update", "install"]
    assert not any(a.startswith("--error-on") for a in apt_calls(world)[0])
    assert any("older than 2.1.16" in n for n in report.step("apt").notes)


@needs_root
def test_debs_are_kept_in_the_store_and_reused_on_the_next_vm(world, isolated):
    debs = isolated["store"] / "debs"
    first = bootstrap.restore(profile("curl", "jq"))
    assert sorted(p.name for p in debs.glob("*.deb")) == ["curl_1.0_all.deb", "jq_1.0_all.deb"]
    assert (debs / "curl_1.0_all.deb").read_bytes() == fakeapt.DEB_BYTES
    # which files this package set used: what the next VM copies (and checks)
    [listed] = (debs / "sets").glob("*.json")
    assert json.loads(listed.read_text())["debs"] == [
        {"filename": f, "size": len(fakeapt.DEB_BYTES), "sha256": fakeapt.DEB_SHA256}
        for f in ("curl_1.0_all.deb", "jq_1.0_all.deb")]
    assert "kept 2 .deb files in the store for the next VM" in first.step("apt").details
    assert fakeapt.calls(world["fakes"], "apt-get")[-1]["downloaded"] == [
        "curl_1.0_all.deb", "jq_1.0_all.deb"]

    # A new VM: nothing installed, an empty archive cache, the same store.
    # A stored file with a wrong checksum is not trusted.
    (world["fakes"] / "installed.txt").write_text("")
    for deb in world["archives"].glob("*.deb"):
        deb.unlink()
    (debs / "jq_1.0_all.deb").write_bytes(b"X" * len(fakeapt.DEB_BYTES))
    runs = len(apt_calls(world))
    second = bootstrap.restore(profile("curl", "jq"))
    assert verbs(world)[runs:] == ["install"]  # apt-get runs once
    last = fakeapt.calls(world["fakes"], "apt-get")[-1]
    assert (last["cached"], last["downloaded"]) == (["curl_1.0_all.deb"], ["jq_1.0_all.deb"])
    notes, details = second.step("apt").notes, second.step("apt").details
    assert "reused 1 .deb file from the store" in details
    assert "ignored jq_1.0_all.deb in the store: its checksum does not match" in notes
    assert "kept 1 .deb file in the store for the next VM" in details
    # the fresh download replaced the bad stored copy
    assert hashlib.sha256((debs / "jq_1.0_all.deb").read_bytes()).hexdigest() == \
        fakeapt.DEB_SHA256


@needs_root
def test_second_restore_is_satisfied_and_runs_no_apt_get(world):
    bootstrap.restore(profile("curl"))
    before = len(apt_calls(world))
    report = bootstrap.restore(profile("curl"))
    assert report.step("apt").outcome == SATISFIED
    assert len(apt_calls(world)) == before


def test_deb_file_names_give_package_and_version_and_odd_names_give_none():
    assert apt.deb_identity("jq_1.6-2.1_amd64.deb") == ("jq", "1.6-2.1")
    assert apt.deb_identity("t_1%3a1.0_all.deb") == ("t", "1:1.0")  # the epoch's colon
    for odd in ("../evil_1.0_all.deb", "evil.deb", "a_b.deb", "x_1.0_all.tar", "a__all.deb"):
        assert apt.deb_identity(odd) is None, odd


@needs_root
def test_an_unreadable_list_of_debs_is_noted_and_apt_downloads_everything(world, isolated):
    bootstrap.restore(profile("curl"))
    [listed] = (isolated["store"] / "debs" / "sets").glob("*.json")
    listed.write_text("{not json")
    (world["fakes"] / "installed.txt").write_text("")  # a new VM
    for deb in world["archives"].glob("*.deb"):
        deb.unlink()
    report = bootstrap.restore(profile("curl"))
    assert report.step("apt").outcome == CHANGED
    assert any(n.startswith(f"ignored {listed}: it cannot be read") for n in
               report.step("apt").notes)
    assert fakeapt.calls(world["fakes"], "apt-get")[-1]["downloaded"] == ["curl_1.0_all.deb"]
    assert json.loads(listed.read_text())["debs"][0]["filename"] == "curl_1.0_all.deb"  # rewritten


# -- remove -----------------------------------------------------------------------------

@needs_root
def test_remove_runs_before_install_then_nothing_to_do(world):
    fakeapt.install(world["fakes"], available=["curl", "jq"],
                    installed={"jq": "1.5", "mawk": "1.3"})
    fresh_lists(world)
    profile = parse('[apt]\nremove = ["jq", "gawk", "awk"]\npackages = ["curl"]\n',
                    source="t.toml")
    plan = bootstrap.restore(profile, dry_run=True)
    assert plan.step("apt").summary == "1 of 1 packages to install, 1 to remove"
    assert plan.step("apt").actions == ["remove jq (1.5 installed)", "install curl (not installed)"]
    first = bootstrap.restore(profile)
    assert first.step("apt").outcome == CHANGED
    assert verbs(world) == ["remove", "install"]
    assert apt_calls(world)[0][-2:] == ["--", "jq"]   # names after --; awk is only provided
    second = bootstrap.restore(profile)
    assert second.step("apt").outcome == SATISFIED
    assert second.step("apt").summary == "1 package installed, 3 absent"
    assert verbs(world) == ["remove", "install"]


def test_remove_and_when_are_validated_and_filtered(world, gpu):
    with pytest.raises(ProfileError) as caught:
        parse('[apt]\nremove = ["jq", "x;y", "curl=1.0"]\npackages = ["jq", '
              '{ name = "nvidia-x", when = "cuda" }]\n', source="t.toml")
    lines = [p.line() for p in caught.value.problems]
    assert any(line.startswith("t.toml: apt.remove[1]: is not a Debian package name")
               for line in lines)
    assert any(line.startswith("t.toml: apt.remove[2]: names a version") for line in lines)
    assert any(line.startswith("t.toml: apt.packages[1].when: is not a condition")
               for line in lines)
    with pytest.raises(ProfileError) as caught:
        parse('[apt]\nremove = ["jq"]\npackages = ["jq=1.6"]\n', source="t.toml")
    assert caught.value.problems[0].line().startswith("t.toml: apt.remove[0]: is also in packages")
    fakeapt.install(world["fakes"], installed={"curl": "7.88"})
    profile = parse('[apt]\npackages = ["curl", { name = "ffmpeg", when = "gpu" }]\n',
                    source="t.toml")
    report = bootstrap.restore(profile, dry_run=True)
    assert report.step("apt").outcome == SATISFIED   # no GPU here: ffmpeg is left out
    gpu("t4")
    report = bootstrap.restore(profile, dry_run=True)
    assert report.step("apt").actions[-1] == "install ffmpeg (not installed)"


def test_an_interrupted_dpkg_gets_a_hint_to_finish_it(world, monkeypatch):
    fresh_lists(world)
    monkeypatch.setenv("FAKE_DPKG_INTERRUPTED", "1")
    with pytest.raises(StepError) as info:
        bootstrap.restore(profile("curl"))
    error = info.value
    assert "dpkg was interrupted" in error.what and "dpkg --configure -a" in error.hint
    assert "apt-cache search" not in error.hint and "check the names" not in error.hint
    assert verbs(world) == ["install"]
