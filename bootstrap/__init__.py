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

__all__ = ["__version__", "restore", "save", "load_profile", "dump_profile",
           "load_ipython_extension"]


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


def dump_profile(profile: Profile) -> str:
    """The TOML text of ``profile``."""
    from .profile import dump

    return dump(profile)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bootstrap``: register the magics (imported only now)."""
    from magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from magics import unload_ipython_extension as _unload

    _unload(ipython)
