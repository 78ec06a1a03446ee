"""The ``venv`` step: a virtual environment that ``[pip]`` installs into.

Reads: ``[venv]`` (``path``; ``python``, the interpreter it is made from,
default the restore's target; ``system_site_packages``), the folder at
``path``. Changes: creates the environment with ``uv venv`` when it is
missing. Its interpreter is the restore's target (``ctx.python``) from the
start of the restore (``aim``, called by the runner): ``[pip]`` installs into
it with the same lock, store and no-op check as for the kernel's interpreter,
``[[git]]`` installs go there
and ``{python}`` names it.

It holds when ``path`` holds an environment (``pyvenv.cfg`` and
``bin/python``). An existing environment is never replaced (delete it to
make it again from another interpreter); a folder that is not an environment
stops the step. The base interpreter may be one a ``[[run]]`` entry builds (a
Python compiled from source): the order then puts this step after ``run``.
"""

from __future__ import annotations

from pathlib import Path

from ..context import Context
from ..errors import StepError
from ..profile import Profile
from . import Check

TIMEOUT_S = 600.0


def wanted(profile: Profile) -> bool:
    return profile.venv is not None


def folder(ctx: Context) -> Path:
    assert ctx.profile.venv is not None
    return ctx.path(ctx.profile.venv.path, "venv.path", base=ctx.start_dir)


def interpreter(path: Path) -> Path:
    return path / "bin" / "python"


def aim(ctx: Context) -> None:
    """Make the venv's interpreter the restore's target before any step runs, so that
    ``{python}`` in ``[env]`` or a ``[[build]]`` entry means it too."""
    ctx.state.setdefault("venv", {})["base"] = ctx.python
    ctx.python = str(interpreter(folder(ctx)))


def base(ctx: Context) -> str:
    venv = ctx.profile.venv
    assert venv is not None
    if venv.python is None:
        return ctx.state["venv"].setdefault("base", ctx.python)
    if "/" in venv.python or venv.python.startswith(("{", "~")):
        return str(ctx.path(venv.python, "venv.python", base=ctx.start_dir))
    return ctx.expand(venv.python, "venv.python")  # a name or version uv finds: "3.11"


def check(ctx: Context) -> Check:
    path = folder(ctx)
    python = interpreter(path)
    the_base = base(ctx)
    ctx.python = str(python)  # the runner aimed at it already; steps run alone need it too
    if (path / "pyvenv.cfg").is_file() and python.exists():
        return Check(True, f"{path} ({_version(path)})")
    if path.exists() and any(path.iterdir()):
        raise StepError(f"{path} exists and is not a virtual environment",
                        where=ctx.where("venv.path"),
                        hint="move it away (it is never replaced), or choose another path")
    return Check(False, f"create {path}", [f"uv venv --python {the_base} {path}"], the_base)


def apply(ctx: Context, plan: Check) -> None:
    from .. import uv  # every uv command line and its environment

    venv = ctx.profile.venv
    assert venv is not None
    path = folder(ctx)
    the_base = plan.data
    if "/" in the_base and not Path(the_base).exists():
        raise StepError(f"no Python at {the_base} to make the environment from",
                        where=ctx.where("venv.python"),
                        hint="fix python, or build it with a [[run]] entry whose creates names "
                             "it (the venv step then runs after it)")
    env, _ = uv.environment(ctx.environ)
    argv = uv.venv(the_base, str(path), system_site_packages=venv.system_site_packages)
    ctx.run(argv, env=env, timeout=TIMEOUT_S,
            hint="uv could not make the environment; its message is above")
    ctx.note(f"made {path} from {the_base}")


def _version(path: Path) -> str:
    for line in (path / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version_info", "version"):
            return f"Python {value.strip()}"
    return "a virtual environment"
