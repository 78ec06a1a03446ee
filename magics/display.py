"""Showing a restore in IPython: one display area that updates in place, then the report.

In a kernel with a frontend (Jupyter, Colab, Kaggle, VS Code) the restore gets
one display area (``display(..., display_id=True)``) that is updated with each
step's state and the last line of its output (uv, downloads), and at the end
becomes the report (its ``_repr_html_`` for the page, its text for logs and
papermill). In a terminal IPython, where nothing can be updated in place,
progress is printed line by line, as the CLI does.
"""

from __future__ import annotations

import html
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from bootstrap.report import Event, Report

#: at most one in-place update per this many seconds for output lines
#: (step starts and ends always update), so chatty installers do not flood the page
THROTTLE_S = 0.2
LINE_WIDTH = 120
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def has_frontend(shell: Any) -> bool:
    """True in a kernel (a page can update a display area), False in a terminal."""
    return getattr(shell, "kernel", None) is not None


def report_bundle(report: Report, *, verbose: bool = False) -> dict[str, str]:
    # the HTML keeps the details folded away; the text shows them only when asked
    return {"text/plain": report.text(verbose=verbose), "text/html": report._repr_html_()}


def show(bundle: dict[str, Any]) -> None:
    from IPython.display import display

    display(bundle, raw=True)


def short(line: str, width: int = LINE_WIDTH) -> str:
    line = _ANSI.sub("", line).strip()
    return line if len(line) <= width else line[:width - 1] + "…"


@dataclass
class Row:
    step: str
    state: str = "running"
    line: str = ""
    seconds: float | None = None


class LiveView:
    """A progress callback for ``bootstrap.restore`` that draws into one display area."""

    def __init__(self, shell: Any, *, out: TextIO | None = None, rich: bool | None = None,
                 verbose: bool = False) -> None:
        self.rich = has_frontend(shell) if rich is None else rich
        self.verbose = verbose
        self.out = out
        self.rows: dict[str, Row] = {}
        self.handle: Any = None
        self._shown_at = 0.0
        self._dirty = False

    # -- the progress callback ---------------------------------------------------
    def __call__(self, event: Event) -> None:
        if event.kind == "start":
            self.rows[event.step] = Row(event.step)
        elif event.kind == "line":
            row = self.rows.setdefault(event.step, Row(event.step))
            if event.text.strip():
                row.line = short(event.text)
        elif event.kind == "end" and event.result is not None:
            row = self.rows.setdefault(event.step, Row(event.step))
            row.state = event.result.outcome
            row.line = short(event.result.summary)
            row.seconds = event.result.seconds
        if self.rich:
            self._draw(force=event.kind != "line")
        else:
            self._print(event)

    # -- the end -------------------------------------------------------------------
    def finish(self, report: Report | None) -> None:
        """Replace the live view with the (possibly partial) report."""
        if report is None:
            if self.rich and self._dirty:
                self._draw(force=True)
            return
        if self.rich:
            bundle = report_bundle(report, verbose=self.verbose)
            if self.handle is None:
                show(bundle)
            else:
                self.handle.update(bundle, raw=True)
        else:
            print(report.text(verbose=self.verbose), file=self._stream(), flush=True)

    # -- drawing -------------------------------------------------------------------
    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._shown_at < THROTTLE_S:
            self._dirty = True
            return
        bundle = {"text/plain": self.text(), "text/html": self.html()}
        if self.handle is None:
            from IPython.display import display

            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)
        self._shown_at, self._dirty = now, False

    def text(self) -> str:
        width = max([len(r.step) for r in self.rows.values()] + [4])
        lines = ["restoring..."]
        for r in self.rows.values():
            secs = f"{r.seconds:.2f}s" if r.seconds is not None else ""
            lines.append(f"  {r.step:<{width}}  {r.state:<9}  {secs:>7}  {r.line}".rstrip())
        return "\n".join(lines)

    def html(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(r.step)}</code></td><td>{html.escape(r.state)}"
            f"{'&hellip;' if r.state == 'running' else ''}</td>"
            f"<td style='text-align:right'>"
            f"{'' if r.seconds is None else f'{r.seconds:.2f}&nbsp;s'}</td>"
            f"<td style='text-align:left'><code>{html.escape(r.line)}</code></td></tr>"
            for r in self.rows.values())
        return ("<div class='bootstrap-progress'><p><b>restoring&hellip;</b></p>"
                f"<table><tbody>{rows}</tbody></table></div>")

    def _stream(self) -> TextIO:
        return self.out if self.out is not None else sys.stdout

    def _print(self, event: Event) -> None:
        out = self._stream()
        if event.kind == "start":
            print(f"-> {event.step}", file=out, flush=True)
        elif event.kind == "line":
            print(f"   {event.step}: {event.text}", file=out, flush=True)
        elif event.result is not None:
            print(f"<- {event.step}: {event.result.outcome} ({event.result.seconds:.2f} s)",
                  file=out, flush=True)
