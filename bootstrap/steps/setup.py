"""The ``setup`` step: run the user's setup notebook, last, and bring its state back.

Reads: ``[setup]`` (notebook, parameters, inline, timeout, start_timeout, kernel,
cwd), the names under ``[secrets]`` (their values may not be parameters), the
setup markers on this VM's local disk.
Changes: whatever the notebook does; the store's ``runs/`` (the output
notebook); a marker on local disk; ``ctx.state["setup"]``: ``exported`` (the
values the notebook handed back with ``bootstrap.export``, for the magics to
push into the user's namespace) and ``output`` (the kept output notebook).
Inline mode runs the cells in this process's IPython kernel.

A relative notebook path or cwd is taken against the Drive root. String
parameters may use placeholders ({drive}, {store}, {env:NAME}...), but a
parameter that carries a secret's value is refused: secrets reach the setup
notebook as environment variables only.
"""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..errors import StepError
from ..profile import Profile
from . import Check


def wanted(profile: Profile) -> bool:
    return profile.setup is not None


def _expand(ctx: Context, value: Any, key: str) -> Any:
    if isinstance(value, str):
        return ctx.expand(value, key)
    if isinstance(value, list):
        return [_expand(ctx, item, f"{key}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(ctx, item, f"{key}.{k}") for k, item in value.items()}
    return value


def plan(ctx: Context) -> Any:
    from ..notebook import prepare, secret_values

    setup = ctx.profile.setup
    assert setup is not None
    return prepare(
        ctx.path(setup.notebook, "setup.notebook"),
        {name: _expand(ctx, value, f"setup.parameters.{name}")
         for name, value in setup.parameters.items()},
        inline=setup.inline,
        cwd=ctx.path(setup.cwd, "setup.cwd") if setup.cwd else None,
        kernel=setup.kernel, timeout=setup.timeout, start_timeout=setup.start_timeout,
        secrets=secret_values(ctx.environ, ctx.profile.secrets),
        where=ctx.where("setup.parameters"))


def check(ctx: Context) -> Check:
    the_plan = plan(ctx)
    state = ctx.state.setdefault("setup", {})
    done = the_plan.done
    # --force reruns it once: the marker written by this restore's own run counts
    if done is not None and (not ctx.force or state.get("ran") == the_plan.key):
        state["exported"] = dict(done.exported)
        state["output"] = done.output
        count = len(done.exported)
        summary = (f"{the_plan.name} ran on this VM at {done.when}"
                   + (f"; {count} value{'s' if count != 1 else ''} exported" if count else "")
                   + (f"; output {done.output}" if done.output else ""))
        return Check(True, summary, data=the_plan)
    if state.get("ran") == the_plan.key:  # it ran in this restore; its marker could not be kept
        return Check(True, f"{the_plan.name} ran in this restore", data=the_plan)
    why = "forced" if done is not None else "not run on this VM yet"
    return Check(False, f"{the_plan.name}: {why}", [the_plan.describe()], the_plan)


def apply(ctx: Context, plan_check: Check) -> None:
    from ..notebook import CellEvent, ipython_shell, run

    the_plan = plan_check.data
    shell = ipython_shell() if the_plan.inline else None

    def on_cell(event: CellEvent) -> None:
        if event.kind == "start" and event.cell_type == "code":
            ctx.say(f"{event.label} ({event.index + 1}/{event.total}): {event.first_line[:60]}")

    try:
        outcome = run(the_plan, ctx.store, shell=shell, on_cell=on_cell)
    except StepError as error:
        error.step = "setup"
        raise
    for note in outcome.notes:
        ctx.note(note)
    state = ctx.state.setdefault("setup", {})
    state.update(exported=outcome.exported, ran=the_plan.key,
                 output=str(outcome.output) if outcome.output else None)
