"""The manual: the reference docs shipped inside the package, by topic (``bootstrap help``).

A Colab user has no clone of the repository, so hints cannot say "see
README.md". The docs travel in the wheel as ``bootstrap/_docs`` (the top-level
``docs/`` folder in a checkout), and ``bootstrap help TOPIC``,
``%bootstrap_help TOPIC`` and ``bootstrap.help(TOPIC)`` print a whole file
(``profile``, ``saving``...) or one section of one (``pip``, ``secrets``,
``env_status``...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import OptionError

#: other words for the files' names
ALIASES = {"magics": "magics-and-cli", "cli": "magics-and-cli", "api": "magics-and-cli",
           "commands": "magics-and-cli", "setup": "setup-notebooks", "store": "platforms",
           "save": "saving", "profiles": "profile"}
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


@dataclass
class Manual:
    """A piece of the docs: markdown, shown as text in a terminal and rendered in notebooks."""

    topic: str
    text: str
    source: str = ""          # the file it came from, e.g. "profile.md"

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text


def docs_dir() -> Path:
    """The docs: ``bootstrap/_docs`` when installed, ``docs/`` beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_docs"
    return packaged if packaged.is_dir() else here.parent / "docs"


def topics() -> list[str]:
    return sorted(p.stem for p in docs_dir().glob("*.md"))


def headings(text: str) -> list[tuple[int, int, str]]:
    """(line index, level, title) of every markdown heading outside fenced code."""
    out, fenced = [], False
    for i, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            out.append((i, len(match[1]), match[2].strip()))
    return out


def _key(title: str) -> str:
    return re.sub(r"[`\[\]%]", "", title).strip().lower()


def _matches(title: str, topic: str) -> bool:
    key = _key(title)
    return key == topic or key.startswith((topic + ":", topic + " "))


def lookup(topic: str | None = None) -> Manual:
    """The docs for ``topic``: a file by name (or alias), else the first section titled so.

    Without a topic: the list of topics. Raises OptionError (with a
    did-you-mean) for a topic found nowhere.
    """
    folder = docs_dir()
    names = topics()
    if not names:
        raise OptionError("the documentation is not installed with this copy of "
                          "notebook-bootstrap", where=str(folder),
                          hint="reinstall it from a wheel or a clone of the repository")
    if not topic:
        lines = ["notebook-bootstrap help: `bootstrap help TOPIC` (`%bootstrap_help TOPIC`, "
                 "`bootstrap.help(TOPIC)`)", "", "Topics:"]
        for name in names:
            first = next((t for _, _, t in headings((folder / f"{name}.md").read_text()
                                                       )), name)
            lines.append(f"  {name:<16} {first}")
        lines += ["", "A section works too: pip, secrets, files, restore_env, env_status, ..."]
        return Manual("", "\n".join(lines))
    wanted = _key(topic)
    name = ALIASES.get(wanted, wanted)
    if name in names:
        return Manual(name, (folder / f"{name}.md").read_text(encoding="utf-8"), f"{name}.md")
    titles: list[str] = []
    for name in names:
        text = (folder / f"{name}.md").read_text(encoding="utf-8")
        found = headings(text)
        titles.extend(_key(t).split(":")[0] for _, _, t in found)
        for n, (start, level, title) in enumerate(found):
            if _matches(title, wanted):
                end = next((i for i, lvl, _ in found[n + 1:] if lvl <= level), None)
                lines = text.splitlines()[start:end]
                return Manual(wanted, "\n".join(lines).rstrip() + "\n", f"{name}.md")
    import difflib

    close = difflib.get_close_matches(wanted, [*names, *ALIASES, *titles], n=1)
    raise OptionError(f"no help on {topic!r}", where="bootstrap help",
                      hint=(f"did you mean {close[0]!r}? " if close else "")
                      + f"topics are: {', '.join(names)}")
