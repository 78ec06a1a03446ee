"""The secrets step: Colab, Kaggle, the store's .env and the environment, and no value leaks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bootstrap
from bootstrap.errors import StepError
from bootstrap.steps import secrets as secrets_step
from tests.support.fakes import step_context, write_profile

pytestmark = pytest.mark.usefixtures("clean_environ")

VALUE = "hf_Zq7-s3cr3t-value-91XK"        # must never show up in a report, error or file
OTHER = "sk-another-s3cr3t-0042"


def dotenv(isolated, text: str) -> Path:
    path = isolated["store"] / ".env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def everything_shown(report, error=None) -> str:
    parts = [report.text(), report._repr_html_()]
    for row in report.steps:
        parts += [row.summary, *row.actions, *row.notes, repr(row.data)]
    if error is not None:
        parts += [str(error), repr(error.args)]
    return "\n".join(parts)


def files_containing(root: Path, needle: str, *, besides: tuple[Path, ...] = ()) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p not in besides
            and needle.encode() in p.read_bytes()]


@pytest.fixture(autouse=True)
def unset(monkeypatch):
    for name in ("HF_TOKEN", "API_KEY", "MY_HF", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# -- a plain machine: .env and the environment -------------------------------------------

def test_dotenv_in_the_store(tmp_path, isolated):
    dotenv(isolated, f"# tokens\nexport HF = '{VALUE}'\nAPI=\"{OTHER}\"\n")
    profile = write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF"\nAPI_KEY = "API"\n')
    report = bootstrap.restore(profile)
    row = report.step("secrets")
    assert row.outcome == "changed"
    assert row.actions == ["set HF_TOKEN from secret HF", "set API_KEY from secret API"]
    assert row.notes == ["HF_TOKEN from the store's .env", "API_KEY from the store's .env"]
    assert row.summary == "fetched 2 of 2 secrets"
    assert (os.environ["HF_TOKEN"], os.environ["API_KEY"]) == (VALUE, OTHER)
    assert VALUE not in everything_shown(report) and OTHER not in everything_shown(report)
    assert row.data["env"] == ["API_KEY", "HF_TOKEN"]

    again = bootstrap.restore(profile)
    assert again.step("secrets").outcome == "satisfied"


def test_the_environment_under_another_name(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_HF", VALUE)
    report = bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "MY_HF"\n'))
    assert os.environ["HF_TOKEN"] == VALUE
    assert report.step("secrets").notes == ["HF_TOKEN from the environment"]


def test_a_variable_already_set_is_satisfied(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", VALUE)
    report = bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF"\n'))
    assert report.step("secrets").outcome == "satisfied"
    assert report.step("secrets").summary == "1 secret set"


def test_an_empty_variable_is_not_set(monkeypatch, isolated):
    monkeypatch.setenv("HF_TOKEN", "")
    dotenv(isolated, f"HF={VALUE}\n")
    ctx = step_context('[secrets]\nHF_TOKEN = "HF"\n')
    plan = secrets_step.check(ctx)
    assert (plan.satisfied, plan.data) == (False, ["HF_TOKEN"])
    secrets_step.apply(ctx, plan)
    assert secrets_step.check(ctx).satisfied and os.environ["HF_TOKEN"] == VALUE


def test_not_found_anywhere(tmp_path, isolated):
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF"\n'))
    error = caught.value
    assert error.what == "secret HF (for HF_TOKEN) was not found"
    assert error.where == "p.toml: secrets.HF_TOKEN"
    assert error.details == (f"the store's .env: there is no {isolated['store'] / '.env'}\n"
                             "the environment: no environment variable HF")
    assert error.hint == f"or add the line HF=... to {isolated['store'] / '.env'} (never to " \
                         "the profile)"
    assert "HF_TOKEN" not in os.environ


def test_the_error_for_one_secret_does_not_show_another(tmp_path, isolated):
    dotenv(isolated, f"HF={VALUE}\n")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF"\nAPI_KEY = "API"\n'))
    assert os.environ["HF_TOKEN"] == VALUE
    assert VALUE not in everything_shown(caught.value.report, caught.value)
    assert files_containing(tmp_path, VALUE) == [isolated["store"] / ".env"]


def test_dotenv_parsing(tmp_path):
    path = tmp_path / ".env"
    path.write_text("\n".join([
        "# a comment", "", "PLAIN=abc", "export EXPORTED=def", "SPACED = ghi ",
        "DOUBLE=\"with # hash\"", "SINGLE='x=y'", "COMMENTED=jkl # trailing", "EMPTY=",
        f"this line holds {VALUE} but no assignment", "9BAD=1"]) + "\n")
    notes: list[str] = []
    values = secrets_step.read_dotenv(path, notes.append)
    assert values == {"PLAIN": "abc", "EXPORTED": "def", "SPACED": "ghi",
                      "DOUBLE": "with # hash", "SINGLE": "x=y", "COMMENTED": "jkl", "EMPTY": ""}
    assert notes == [f"skipped line 10 of {path}: not KEY=VALUE",
                     f"skipped line 11 of {path}: not KEY=VALUE"]
    assert secrets_step.read_dotenv(tmp_path / "missing") == {}


def test_an_empty_dotenv_value_is_not_a_secret(tmp_path, isolated, monkeypatch):
    dotenv(isolated, "HF=\n")
    monkeypatch.setenv("HF", VALUE)
    bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF"\n'))
    assert os.environ["HF_TOKEN"] == VALUE     # .env had it empty: the environment's wins


# -- Colab ------------------------------------------------------------------------------

def test_colab_secrets(tmp_path, colab, isolated):
    server_side = colab.secrets({"HF_TOKEN": VALUE, "WANDB": OTHER})
    report = bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF_TOKEN"\n'
                                               'WANDB_API_KEY = "WANDB"\n'))
    assert (os.environ["HF_TOKEN"], os.environ["WANDB_API_KEY"]) == (VALUE, OTHER)
    assert report.step("secrets").notes == ["HF_TOKEN from Colab secrets",
                                            "WANDB_API_KEY from Colab secrets"]
    assert colab.calls() == ["get HF_TOKEN", "get WANDB"]
    shown = everything_shown(report)
    assert VALUE not in shown and OTHER not in shown
    assert files_containing(tmp_path, VALUE, besides=(server_side,)) == []


def test_colab_secret_missing_falls_back_to_dotenv(tmp_path, colab, isolated):
    colab.secrets({})
    dotenv(isolated, f"HF_TOKEN={VALUE}\n")
    report = bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF_TOKEN"\n'))
    assert os.environ["HF_TOKEN"] == VALUE
    assert report.step("secrets").notes == ["HF_TOKEN from the store's .env"]


def test_colab_secret_missing_everywhere(tmp_path, colab):
    colab.secrets({})
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF_TOKEN"\n'))
    error = caught.value
    assert error.details.splitlines()[0] == "Colab secrets: there is no secret named HF_TOKEN"
    assert error.hint.startswith("add it in Colab: the key icon in the left sidebar > Add new "
                                 "secret, name HF_TOKEN, and turn on Notebook access; or add ")


def test_colab_secret_without_notebook_access(tmp_path, colab):
    colab.secrets({"HF_TOKEN": {"value": VALUE, "access": False}})
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF_TOKEN"\n'))
    error = caught.value
    assert error.what == "secret HF_TOKEN (for HF_TOKEN) was not found"
    assert "Colab secrets: this notebook has no access to secret HF_TOKEN" in error.details
    assert "turn on 'Notebook access' for HF_TOKEN" in error.hint
    assert VALUE not in everything_shown(error.report, error)
    assert "HF_TOKEN" not in os.environ


def test_a_page_that_does_not_answer_is_asked_once(tmp_path, colab, isolated, monkeypatch):
    from google.colab import _message

    monkeypatch.delenv("FAKE_COLAB_PAGE")                 # a kernel whose page is gone
    monkeypatch.setenv("FAKE_COLAB_PAGE_WAIT", "0")
    monkeypatch.setattr(_message.ipython, "get_kernelapp", lambda: object())
    dotenv(isolated, f"WANDB={OTHER}\n")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nWANDB_API_KEY = "WANDB"\n'
                                          'HF_TOKEN = "HF_TOKEN"\n'))
    error = caught.value
    assert os.environ["WANDB_API_KEY"] == OTHER
    assert colab.calls() == ["get WANDB"]         # the second secret did not wait again
    assert error.details.splitlines()[0] == (
        "Colab secrets: Colab's secret store did not answer (secrets can only be fetched when "
        "running from the Colab UI)")
    assert "run the restore from the notebook open in Colab's UI" in error.hint
    assert OTHER not in everything_shown(error.report, error)


@pytest.mark.parametrize("how", ["process", "kernel"])
def test_colab_secrets_without_the_page_fall_back_at_once(tmp_path, colab, isolated,
                                                          monkeypatch, how):
    colab.secrets({"WANDB": "from-colab", "HF_TOKEN": "from-colab"})
    colab.without_page()
    if how == "kernel":
        monkeypatch.setenv("BOOTSTRAP_COLAB_PAGE", "kernel")
    dotenv(isolated, f"WANDB={OTHER}\n")
    monkeypatch.setenv("HF_TOKEN_SOURCE", VALUE)
    report = bootstrap.restore(write_profile(
        tmp_path, '[secrets]\nWANDB_API_KEY = "WANDB"\nHF_TOKEN = "HF_TOKEN_SOURCE"\n'))
    assert (os.environ["WANDB_API_KEY"], os.environ["HF_TOKEN"]) == (OTHER, VALUE)
    where = "a plain process" if how == "process" else "a kernel not connected to it"
    assert report.step("secrets").notes == [
        f"Colab's secrets can only be read from the notebook page, not from {where}: using "
        "the store's .env, the environment",
        "WANDB_API_KEY from the store's .env", "HF_TOKEN from the environment"]
    assert colab.calls() == []
    assert VALUE not in everything_shown(report) and OTHER not in everything_shown(report)


def test_colab_refuses_a_name_with_a_space(colab):
    colab.secrets({})
    sources = secrets_step.Sources(step_context(""))
    with pytest.raises(secrets_step.Miss) as caught:
        sources.fetch("colab", "HF TOKEN")
    assert caught.value.reason == "Colab refused the name 'HF TOKEN'"


# -- Kaggle ---------------------------------------------------------------------------

def test_kaggle_secrets(tmp_path, kaggle):
    kaggle.secrets({"HF_TOKEN": VALUE})
    report = bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF_TOKEN"\n'))
    assert report.platform == "Kaggle"
    assert os.environ["HF_TOKEN"] == VALUE
    assert report.step("secrets").notes == ["HF_TOKEN from Kaggle secrets"]
    assert VALUE not in everything_shown(report)


def test_kaggle_secret_not_attached(tmp_path, kaggle):
    kaggle.secrets({})
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF_TOKEN"\n'))
    error = caught.value
    assert error.details.splitlines()[0] == \
        "Kaggle secrets: no secret labelled HF_TOKEN is attached to this notebook"
    assert error.hint.startswith("in the notebook editor: Add-ons > Secrets, add HF_TOKEN")


def test_kaggle_offline_and_outside_a_session(tmp_path, kaggle, isolated, monkeypatch):
    dotenv(isolated, f"HF_TOKEN={VALUE}\n")
    kaggle.offline()
    report = bootstrap.restore(write_profile(tmp_path, '[secrets]\nHF_TOKEN = "HF_TOKEN"\n'))
    assert report.step("secrets").notes == ["HF_TOKEN from the store's .env"]

    monkeypatch.delenv("KAGGLE_USER_SECRETS_TOKEN")
    monkeypatch.delenv("HF_TOKEN")
    ctx = step_context('[secrets]\nHF_TOKEN = "HF_TOKEN"\n')
    with pytest.raises(secrets_step.Miss) as caught:
        secrets_step.Sources(ctx).fetch("kaggle", "HF_TOKEN")
    assert caught.value.reason == ("Kaggle's secret service is not available (CredentialError: "
                                   "this is not a Kaggle notebook session)")


def test_kaggle_internet_off_is_asked_once_and_said_so(tmp_path, kaggle, isolated):
    kaggle.secrets({"A": "a-value-000", "B": "b-value-000"})
    kaggle.offline()
    dotenv(isolated, "A=from-dotenv-000\n")
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nVAR_A = "A"\nVAR_B = "B"\n'))
    error = caught.value
    assert os.environ["VAR_A"] == "from-dotenv-000"
    assert error.details.splitlines()[0] == (
        "Kaggle secrets: Kaggle's secret service could not be reached (the notebook's internet "
        "is off)")
    assert "turn the internet on in the notebook's Settings" in error.hint


@pytest.mark.parametrize("status, reason", [
    (403, "Kaggle's secret service refused this session (HTTP 403)"),
    (401, "Kaggle's secret service refused this session (HTTP 401)"),
    (503, "Kaggle's secret service failed (HTTP 503)")])
def test_kaggle_http_errors_are_told_apart_from_internet_off(
        tmp_path, kaggle, status, reason):
    kaggle.secrets({"A": "a-value-000", "B": "b-value-000"})
    kaggle.statuses["A"] = status
    with pytest.raises(StepError) as caught:
        bootstrap.restore(write_profile(tmp_path, '[secrets]\nVAR_A = "A"\nVAR_B = "B"\n'))
    error = caught.value
    assert error.what == "secret A (for VAR_A) was not found"
    assert error.details.splitlines()[0] == f"Kaggle secrets: {reason}"
    assert "internet" not in error.details + error.hint
    assert kaggle.asked() == ["A"]


def test_one_kaggle_failure_leaves_the_source_on_for_the_next_secret(tmp_path, kaggle, isolated):
    kaggle.secrets({"B": "b-value-000"})
    kaggle.statuses["A"] = 500
    dotenv(isolated, "A=from-dotenv-000\n")
    report = bootstrap.restore(write_profile(tmp_path, '[secrets]\nVAR_A = "A"\nVAR_B = "B"\n'))
    assert report.step("secrets").notes == ["VAR_A from the store's .env",
                                            "VAR_B from Kaggle secrets"]
    assert kaggle.asked() == ["A", "B"]
    assert "b-value-000" not in everything_shown(report)
