"""The report's words: one vocabulary in text and HTML, what a changed row did, details apart."""

from __future__ import annotations

import pytest

from bootstrap.report import CHANGED, OUTCOMES, SATISFIED, Report, StepResult, done


@pytest.mark.parametrize("plan, after, said", [
    ("3 of 5 requirements to install", "5 requirements met", "installed 3 of 5 requirements"),
    ("1 variable to set", "1 variable set", "set 1 variable"),
    ("2 of 2 files to fetch", "2 files in place", "fetched 2 of 2 files"),
    ("mount Drive at /content/drive", "Drive present", "mounted Drive at /content/drive"),
    ("change into /content/x", "in /content/x", "changed into /content/x"),
    ("setup.ipynb: not run on this VM yet", "setup.ipynb ran at 10:00", "setup.ipynb ran at 10:00"),
])
def test_a_changed_row_says_what_it_did(plan, after, said):
    assert done(plan, after) == said


def report() -> Report:
    return Report("demo", platform="local machine", steps=[
        StepResult("gpu", SATISFIED, "no GPU: nvidia-smi is not on PATH", data={"neutral": True}),
        StepResult("pip", CHANGED, "installed 1 of 1 requirements",
                   actions=["install alpha==1.0 (not installed)"], notes=["alpha 1.0 added"],
                   details=["wrote /store/profiles/locks/pylock.demo.toml (1 package)",
                            "saving 1 wheel to the store in the background"]),
        StepResult("env", SATISFIED, "1 variable set"),
    ])


def test_text_and_html_use_the_same_words_and_keep_details_apart():
    text = report().text()
    rows = [line.split()[:2] for line in text.splitlines()[1:] if not line.startswith("   ")]
    assert rows == [["gpu", "satisfied"], ["pip", "changed"], ["env", "satisfied"]]
    assert "pylock" not in text and "background" not in text
    assert "note: alpha 1.0 added" in text
    verbose = report().text(verbose=True)
    assert "detail: wrote /store/profiles/locks/pylock.demo.toml (1 package)" in verbose
    html = report()._repr_html_()
    for outcome in ("satisfied", "changed"):
        assert f">{outcome}</td>" in html
    assert all(word in OUTCOMES for word in ("satisfied", "changed", "planned", "skipped",
                                             "failed"))
    # the details are folded away in HTML
    assert "<details><summary" in html and "pylock.demo.toml" in html


def test_a_gpu_that_is_neither_asked_for_nor_there_is_not_green():
    html = report()._repr_html_()
    gpu_row, _, env_row = html.split("<tr><td><code>")[1:]
    assert "#2e7d32" not in gpu_row            # not the green of a satisfied step
    assert "#757575" in gpu_row
    assert "#2e7d32" in env_row


def test_the_gpu_step_marks_a_missing_gpu_neutral_only_when_none_is_required(
        isolated, monkeypatch):
    import os

    from bootstrap import restore
    from bootstrap.profile import parse
    from tests.support.fakes import FAKES

    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "none")
    plain = parse('[env]\nNB_REPORT_TEST = "1"\n', source="plain.toml")
    assert restore(plain, only=["gpu"]).step("gpu").neutral
    monkeypatch.setenv("FAKE_NVIDIA_SMI", "t4")
    row = restore(plain, only=["gpu"]).step("gpu")
    assert row.outcome == SATISFIED and not row.neutral
