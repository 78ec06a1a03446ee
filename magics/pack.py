"""``%pack_env PROFILE DEST [--id USER/SLUG] [--title T] [--store DIR]``: a Kaggle dataset folder.

A thin face over ``bootstrap.pack``: parse the line, pack, print what was
written and how to upload it.
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


@magics_class
class PackMagics(Magics):
    @magic_arguments()
    @argument("profile", help="a profile name or a path to a .toml file")
    @argument("dest", help="a new folder")
    @argument("--id", dest="dataset_id", metavar="USER/SLUG",
              help="the dataset's id (default: KAGGLE_USERNAME/NAME-env)")
    @argument("--title", help="the dataset's title (default: NAME environment)")
    @argument("--store", metavar="DIR", help="the store folder (default: per platform)")
    @line_magic
    def pack_env(self, line: str) -> None:
        """Write a profile, its lock and the wheels it needs into a folder to upload as a
        Kaggle dataset."""
        from bootstrap import pack

        args = parse_argstring(self.pack_env, line)
        print(pack(args.profile, args.dest, store=args.store, dataset_id=args.dataset_id,
                   title=args.title).text())
