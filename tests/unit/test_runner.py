"""The engine's protocol: check, apply, re-check; stop at the first failure; progress; report."""

from __future__ import annotations

import os
import types

import pytest

import bootstrap
from bootstrap import steps
from bootstrap.errors import StepError
from bootstrap.profile import parse
from bootstrap.report import CHANGED, FAILED, SATISFIED, Event
from bootstrap.steps import Check


def step_module(name, *, holds_after_apply=True, fail=False):
    state = {"applied": 0}

    def check(ctx):
        if state["applied"] and holds_after_apply:
            return Check(True, f"{name} holds")
        return Check(False, f"{name} missing", [f"make {name} hold"])

    def apply(ctx, plan):
        if fail:
            raise StepError(f"{name} broke", where=ctx.where(f"{name}.x"), hint="fix it")
        state["applied"] += 1

    module = types.SimpleNamespace(wanted=lambda profile: True, check=check, apply=apply)
    module.state = state
    return module


@pytest.fixture
def fake_steps(monkeypatch):
    modules = {}
    monkeypatch.setattr(steps, "ORDER", ("one", "two", "three"))
    monkeypatch.setattr(steps, "load", lambda name: modules[name])
    import bootstrap.runner as runner

    monkeypatch.setattr(runner.steps, "ORDER", ("one", "two", "three"))
    return modules


def test_postcondition_that_does_not_hold_fails_loudly(fake_steps):
    fake_steps.update(one=step_module("one"), two=step_module("two", holds_after_apply=False),
                      three=step_module("three"))
    with pytest.raises(StepError) as info:
        bootstrap.restore(parse("", source="t.toml"))
    error = info.value
    assert error.what == "two still does not hold after it was applied"
    assert error.step == "two" and "make two hold" in str(error)
    assert [(r.name, r.outcome) for r in error.report.steps] == [("one", CHANGED), ("two", FAILED)]
    assert fake_steps["three"].state["applied"] == 0  # nothing after a failure runs


def test_failure_stops_the_restore_and_progress_is_reported(fake_steps):
    fake_steps.update(one=step_module("one"), two=step_module("two", fail=True),
                      three=step_module("three"))
    events: list[Event] = []
    with pytest.raises(StepError) as info:
        bootstrap.restore(parse("", source="t.toml"), progress=events.append)
    assert [(e.kind, e.step) for e in events] == [("start", "one"), ("end", "one"),
                                                   ("start", "two"), ("end", "two")]
    assert str(info.value) == "error: two broke\n  where: t.toml: two.x\n  hint: fix it"
    assert info.value._render_traceback_() == str(info.value).splitlines()
    assert fake_steps["three"].state["applied"] == 0


def test_report_text_and_html(fake_steps):
    fake_steps.update(one=step_module("one"), two=step_module("two"), three=step_module("three"))
    report = bootstrap.restore(parse('name = "t"', source="t.toml"))
    assert report.ok and report.changed
    text = report.text()
    assert text.splitlines()[0].startswith("restore of t on local machine: 3 changed in ")
    assert "- make one hold" in text
    html = report._repr_html_()
    assert html.count("<tr><td><code>") == 3 and ">changed</td>" in html
    again = bootstrap.restore(parse('name = "t"', source="t.toml"))
    assert {r.outcome for r in again.steps} == {SATISFIED} or again.changed is False


def test_env_and_workdir_steps(tmp_path, isolated, monkeypatch):
    monkeypatch.delenv("NB_ONE", raising=False)
    monkeypatch.delenv("NB_TWO", raising=False)
    profile = tmp_path / "p.toml"
    profile.write_text('[env]\nNB_ONE = "{drive}/one"\nNB_TWO = "{env:HOME}:{store}"\n'
                       '[workdir]\npath = "proj/sub"\n')
    with pytest.raises(StepError) as info:
        bootstrap.restore(str(profile))
    assert info.value.what == f"working folder {isolated['drive'] / 'proj' / 'sub'} does not exist"
    assert "set create = true" in info.value.hint
    assert os.environ["NB_ONE"] == f"{isolated['drive']}/one"  # env ran before workdir
    assert os.environ["NB_TWO"] == f"{os.environ['HOME']}:{isolated['store']}"
    (isolated["drive"] / "proj" / "sub").mkdir(parents=True)
    report = bootstrap.restore(str(profile))
    assert [(r.name, r.outcome) for r in report.steps] == [("gpu", SATISFIED), ("env", SATISFIED),
                                                           ("workdir", CHANGED)]
    assert os.getcwd() == str(isolated["drive"] / "proj" / "sub")
