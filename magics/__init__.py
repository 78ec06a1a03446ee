"""The IPython face of notebook-bootstrap: ``%restore_env`` and friends.

Loaded by ``%load_ext bootstrap``; each magic parses its line, calls the
engine's Python API and displays the report. Every group of magics is one
module with one ``Magics`` class, listed in ``GROUPS``; loading imports only
those modules and IPython, nothing heavy (the engine loads when a magic runs).
"""

from __future__ import annotations

import importlib
from typing import Any

#: (module, class) of each group of magics; adding a group is one line here
GROUPS = [
    ("restore", "BootstrapMagics"),   # %restore_env
    ("status", "StatusMagics"),       # %env_status
    ("setup", "SetupMagics"),         # %run_setup
    ("save", "SaveMagics"),           # %save_env
    ("help", "HelpMagics"),           # %bootstrap_help
    ("transfer", "TransferMagics"),   # %import_env, %export_env
    ("pack", "PackMagics"),           # %pack_env
]


def magic_classes() -> list[type]:
    return [getattr(importlib.import_module(f"{__name__}.{module}"), name)
            for module, name in GROUPS]


def load_ipython_extension(ipython: Any) -> None:
    for cls in magic_classes():
        ipython.register_magics(cls)
    # What is installed and set before the user changes anything: %save_env compares
    # against it. Recorded once per VM in a thread, so %load_ext does not wait for it.
    import threading

    threading.Thread(target=_take_baseline, name="bootstrap-baseline", daemon=True).start()


def _take_baseline() -> None:
    from bootstrap.capture import take_baseline

    take_baseline()


def unload_ipython_extension(ipython: Any) -> None:  # pragma: no cover - IPython has no unregister
    pass
