"""The ``uv_log`` fixture: every uv call of notebook-bootstrap through a logging wrapper."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support.venvs import uv


@pytest.fixture
def uv_log(tmp_path, monkeypatch) -> Path:
    """Route every uv call through a wrapper that logs its argv, then runs the real uv."""
    log = tmp_path / "uv-calls.log"
    wrapper = tmp_path / "uv-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{uv()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("BOOTSTRAP_UV", str(wrapper))
    log.touch()
    return log
