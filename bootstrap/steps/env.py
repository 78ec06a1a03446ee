"""The ``env`` step: environment variables, placeholders expanded.

Reads: ``[env]``. Changes: ``os.environ`` of this process (and so of every
program it starts later in the restore: uv and the builds it runs, ``[[run]]``
commands, the notebook kernel).

Values are expanded in the order they are written, each against the
environment as the entries before it left it, so ``PATH =
"/usr/local/cuda/bin:{env:PATH}"`` prepends to the existing PATH and a later
entry can use an earlier one (``{env:CUDA_HOME}``).

A value that refers to its own variable must not grow on every restore: the
step remembers, in ``BOOTSTRAP_ENV_BEFORE`` (JSON in the same environment, so
a program started from the kernel inherits it too), what each variable held
before it set it. Expansion starts from that earlier environment, as long as
the variable still holds what the step put there; when something else has
changed it since, its current value is the new starting point.
"""

from __future__ import annotations

import json
from typing import Mapping, MutableMapping

from ..context import Context
from ..profile import Profile
from . import Check

#: where the values from before this step set them are remembered
MEMO = "BOOTSTRAP_ENV_BEFORE"
#: apply() changes only ctx.environ, so a dry run applies it to its copy and the
#: plans of later steps see the values ({env:JAVA_HOME} in a [[run]] entry)
APPLY_IN_DRY_RUN = True


def wanted(profile: Profile) -> bool:
    return bool(profile.env)


def _memo(environ: Mapping[str, str]) -> dict[str, list[str | None]]:
    try:
        data = json.loads(environ.get(MEMO, "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def before(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` as it was before this step set the variables it still holds."""
    base = dict(environ)
    for name, pair in _memo(environ).items():
        if not (isinstance(pair, list) and len(pair) == 2):
            continue
        old, new = pair
        if environ.get(name) == new:
            if old is None:
                base.pop(name, None)
            else:
                base[name] = old
    base.pop(MEMO, None)
    return base


def values(ctx: Context) -> dict[str, str]:
    return ctx.expand_in_order(ctx.profile.env, before(ctx.environ), "env")


def check(ctx: Context) -> Check:
    wanted_values = values(ctx)
    differ = [name for name, value in wanted_values.items() if ctx.environ.get(name) != value]
    if not differ:
        return Check(True, f"{len(wanted_values)} variable{'s' if len(wanted_values) != 1 else ''}"
                           " set")
    return Check(False, f"{len(differ)} variable{'s' if len(differ) != 1 else ''} to set",
                 [f"set {name}={wanted_values[name]}" for name in differ])


def apply(ctx: Context, plan: Check) -> None:
    set_values(ctx.environ, values(ctx))


def set_values(environ: MutableMapping[str, str], new: Mapping[str, str]) -> None:
    base = before(environ)
    memo = _memo(environ)
    for name, value in new.items():
        memo[name] = [base.get(name), value]
    environ.update(new)
    environ[MEMO] = json.dumps(memo, sort_keys=True)
