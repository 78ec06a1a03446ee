"""``%import_env NOTEBOOK`` and ``%export_env PROFILE --to ENGINE DIR``: profiles in and out.

Thin faces over ``bootstrap.import_notebook`` (print the profile written, or
with ``--dry-run`` the one that would be, and the lines not carried over) and
``bootstrap.export_profile`` (print the files written and what has no form
in that engine).
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

    @magic_arguments()
    @argument("profile", help="a profile name, a path to a .toml file or an https URL")
    @argument("--to", required=True, choices=("repo2docker", "devcontainer", "ray"),
              help="the engine to write files for")
    @argument("dest", metavar="DIR", help="the folder to write them into")
    @argument("--store", metavar="DIR", help="the store folder (default: per platform)")
    @line_magic
    def export_env(self, line: str) -> None:
        """Write a profile as repo2docker, devcontainer or Ray runtime_env files."""
        from bootstrap import export_profile

        args = parse_argstring(self.export_env, line)
        print(export_profile(args.profile, args.to, args.dest, store=args.store).text())
