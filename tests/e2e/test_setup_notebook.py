"""The setup step, %run_setup and `bootstrap setup` with real papermill runs in real kernels.

Every test here starts real kernels (a second or two each), so they share
notebooks and checks where they can.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import ipykernel
import IPython
import pytest

from bootstrap import restore
from bootstrap.errors import OptionError
from bootstrap.notebook import KernelDied, NotebookFailed, NotebookTimeout, find_marker, prepare
from bootstrap.profile import parse
from bootstrap.store import Store
from tests.support.setup_notebooks import (
    REPO,
    code,
    errors_in,
    markdown,
    read_notebook,
    write_notebook,
)

pytestmark = pytest.mark.slow

SECRET = "hf_s3cr3t-value-never-saved"
# IPython 7.34 (Colab's and Kaggle's) on Python 3.12+ cannot transform `x = !cmd`: the
# platform's own limit (tests/e2e/test_colab_kernel.py shows it); `x = %sx cmd` works there.
SHELL_ASSIGN = "%sx " if IPython.version_info < (8,) and sys.version_info >= (3, 12) else "!"
KEEPS_KERNEL_NAME = tuple(int(p) for p in ipykernel.__version__.split(".")[:2]) >= (6, 24)


@pytest.fixture(autouse=True)
def kernel_env(tmp_path, monkeypatch):
    """Kernels import this checkout's bootstrap; markers and IPython state stay per test."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("BOOTSTRAP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def runs(store: Path) -> list[Path]:
    return sorted((store / "runs").glob("*.ipynb")) if (store / "runs").is_dir() else []


def tagged_setup(folder: Path) -> Path:
    """A setup notebook with a tagged parameters cell; each run appends a line to runs.log."""
    return write_notebook(folder / "setup.ipynb", [
        markdown("# Setup"),
        code("epochs = 1\ndata = 'nowhere'", tags=["parameters"]),
        code("import hashlib, os\nimport bootstrap\n"
             "with open('runs.log', 'a') as log:\n    log.write(f'{epochs}\\n')"),
        code("token = os.environ['HF_TOKEN']\n"
             "bootstrap.export(epochs=epochs, data=data, config={'lr': 0.1, 'dims': (2, 3)},\n"
             "                 token_sha=hashlib.sha256(token.encode()).hexdigest())"),
    ])


def test_restore_runs_the_notebook_once_and_again_when_a_parameter_changes(
        isolated, monkeypatch):
    drive, store = isolated["drive"], isolated["store"]
    notebook = tagged_setup(drive / "project")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    text = ('name = "demo"\n[secrets]\nHF_TOKEN = "HF_TOKEN"\n'
            '[setup]\nnotebook = "project/setup.ipynb"\n'
            'parameters = { epochs = EPOCHS, data = "{drive}/data" }\n')
    profile = parse(text.replace("EPOCHS", "3"), source="demo.toml")

    # the secrets step belongs to another module; the secret is already in the environment
    first = restore(profile, skip=["secrets"])
    row = first.step("setup")
    assert row.outcome == "changed"
    assert row.data["exported"] == {
        "epochs": 3, "data": f"{drive}/data", "config": {"lr": 0.1, "dims": [2, 3]},
        "token_sha": hashlib.sha256(SECRET.encode()).hexdigest()}
    assert (drive / "project" / "runs.log").read_text() == "3\n"   # ran in the notebook's folder
    [output] = runs(store)
    assert row.data["output"] == str(output)
    saved = read_notebook(output)
    tags = [c.metadata.get("tags", []) for c in saved.cells]
    assert tags[1] == ["parameters"] and tags[2] == ["injected-parameters"]
    assert "epochs = 3" in saved.cells[2].source
    assert saved.metadata.papermill["input_path"] == str(notebook)
    # the secret was readable in the notebook (token_sha matches) but is nowhere in the output
    assert SECRET not in output.read_text()

    again = restore(profile, skip=["secrets"])
    assert again.step("setup").outcome == "satisfied"
    assert again.step("setup").data["exported"]["epochs"] == 3      # still handed back
    assert (drive / "project" / "runs.log").read_text() == "3\n"
    assert len(runs(store)) == 1

    changed = restore(parse(text.replace("EPOCHS", "4"), source="demo.toml"), skip=["secrets"])
    assert changed.step("setup").outcome == "changed"
    assert changed.step("setup").data["exported"]["epochs"] == 4
    assert (drive / "project" / "runs.log").read_text() == "3\n4\n"
    assert len(runs(store)) == 2


