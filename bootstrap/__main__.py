"""``python -m bootstrap``: the command line."""

from .cli import main

raise SystemExit(main())
