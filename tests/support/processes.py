"""Counting the programs a restore starts: ``started`` records every real Popen call."""

from __future__ import annotations

import subprocess

import pytest


class Started(list):
    """argv lists of the processes started since the fixture was set up (or cleared)."""

    def programs(self) -> list[str]:
        return [str(argv[0]).rsplit("/", 1)[-1] for argv in self]


@pytest.fixture
def started(monkeypatch) -> Started:
    seen = Started()
    real = subprocess.Popen

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, args, *rest, **kwargs):
            seen.append(list(args) if not isinstance(args, (str, bytes)) else [args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return seen
