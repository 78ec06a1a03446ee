"""After an install: which imported modules are now stale, and restarting the kernel.

A running kernel keeps the modules it has imported; when the pip step replaced
the distribution behind one of them, the new version is only used after a
restart. ``stale_modules`` names those modules: the top-level modules of every
changed distribution (``top_level.txt``, else its RECORD) that this kernel has
imported, or that the platform imports into every kernel at start.

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
from importlib import metadata
from typing import Any, Iterable, Mapping

#: modules the platform imports into every kernel before the user's first cell;
#: a new version of one of them needs a restart even if this check cannot see
#: it in sys.modules. The kernel's own machinery is the same everywhere.
KERNEL_MODULES = ("IPython", "ipykernel", "jupyter_client", "jupyter_core", "traitlets",
                  "tornado", "zmq", "comm")
PRELOADED: dict[str, tuple[str, ...]] = {
    # Colab's kernel imports matplotlib (and through it numpy) at start
    "colab": KERNEL_MODULES + ("numpy", "matplotlib", "pandas", "google.colab"),
    "kaggle": KERNEL_MODULES,
    "local": KERNEL_MODULES,
}

COLAB_MIME = "application/vnd.colab-display-data+json"
RESTART_NOTE = "restart the runtime to use the new versions"


def top_level_modules(dist: metadata.Distribution) -> list[str]:
    """The importable top-level names a distribution provides."""
    text = dist.read_text("top_level.txt")
    if text:
        return sorted({line.strip() for line in text.splitlines() if line.strip()})
    names: set[str] = set()
    for file in dist.files or ():
        parts = file.parts
        if not parts or parts[0] in ("..", "__pycache__") or \
                parts[0].endswith((".dist-info", ".egg-info", ".data", ".pth")):
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py"):
                names.add(first[:-3])
            elif first.endswith((".so", ".pyd")):
                names.add(first.split(".", 1)[0])
        elif first.isidentifier():
            names.add(first)
    return sorted(names)


def stale_modules(changed: Iterable[tuple[str, str | None, str]],
                  dists: Mapping[str, metadata.Distribution], *, platform: str = "local",
                  imported: Iterable[str] | None = None) -> list[str]:
    """Top-level modules of ``changed`` distributions that this kernel already holds.

    ``changed`` is the pip step's ``[(name, old, new)]``; a distribution that
    was only added (old is None) cannot have been imported from before.
    ``dists`` maps canonical names to the target's distributions after the
    install; ``imported`` defaults to ``sys.modules``.
    """
    from packaging.utils import canonicalize_name

    held = set(sys.modules if imported is None else imported)
    preloaded = set(PRELOADED.get(platform, KERNEL_MODULES))
    out: set[str] = set()
    for name, old, _new in changed:
        if old is None:
            continue
        dist = dists.get(canonicalize_name(name))
        if dist is None:
            continue
        for module in top_level_modules(dist):
            if module in held or module in preloaded:
                out.add(module)
    return sorted(out)


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
