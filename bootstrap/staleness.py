"""Which modules a running interpreter must reload after an install: the stale ones.

A running kernel keeps the modules it has imported; when the pip step replaced
the distribution behind one of them, the new version is only used after a
restart. ``stale_modules`` names those modules: the top-level modules of every
changed distribution (``top_level.txt``, else its RECORD) that the kernel has
imported, or that the platform imports into every kernel at start.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Iterable, Mapping

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
