"""After an install replaced imported modules: Colab's restart prompt and restarting the kernel.

Which modules are stale is the engine's answer (``Report.stale``, from
``bootstrap.staleness``); this is the kernel-only part.

Restarting: ``restart_kernel`` asks ipykernel to shut down with restart=True,
the same call the Jupyter protocol's shutdown_request makes and the one
Google's own notebooks use after installs
(``IPython.Application.instance().kernel.do_shutdown(True)``). ipykernel sets
``shell.exit_now``, stops its loop 0.1 s after the running cell has replied,
and the process exits; the notebook server (Jupyter's KernelRestarter, Colab's
runtime) sees the kernel gone and starts a fresh one in the same environment.
Unlike ``os._exit`` or SIGKILL it lets the cell's output and reply reach the
page first. Colab has no restart API, though: its page reports any kernel that
goes away by itself as "Your session crashed", and a "Run all" stops at that
cell (the installs are kept; the next run finds them in place).
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

COLAB_MIME = "application/vnd.colab-display-data+json"


def colab_prompt(packages: list[str]) -> dict[str, Any]:
    """The display bundle Colab turns into its "Restart session" warning."""
    import uuid

    # the same shape google.colab._pip emits after a `pip install` in a cell
    return {COLAB_MIME: {"pip_warning": {"packages": packages}, "id": uuid.uuid4().hex}}


def colab_prompt_wanted(environ: Mapping[str, str]) -> bool:
    """Colab's own rule: ``SKIP_COLAB_PIP_WARNING`` set to anything but "0" turns it off."""
    return environ.get("SKIP_COLAB_PIP_WARNING", "0") == "0"


def can_restart(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


def restart_kernel(shell: Any) -> bool:
    """Ask the kernel to restart once the running cell has finished; False when not a kernel."""
    import inspect

    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return False
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    result = kernel.do_shutdown(True)
    if inspect.isawaitable(result):
        # a kernel whose do_shutdown is a coroutine: the flag it sets is all we need
        close = getattr(result, "close", None)
        if close is not None:
            close()
    shell.exit_now = True
    return True
