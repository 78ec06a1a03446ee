"""``%save_env [NAME] [--dry-run] [--store DIR]``: save what this session changed as a profile.

A thin face over ``bootstrap.save``: parse the line, save, print what was
written (or, with ``--dry-run``, the profile that would be), the diff against
the previous version and the notes (secrets kept as references, skipped items).
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

DEFAULT_NAME = "default"


@magics_class
class SaveMagics(Magics):
    @magic_arguments()
    @argument("name", nargs="?", default=DEFAULT_NAME,
              help=f"profile name, saved as profiles/NAME.toml in the store "
                   f"(default: {DEFAULT_NAME})")
    @argument("--dry-run", action="store_true", help="print the profile and write nothing")
    @argument("--store", metavar="DIR", help="the store folder (default: per platform)")
    @line_magic
    def save_env(self, line: str) -> None:
        """Save the packages, apt packages, variables and folder this session set up."""
        from bootstrap import save

        args = parse_argstring(self.save_env, line)
        result = save(args.name, dry_run=args.dry_run, store=args.store)
        print(result.text())

