"""The IPython face of notebook-bootstrap: ``%restore_env`` and friends.

Loaded by ``%load_ext bootstrap``; each magic parses its line, calls the
engine's Python API and displays the report.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    from .save import SaveMagics

    ipython.register_magics(SaveMagics)
    from .restore import BootstrapMagics

    ipython.register_magics(BootstrapMagics)


def unload_ipython_extension(ipython: Any) -> None:  # pragma: no cover - IPython has no unregister
    pass
