"""The magics in real kernels: notebooks run by nbclient and papermill in a fresh venv's kernel.

Each test gets a new virtual environment with this package installed (a fresh
VM), a kernelspec for it, and a profile that installs the suite's test wheels
from a local folder: no network.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.kernels import (
    KernelEnv,
    isolated_kernel_env,
    kernel_environment,
    notebook,
    run_notebook,
)
from tests.support.venvs import installed

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
COLAB_MIME = "application/vnd.colab-display-data+json"


@pytest.fixture
def kenv(tmp_path, project, monkeypatch) -> KernelEnv:
    return isolated_kernel_env(tmp_path, project, monkeypatch)


def pip_profile(path: Path, wheelhouse: Path, *packages: str, extra: str = "") -> Path:
    listed = ", ".join(json.dumps(p) for p in packages)
    path.write_text(f'version = 1\nname = "{path.stem}"\n{extra}\n[pip]\npackages = [{listed}]\n'
                    f'no_index = true\nfind_links = [{json.dumps(str(wheelhouse))}]\n')
    return path


def displays(nb, index: int) -> list:
    return [o for o in nb.cells[index].outputs if o.output_type == "display_data"]


def test_restore_installs_into_the_kernel_env_and_a_second_run_is_satisfied(
        kenv, wheelhouse, tmp_path, monkeypatch):
    profile = pip_profile(tmp_path / "demo.toml", wheelhouse, "alpha==2.0")
    nb = notebook("%load_ext bootstrap",
                  f"%restore_env {profile}",
                  "import alpha, sys\nprint(alpha.VERSION, alpha.__file__)",
                  f"%restore_env {profile}",
                  "%env_status")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch)
    assert done.error is None, done.error

    # one display area, updated in place while the steps ran, ends as the report
    (area,) = displays(done.nb, 1)
    assert "update_display_data" in done.messages(1)
    assert area.data["text/plain"].startswith(
        "restore of demo on local machine: 1 satisfied, 1 changed")
    assert "install alpha==2.0" in area.data["text/plain"]
    assert "<table>" in area.data["text/html"] and "changed" in area.data["text/html"]

    # the wheel went into the kernel's own venv and imports in the next cell
    assert installed(kenv.python)["alpha"] == "2.0"
    version, where = done.text(2).split()
    assert version == "2.0" and where.startswith(str(kenv.site_packages))

    # again: everything is already in place
    again = done.text(3)
    assert again.startswith("restore of demo on local machine: 2 satisfied")
    assert "changed" not in again

    status = done.text(4)
    assert "restored  demo at" in status and str(profile) in status
    assert "holds     yes: every step is satisfied" in status


def test_the_installed_wheel_has_no_top_level_magics_and_load_ext_finds_its_own(
        kenv, project, tmp_path, monkeypatch):
    import zipfile

    tops = {name.split("/")[0] for name in zipfile.ZipFile(project).namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"bootstrap"}
    assert not (kenv.site_packages / "magics").exists()
    assert (kenv.site_packages / "bootstrap" / "magics" / "restore.py").is_file()
    assert (kenv.site_packages / "bootstrap" / "_docs" / "profile.md").is_file()
    nb = notebook("%load_ext bootstrap",
                  "import sys, bootstrap\n"
                  "print(sorted(m for m in sys.modules if m.split('.')[0] == 'magics'))\n"
                  "print(sys.modules['bootstrap.magics.restore'].__file__)")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch)
    assert done.error is None, done.error
    top_level, restore_file = done.text(1).splitlines()
    assert top_level == "[]"
    assert restore_file.startswith(str(kenv.site_packages / "bootstrap" / "magics"))


def test_a_bad_profile_fails_the_cell_with_its_hint_and_papermill_stops(
        kenv, tmp_path, monkeypatch):
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[pip]\npackages = ["alpha"]\n[colour]\nred = 1\n')
    nb = notebook("%load_ext bootstrap", f"%restore_env {bad}", "print('after the error')")
    source, output = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    kernel_environment(monkeypatch, kenv)
    with pytest.raises(PapermillExecutionError) as caught:
        papermill.execute_notebook(str(source), str(output), kernel_name=kenv.name,
                                   cwd=str(tmp_path), progress_bar=False, start_timeout=120)
    assert caught.value.ename == "ProfileError"

    ran = nbformat.read(output, as_version=4)
    (cell,) = [c for c in ran.cells if c.source.startswith("%restore_env")]
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    lines = "\n".join(error.traceback)
    assert lines.startswith("error: invalid profile bad.toml")
    assert "bad.toml: colour: unknown key" in lines and "hint:" in lines
    assert "Traceback" not in lines and "File " not in lines
    (after,) = [c for c in ran.cells if c.source.startswith("print")]
    assert after.execution_count is None and after.outputs == []


def test_an_unmet_gpu_requirement_stops_before_any_install(
        kenv, wheelhouse, tmp_path, monkeypatch):
    # the faithful fake nvidia-smi, playing a machine whose driver sees no GPU
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "none")
    monkeypatch.setenv("PATH", f"{REPO / 'tests' / 'fakes'}{os.pathsep}{os.environ['PATH']}")
    profile = pip_profile(tmp_path / "needs-gpu.toml", wheelhouse, "alpha==2.0",
                          extra="[gpu]\nrequired = true\n")
    nb = notebook("%load_ext bootstrap", f"%restore_env {profile}", "print('after the error')")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch)
    assert done.error is not None
    lines = done.text(1)
    assert "error: this runtime has no GPU (" in lines
    assert "where: needs-gpu.toml: gpu.required" in lines
    assert "hint: run on a machine with a matching NVIDIA GPU and driver" in lines
    assert "Traceback" not in lines
    assert done.nb.cells[2].outputs == [] and done.nb.cells[2].execution_count is None
    assert "alpha" not in installed(kenv.python)


def test_an_upgraded_imported_module_is_named_with_colabs_restart_prompt(
        kenv, wheelhouse, tmp_path, monkeypatch):
    kenv.install("alpha==1.0", find_links=wheelhouse)
    monkeypatch.setenv("BOOTSTRAP_PLATFORM", "colab")
    profile = pip_profile(tmp_path / "upgrade.toml", wheelhouse, "alpha==2.0")
    nb = notebook("%load_ext bootstrap", "import alpha", f"%restore_env {profile}",
                  "print(alpha.VERSION)")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch)
    assert done.error is None, done.error

    report, prompt = displays(done.nb, 2)
    assert "alpha 1.0 -> 2.0" in report.data["text/plain"]
    assert "note: alpha imported before the install: restart the runtime to use the new " \
           "versions" in report.data["text/plain"]
    assert prompt.data[COLAB_MIME]["pip_warning"] == {"packages": ["alpha"]}
    # the running kernel still has the old module: the notice is right
    assert done.text(3).strip() == "1.0"


def test_restart_option_restarts_the_kernel_and_the_rerun_is_a_no_op(
        kenv, wheelhouse, tmp_path, monkeypatch):
    from jupyter_client.manager import KernelManager

    kenv.install("alpha==1.0", find_links=wheelhouse)
    profile = pip_profile(tmp_path / "upgrade.toml", wheelhouse, "alpha==2.0")
    kernel_environment(monkeypatch, kenv)
    km = KernelManager(kernel_name=kenv.name)
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()

    def run(code: str) -> str:
        shown: list[str] = []

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                shown.append(content["text"])
            elif msg["msg_type"] in ("display_data", "execute_result", "update_display_data"):
                shown.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                shown.append("\n".join(content["traceback"]))

        reply = kc.execute_interactive(code, output_hook=hook, timeout=120)
        assert reply["content"]["status"] == "ok", shown
        return "\n".join(shown)

    try:
        kc.wait_for_ready(timeout=120)
        run("%load_ext bootstrap\nimport alpha")
        shown = run(f"%restore_env {profile} --restart")
        assert "alpha imported before the install: restarting the runtime now" in shown
        deadline = time.monotonic() + 60
        while km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not km.is_alive(), "the kernel did not exit to be restarted"

        # what the notebook server's restarter does when its kernel has gone
        km.restart_kernel(now=True)
        kc.wait_for_ready(timeout=120)
        shown = run(f"%load_ext bootstrap\n%restore_env {profile} --restart")
        assert "restore of upgrade on local machine: 2 satisfied" in shown
        assert "no restart needed" in shown
        assert run("import alpha; print(alpha.VERSION)").strip() == "2.0"
        assert km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_quickstart_notebook_runs_with_papermill(kenv, wheelhouse, tmp_path, monkeypatch):
    import nbformat
    import papermill

    # the notebook's later cells use what the demo gives: nb-demo-hello and DEMO_DATA
    profile = tmp_path / "quick.toml"
    profile.write_text(
        'version = 1\nname = "quick"\n[env]\nDEMO_DATA = "{drive}/quick"\n[pip]\n'
        'packages = ["alpha==2.0", "nb-demo-hello==1.0"]\nno_index = true\n'
        f'find_links = [{json.dumps(str(wheelhouse))}, '
        f'{json.dumps(str(REPO / "profiles" / "wheels"))}]\n')
    output = tmp_path / "quickstart.out.ipynb"
    kernel_environment(monkeypatch, kenv)
    papermill.execute_notebook(str(REPO / "examples" / "quickstart.ipynb"), str(output),
                               parameters={"profile": str(profile)}, kernel_name=kenv.name,
                               cwd=str(tmp_path), progress_bar=False, start_timeout=120)
    ran = nbformat.read(output, as_version=4)
    shown = "\n".join(o.get("data", {}).get("text/plain", "") + o.get("text", "")
                      for c in ran.cells if c.cell_type == "code" for o in c.outputs)
    assert "restore of quick on local machine: 1 satisfied, 2 changed" in shown
    assert installed(kenv.python)["alpha"] == "2.0"


def test_quickstart_notebook_runs_from_its_own_folder_on_the_shipped_demo(
        kenv, isolated, monkeypatch):
    """What `jupyter nbconvert --execute quickstart.ipynb` does in examples/: nbclient, with
    the notebook's folder as the working folder, in a fresh VM's kernel with the wheel."""
    import nbformat

    nb = nbformat.read(str(REPO / "examples" / "quickstart.ipynb"), as_version=4)
    done = run_notebook(nb, kenv, cwd=REPO / "examples", monkeypatch=monkeypatch)
    assert done.error is None, done.error
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    install, _, restore, check, again, status = (done.text(i) for i in code)
    assert install.startswith("notebook-bootstrap 0.") and "is installed" in install

    lines = restore.splitlines()
    assert lines[0].startswith("restore of demo on local machine: ")
    rows = {line.split()[0]: line.split(None, 3)[1:] for line in lines[1:]
            if line.startswith("  ") and not line.startswith("   ")}
    assert rows["pip"][0] == "changed" and rows["pip"][2] == "installed 1 of 1 requirements"
    assert rows["env"][0] == "changed" and rows["workdir"][0] == "changed"
    assert rows["gpu"][0] == "satisfied"
    assert "pylock" not in restore                 # store traffic is a --verbose detail
    assert installed(kenv.python)["nb-demo-hello"] == "1.0"

    project = isolated["drive"] / "demo-project"
    assert check.splitlines() == ["hello from nb-demo-hello 1.0, fresh VM!",
                                  f"DEMO_DATA = {project / 'data'}",
                                  f"working folder: {project}"]
    assert again.splitlines()[0].startswith("restore of demo on local machine:")
    assert "changed" not in again.split("\n  pip")[1].splitlines()[0]   # pip: satisfied
    assert "holds     yes: every step is satisfied" in status


