"""Regenerate the README's picture of a restore report from a real run.

    python examples/make_screenshot.py [OUT.svg]      # default: docs/restore-report.svg

Restores the shipped ``demo`` profile into a fresh virtual environment (made
with uv; the demo's wheel ships with the package, so no network is needed),
with the store and the "Drive" in a scratch folder, and draws the report's
text as an SVG with the report's own colours. No dependency beyond
notebook-bootstrap itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "docs" / "restore-report.svg"
#: the HTML report's colours (bootstrap.report), and grey for a neutral row
COLOURS = {"satisfied": "#2e7d32", "changed": "#1565c0", "planned": "#6a1b9a",
           "failed": "#c62828", "skipped": "#757575", "neutral": "#757575"}
CHAR_W, LINE_H, PAD = 8.4, 20, 16


def real_run(scratch: Path) -> tuple[str, list[str]]:
    """Restore ``demo`` into a fresh venv; the command as typed and the report's lines."""
    import bootstrap

    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "uv", "venv", "--quiet", "--python", sys.executable,
                    str(venv)], check=True)
    os.environ.update(BOOTSTRAP_STORE=str(scratch / "store"),
                      BOOTSTRAP_DRIVE=str(scratch / "MyDrive"),
                      BOOTSTRAP_STATE_DIR=str(scratch / "state"), BOOTSTRAP_PLATFORM="local")
    (scratch / "MyDrive").mkdir()
    report = bootstrap.restore("demo", python=str(venv / "bin" / "python"))
    lines = report.text().splitlines()
    neutral = {r.name for r in report.steps if r.neutral}
    return 'print(bootstrap.restore("demo", python="venv/bin/python"))', [
        ("neutral " if line.split()[:1] and line.split()[0] in neutral else "") + line
        for line in lines]


def svg(command: str, lines: list[str]) -> str:
    """The lines as monospaced text; each row's outcome word in its colour."""
    rows = [f"<tspan fill='#555'>&gt;&gt;&gt;</tspan> {escape(command)}", ""]
    width = len(command) + 8
    for line in lines:
        neutral = line.startswith("neutral ")
        line = line[len("neutral "):] if neutral else line
        width = max(width, len(line))
        words = line.split()
        if line.startswith("  ") and not line.startswith("   ") and len(words) > 1 \
                and words[1] in COLOURS:
            word = words[1]
            at = line.index(word, len(words[0]) + 2)
            colour = COLOURS["neutral" if neutral else word]
            rows.append(escape(line[:at]) + f"<tspan fill='{colour}' font-weight='bold'>"
                        f"{word}</tspan>" + escape(line[at + len(word):]))
        elif line.startswith("restore of") or line.startswith("dry run of"):
            rows.append(f"<tspan font-weight='bold'>{escape(line)}</tspan>")
        else:
            rows.append(escape(line))
    w = int(width * CHAR_W + 2 * PAD)
    h = int(len(rows) * LINE_H + 2 * PAD)
    text = "\n".join(f"  <text x='{PAD}' y='{PAD + (i + 1) * LINE_H - 5}' xml:space='preserve'>"
                     f"{row}</text>" for i, row in enumerate(rows))
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' "
            f"viewBox='0 0 {w} {h}' font-family='DejaVu Sans Mono, Menlo, Consolas, monospace' "
            f"font-size='14' fill='#222'>\n"
            f"  <rect width='100%' height='100%' rx='6' fill='#f7f7f7' stroke='#ddd'/>\n"
            f"{text}\n</svg>\n")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    scratch = Path(tempfile.mkdtemp(prefix="bootstrap-demo-"))
    here = os.getcwd()
    try:
        command, lines = real_run(scratch)
    finally:
        os.chdir(here)
    # the scratch folder's random name says nothing: show it as a fixed one
    body = svg(command, [line.replace(str(scratch), "/tmp/bootstrap-demo") for line in lines])
    shutil.rmtree(scratch, ignore_errors=True)
    out.write_text(body, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
