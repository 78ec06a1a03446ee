"""The git step against real repositories made in tmp and cloned over file:// URLs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import bootstrap
from bootstrap.errors import StepError
from bootstrap.profile import GitRepo as GitEntry, Profile, parse
from bootstrap.report import CHANGED, PLANNED, SATISFIED
from bootstrap.steps import git as gitstep
from tests.support.gitrepo import GitRepo, head_of
from tests.support.wheels import project_files


@pytest.fixture
def origin(tmp_path, monkeypatch):
    """main: c1 (tag v1, annotated) -> c2 (tag v2, annotated; tag light); dev: c3."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    repo = GitRepo.create(tmp_path / "origin")
    repo.c1 = repo.commit(project_files("nbgitdemo", "1.0", package=True), "one")
    repo.tag("v1")
    repo.c2 = repo.commit(project_files("nbgitdemo", "2.0", package=True), "two")
    repo.tag("v2")
    repo.tag("light", lightweight=True)
    repo.branch("dev")
    repo.c3 = repo.commit({"DEV": "dev\n"}, "three")
    repo.switch("main")
    return repo


@pytest.fixture
def git_log(tmp_path, monkeypatch):
    """Every git process the step starts, through a logging wrapper first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "git.log"
    real = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    (folder / "git").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\n"
                                f"exec '{real}' \"$@\"\n")
    (folder / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def runs() -> list[str]:
        lines = log.read_text().splitlines() if log.exists() else []
        verbs = []
        for line in lines:  # the subcommand: the first word after "-c X" / "-C X" pairs
            words = line.split()
            while words and words[0] in ("-c", "-C"):
                words = words[2:]
            verbs.append(words[0])
        return verbs
    return runs


def restore(dest: Path, url: str, ref: str | None = None, **options) -> bootstrap.report.Report:
    entry = GitEntry(url=url, dest=str(dest), ref=ref,
                     install=options.pop("install", False), editable=options.pop("editable", True))
    return bootstrap.restore(Profile(name="t", git=[entry]), **options)


def test_clone_at_a_tag_is_shallow_and_then_satisfied_with_no_git_process(origin, tmp_path,
                                                                           git_log):
    dest = tmp_path / "work" / "repo"
    first = restore(dest, origin.url, "v1")
    row = first.step("git")
    assert row.outcome == CHANGED and row.summary == "updated 1 of 1 repositories"
    assert row.actions == [f"clone {origin.url} at v1 -> {dest} (not cloned yet)"]
    assert head_of(dest) == origin.c1
    assert (dest / ".git" / "shallow").read_text().strip() == origin.c1
    assert sorted(p.name for p in dest.parent.iterdir()) == ["repo"]
    assert git_log() == ["clone"]

    assert restore(dest, origin.url, "v1").step("git").outcome == SATISFIED
    assert git_log() == ["clone"]  # the second restore ran no git at all


def test_a_new_ref_is_fetched_into_the_existing_checkout(origin, tmp_path, git_log):
    dest = tmp_path / "repo"
    restore(dest, origin.url, "v1")
    second = restore(dest, origin.url, "v2")
    assert second.step("git").actions[0].endswith("(not at v2)")
    assert head_of(dest) == origin.c2
    assert git_log() == ["clone", "ls-remote", "fetch", "checkout", "pack-refs"]
    assert restore(dest, origin.url, "v2").step("git").outcome == SATISFIED
    restore(dest, origin.url, "light")  # a lightweight tag on the same commit: satisfied
    assert git_log()[-1] == "pack-refs" and len(git_log()) == 5


def test_a_branch_is_checked_out_and_not_followed_afterwards(origin, tmp_path):
    dest = tmp_path / "repo"
    restore(dest, origin.url, "dev")
    assert head_of(dest) == origin.c3
    assert (dest / ".git" / "HEAD").read_text().strip() == "ref: refs/heads/dev"
    origin.switch("dev")
    origin.commit({"MORE": "x\n"}, "four")
    assert restore(dest, origin.url, "dev").step("git").outcome == SATISFIED
    assert head_of(dest) == origin.c3
    # switching an existing checkout to another branch
    restore(dest, origin.url, "main")
    assert (dest / ".git" / "HEAD").read_text().strip() == "ref: refs/heads/main"
    assert head_of(dest) == origin.c2


def test_a_commit_is_fetched_alone(origin, tmp_path, git_log):
    dest = tmp_path / "repo"
    report = restore(dest, origin.url, origin.c1)
    assert head_of(dest) == origin.c1 and report.step("git").notes == []
    assert git_log() == ["init", "remote", "fetch", "checkout"]
    assert restore(dest, origin.url, origin.c1[:10]).step("git").outcome == SATISFIED


def test_a_server_that_refuses_single_commits_gets_a_full_fetch(origin, tmp_path, monkeypatch):
    # Protocol v0 servers refuse commits they do not advertise (git's own default).
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "0")
    dest = tmp_path / "repo"
    report = restore(dest, origin.url, origin.c1)
    assert head_of(dest) == origin.c1
    assert report.step("git").notes == [
        f"{origin.url} does not serve single commits; fetched its whole history"]


def test_a_short_commit_and_no_ref(origin, tmp_path):
    restore(tmp_path / "a", origin.url, origin.c1[:8])
    assert head_of(tmp_path / "a") == origin.c1
    restore(tmp_path / "b", str(origin.path))  # a plain path, no ref: the default branch
    assert head_of(tmp_path / "b") == origin.c2
    assert restore(tmp_path / "b", origin.url).step("git").outcome == SATISFIED


def test_an_unknown_ref_leaves_no_half_clone(origin, tmp_path):
    dest = tmp_path / "area" / "repo"
    with pytest.raises(StepError) as info:
        restore(dest, origin.url, "nope")
    assert "git failed with exit code 128" in info.value.what
    assert "nope" in info.value.details
    assert list((tmp_path / "area").iterdir()) == []


def test_an_empty_folder_is_cloned_into(origin, tmp_path):
    dest = tmp_path / "empty"
    dest.mkdir()
    restore(dest, origin.url, "v2")
    assert head_of(dest) == origin.c2


def test_something_else_at_dest_is_never_touched(origin, tmp_path):
    dest = tmp_path / "notes"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep\n")
    with pytest.raises(StepError) as info:
        restore(dest, origin.url, "v1")
    assert info.value.what == f"{dest} exists and is not a git checkout"
    assert "never replaced" in info.value.hint
    assert (dest / "mine.txt").read_text() == "keep\n"

    other = GitRepo.create(tmp_path / "other")
    other.commit({"x": "y"}, "other")
    restore(tmp_path / "clone", other.url)
    with pytest.raises(StepError) as info:
        restore(tmp_path / "clone", origin.url, "v1")
    assert info.value.what.endswith(f"is a checkout of {other.url}, not of {origin.url}")


def test_local_changes_are_not_overwritten(origin, tmp_path):
    dest = tmp_path / "repo"
    restore(dest, origin.url, "v1")
    (dest / "nbgitdemo" / "__init__.py").write_text("VERSION = 'mine'\n")
    with pytest.raises(StepError) as info:
        restore(dest, origin.url, "v2")
    assert "would be overwritten" in info.value.details
    assert (dest / "nbgitdemo" / "__init__.py").read_text() == "VERSION = 'mine'\n"


@pytest.mark.parametrize("url", ["--upload-pack=touch /tmp/x", "ext::sh -c touch% /tmp/x",
                                 "http://example.com/repo.git", "git://example.com/repo",
                                 "org/repo"])
def test_bad_urls_are_refused_before_git_runs(tmp_path, git_log, url):
    with pytest.raises(StepError) as info:
        restore(tmp_path / "repo", url)
    assert info.value.where.endswith(": git[0].url")
    assert git_log() == []


@pytest.mark.parametrize("ref", ["-b", "a..b", "v1 v2", "x.lock", "--orphan"])
def test_bad_refs_are_refused_before_git_runs(origin, tmp_path, git_log, ref):
    with pytest.raises(StepError) as info:
        restore(tmp_path / "repo", origin.url, ref)
    assert info.value.where.endswith(": git[0].ref")
    assert git_log() == []


def test_dry_run_and_a_profile_file(origin, tmp_path, isolated):
    text = (f'[[git]]\nurl = "{origin.url}"\nref = "v1"\ndest = "code/demo"\n')
    profile = parse(text, source="g.toml")
    report = bootstrap.restore(profile, dry_run=True)
    assert report.step("git").outcome == PLANNED
    assert not (isolated["drive"] / "code").exists()
    bootstrap.restore(profile)
    assert head_of(isolated["drive"] / "code" / "demo") == origin.c1  # relative to the Drive


def test_canonical_urls():
    same = [("https://github.com/Org/Repo.git", "https://GITHUB.com/Org/Repo/"),
            ("git@github.com:org/repo.git", "ssh://git@github.com/org/repo"),
            ("/srv/repo", "file:///srv/repo/.git")]
    for a, b in same:
        assert gitstep.canonical(a) == gitstep.canonical(b)
    assert gitstep.canonical("https://github.com/org/a") != \
        gitstep.canonical("https://github.com/org/b")


# -- install ---------------------------------------------------------------------------

def venv_version(python: Path) -> tuple[str, str]:
    out = subprocess.run([str(python), "-c", "import nbgitdemo; print(nbgitdemo.VERSION); "
                          "print(nbgitdemo.__file__)"], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split("\n")
    return out[0], out[1]


def test_install_editable_then_satisfied_then_follows_a_new_ref(origin, tmp_path, fresh_venv,
                                                                monkeypatch, git_log):
    monkeypatch.setenv("UV_OFFLINE", "1")  # the in-tree backend needs no download
    dest = tmp_path / "repo"
    first = restore(dest, origin.url, "v1", install=True, python=str(fresh_venv))
    assert first.step("git").actions[-1] == f"install {dest} editable into {fresh_venv}"
    version, where = venv_version(fresh_venv)
    assert (version, where) == ("1.0", str(dest / "nbgitdemo" / "__init__.py"))

    runs = len(git_log())
    again = restore(dest, origin.url, "v1", install=True, python=str(fresh_venv))
    assert again.step("git").outcome == SATISFIED and len(git_log()) == runs

    restore(dest, origin.url, "v2", install=True, python=str(fresh_venv))
    assert venv_version(fresh_venv)[0] == "2.0"
    from tests.support.venvs import installed
    assert installed(fresh_venv)["nbgitdemo"] == "2.0"


def test_install_not_editable_reinstalls_after_a_ref_change(origin, tmp_path, fresh_venv,
                                                            monkeypatch):
    monkeypatch.setenv("UV_OFFLINE", "1")
    dest = tmp_path / "repo"
    restore(dest, origin.url, "v1", install=True, editable=False, python=str(fresh_venv))
    version, where = venv_version(fresh_venv)
    assert version == "1.0" and "site-packages" in where
    # an editable install is asked for now: the non-editable one does not count
    report = restore(dest, origin.url, "v1", install=True, editable=True, python=str(fresh_venv),
                     dry_run=True)
    assert report.step("git").actions == [
        f"install {dest} editable into {fresh_venv} (installed without editable mode)"]
    restore(dest, origin.url, "v2", install=True, editable=False, python=str(fresh_venv))
    assert venv_version(fresh_venv)[0] == "2.0"


def test_a_token_in_the_url_is_not_kept_in_the_checkout(origin, tmp_path, monkeypatch):
    """.git/config (often on Drive) keeps the URL without credentials; updates still work."""
    url = "https://user:tok3n-s3cret@git.example.org/org/repo"
    # git itself reads the token URL as the local origin (url.<base>.insteadOf)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{origin.url}.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", url)
    lines: list[str] = []
    dest = tmp_path / "repo"
    first = bootstrap.restore(Profile(name="t", git=[GitEntry(url=url, dest=str(dest),
                                                              ref="v1")]),
                              progress=lambda event: lines.append(event.text))
    assert head_of(dest) == origin.c1
    config = (dest / ".git" / "config").read_text()
    assert "tok3n" not in config and "https://git.example.org/org/repo" in config
    assert "tok3n" not in first.text() + "\n".join(lines)
    # the next ref is fetched with the profile's URL, then nothing is left to do
    restore(dest, url, "v2")
    assert head_of(dest) == origin.c2 and "tok3n" not in (dest / ".git" / "config").read_text()
    assert restore(dest, url, "v2").step("git").outcome == SATISFIED
    other = tmp_path / "by-commit"
    restore(other, url, origin.c1)
    assert head_of(other) == origin.c1 and "tok3n" not in (other / ".git" / "config").read_text()
