"""``%bootstrap_help [TOPIC]``: the docs shipped with the package, in the notebook.

The same text as ``bootstrap help TOPIC`` and ``bootstrap.help(TOPIC)``:
a whole file (profile, saving, ...) or one section (pip, secrets, ...),
rendered as markdown.
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


@magics_class
class HelpMagics(Magics):
    """The help magic."""

    @magic_arguments()
    @argument("topic", nargs="?", help="a topic (profile, saving, ...) or a section (pip, "
                                       "secrets, ...); none: the list of topics")
    @line_magic
    def bootstrap_help(self, line: str = "") -> None:
        """Show notebook-bootstrap's documentation on a topic."""
        from bootstrap import help as manual

        from .display import show

        args = parse_argstring(self.bootstrap_help, line)
        found = manual(args.topic)
        show({"text/plain": found.text, "text/markdown": found.text})
