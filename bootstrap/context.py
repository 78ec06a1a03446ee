"""What a restore step may read and use: the profile, platform, store and target Python.

Steps receive a ``Context``; they expand placeholders, report progress lines
and run programs through it, and share facts (the GPU found, the
distributions changed) in ``state``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, MutableMapping, Sequence

from . import process
from .errors import Problem, ProfileError
from .platform import Platform
from .profile import Profile, check_expanded, expand
from .report import Event, Progress
from .store import Store


def _cwd() -> Path:
    try:
        return Path.cwd()
    except OSError:  # the folder was removed under this process
        return Path.home()


def cpus() -> int:
    """The CPUs this process may use (``{cpus}``: ``make -j{cpus}``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class Context:
    profile: Profile
    platform: Platform
    store: Store
    python: str
    dry_run: bool = False
    force: bool = False
    progress: Progress | None = None
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)
    state: dict[str, Any] = field(default_factory=dict)
    #: what ``when`` conditions are decided on (bootstrap.conditions.Facts)
    facts: Any = None
    #: the folder the restore started in: where a [[run]] entry without cwd runs
    start_dir: Path = field(default_factory=lambda: _cwd())
    step: str = ""
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def where(self, key: str) -> str:
        """``vision.toml: pip.packages[2]``-style location for messages."""
        return f"{self.profile.source}: {key}"

    def placeholders(self) -> dict[str, str]:
        values = {"drive": str(self.platform.drive_root), "store": str(self.store.root),
                  "home": str(Path.home()), "python": self.python, "cpus": str(cpus())}
        origin = self.profile.origin
        if origin and "://" not in origin:
            values["here"] = str(Path(origin).resolve().parent)
        return values

    def holds(self, when: str | None) -> bool:
        """Whether an entry with this ``when`` applies on this machine."""
        return when is None or self.facts is None or self.facts.holds(when)

    def expand(self, text: str, key: str) -> str:
        """``text`` with placeholders filled in, checked again by the rule of ``key``."""
        where = self.where(key)
        expanded = expand(text, self.placeholders(), self.environ, where=where)
        check_expanded(key, text, expanded, where=where)
        return expanded

    def expand_in_order(self, entries: Mapping[str, str], environ: Mapping[str, str],
                        key: str) -> dict[str, str]:
        """Expand ``entries`` one after another, each seeing the ones before it in
        ``environ`` (``[env]``, a command's ``env``)."""
        scratch = dict(environ)
        out: dict[str, str] = {}
        for name, value in entries.items():
            out[name] = scratch[name] = expand(value, self.placeholders(), scratch,
                                               where=self.where(f"{key}.{name}"))
        return out

    def path(self, text: str, key: str, *, base: Path | None = None) -> Path:
        """Expand a path; a relative one is taken against ``base`` (default: the Drive root)."""
        expanded = self.expand(text, key)
        try:
            path = Path(expanded).expanduser()
        except RuntimeError:  # ~name of a user this machine does not have
            raise ProfileError(Problem(self.where(key), "names a home folder this machine does "
                                       "not have", expanded, "write the full path, or ~/ for "
                                       "your own home folder")) from None
        if not path.is_absolute():
            path = (base or self.platform.drive_root) / path
        return path

    def say(self, line: str) -> None:
        """A progress line for the running step (command output, download status)."""
        if self.progress is not None:
            self.progress(Event("line", self.step, line))

    def note(self, text: str) -> None:
        """A note that belongs in the report row of the running step."""
        self.notes.append(text)

    def detail(self, text: str) -> None:
        """How the running step did its work (lock files, store traffic): --verbose only."""
        self.details.append(text)

    def run(self, argv: Sequence[str], **kwargs: Any) -> process.Completed:
        kwargs.setdefault("on_line", self.say)
        kwargs.setdefault("step", self.step)
        return process.run(argv, **kwargs)
