"""``%import_env NOTEBOOK [--name NAME] [--dry-run] [--store DIR]``: a profile from a notebook.

A thin face over ``bootstrap.import_notebook``: parse the line, import, print
the profile written (or, with ``--dry-run``, the one that would be) and the
lines that were not carried over.
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


@magics_class
class TransferMagics(Magics):
    @magic_arguments()
    @argument("notebook", help="the notebook (.ipynb) whose setup cells to read; nothing runs")
    @argument("--name", help="profile name (default: the notebook's file name)")
    @argument("--dry-run", action="store_true", help="print the profile and write nothing")
    @argument("--store", metavar="DIR", help="the store folder (default: per platform)")
    @line_magic
    def import_env(self, line: str) -> None:
        """Write a profile from the pip, apt, Drive, git, env and secret lines of a notebook."""
        from bootstrap import import_notebook

        args = parse_argstring(self.import_env, line)
        result = import_notebook(args.notebook, name=args.name, dry_run=args.dry_run,
                                 store=args.store)
        print(result.text())