def test_a_secret_never_becomes_a_parameter(isolated, monkeypatch):
    tagged_setup(isolated["drive"])
    monkeypatch.setenv("HF_TOKEN", SECRET)
    profile = parse('[secrets]\nHF_TOKEN = "HF_TOKEN"\n[setup]\nnotebook = "setup.ipynb"\n'
                    'parameters = { data = "{env:HF_TOKEN}" }\n', source="leak.toml")
    with pytest.raises(OptionError) as caught:
        restore(profile, skip=["secrets"])
    message = str(caught.value)
    assert "carries the value of the secret HF_TOKEN" in message
    assert "setup.parameters.data" in message
    assert SECRET not in message
    assert runs(isolated["store"]) == []
    # a secret-looking variable is refused on the command line too, without a profile
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    with pytest.raises(OptionError, match="secret WANDB_API_KEY"):
        prepare(isolated["drive"] / "setup.ipynb", {"data": "key=0123456789abcdef"})


def test_magic_pushes_exported_values_and_inline_definitions_into_a_real_kernel(isolated,
                                                                                 tmp_path):
    import nbformat
    from nbclient import NotebookClient

    folder = tmp_path / "work"
    write_notebook(folder / "colab.ipynb", [           # no parameters tag, no language
        code("import bootstrap, os\nprint('running in', os.getcwd())"),
        code("bootstrap.export(n=n, greeting=name + ' world', where=os.getcwd())"),
    ], colab=True)
    write_notebook(folder / "lib" / "inline.ipynb", [
        code("factor = 1", tags=["parameters"]),
        code("def scale(x):\n    return x * factor"),
        code("%%writefile made-by-cell-magic.txt\nhello"),
        code(f"out = {SHELL_ASSIGN}echo shell-ok\nimport bootstrap\n"
             "bootstrap.export(shell_out=out[0])"),
    ])
    write_notebook(folder / "lib" / "broken.ipynb", [
        code("before_failure = True"), markdown("then"), code("raise KeyError('missing')")])
    outer = write_notebook(folder / "outer.ipynb", [
        code("%load_ext bootstrap"),
        code("%run_setup colab.ipynb -p n 5 -p name hello"),
        code("assert (n, greeting) == (5, 'hello world'), (n, greeting)\nprint(where)"),
        code("del n\n%run_setup colab.ipynb -p n 5 -p name hello"),
        code("assert n == 5"),
        code("%run_setup lib/inline.ipynb --inline -p factor 3"),
        code("assert scale(2) == 6 and shell_out == 'shell-ok'\nimport os\nprint(os.getcwd())"),
        code("try:\n    get_ipython().run_line_magic('run_setup', 'lib/broken.ipynb --inline')\n"
             "except Exception as error:\n    print(type(error).__name__, error.cell, error.what)\n"
             "assert before_failure"),
        code("from bootstrap.notebook import running_kernel_name\nprint(running_kernel_name())\n"
             "bootstrap.export(by_hand=1)  # outside a run: defines the variable here\n"
             "assert by_hand == 1"),
        code(f"%run_setup {REPO / 'examples' / 'setup.ipynb'} --inline -q -p epochs 2 "
             f"-p work_dir {tmp_path / 'example'}"),
        code("assert load_config() == config and config['epochs'] == 2\nprint(data_dir)"),
    ])
    nb = nbformat.read(str(outer), as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120, startup_timeout=60,
                   resources={"metadata": {"path": str(folder)}}).execute()

    def text(i: int) -> str:
        return "".join(o.get("text", "") for o in nb.cells[i].outputs)

    assert "ran colab.ipynb with kernel python3" in text(1)
    assert "no cell tagged 'parameters'" in text(1)
    assert "names no language" in text(1)
    assert text(2).strip() == str(folder)                 # the notebook's folder
    assert "already ran on this VM" in text(3)
    assert len(runs(isolated["store"])) == 1
    assert "ran inline.ipynb inline" in text(5)
    # its last cell's value (bootstrap.export returns a dict) is not echoed as Out[...]
    assert "execute_result" not in [o.output_type for o in nb.cells[5].outputs]
    assert (folder / "lib" / "made-by-cell-magic.txt").read_text().strip() == "hello"
    assert text(6).strip() == str(folder)                 # back where the caller was
    assert ("NotebookFailed 3 broken.ipynb failed in cell 3: KeyError: 'missing'"
            in text(7).splitlines())
    # from the kernel's connection file; ipykernel before 6.24 (Colab's 6.17) rewrites that
    # file without the name, so there the notebook's kernelspec decides instead
    assert text(8).strip() == ("python3" if KEEPS_KERNEL_NAME else "None")
    assert text(10).strip() == str(tmp_path / "example" / "data")    # examples/setup.ipynb


