"""``%env_status``: where am I, what do I have, and does my profile still hold?

Shows ``bootstrap.status()``: the platform, the Python, the GPU, the Drive
root (and whether it is mounted), the store and its profiles, and the profile
last restored on this VM together with a dry run that says whether it still
holds (``bootstrap status`` on the command line). Reads only; changes nothing.
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


@magics_class
class StatusMagics(Magics):
    """The status magic."""

    @magic_arguments()
    @argument("--store", metavar="DIR",
              help="the persistent store folder (default: per platform; BOOTSTRAP_STORE)")
    @argument("--no-check", action="store_true",
              help="do not re-check the last restored profile (no dry run)")
    @line_magic
    def env_status(self, line: str = "") -> None:
        """Show the platform, GPU, Drive, store and the profile restored on this VM.

        The last restore is checked again with a dry run, so the answer to
        "does it still hold" is current. Changes nothing.
        """
        from bootstrap import status

        from .display import show

        args = parse_argstring(self.env_status, line)
        found = status(store=args.store, check=not args.no_check)
        show({"text/plain": found.text(), "text/html": found._repr_html_()})
