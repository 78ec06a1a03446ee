"""The magics in-process: option parsing, the default profile, restart detection, the VM record.

Real notebooks in real kernels are in tests/e2e/test_magics.py; here an
IPython ``InteractiveShell`` (no frontend: the terminal path) runs the magics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.support.venvs import installed

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("papermill", "nbclient", "requests", "uv", "tqdm", "tomlkit", "packaging.requirements",
         "bootstrap.runner", "bootstrap.steps.pip")


def test_load_ext_in_a_fresh_interpreter_imports_nothing_heavy():
    code = (
        "import json, sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'bootstrap')\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "magics = sorted(shell.magics_manager.magics['line'])\n"
        "print(json.dumps({'heavy': heavy, 'magics': magics}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["heavy"] == []
    assert {"restore_env", "env_status"} <= set(result["magics"])
    assert "save_env" in result["magics"] and "run_setup" in result["magics"]


@pytest.fixture
def shell(monkeypatch, tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bootstrap")
    yield shell
    InteractiveShell.clear_instance()


def profile(path: Path, wheelhouse: Path, *packages: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(json.dumps(p) for p in packages)
    path.write_text(f'version = 1\n[pip]\npackages = [{listed}]\nno_index = true\n'
                    f'find_links = [{json.dumps(str(wheelhouse))}]\n')
    return path


def test_help_shows_the_real_usage(shell):
    doc = shell.find_line_magic("restore_env").__doc__
    assert "%restore_env [--only STEP [STEP ...]]" in doc
    for option in ("--skip", "--dry-run", "--python PATH", "--store DIR", "--force",
                   "--restart", "PROFILE"):
        assert option in doc
    assert "%env_status" in shell.find_line_magic("env_status").__doc__


@pytest.mark.parametrize("line", ["--bogus", "--only", "-h", "one two", "--python"])
def test_a_bad_option_is_a_usage_error_not_an_exit(shell, line):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        shell.run_line_magic("restore_env", line)
    with pytest.raises(UsageError):
        shell.run_line_magic("env_status", "--bogus")


def test_an_unknown_step_is_named_with_a_suggestion(shell, wheelhouse, tmp_path):
    from bootstrap.errors import OptionError

    path = profile(tmp_path / "p.toml", wheelhouse, "alpha")
    with pytest.raises(OptionError) as caught:
        shell.run_line_magic("restore_env", f"{path} --only pipp")
    assert caught.value.where == "--only" and "did you mean 'pip'?" in caught.value.hint


def test_steps_can_be_repeated_or_comma_separated():
    from bootstrap.runner import step_names as steps_option

    assert steps_option(["pip", "env,workdir", " apt , "]) == ["pip", "env", "workdir", "apt"]


def test_without_a_profile_and_none_saved_the_error_says_how_to_make_one(shell, isolated):
    from bootstrap.errors import OptionError

    with pytest.raises(OptionError) as caught:
        shell.run_line_magic("restore_env", "")
    assert caught.value.where == str(isolated["store"] / "profiles")
    assert "%save_env NAME" in caught.value.hint and "NAME.toml" in caught.value.hint


def test_the_default_profile_is_default_toml_else_the_only_one(isolated, wheelhouse):
    from bootstrap.errors import OptionError
    from bootstrap.session import default_profile

    profiles = isolated["store"] / "profiles"
    profile(profiles / "vision.toml", wheelhouse, "alpha")
    assert default_profile(profiles) == str(profiles / "vision.toml")
    profile(profiles / "audio.toml", wheelhouse, "alpha")
    with pytest.raises(OptionError) as caught:
        default_profile(profiles)
    assert "holds 2: audio, vision" in caught.value.what and "default.toml" in caught.value.hint
    profile(profiles / "default.toml", wheelhouse, "alpha")
    assert default_profile(profiles) == str(profiles / "default.toml")


def test_restore_in_a_terminal_prints_progress_then_the_report_and_status_follows(
        shell, isolated, wheelhouse, fresh_venv, capsys):
    profile(isolated["store"] / "profiles" / "vision.toml", wheelhouse, "alpha==1.0")
    shell.run_line_magic("restore_env", f"--python {fresh_venv}")
    shown = capsys.readouterr().out
    assert "-> pip\n" in shown and "<- pip: changed" in shown
    assert "restore of vision on local machine: 1 satisfied, 1 changed" in shown
    assert installed(fresh_venv)["alpha"] == "1.0"

    shell.run_line_magic("env_status", "")
    status = capsys.readouterr().out
    assert "restored  vision at" in status
    assert "holds     yes: every step is satisfied" in status
    assert "profiles  vision (default: vision)" in status

    # the profile moves on: the status says what a restore would do again
    profile(isolated["store"] / "profiles" / "vision.toml", wheelhouse, "alpha==2.0")
    shell.run_line_magic("env_status", "")
    assert "holds     no: pip (1 of 1 requirements to install)" in capsys.readouterr().out


def test_the_three_faces_agree_on_the_default_profile_the_record_and_the_status(
        shell, isolated, wheelhouse, fresh_venv, capsys):
    import bootstrap
    from bootstrap.cli import main

    profile(isolated["store"] / "profiles" / "vision.toml", wheelhouse, "alpha==1.0")
    # the command line picks the default profile and records the VM, as the magic does
    assert main(["restore", "--python", str(fresh_venv), "--quiet"]) == 0
    assert "restore of vision on local machine" in capsys.readouterr().out
    assert installed(fresh_venv)["alpha"] == "1.0"
    assert main(["status"]) == 0
    cli = capsys.readouterr().out
    shell.run_line_magic("env_status", "")
    magic = capsys.readouterr().out
    api = bootstrap.status()
    assert cli.strip() == magic.strip() == api.text()
    assert api.get("holds") == "yes: every step is satisfied"
    assert api.get("restored").startswith("vision at ")
    # the API restores the default profile too, and is recorded the same way
    report = bootstrap.restore(python=str(fresh_venv))
    assert report.profile == "vision" and report.step("pip").outcome == "satisfied"


@pytest.mark.parametrize("line", ["--skip gpu {path}", "--only pip {path}",
                                  "--skip gpu --only pip,env {path} --dry-run"])
def test_the_profile_may_follow_the_step_options(shell, isolated, wheelhouse, fresh_venv,
                                                   tmp_path, capsys, line):
    from bootstrap.cli import main

    path = profile(tmp_path / "p.toml", wheelhouse, "alpha")
    line = line.format(path=path) + f" --python {fresh_venv} --dry-run"
    shell.run_line_magic("restore_env", line)
    magic = capsys.readouterr().out
    assert "dry run of p on local machine" in magic and "- install alpha" in magic
    assert main(["restore", *line.split(), "--quiet"]) == 0
    cli = capsys.readouterr().out
    assert "dry run of p on local machine" in cli and "- install alpha" in cli


def test_a_mistyped_step_after_the_options_is_still_named(shell, isolated, wheelhouse, tmp_path):
    from bootstrap.errors import OptionError

    path = profile(tmp_path / "p.toml", wheelhouse, "alpha")
    with pytest.raises(OptionError) as caught:
        shell.run_line_magic("restore_env", f"{path} --skip gpu,pipp")
    assert "unknown step 'pipp'" in caught.value.what


def test_the_help_magic_shows_the_same_docs_as_the_cli(shell, capsys):
    import bootstrap

    shell.run_line_magic("bootstrap_help", "secrets")
    assert capsys.readouterr().out.strip() == str(bootstrap.help("secrets")).strip()
    assert bootstrap.help("secrets")._repr_markdown_().startswith("### `[secrets]`")


def test_a_dry_run_changes_nothing_and_is_not_recorded(shell, wheelhouse, fresh_venv, tmp_path,
                                                       capsys):
    from bootstrap import vmstate

    path = profile(tmp_path / "p.toml", wheelhouse, "alpha")
    shell.run_line_magic("restore_env", f"{path} --dry-run --python {fresh_venv}")
    assert "dry run of p on local machine: 1 satisfied, 1 planned" in capsys.readouterr().out
    assert "alpha" not in installed(fresh_venv)
    assert vmstate.last() is None


def test_a_failure_shows_the_partial_report_then_raises(shell, wheelhouse, fresh_venv, tmp_path,
                                                        capsys):
    from bootstrap.errors import StepError

    path = profile(tmp_path / "p.toml", wheelhouse, "alpha==9.9")
    with pytest.raises(StepError) as caught:
        shell.run_line_magic("restore_env", f"{path} --python {fresh_venv}")
    shown = capsys.readouterr().out
    assert "<- pip: failed" in shown and "1 failed" in shown
    assert caught.value._render_traceback_()[0].startswith("error: uv failed")


# -- restart detection ----------------------------------------------------------------

def dist_info(site: Path, files: list[str], top_level: str | None = None) -> Path:
    info = site / "thing-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thing\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    for name in files:      # Python 3.12+ lists only the files that exist
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).touch()
    if top_level is not None:
        (info / "top_level.txt").write_text(top_level)
    return info


def test_top_level_modules_come_from_top_level_txt_else_the_record(tmp_path):
    from bootstrap.staleness import top_level_modules

    record = ["pkg/__init__.py", "pkg/sub/x.py", "mod.py", "ext.cpython-311-x86_64-linux-gnu.so",
              "thing-1.0.dist-info/METADATA", "__pycache__/mod.cpython-311.pyc",
              "../../bin/tool", "thing.pth"]
    info = dist_info(tmp_path / "a", record)
    assert top_level_modules(metadata.PathDistribution(info)) == ["ext", "mod", "pkg"]
    info = dist_info(tmp_path / "b", record, top_level="pkg\n")
    assert top_level_modules(metadata.PathDistribution(info)) == ["pkg"]


def test_stale_modules_are_changed_distributions_already_imported(fresh_venv, wheelhouse,
                                                                  tmp_path):
    from bootstrap.interpreter import inspect
    from bootstrap.staleness import stale_modules
    from tests.support.venvs import uv
    from tests.support.wheels import build_wheel

    build_wheel(tmp_path / "more", "matplotlib", "9.0")
    subprocess.run([uv(), "pip", "install", "--quiet", "--python",
                    str(fresh_venv), "--no-index", "--find-links", str(wheelhouse),
                    "--find-links", str(tmp_path / "more"), "alpha==2.0", "beta",
                    "matplotlib"], check=True)
    inspect.cache_clear()
    dists = inspect(str(fresh_venv)).distributions()
    changed = [("alpha", "1.0", "2.0"), ("beta", None, "1.0"), ("matplotlib", "8.0", "9.0")]
    assert stale_modules(changed, dists, imported={"alpha", "beta"}) == ["alpha"]
    assert stale_modules(changed, dists, imported=set()) == []
    # Colab imports matplotlib into every kernel before the first cell
    assert stale_modules(changed, dists, imported=set(), platform="colab") == ["matplotlib"]


def test_colab_prompt_has_colabs_own_shape():
    from magics.restart import COLAB_MIME, colab_prompt

    bundle = colab_prompt(["alpha", "numpy"])
    assert list(bundle) == [COLAB_MIME]
    assert bundle[COLAB_MIME]["pip_warning"] == {"packages": ["alpha", "numpy"]}
    assert len(bundle[COLAB_MIME]["id"]) == 32


def test_restart_needs_a_kernel(shell, wheelhouse, fresh_venv, tmp_path, capsys):
    from magics.restart import restart_kernel

    assert restart_kernel(shell) is False
    path = profile(tmp_path / "p.toml", wheelhouse, "alpha")
    shell.run_line_magic("restore_env", f"{path} --python {fresh_venv} --restart")
    # another interpreter was the target: nothing this kernel imported changed
    assert "note: no restart needed" in capsys.readouterr().out


# -- the VM record -------------------------------------------------------------------

def test_the_vm_record_is_local_and_forgotten_across_boots(tmp_path, monkeypatch):
    from bootstrap import vmstate

    monkeypatch.delenv("BOOTSTRAP_STATE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    boot = tmp_path / "boot_id"
    boot.write_text("11111111-aaaa\n")
    monkeypatch.setattr(vmstate, "BOOT_ID", boot)
    assert vmstate.last() is None
    path = vmstate.record(vmstate.Restored("vision", "/p/vision.toml", "/store", "/py",
                                           only=["pip"]))
    assert path == tmp_path / "cache" / "notebook-bootstrap" / "vm-state.json"
    last = vmstate.last()
    assert last is not None and (last.profile, last.only, last.boot_id) == \
        ("vision", ["pip"], "11111111-aaaa")
    boot.write_text("22222222-bbbb\n")          # a new VM, or this one rebooted
    assert vmstate.last() is None
    path.write_text("{not json")
    assert vmstate.last() is None


def test_status_shows_the_gpu_the_fake_nvidia_smi_reports(monkeypatch):
    from bootstrap.session import gpu_line
    from tests.support.fakes import FAKES

    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "t4")
    assert gpu_line() == "Tesla T4, 15 GiB (driver 535.104.05, CUDA 12.2)"
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "none")
    assert gpu_line().startswith("no GPU: ")


def test_default_profile_on_a_fresh_colab_vm_mounts_drive_first(shell, colab, monkeypatch,
                                                                  capsys):
    # the store lives on Drive (MyDrive/.bootstrap), which a fresh VM has not mounted yet
    monkeypatch.delenv("BOOTSTRAP_STORE")
    saved = colab.drive / ".bootstrap" / "profiles" / "default.toml"
    saved.parent.mkdir(parents=True)
    saved.write_text('name = "mine"\n[env]\nNB_FROM_DRIVE = "yes"\n')
    monkeypatch.delenv("NB_FROM_DRIVE", raising=False)
    shell.run_line_magic("restore_env", "")
    assert colab.calls()[0] == f"mount {colab.mountpoint}"
    assert os.environ["NB_FROM_DRIVE"] == "yes"
    assert "restore of mine on Google Colab" in capsys.readouterr().out
