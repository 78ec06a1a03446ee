"""Every profile shipped in examples/ and profiles/ passes `bootstrap validate`, and the
docs point to the recipes, naming each one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bootstrap.cli import main

REPO = Path(__file__).resolve().parents[2]
PROFILES = sorted([*(REPO / "examples").rglob("*.toml"), *(REPO / "profiles").rglob("*.toml")])


def test_there_are_profiles_to_check():
    names = {path.stem for path in PROFILES}
    assert {"demo", "c-tool-from-git", "llama-cpp-cuda", "whisper-transcribe"} <= names
    assert len(list((REPO / "examples" / "recipes").glob("*.toml"))) >= 17


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_bootstrap_validate_passes(path, capsys):
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.strip(), "validate says what it found"


def test_the_docs_link_to_the_recipes_and_name_each_one():
    profile_md = (REPO / "docs" / "profile.md").read_text(encoding="utf-8")
    assert "](../examples/recipes/)" in profile_md
    assert (REPO / "docs" / "../examples/recipes").is_dir()
    assert "](examples/recipes/)" in (REPO / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z0-9-]+)`", profile_md))
    missing = [p.stem for p in (REPO / "examples" / "recipes").glob("*.toml")
               if p.stem not in named]
    assert missing == [], "recipes not named in docs/profile.md"
