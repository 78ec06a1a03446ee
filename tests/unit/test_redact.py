"""Secrets never reach output or saved files: the one detector and every path through it."""

from __future__ import annotations

import json

import pytest

import bootstrap
from bootstrap import process, redact, vmstate
from bootstrap.capture import Capture, env_changes
from bootstrap.errors import BootstrapError, OptionError, Problem, ProfileError, StepError
from bootstrap.notebook import refuse_secrets
from bootstrap.report import Event, Report, StepResult
from bootstrap.saving import save
from tests.support.fakes import write_profile
from tests.support.httpserver import LoopbackServer

#: One value of every known shape (all made up).
SHAPES = {
    "huggingface": "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ01",
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "github_oauth": "gho_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4",
    "github_pat": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnop",
    "openai": "sk-" + "proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "slack": "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKl",
    "slack_hook": "https://hooks.slack.com/services/" + "T000/B000/XXXXXXXXXXXXXXXX",
    "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    "gitlab": "glpat-" + "AbCdEfGhIjKlMnOpQrSt",
    "ngrok": "2Ab" + "CdEfGhIjKlMnOpQrStUvWx_3aBcDeFgHiJkLmNoPqRs",
    "google": "AIza" + "SyA-abcdefghijklmnopqrstuvwxyz01234",
}


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_known_token_shapes_are_masked_anywhere(kind):
    secret = SHAPES[kind]
    for text in (secret, f"got {secret}.", f"x={secret}&y=1", f"'{secret}'"):
        masked = redact.mask(text)
        assert secret not in masked and redact.MASK in masked
        assert redact.looks_secret(secret)


def test_urls_lose_userinfo_and_signed_query_values():
    url = ("https://alice:pa55word@files.example.org/w.bin?token=t0k3n&v=2"
           "&X-Amz-Signature=5ig&X-Amz-Credential=cr3d&api_key=k3y&sig=s1g")
    masked = redact.mask(url)
    for secret in ("pa55word", "t0k3n", "5ig", "cr3d", "k3y", "s1g"):
        assert secret not in masked
    assert "alice" in masked and "v=2" in masked and "files.example.org/w.bin" in masked
    # a plain user name stays, a token standing as user name does not
    assert redact.mask("ssh://git@github.com/o/r") == "ssh://git@github.com/o/r"
    assert "0123456789abcdef0123" not in redact.mask("https://0123456789abcdef0123@h.example/")
    assert redact.clean_url(url) == ("https://files.example.org/w.bin?v=2", True)
    assert redact.clean_url("https://h.example/a?b=1") == ("https://h.example/a?b=1", False)


@pytest.mark.parametrize("name", ["HF_TOKEN", "NGROK_AUTHTOKEN", "MYSQL_PWD", "SSH_PASSPHRASE",
                                  "SLACK_WEBHOOK_URL", "SENTRY_DSN", "WANDB_API_KEY",
                                  "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "PGPASSWORD",
                                  "SESSION_COOKIE", "GOOGLE_APPLICATION_CREDENTIALS",
                                  "KAGGLE_KEY", "GH_PAT", "MY_PASSWD", "TOKEN", "API_KEYS",
                                  "NGROK_AUTH_TOKEN", "OPENAI_API_KEY"])
def test_secret_looking_names(name):
    assert redact.is_secret_name(name)


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "TOKENIZERS_PARALLELISM", "HOME", "PATH",
                                  "GIT_AUTHOR_NAME", "HF_HOME", "LANG", "SSH_AUTH_SOCK",
                                  "TOKENIZER_NAME", "HF_TOKENIZER", "XKB_KEYBOARD"])
def test_plain_names(name):
    assert not redact.is_secret_name(name)


def test_values_of_secret_named_and_declared_variables_are_masked(monkeypatch):
    monkeypatch.setenv("MYSQL_PWD", "plain-password-1")
    monkeypatch.setenv("ODD_NAME_XYZ", "plain-declared-2")
    monkeypatch.setenv("SHORT_KEY", "1")
    assert "plain-password-1" not in redact.mask("mysql -pplain-password-1")
    assert "plain-declared-2" in redact.mask("value plain-declared-2")
    redact.declare(["ODD_NAME_XYZ"])
    assert "plain-declared-2" not in redact.mask("value plain-declared-2")
    # short values of secret-named variables would mask every "1": left alone
    assert redact.mask("exit 1") == "exit 1"


def test_every_error_field_is_masked(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "not-a-shape-but-named")
    secret = "not-a-shape-but-named"
    error = StepError(f"download of https://h/x?token={secret} failed", where=f"curl {secret}",
                      details=f"line\nAuthorization: {secret}", hint=f"use {secret}")
    assert secret not in str(error) and secret not in "".join(error._render_traceback_())
    assert secret not in error.what + error.where + error.details + error.hint
    error.hint = f"set later: {secret}"    # masked when shown as well
    assert secret not in str(error)
    problem = ProfileError(Problem("p.toml: env.X", "bad", f"x {secret}", f"hint {secret}"))
    assert secret not in str(problem)


def test_printed_command_lines_are_masked():
    argv = ["false", "--index-url", "https://__token__:pypi-s3cr3t@h.example/simple",
            "git+https://ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8@github.com/o/r"]
    assert "s3cr3t" not in process.display(argv) and "ghp_" not in process.display(argv)
    with pytest.raises(StepError) as caught:
        process.run(argv)
    assert "s3cr3t" not in str(caught.value) and "ghp_A1" not in str(caught.value)


