"""The parts of the setup step that need no kernel: parameters, exports, keys, refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bootstrap import restore
from bootstrap.cli import build_parser
from bootstrap.errors import OptionError, ProfileError, StepError
from bootstrap.exports import EXPORT_FILE_ENV, collecting, export, read
from bootstrap.notebook import parse_parameters, prepare, resolve_type, run_setup, secret_values
from bootstrap.profile import parse
from bootstrap.store import Store
from tests.support.setup_notebooks import REPO, code, markdown, write_notebook


@pytest.fixture(autouse=True)
def markers(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOTSTRAP_STATE_DIR", str(tmp_path / "state"))


def test_parameter_values_are_typed_like_papermills_cli():
    from papermill.cli import _resolve_type

    for raw in ["3", "-2", "0.5", "1e3", "True", "False", "None", "true", "abc", "", "nan",
                " 7 ", "1_000", "0x10", "path/to/x"]:
        assert resolve_type(raw) == _resolve_type(raw) or (raw == "nan")
        assert type(resolve_type(raw)) is type(_resolve_type(raw))
    assert parse_parameters([("epochs", "3"), ("lr", "0.1"), ("name", "run a")]) == {
        "epochs": 3, "lr": 0.1, "name": "run a"}
    with pytest.raises(OptionError, match="'my-param' is not a Python variable name"):
        parse_parameters([("my-param", "1")])


def test_cli_setup_takes_repeated_parameters():
    args = build_parser().parse_args(["setup", "nb.ipynb", "-p", "a", "1", "-p", "b", "x y",
                                      "--timeout", "30", "--force"])
    assert args.command == "setup" and args.parameter == [["a", "1"], ["b", "x y"]]
    assert args.timeout == 30.0 and args.force


def test_export_hands_back_json_values_through_the_file_named_in_the_environment(
        tmp_path, monkeypatch):
    target = tmp_path / "exported.json"
    monkeypatch.setenv(EXPORT_FILE_ENV, str(target))
    assert export(path=tmp_path, shape=(2, 3)) == {"path": str(tmp_path), "shape": [2, 3]}
    export(config={"lr": 0.1, "layers": [1, None, True]})        # later calls merge
    assert read(target) == {"path": str(tmp_path), "shape": [2, 3],
                            "config": {"lr": 0.1, "layers": [1, None, True]}}
    with pytest.raises(OptionError) as caught:
        export(model=object())
    assert "cannot export model: a object is not JSON" in str(caught.value)
    assert "export its path" in str(caught.value)
    with pytest.raises(OptionError, match=r"dict key 1 is not a string"):
        export(table={1: "a"})
    with pytest.raises(OptionError, match="not a Python variable name"):
        export(**{"class": 1})
    assert read(target)["shape"] == [2, 3]                       # a refused call changes nothing


def test_inline_runs_collect_exports_in_memory(monkeypatch):
    monkeypatch.delenv(EXPORT_FILE_ENV, raising=False)
    with collecting() as got:
        export(a=1)
        with collecting() as inner:
            export(b=2)
    assert got == {"a": 1} and inner == {"b": 2}


def test_export_is_cheap_to_import():
    code_text = ("import sys, bootstrap; bootstrap.export; import bootstrap.exports; "
                 "print(sorted(m for m in ('papermill', 'nbformat', 'nbclient', 'IPython', "
                 "'jupyter_client', 'requests', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code_text], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_secrets_are_the_declared_and_the_secret_looking_variables():
    env = {"HF_TOKEN": "hf_abcdefgh123", "TOKENIZERS_PARALLELISM": "false", "MY_PIN": "42",
           "KAGGLE_KEY": "0123456789", "SHORT_TOKEN": "1", "HOME": "/root"}
    assert secret_values(env, ["MY_PIN"]) == {
        "HF_TOKEN": "hf_abcdefgh123", "MY_PIN": "42", "KAGGLE_KEY": "0123456789"}


def test_the_run_key_follows_code_and_parameters_not_outputs(tmp_path):
    path = write_notebook(tmp_path / "s.ipynb", [markdown("# a"), code("x = 1")])
    first = prepare(path, {"n": 1})
    assert prepare(path, {"n": 1}).key == first.key
    assert prepare(path, {"n": 2}).key != first.key
    assert prepare(path, {"n": 1}, inline=True).key != first.key
    nb = json.loads(path.read_text())
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
    nb["cells"][0]["source"] = "# b"
    path.write_text(json.dumps(nb))
    assert prepare(path, {"n": 1}).key == first.key
    nb["cells"][1]["source"] = "x = 2"
    path.write_text(json.dumps(nb))
    assert prepare(path, {"n": 1}).key != first.key


def test_prepare_fills_in_what_colab_notebooks_lack(tmp_path):
    path = write_notebook(tmp_path / "c.ipynb", [code("print(1)")], colab=True)
    plan = prepare(path, {"n": 1})
    assert plan.language == "python" and plan.kernel == "python3"
    assert plan.cwd == tmp_path and plan.parameters_cell is None
    assert any("no cell tagged 'parameters'" in n for n in plan.notes)
    with pytest.raises(StepError, match="no Jupyter kernel named 'nope'"):
        prepare(path, kernel="nope")
    with pytest.raises(StepError, match="not found"):
        prepare(tmp_path / "missing.ipynb")


def test_inline_needs_an_ipython_kernel(tmp_path, isolated):
    path = write_notebook(tmp_path / "i.ipynb", [code("x = 1")])
    with pytest.raises(OptionError, match="inline mode runs the notebook in your IPython kernel"):
        run_setup(path, store=Store(isolated["store"]), inline=True, shell=None)
    profile = parse('[setup]\nnotebook = "i.ipynb"\ninline = true\n', source="i.toml")
    (isolated["drive"] / "i.ipynb").write_bytes(path.read_bytes())
    with pytest.raises(OptionError) as caught:
        restore(profile)
    assert caught.value.report.step("setup").outcome == "failed"


def test_dry_run_plans_the_setup_without_running_it(isolated):
    write_notebook(isolated["drive"] / "setup.ipynb", [code("raise SystemExit(3)")])
    profile = parse('[setup]\nnotebook = "setup.ipynb"\nparameters = { epochs = 2 }\n'
                    'timeout = 600\n', source="d.toml")
    report = restore(profile, dry_run=True)
    row = report.step("setup")
    assert row.outcome == "planned"
    assert row.actions == [f"run {isolated['drive'] / 'setup.ipynb'} with papermill, kernel "
                           "python3 (1 parameter, 600 s per cell)"]
    assert not (isolated["store"] / "runs").exists()


def test_profile_checks_setup_parameter_names_and_timeouts():
    with pytest.raises(ProfileError) as caught:
        parse('[setup]\nnotebook = "s.ipynb"\ntimeout = 0\nparameters = { "a-b" = 1 }\n',
              source="p.toml")
    lines = str(caught.value)
    assert "p.toml: setup.parameters.a-b: is not a Python variable name" in lines
    assert "p.toml: setup.timeout: must be a positive number of seconds" in lines


def test_an_untagged_notebook_gets_its_parameters_after_the_cell_that_assigns_them(tmp_path):
    path = write_notebook(tmp_path / "c.ipynb", [
        code("%pip install -q nothing\nimport os"),
        code("epochs = 1\nlr: float = 0.1\nfiles = !ls"),
        code("print(epochs, lr)\n!echo {files}"),
    ], colab=True)
    plan = prepare(path, {"epochs": 7, "lr": 0.5, "unused": 1})
    assert plan.parameters_cell == 2
    assert plan.nb.cells[1].metadata["tags"] == ["parameters"]
    [placed] = [n for n in plan.notes if "no cell tagged 'parameters'" in n]
    assert "cell 2 assigns epochs, lr, so the parameters were put after it" in placed
    assert any("never reads the parameter unused" in n for n in plan.notes)
    # nothing assigns the names: at the top, as papermill does, and said so
    top = prepare(path, {"files": 1, "other": 2})
    assert top.parameters_cell == 2                            # `files = !ls` assigns files
    nowhere = prepare(path, {"other": 2})
    assert nowhere.parameters_cell is None
    assert any("no cell assigns a parameter" in n for n in nowhere.notes)
    assert any("never reads the parameter other" in n for n in nowhere.notes)
    # a tagged cell wins and no parameter is unread
    tagged = write_notebook(tmp_path / "t.ipynb", [code("x = 0"),
                                                   code("x = 1", tags=["parameters"]),
                                                   code("print(x)")])
    plan = prepare(tagged, {"x": 3})
    assert plan.parameters_cell == 2 and not plan.notes
