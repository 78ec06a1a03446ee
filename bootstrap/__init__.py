"""notebook-bootstrap: restore a hosted notebook VM from a saved profile.

The Python API (the magics and the CLI are thin faces over it)::

    import bootstrap
    report = bootstrap.restore("vision")          # a name, a path or an https URL
    print(bootstrap.status())                     # this VM, and does the last restore hold
    print(bootstrap.help("pip"))                  # the docs, shipped with the package
    bootstrap.save("vision")                      # what this session changed, as a profile
    profile = bootstrap.load_profile("vision.toml")

In IPython: ``%load_ext bootstrap`` then ``%restore_env vision``.
Importing this package is cheap: the engine loads its parts when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .manual import Manual
    from .profile import Profile
    from .report import Report
    from .saving import SaveResult
    from .session import Status

__all__ = ["__version__", "restore", "status", "save", "load_profile", "dump_profile",
           "lock_profile", "load_ipython_extension", "export", "run_setup", "import_notebook",
           "export_profile", "pack"]


def restore(profile: Any = None, **options: Any) -> Report:
    """Restore ``profile`` on this machine (default: the store's default profile).

    See ``bootstrap.session.restore``; a successful restore is recorded for
    ``status()``.
    """
    from .session import restore as _restore

    return _restore(profile, **options)


def status(*, store: Any = None, check: bool = True) -> Status:
    """Platform, GPU, Drive, store, profiles and whether the last restore still holds."""
    from .session import status as _status

    return _status(store=store, check=check)


def help(topic: str | None = None) -> Manual:  # shadows help(): the CLI's `bootstrap help`
    """The documentation on ``topic`` (profile, pip, secrets, saving...); none: the topics.

    Prints as text; renders as markdown in a notebook.
    """
    from .manual import lookup

    return lookup(topic)


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


def pack(profile: str, dest: Any, *, store: Any = None, dataset_id: str | None = None,
         title: str | None = None) -> Any:
    """Write profile ``profile``, its lock and exactly the wheels (and .debs) it needs into
    the folder ``dest``, with the ``dataset-metadata.json`` of a Kaggle dataset; see
    ``bootstrap.dataset``."""
    from .dataset import pack as _pack
    from .platform import detect
    from .store import Store

    return _pack(str(profile), dest, store=Store(detect(store=store).store_root),
                 dataset_id=dataset_id, title=title)


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


def import_notebook(notebook: Any, *, name: str | None = None, dry_run: bool = False,
                    store: Any = None) -> Any:
    """Read a notebook's setup cells (nothing runs) and save them as profile ``name``.

    Returns a ``bootstrap.importer.ImportResult`` (its ``toml``, ``skipped`` lines
    and ``notes``); see ``bootstrap.importer.import_notebook``.
    """
    from .importer import import_notebook as _import

    return _import(notebook, name=name, dry_run=dry_run, store=store)


def export_profile(profile: Any, to: str, dest: Any, *, store: Any = None) -> Any:
    """Write ``profile`` as repo2docker, devcontainer or Ray files into folder ``dest``.

    Returns a ``bootstrap.exporter.ExportResult`` (the files written and what did
    not carry over); see ``bootstrap.exporter.export_profile``.
    """
    from .exporter import export_profile as _export

    return _export(profile, to, dest, store=store)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bootstrap``: register the magics (imported only now)."""
    _magics().load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    _magics().unload_ipython_extension(ipython)


def _magics() -> Any:
    """The magics: ``bootstrap.magics`` when installed, the top-level ``magics`` folder in
    the repository (the wheel maps one onto the other)."""
    import importlib

    try:
        return importlib.import_module(f"{__name__}.magics")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.magics":
            raise
    return importlib.import_module("magics")
