"""``%run_setup``: run a setup notebook and bring its state into this kernel.

    %run_setup NOTEBOOK [-p NAME VALUE ...] [--inline] [--force] [--timeout S]
               [--start-timeout S] [--kernel NAME] [--cwd DIR] [--store DIR] [--quiet]

With papermill (the default) the notebook runs in a fresh kernel; the values it
hands back with ``bootstrap.export(name=value)`` become variables here. With
``--inline`` its code cells run in this kernel, so everything it defines stays.
A run that already succeeded on this VM with the same notebook and parameters
is not repeated (``--force`` repeats it); its exported values are pushed again.
"""

from __future__ import annotations

import os
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


@magics_class
class SetupMagics(Magics):
    @magic_arguments()
    @argument("notebook", help="the setup notebook (.ipynb); relative to the current folder")
    @argument("-p", "--parameter", nargs=2, action="append", default=[],
              metavar=("NAME", "VALUE"),
              help="a parameter, typed like papermill's -p (True/False/None, int, float, "
                   "else a string); repeat for more")
    @argument("--inline", action="store_true",
              help="run the code cells in this kernel instead of a separate one")
    @argument("--force", action="store_true",
              help="run even when it already ran on this VM with these parameters")
    @argument("--timeout", type=float, metavar="S", help="seconds each cell may run")
    @argument("--start-timeout", type=float, metavar="S",
              help="seconds the kernel may take to start (default 60)")
    @argument("--kernel", metavar="NAME",
              help="the kernel to run it with (default: this kernel's, else the notebook's)")
    @argument("--cwd", metavar="DIR", help="working folder (default: the notebook's folder)")
    @argument("--store", metavar="DIR", help="the store that keeps the output notebook")
    @argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    @line_magic
    def run_setup(self, line: str) -> None:
        """Run a setup notebook (papermill or --inline) and push its exported values here."""
        from bootstrap import run_setup
        from bootstrap.notebook import parse_parameters, progress_bar

        args = parse_argstring(self.run_setup, line)
        parameters = parse_parameters(args.parameter)
        on_cell, close = (None, lambda: None)
        if not args.quiet and not args.inline:
            on_cell, close = progress_bar()
        try:
            outcome = run_setup(
                os.path.expanduser(args.notebook), parameters, store=args.store, force=args.force,
                shell=self.shell, on_cell=on_cell, inline=args.inline, cwd=args.cwd,
                kernel=args.kernel, timeout=args.timeout, start_timeout=args.start_timeout)
        finally:
            close()
        push(self.shell, outcome.exported)
        if not args.quiet:
            print(outcome.summary())
            for note in outcome.notes:
                print(f"note: {note}")


def push(shell: Any, exported: dict[str, Any]) -> None:
    """Make exported values variables of the user's namespace (also used after a restore)."""
    if exported:
        shell.push(dict(exported))

