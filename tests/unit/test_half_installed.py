"""Distributions an interrupted install left half done are not taken as installed, and are
repaired by the next restore."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import bootstrap
from bootstrap.interpreter import inspect
from bootstrap.report import CHANGED, SATISFIED
from tests.support.venvs import installed


def site(venv: Path) -> Path:
    return next(venv.parent.parent.glob("lib/python*/site-packages"))


def profile(tmp_path: Path, wheelhouse: Path) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(f'[pip]\npackages = ["beta", "gamma[fast]"]\nno_index = true\n'
                    f'find_links = ["{wheelhouse}"]\n')
    return path


def imports(venv: Path, *modules: str) -> bool:
    code = "; ".join(f"import {m}" for m in modules)
    return subprocess.run([str(venv), "-c", code], capture_output=True).returncode == 0


def test_the_next_restore_repairs_what_an_interrupted_install_left(tmp_path, wheelhouse,
                                                                    fresh_venv):
    path = profile(tmp_path, wheelhouse)
    bootstrap.restore(str(path), python=str(fresh_venv))
    packages = site(fresh_venv)
    # uv killed at three moments: a .dist-info with only RECORD, one with only a temp
    # file, and a complete one whose module was not linked yet
    alpha = next(packages.glob("alpha-*.dist-info"))
    for item in alpha.iterdir():
        if item.name != "RECORD":
            item.unlink()
    delta = next(packages.glob("delta-*.dist-info"))
    shutil.rmtree(delta)
    delta.mkdir()
    (delta / ".tmpA1b2C3").write_bytes(b"")
    (packages / "beta.py").unlink()
    inspect.cache_clear()

    half = {h.label: h.reason for h in inspect(str(fresh_venv)).half_installed()}
    assert set(half) == {"alpha-2.0", "delta-0.5", "beta-1.0"}, half
    assert "METADATA" in half["alpha-2.0"] and "temporary" in half["delta-0.5"]
    assert "beta.py is missing" in half["beta-1.0"]
    assert not {"alpha", "beta", "delta"} & set(installed(fresh_venv))

    report = bootstrap.restore(str(path), python=str(fresh_venv))
    pip = report.step("pip")
    assert pip.outcome == CHANGED
    assert sum("was half installed" in note for note in pip.notes) == 3, pip.notes
    assert installed(fresh_venv) == {"alpha": "2.0", "beta": "1.0", "gamma": "3.1",
                                     "delta": "0.5"}
    assert imports(fresh_venv, "alpha", "beta", "gamma", "delta")
    again = bootstrap.restore(str(path), python=str(fresh_venv))
    assert again.step("pip").outcome == SATISFIED


def test_sound_folders_are_not_read_again(tmp_path, wheelhouse, fresh_venv, monkeypatch):
    bootstrap.restore(str(profile(tmp_path, wheelhouse)), python=str(fresh_venv))
    # folders changed within the last seconds are read again (a change in the same clock
    # tick would not show); these were installed a while ago
    then = time.time() - 60
    for folder in [*site(fresh_venv).glob("*.dist-info"), site(fresh_venv)]:
        os.utime(folder, (then, then))
    interp = inspect(str(fresh_venv))
    assert interp.half_installed() == []
    opened = []
    real_open = open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    assert interp.half_installed() == [] and not any("RECORD" in f for f in opened)
    # a change inside a .dist-info is seen again
    (next(site(fresh_venv).glob("gamma-*.dist-info")) / "METADATA").unlink()
    assert [h.label for h in interp.half_installed()] == ["gamma-3.1"]
