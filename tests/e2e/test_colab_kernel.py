"""``%restore_env`` on a (faked) Colab VM in real kernels: with and without Colab's page.

The kernel imports the ``google.colab`` fake, which fails as colabtools does
when no page answers. Whether the page sent the running cell is found out by
the restore itself (the request's ``metadata.colab``, as Colab's page sends
it), not told to it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import IPython
import pytest

from tests.support.fakes import FAKES
from tests.support.kernels import (
    KernelEnv,
    isolated_kernel_env,
    kernel_environment,
    notebook,
    run_notebook,
)
from tests.support.setup_notebooks import code, write_notebook

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_environ")]
COLAB_MIME = "application/vnd.colab-display-data+json"


@pytest.fixture
def kenv(tmp_path, project, monkeypatch) -> KernelEnv:
    return isolated_kernel_env(tmp_path, project, monkeypatch, env={"PYTHONPATH": str(FAKES)})


def drive_profile(folder: Path) -> Path:
    path = folder / "p.toml"
    path.write_text('[drive]\n[env]\nOUT = "{drive}/out"\n')
    return path


def test_a_kernel_the_page_does_not_drive_fails_at_once(kenv, colab, tmp_path, monkeypatch):
    """papermill, VS Code: Colab's own mount would wait 2 minutes, then 'mount failed'."""
    colab.without_page()              # nothing answers; the fake waits Colab's full timeout
    nb = notebook("%load_ext bootstrap", f"%restore_env {drive_profile(tmp_path)}",
                  "print('not reached')")
    started = time.monotonic()
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch, timeout=60)
    assert time.monotonic() - started < 60
    assert done.error is not None
    shown = done.text(1)
    assert f"error: Google Drive is not mounted at {colab.mountpoint}, and this kernel is not " \
           "connected to Colab's page" in shown
    assert "Traceback" not in shown
    assert colab.calls() == []
    assert not os.path.ismount(colab.mountpoint)


def test_a_kernel_the_page_does_not_drive_uses_a_mounted_drive(kenv, colab, tmp_path,
                                                               monkeypatch):
    colab.mount_drive()
    colab.without_page()
    nb = notebook("%load_ext bootstrap", f"%restore_env {drive_profile(tmp_path)}",
                  "import os; print(os.environ['OUT'])")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch, timeout=60)
    assert done.error is None, done.error
    assert done.text(2).strip() == str(colab.mountpoint / "MyDrive" / "out")


def test_a_cell_sent_by_colabs_page_mounts_drive(kenv, colab, tmp_path, monkeypatch):
    from jupyter_client.manager import KernelManager

    monkeypatch.delenv("BOOTSTRAP_COLAB_PAGE")        # found out from the request
    kernel_environment(monkeypatch, kenv)
    km = KernelManager(kernel_name=kenv.name)
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        assert "error" not in run_from_page(kc, "%load_ext bootstrap")
        shown = run_from_page(kc, f"%restore_env {drive_profile(tmp_path)}\n"
                                  "import os; print('OUT=' + os.environ['OUT'])")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert f"OUT={colab.mountpoint / 'MyDrive' / 'out'}" in shown, shown
    assert colab.calls() == [f"mount {colab.mountpoint}"]
    assert os.path.ismount(colab.mountpoint)


def run_from_page(kc: Any, code: str) -> str:
    """Execute ``code`` with the request metadata Colab's page sends (``colab.cell_id``)."""
    msg = kc.session.msg("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True}, metadata={"colab": {"cell_id": "c1"}})
    kc.shell_channel.send(msg)
    shown: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        reply = kc.get_iopub_msg(timeout=120)
        if reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        content, kind = reply["content"], reply["msg_type"]
        if kind == "stream":
            shown.append(content["text"])
        elif kind in ("display_data", "execute_result", "update_display_data"):
            shown.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            shown.append("error: " + "\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            break
    return "\n".join(shown)


# -- the kernel stack Colab and Kaggle run ------------------------------------------------

OLD_STACK = IPython.version_info < (8,) and sys.version_info >= (3, 12)


def test_x_equals_bang_cmd_in_an_inline_setup_cell(kenv, tmp_path, monkeypatch):
    """IPython 7.34 on Python 3.12+ (Colab, Kaggle) cannot transform ``x = !cmd``: Python
    3.12's tokenizer calls ``!`` an operator, which IPython 7's transformer does not expect.
    It fails there in the user's own cells too; ``x = %sx cmd`` is the same and works."""
    write_notebook(tmp_path / "bang.ipynb", [code("out = !echo shell-ok\nprint(out[0])")])
    write_notebook(tmp_path / "sx.ipynb", [code("out = %sx echo shell-ok\nprint(out[0])")])
    nb = notebook("%load_ext bootstrap", "%run_setup sx.ipynb --inline",
                  "%run_setup bang.ipynb --inline")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch, timeout=60)
    assert "shell-ok" in done.text(1)
    if OLD_STACK:
        assert done.error is not None
        assert "bang.ipynb failed in cell 1: SyntaxError: invalid syntax" in done.text(2)
        assert "Traceback" not in done.text(2).split("error:")[-1]
    else:
        assert done.error is None, done.error
        assert "shell-ok" in done.text(2)


# -- after the restore: modules the kernel holds that changed ------------------------------

@pytest.mark.parametrize("skip_warning", [False, True])
def test_a_run_entry_that_upgrades_an_imported_module_gets_colabs_prompt(
        kenv, wheelhouse, tmp_path, monkeypatch, skip_warning):
    """Not only the pip step installs: a [[run]] entry (or a setup notebook) can too."""
    from tests.support.venvs import uv

    kenv.install("alpha==1.0", find_links=wheelhouse)
    monkeypatch.setenv("BOOTSTRAP_PLATFORM", "colab")
    if skip_warning:
        monkeypatch.setenv("SKIP_COLAB_PIP_WARNING", "1")
    else:
        monkeypatch.delenv("SKIP_COLAB_PIP_WARNING", raising=False)
    profile = tmp_path / "run.toml"
    profile.write_text(f'[[run]]\nargv = ["{uv()}", "pip", "install", "--quiet", "--python", '
                       f'"{{python}}", "--offline", "--no-index", "--find-links", "{wheelhouse}", '
                       '"alpha==2.0"]\n')
    nb = notebook("%load_ext bootstrap", "import alpha", f"%restore_env {profile}")
    done = run_notebook(nb, kenv, cwd=tmp_path, monkeypatch=monkeypatch, timeout=60)
    assert done.error is None, done.error
    shown = [o for o in done.nb.cells[2].outputs if o.output_type == "display_data"]
    assert "note: alpha imported before the install: restart the runtime to use the new " \
           "versions" in shown[0].data["text/plain"]
    prompts = [o.data[COLAB_MIME] for o in shown if COLAB_MIME in o.data]
    assert prompts == ([] if skip_warning else [{"pip_warning": {"packages": ["alpha"]},
                                                 "id": prompts[0]["id"]}])