def test_a_failing_third_cell_names_the_cell_the_exception_and_the_kept_output(isolated):
    write_notebook(isolated["drive"] / "setup.ipynb", [
        code("limit = 1", tags=["parameters"]),
        markdown("Now it breaks."),
        code("raise ValueError(f'bad input {limit}')"),
        code("print('never')"),
    ])
    profile = parse('[setup]\nnotebook = "setup.ipynb"\nparameters = { limit = 7 }\n',
                    source="fail.toml")
    with pytest.raises(NotebookFailed) as caught:
        restore(profile)
    error = caught.value
    [output] = runs(isolated["store"])
    assert error.cell == 3 and error.ename == "ValueError" and error.output == output
    assert error.step == "setup" and error.report.step("setup").outcome == "failed"
    message = str(error)
    assert "setup.ipynb failed in cell 3: ValueError: bad input 7" in message
    assert "counted from 1" in message and str(output) in message
    saved = read_notebook(output)
    assert [(e[1], e[2]) for e in errors_in(saved)] == [("ValueError", "bad input 7")]
    assert any("papermill-error-cell-tag" in c.metadata.get("tags", []) for c in saved.cells)
    plan = prepare(isolated["drive"] / "setup.ipynb", {"limit": 7})
    assert plan.done is None and find_marker(plan.key) is None    # a failure is not a success


