"""notebook-bootstrap: restore a hosted notebook VM from a saved profile.

The Python API (the magics and the CLI are thin faces over it)::

    import bootstrap
    report = bootstrap.restore("vision")          # a name, a path or an https URL
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

__all__ = ["__version__", "restore", "load_profile", "dump_profile", "load_ipython_extension"]


def restore(profile: Any, **options: Any) -> Report:
    """Restore ``profile`` on this machine; see ``bootstrap.runner.restore``."""
    from .runner import restore as _restore

    return _restore(profile, **options)


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
