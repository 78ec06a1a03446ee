"""The command line: real processes, their output and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.venvs import installed

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "bootstrap", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_demo_restore_into_fresh_venv(fresh_venv, isolated):
    done = cli("restore", "demo", "--python", str(fresh_venv))
    assert done.returncode == 0, done.stderr
    assert installed(fresh_venv) == {"nb-demo-hello": "1.0"}
    assert "restore of demo on local machine: 1 satisfied, 3 changed" in done.stdout
    rows = {line.split()[0]: line.split(None, 3)[1:] for line in done.stdout.splitlines()[1:]
            if line.startswith("  ") and not line.startswith("   ")}
    # the GPU found (none here) is always reported; what the pip row did, in words
    assert rows["gpu"][0] == "satisfied" and rows["gpu"][2].startswith("no GPU")
    assert rows["pip"][0] == "changed" and rows["pip"][2] == "installed 1 of 1 requirements"
    assert "pylock" not in done.stdout and "background" not in done.stdout  # --verbose only
    assert "-> pip" in done.stderr and "<- pip: changed" in done.stderr
    assert (isolated["drive"] / "demo-project").is_dir()
    check = subprocess.run([str(fresh_venv), "-c",
                            "import nb_demo_hello; print(nb_demo_hello.greet())"],
                           capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "hello from nb-demo-hello 1.0, fresh VM!"
    again = cli("restore", "demo", "--python", str(fresh_venv), "-q")
    assert again.returncode == 0
    # env and workdir belong to the process that runs the restore: a new CLI process sets them
    # again, while the pip requirement already holds
    assert "pip      satisfied" in again.stdout


def test_dry_run_changes_nothing(fresh_venv):
    done = cli("restore", "demo", "--python", str(fresh_venv),
               "--dry-run")
    assert done.returncode == 0
    assert "dry run of demo" in done.stdout and "install nb-demo-hello==1.0 (not installed)" \
        in done.stdout
    assert installed(fresh_venv) == {}


def test_bad_profile_exit_code_and_short_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[pip]\npackages = ["-e ."]\n')
    done = cli("restore", str(bad))
    assert done.returncode == 3
    assert done.stderr.startswith("error: invalid profile bad.toml\n")
    assert "Traceback" not in done.stderr
    debug = cli("restore", str(bad), "--debug")
    assert "Traceback" in debug.stderr and debug.returncode != 0


def test_failed_step_exit_code(tmp_path, fresh_venv):
    bad = tmp_path / "fails.toml"
    bad.write_text(f'[pip]\npackages = ["nosuchpkg"]\nno_index = true\n'
                   f'find_links = ["{REPO / "profiles" / "wheels"}"]\n')
    done = cli("restore", str(bad), "--python", str(fresh_venv), "-q")
    assert done.returncode == 1
    assert done.stdout.splitlines()[2].split()[:2] == ["pip", "failed"]
    assert "error: uv failed with exit code 1" in done.stderr


def test_usage_errors(tmp_path):
    done = cli("restore", "demo", "--only", "pipp")
    assert done.returncode == 2
    assert "error: unknown step 'pipp'\n  where: --only\n  hint: did you mean 'pip'?" in done.stderr
    assert cli("restore", "demo", "--only", "gpu,env",
               "--dry-run").returncode == 0
    done = cli("restore", "demo", "--python", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "error: no Python interpreter at" in done.stderr


def test_validate_and_show():
    done = cli("validate", "demo")
    assert done.returncode == 0
    assert done.stdout.strip().endswith("valid profile 'demo' (pip, env, workdir)")
    shown = cli("show", "demo")
    assert shown.returncode == 0
    assert 'DEMO_DATA = "{drive}/demo-project/data"' in shown.stdout
    missing = cli("validate", "no-such-profile")
    assert missing.returncode == 3 and "no profile with this name" in missing.stderr


def test_a_mistyped_option_gets_a_suggestion_and_a_mistyped_step_too():
    done = cli("restore", "demo", "--dry-runn")
    assert done.returncode == 2
    assert "unrecognized arguments: --dry-runn (did you mean --dry-run?)" in done.stderr
    done = cli("restore", "--only", "pipp")            # no profile: still a step, mistyped
    assert done.returncode == 2 and "did you mean 'pip'?" in done.stderr


def test_help_prints_the_docs_shipped_with_the_package():
    import bootstrap

    done = cli("help", "pip")
    assert done.returncode == 0
    assert done.stdout.startswith("### `[pip]`: Python packages")
    assert done.stdout.strip() == str(bootstrap.help("pip")).strip()
    topics = cli("help")
    assert topics.returncode == 0 and "profile" in topics.stdout and "saving" in topics.stdout
    whole = cli("help", "profile")
    assert whole.stdout.startswith("# The profile format")
    wrong = cli("help", "secrts")
    assert wrong.returncode == 2 and "did you mean 'secrets'?" in wrong.stderr


@pytest.mark.parametrize("argv", [["--version"], ["restore", "--help"]])
def test_help_and_version(argv):
    done = cli(*argv)
    assert done.returncode == 0 and done.stdout


def test_restore_output_never_shows_a_secret(tmp_path):
    """The CLI's progress lines, report and error, for a URL that carries a [secrets] value."""
    secret = "plain-looking-value-42"
    profile = tmp_path / "leak.toml"
    profile.write_text('[secrets]\nDATA_ACCESS = "DATA_ACCESS"\n[[files]]\n'
                       'url = "http://127.0.0.1:9/w.bin?access={env:DATA_ACCESS}"\n'
                       f'sha256 = "{"0" * 64}"\ndest = "{tmp_path}/w.bin"\n')
    for args in (["--dry-run"], []):
        done = cli("restore", str(profile), *args, env_extra={"DATA_ACCESS": secret})
        assert secret not in done.stdout + done.stderr
        assert "***" in done.stdout + done.stderr