def test_an_endless_cell_stops_at_the_timeout(isolated, tmp_path, capsys):
    from bootstrap.cli import main

    notebook = write_notebook(tmp_path / "loop.ipynb", [
        code("x = 1"), code("while True:\n    pass"), code("print('never')")])
    assert main(["setup", str(notebook), "--timeout", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "loop.ipynb: cell 2 did not finish within 2 s (the execution timeout)" in err
    [output] = runs(isolated["store"])
    assert str(output) in err
    saved = read_notebook(output)
    assert "stopped this run" in saved.cells[0].source


def test_a_kernel_that_dies_gives_the_dead_kernel_error(isolated, tmp_path):
    notebook = write_notebook(tmp_path / "die.ipynb", [
        code("import os"), code("os._exit(1)"), code("print('never')")])
    with pytest.raises(KernelDied) as caught:
        from bootstrap.notebook import run_setup

        run_setup(notebook, store=Store(isolated["store"]))
    assert caught.value.cell == 2
    assert "the kernel running die.ipynb died in cell 2" in str(caught.value)
    assert not isinstance(caught.value, NotebookTimeout)
    assert caught.value.output is not None and caught.value.output.exists()
    assert json.loads(caught.value.output.read_text())["cells"][0]["id"] == "bootstrap-failure"


def test_a_kernel_that_does_not_start_in_time_gives_the_start_error(isolated, tmp_path,
                                                                    monkeypatch):
    from bootstrap.notebook import KernelStartFailed, run_setup

    spec = tmp_path / "jupyter" / "kernels" / "sleepy"
    spec.mkdir(parents=True)
    # a kernelspec whose process never answers, like a kernel stuck importing
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["python", "-c", "import time; time.sleep(60)", "{connection_file}"],
        "display_name": "sleepy", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = write_notebook(tmp_path / "s.ipynb", [code("x = 1")])
    with pytest.raises(KernelStartFailed) as caught:
        run_setup(notebook, store=Store(isolated["store"]), kernel="sleepy", start_timeout=1)
    assert "the kernel 'sleepy' did not start: Kernel didn't respond in 1 seconds" in str(
        caught.value)


def test_a_colab_saved_notebook_sees_the_parameters_over_its_own_first_cell(isolated, tmp_path,
                                                                            capfd):
    from bootstrap.cli import main

    # as Colab saves it: kernelspec python3, no language, no tags anywhere
    notebook = write_notebook(tmp_path / "colab.ipynb", [
        code("epochs = 1\nbatch = 8"),
        code("import bootstrap\nbootstrap.export(epochs=epochs, batch=batch, "
             "db_password='written-in-notebook')"),
    ], colab=True)
    assert main(["setup", str(notebook), "-p", "epochs", "7", "-p", "typo", "3", "--quiet"]) == 0
    out, err = capfd.readouterr()        # the kernel's own stderr included
    assert "without encryption" not in err and "WARNING" not in err, err
    assert "exported epochs = 7" in out.splitlines()
    assert "exported batch = 8" in out.splitlines()
    assert "exported db_password = ***" in out.splitlines()   # a secret's name: masked
    assert "cell 1 assigns epochs, so the parameters were put after it" in out
    assert "never reads the parameter typo" in out
    [output] = runs(isolated["store"])
    saved = read_notebook(output)
    tags = [c.metadata.get("tags", []) for c in saved.cells]
    assert tags[:2] == [["parameters"], ["injected-parameters"]]
    assert "epochs = 7" in saved.cells[1].source


def test_a_marker_that_cannot_be_kept_is_a_note_and_the_next_restore_runs_it(
        isolated, tmp_path, monkeypatch):
    drive = isolated["drive"]
    write_notebook(drive / "setup.ipynb", [
        code("with open('runs.log', 'a') as log:\n    log.write('ran\\n')")])
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the state folder would be")
    monkeypatch.setenv("BOOTSTRAP_STATE_DIR", str(blocked))
    profile = parse('[setup]\nnotebook = "setup.ipynb"\n', source="s.toml")
    first = restore(profile)
    row = first.step("setup")
    assert row.outcome == "changed", row.summary
    assert any(note.startswith("could not record that setup.ipynb ran (cannot keep a marker")
               and note.endswith("the next restore runs it again") for note in row.notes)
    assert restore(profile).step("setup").outcome == "changed"
    assert (drive / "runs.log").read_text() == "ran\nran\n"


def test_force_and_a_reboot_run_the_notebook_again(isolated, tmp_path):
    drive = isolated["drive"]
    write_notebook(drive / "setup.ipynb", [
        code("with open('runs.log', 'a') as log:\n    log.write('ran\\n')")])
    profile = parse('[setup]\nnotebook = "setup.ipynb"\n', source="s.toml")
    assert restore(profile).step("setup").outcome == "changed"
    assert restore(profile).step("setup").outcome == "satisfied"
    forced = restore(profile, force=True)
    assert forced.step("setup").outcome == "changed"        # once, not again by its re-check
    assert (drive / "runs.log").read_text() == "ran\nran\n"

    [marker] = (tmp_path / "state" / "setup-markers").glob("*.json")
    marker.write_text(marker.read_text().replace('"boot_id": "', '"boot_id": "other-'))
    assert restore(profile).step("setup").outcome == "changed"   # another boot: runs again
    assert (drive / "runs.log").read_text() == "ran\nran\nran\n"
