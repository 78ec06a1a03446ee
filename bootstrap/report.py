"""What a restore did: one row per step, rendered as aligned text or an HTML table.

Progress is a stream of ``Event`` values handed to a callback while steps run;
the CLI prints them, the magics update a display area with them. Everything
rendered, and every progress line, is masked of secrets (``redact``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .redact import mask

SATISFIED = "satisfied"   # nothing to do, already as the profile says
CHANGED = "changed"       # apply() ran and the re-check holds
PLANNED = "planned"       # dry run: apply() would run
FAILED = "failed"
SKIPPED = "skipped"       # left out by --only/--skip, or not in the profile

OUTCOMES = (SATISFIED, CHANGED, PLANNED, FAILED, SKIPPED)
#: a plan ("3 of 5 requirements to install") as what was done ("installed 3 of 5 requirements")
_TO_DO = re.compile(r"^(?P<what>.+?) to (?P<verb>install|fetch|set|run|update)$")
_PAST = {"install": "installed", "fetch": "fetched", "set": "set", "run": "ran",
         "update": "updated", "mount": "mounted", "create": "created",
         "change into": "changed into"}
_DOING = re.compile(r"^(?P<verb>mount|create|change into) (?P<what>.+)$")


def done(plan: str, after: str) -> str:
    """The row of a step that just changed something: what it did, from its plan.

    ``after`` (what the re-check found, e.g. "1 requirement met") is used when
    the plan does not read as an action.
    """
    match = _TO_DO.match(plan)
    if match:
        return f"{_PAST[match['verb']]} {match['what']}"
    match = _DOING.match(plan)
    if match:
        return f"{_PAST[match['verb']]} {match['what']}"
    return after


@dataclass
class StepResult:
    name: str
    outcome: str
    summary: str = ""
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    #: how it was done (lock files, store traffic, wheel sources): shown with --verbose
    details: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # ``data`` is the step's working state (a [variables] step's values...): named only
        return mask(f"StepResult(name={self.name!r}, outcome={self.outcome!r}, "
                    f"summary={self.summary!r}, actions={self.actions!r}, notes={self.notes!r}, "
                    f"seconds={self.seconds!r}, data=<{', '.join(map(str, self.data))}>, "
                    f"details={self.details!r})")

    @property
    def neutral(self) -> bool:
        """Satisfied because nothing was asked of it (no GPU where none is required)."""
        return self.outcome == SATISFIED and bool(self.data.get("neutral"))


@dataclass
class Event:
    """A progress event: ``kind`` is "start", "line" (output of a running step) or "end"."""

    kind: str
    step: str
    text: str = ""
    result: StepResult | None = None

    def __post_init__(self) -> None:
        self.text = mask(self.text)


Progress = Callable[[Event], None]


@dataclass
class Report:
    profile: str
    origin: str | None = None
    platform: str = ""
    python: str = ""
    dry_run: bool = False
    steps: list[StepResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: modules the running interpreter imported before the install replaced them
    stale: list[str] = field(default_factory=list)
    #: the profile's [variables], expanded: names for the notebook
    variables: dict[str, str] = field(default_factory=dict)
    #: (distribution, old version or None, new version) the whole restore changed
    installed_changes: list[tuple[str, str | None, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.outcome != FAILED for r in self.steps)

    @property
    def changed(self) -> bool:
        return any(r.outcome == CHANGED for r in self.steps)

    def step(self, name: str) -> StepResult | None:
        return next((r for r in self.steps if r.name == name), None)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.steps)

    def headline(self) -> str:
        what = "dry run of" if self.dry_run else "restore of"
        counts = {o: sum(1 for r in self.steps if r.outcome == o) for o in OUTCOMES}
        parts = [f"{n} {o}" for o, n in counts.items() if n]
        return f"{what} {self.profile} on {self.platform}: {', '.join(parts) or 'no steps'} " \
               f"in {self.seconds:.2f} s"

    def text(self, *, verbose: bool = False) -> str:
        """Aligned rows: step, outcome, time, what happened; ``verbose`` adds how."""
        rows = [(r.name, r.outcome, f"{r.seconds:.2f}s", r.summary) for r in self.steps]
        widths = [max([len(row[i]) for row in rows] + [4]) for i in range(3)]
        lines = [self.headline()]
        for (name, mark, secs, summary), r in zip(rows, self.steps, strict=True):
            lines.append(f"  {name:<{widths[0]}}  {mark:<{widths[1]}}  {secs:>{widths[2]}}  "
                         f"{summary}".rstrip())
            pad = " " * (widths[0] + widths[1] + widths[2] + 8)
            for action in r.actions if r.outcome in (CHANGED, PLANNED) else ():
                lines.append(f"{pad}- {action}")
            for note in r.notes:
                lines.append(f"{pad}note: {note}")
            for detail in r.details if verbose else ():
                lines.append(f"{pad}detail: {detail}")
        lines.extend(f"note: {note}" for note in self.notes)
        return mask("\n".join(lines))

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        # the plain-text form a notebook saves beside the HTML: ``variables`` hold real values
        import dataclasses

        from .redact import shown_values

        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["variables"] = shown_values(self.variables)
        return mask(f"Report({', '.join(f'{name}={value!r}' for name, value in values.items())})")

    def _repr_html_(self) -> str:
        import html

        colour = {SATISFIED: "#2e7d32", CHANGED: "#1565c0", PLANNED: "#6a1b9a",
                  FAILED: "#c62828", SKIPPED: "#757575"}
        rows = []
        for r in self.steps:
            extra = "".join(f"<li>{html.escape(mask(a))}</li>" for a in
                            (r.actions if r.outcome in (CHANGED, PLANNED) else []))
            extra += "".join(f"<li><i>note:</i> {html.escape(mask(n))}</li>" for n in r.notes)
            detail = html.escape(mask(r.summary)) + (
                f"<ul style='margin:0'>{extra}</ul>" if extra else "")
            if r.details:
                detail += ("<details><summary style='color:#757575'>details</summary>"
                           "<ul style='margin:0;color:#757575'>"
                           + "".join(f"<li>{html.escape(mask(d))}</li>" for d in r.details)
                           + "</ul></details>")
            shade = colour[SKIPPED] if r.neutral else colour[r.outcome]
            rows.append(
                f"<tr><td><code>{html.escape(r.name)}</code></td>"
                f"<td style='color:{shade};font-weight:bold'>{r.outcome}</td>"
                f"<td style='text-align:right'>{r.seconds:.2f}&nbsp;s</td>"
                f"<td style='text-align:left'>{detail}</td></tr>")
        notes = "".join(f"<p><b>note:</b> {html.escape(mask(n))}</p>" for n in self.notes)
        return (f"<div class='bootstrap-report'><p><b>{html.escape(mask(self.headline()))}</b></p>"
                "<table><thead><tr><th>step</th><th>outcome</th><th>time</th>"
                "<th style='text-align:left'>details</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>{notes}</div>")
