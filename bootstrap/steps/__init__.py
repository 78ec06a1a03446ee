"""The restore steps, one module per profile section, in the order they run.

Every step module has the same small protocol:

- ``wanted(profile) -> bool``: whether the profile asks anything of this step;
- ``check(ctx) -> Check``: read-only; is it satisfied, and if not what would be done;
- ``apply(ctx, check) -> None``: do it (idempotent); the runner checks again afterwards.

Order is policy: the GPU check comes first so a wrong runtime fails in
seconds; environment and secrets are in force before anything is built; clones
come before installs that use them; commands run once packages and clones are
in place; the chdir and the setup notebook come last. ``bootstrap.order``
reads what each step of a profile needs (a pip path inside a clone, a file
written into one) and sorts the steps so needs come first, keeping ORDER
wherever the needs leave a choice. Modules are imported only when a restore runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

ORDER = ("gpu", "drive", "secrets", "env", "apt", "files", "git", "build", "venv", "pip",
         "run", "workdir", "variables", "setup")


@dataclass
class Check:
    satisfied: bool
    summary: str = ""                                  # what holds or was found
    actions: list[str] = field(default_factory=list)   # what apply() would do
    data: Any = None                                   # handed to apply()


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")
