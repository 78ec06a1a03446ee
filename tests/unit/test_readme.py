"""The README is the front door: short, its commands the real ones, its links and picture real."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
TEST_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
                ".venv/bin/python -m pytest")


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def test_the_readme_is_short_and_its_first_screen_has_the_vm_install_cell():
    assert len(README.splitlines()) <= 200
    first_screen = "\n".join(README.splitlines()[:40])
    first_cell = code_blocks(first_screen)[0]
    assert first_cell.splitlines()[0].startswith("%pip install -q notebook-bootstrap")
    assert "%load_ext bootstrap" in first_cell and "%restore_env " in first_cell


def test_the_fresh_machine_commands_are_the_demo_and_the_tests_ci_runs():
    bash = [block.strip() for block in code_blocks(README)
            if block.strip().startswith("python3 -m venv")]
    demo, tests = bash[:2]
    assert "bootstrap restore demo --python /tmp/bootstrap-demo-venv/bin/python" in demo
    assert tests == TEST_COMMAND
    assert TEST_COMMAND in (REPO / ".ci" / "run").read_text().splitlines()


def test_every_link_and_picture_in_the_readme_exists():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert "docs/restore-report.svg" in targets and "docs/profile.md" in targets
    for target in targets:
        assert (REPO / target).is_file() or (target.endswith("/") and (REPO / target).is_dir()), \
            target
    for topic in re.findall(r"`%bootstrap_help (\w[\w-]*)`", README):
        from bootstrap.manual import lookup

        assert lookup(topic).text


def test_the_picture_is_drawn_from_a_real_restore(tmp_path, monkeypatch):
    import subprocess

    out = tmp_path / "report.svg"
    subprocess.run([sys.executable, str(REPO / "examples" / "make_screenshot.py"), str(out)],
                   check=True, capture_output=True, cwd=tmp_path, timeout=300)
    fresh, kept = out.read_text(), (REPO / "docs" / "restore-report.svg").read_text()

    def rows(svg: str) -> list[tuple[str, str]]:
        return re.findall(r">  (\w+) +<tspan fill='#[0-9a-f]+' font-weight='bold'>(\w+)<", svg)

    assert rows(fresh) == [("gpu", "satisfied"), ("env", "changed"), ("pip", "changed"),
                           ("workdir", "changed")]
    assert rows(kept) == rows(fresh)           # the picture in the repository is current
    assert "restore of demo on local machine: 1 satisfied, 3 changed" in fresh
    assert "installed 1 of 1 requirements" in fresh and "nb-demo-hello 1.0 added" in fresh
