"""notebook-bootstrap: restore a hosted notebook VM from a saved profile.

The Python API (the magics and the CLI are thin faces over it)::

    import bootstrap
    report = bootstrap.restore("vision")          # a name, a path or an https URL
    bootstrap.save("vision")                      # what this session changed, as a profile
    profile = bootstrap.load_profile("vision.toml")

In IPython: ``%load_ext bootstrap`` then ``%restore_env vision``.
Importing this package is cheap: the engine loads its parts when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .profile import Profile
    from .report import Report
    from .saving import SaveResult

__all__ = ["__version__", "restore", "save", "load_profile", "dump_profile", "lock_profile",
           "load_ipython_extension", "export", "run_setup"]


def restore(profile: Any, **options: Any) -> Report:
    """Restore ``profile`` on this machine; see ``bootstrap.runner.restore``."""
    from .runner import restore as _restore

    return _restore(profile, **options)


def save(name: str, *, dry_run: bool = False, store: Any = None, since: Any = None,
         **options: Any) -> SaveResult:
    """Save what this session changed as profile ``name``; see ``bootstrap.saving.save``."""
    from .saving import save as _save

    return _save(name, dry_run=dry_run, store=store, since=since, **options)


def load_profile(spec: Any, *, store: Any = None) -> Profile:
    """Load and validate a profile given as a name, path or https URL."""
    from .platform import detect
    from .profile import load
    from .store import Store

    return load(spec, profiles_dir=Store(detect(store=store).store_root).profiles)


def lock_profile(profile: Any, *, upgrade: bool = False, python: Any = None,
                 store: Any = None) -> tuple[Any, Any, list[str]]:
    """Resolve ``profile``'s [pip] section and write its lock without installing (the
    ``bootstrap lock`` command); ``upgrade`` moves every pin to the newest version.
    Returns (path, lock, changes)."""
    from .runner import lock

    return lock(profile, upgrade=upgrade, python=python, store=store)


def dump_profile(profile: Profile) -> str:
    """The TOML text of ``profile``."""
    from .profile import dump

    return dump(profile)


def export(**values: Any) -> dict[str, Any]:
    """In a setup notebook: hand ``name=value`` pairs (JSON values) back to the caller's kernel.

    See ``bootstrap.exports``; cheap to import in the setup notebook's kernel.
    """
    from .exports import export as _export

    return _export(**values)


def run_setup(notebook: Any, parameters: Any = None, *, store: Any = None, **options: Any) -> Any:
    """Run a setup notebook (papermill, or ``inline=True`` in this kernel) unless already done.

    Returns a ``bootstrap.notebook.Outcome``; its ``exported`` values are not
    pushed anywhere (``%run_setup`` does that). See ``bootstrap.notebook.run_setup``.
    """
    from .notebook import ipython_shell, run_setup as _run_setup
    from .platform import detect
    from .store import Store

    if options.get("inline"):
        options.setdefault("shell", ipython_shell())
    return _run_setup(notebook, parameters, store=Store(detect(store=store).store_root),
                      **options)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bootstrap``: register the magics (imported only now)."""
    from magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from magics import unload_ipython_extension as _unload

    _unload(ipython)