def test_report_rows_progress_and_html_are_masked():
    secret = SHAPES["huggingface"]
    report = Report(profile="p", steps=[StepResult("files", "planned", f"get {secret}",
                                                   actions=[f"download ?token={secret}"],
                                                   notes=[f"note {secret}"])],
                    notes=[secret])
    assert secret not in report.text() and secret not in report._repr_html_()
    assert secret not in Event("line", "files", f"GET {secret}").text


def test_a_token_placeholder_in_a_files_url_is_never_shown(tmp_path, monkeypatch):
    """A [secrets] value used through {env:...} in a URL: progress, error, dry run, VM record."""
    secret = "plain-looking-value-42"   # no known shape: only [secrets] makes it secret
    monkeypatch.setenv("DATA_ACCESS", secret)
    lines: list[str] = []
    with LoopbackServer(tmp_path) as server:
        path = write_profile(tmp_path, f'''
            version = 1
            name = "leak"
            [secrets]
            DATA_ACCESS = "DATA_ACCESS"
            [[files]]
            url = "{server.url}/missing.bin?access={{env:DATA_ACCESS}}"
            sha256 = "{"0" * 64}"
            dest = "{tmp_path}/out/missing.bin"
            ''')
        plan = bootstrap.restore(path, dry_run=True, progress=lambda e: lines.append(e.text))
        assert secret not in plan.text() + plan._repr_html_()
        with pytest.raises(BootstrapError) as caught:
            bootstrap.restore(path, progress=lambda e: lines.append(e.text))
        assert server.count("/missing.bin") >= 1
    error = caught.value
    shown = "\n".join([str(error), error.report.text(), error.report._repr_html_(), *lines])
    assert secret not in shown
    assert redact.MASK in shown


def test_vm_record_is_masked(tmp_path):
    spec = "https://h.example/p.toml?token=abcdef123456"
    vmstate.record(vmstate.Restored(profile="p", spec=spec, store=str(tmp_path),
                                    python="python", headline=f"restore of {spec}"))
    text = vmstate.state_path().read_text()
    assert "abcdef123456" not in text and json.loads(text)["spec"].endswith("token=***")


def test_save_keeps_references_for_secret_looking_variables(tmp_path):
    values = {"NGROK_AUTHTOKEN": "2Abcd_plain_value_1", "MYSQL_PWD": "plain-value-2",
              "SSH_PASSPHRASE": "plain value 3", "SLACK_WEBHOOK_URL": "https://example.org/h/4",
              "DATA_URL": "https://h.example/d?X-Amz-Signature=plainvalue5", "MODE": "fast"}
    cap = Capture(since=0)
    env_changes(cap, environ=dict(values, HOME="/root"), start={"HOME": "/root"})
    result = save("vm", captured=cap)
    saved = result.path.read_text()
    for name, value in values.items():
        if name != "MODE":
            assert value not in saved and f'{name} = "{name}"' in saved
    assert 'MODE = "fast"' in saved


def test_a_parameter_that_looks_secret_is_refused():
    for value in (SHAPES["github"], "https://u:pw@h.example/x", "https://h/x?sig=abc",
                  {"nested": [SHAPES["openai"]]}):
        with pytest.raises(OptionError, match="looks like a secret"):
            refuse_secrets({"p": value}, {}, "setup.parameters")
    refuse_secrets({"p": "https://h.example/x?page=2", "n": 3}, {}, "setup.parameters")


def test_error_fields_set_later_are_masked(monkeypatch):
    monkeypatch.setenv("API_TOKEN", "late-secret-value")
    error = StepError("failed")
    error.where = "https://h/x?access=late-secret-value"
    error.hint = "https://u:pw@h.example/"
    assert "late-secret-value" not in error.where and "pw@" not in error.hint


def test_a_kept_output_notebook_has_its_text_outputs_masked():
    from bootstrap.notebook import mask_outputs

    secret = SHAPES["github"]
    image = "iVBORw0KGgo" + "AKIAABCDEFGHIJKLMNOP"     # base64 that happens to look like a key
    data = {"cells": [{"cell_type": "code", "source": "print(token)", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": [f"token {secret}\n", "ok\n"]},
        {"output_type": "execute_result", "data": {"text/plain": f"'{secret}'",
                                                   "image/png": image}},
        {"output_type": "error", "ename": "E", "evalue": f"bad {secret}",
         "traceback": [f"line {secret}"]}]}]}
    mask_outputs(data)
    assert secret not in json.dumps(data)
    assert data["cells"][0]["outputs"][1]["data"]["image/png"] == image
    assert data["cells"][0]["outputs"][0]["text"][1] == "ok\n"


def test_a_package_from_a_signed_url_is_saved_without_its_secrets(tmp_path):
    from bootstrap import capture as cap_mod

    url = ("https://bucket.example.org/tool-1.2-py3-none-any.whl?token=t0k3n&v=2"
           "&X-Amz-Signature=s1gn4ture&X-Amz-Credential=AKIAABCDEFGHIJKLMNOP%2F20260101")
    dist = cap_mod.Dist("tool", "Tool", "1.2", tmp_path, True,
                        {"url": url, "archive_info": {}}, [])
    cap = Capture(since=0)
    entry = cap_mod.entry_for(dist, cap, None)
    assert entry == "Tool @ https://bucket.example.org/tool-1.2-py3-none-any.whl?v=2"
    assert any("removed credentials" in note for note in cap.notes)
    assert "t0k3n" not in repr(cap) and "s1gn4ture" not in repr(cap)
