"""A store folder ready to upload as a Kaggle dataset: ``bootstrap pack PROFILE DEST``.

On Kaggle the one folder that surely outlives a session is a dataset attached
under ``/kaggle/input``, and competitions often run with the internet off. A
pack holds what a restore of one profile needs and nothing else, laid out as
a store, so that attached it is found and used with no option:

    DEST/profiles/NAME.toml                 the profile
    DEST/profiles/locks/pylock.NAME.toml    its lock
    DEST/wheels/...                         exactly the wheels the lock installs
    DEST/debs/...                           the .debs the store keeps for [apt]
    DEST/dataset-metadata.json              what ``kaggle datasets create -p DEST`` reads

The wheels come from the store (a restore with the internet on puts every
wheel it installs there) or this machine's local wheel folder. Reads the
store; writes only under ``DEST``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import OptionError, StoreError
from .fileio import write_atomic
from .store import Store

METADATA = "dataset-metadata.json"


@dataclass
class Pack:
    folder: Path
    profile: str
    wheels: list[str] = field(default_factory=list)
    debs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        size = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        lines = [f"packed {self.profile} into {self.folder}: {len(self.wheels)} wheel"
                 f"{'s' if len(self.wheels) != 1 else ''}, {len(self.debs)} .deb"
                 f"{'s' if len(self.debs) != 1 else ''}, {size / 1e6:.1f} MB",
                 f"upload it: kaggle datasets create -p {self.folder}  (or a new version: "
                 f"kaggle datasets version -p {self.folder} -m 'update'), then attach the "
                 "dataset to the notebook: it is found under /kaggle/input with no option"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    __str__ = text


def pack(spec: str, dest: str | os.PathLike[str], *, store: Store,
         dataset_id: str | None = None, title: str | None = None,
         environ: Mapping[str, str] | None = None, python: str | None = None) -> Pack:
    """Write the pack of profile ``spec`` (a name in ``store`` or a path) into ``dest``.

    The wheels are those the lock installs on ``python`` (default: this one), so pack on
    the platform the dataset is for."""
    from . import lock as lockfile, wheelstore
    from .installer import installed_wheel
    from .interpreter import inspect
    from .profile import load
    from .redact import is_secret_name

    environ = os.environ if environ is None else environ
    profile = load(spec, profiles_dir=store.profiles)
    name = profile.name or Path(profile.origin or "profile").stem
    folder = Path(dest).expanduser().absolute()
    if folder.exists() and any(p.name != METADATA for p in folder.iterdir()):
        raise OptionError(f"{folder} is not empty", where="DEST",
                          hint="give a new folder: a pack holds one profile and nothing else")
    out = Pack(folder, name)
    out_store = Store(folder)
    assert profile.origin is not None
    _refuse_secrets(Path(profile.origin), hint="move the value into the secret store and "
                    "refer to it from [secrets] ({env:NAME} in the profile), then pack again")
    for key, value in profile.env.items():
        if is_secret_name(key) and "{" not in value and len(value) >= 6:
            raise StoreError(f"env.{key} holds a value with a secret's name, which a dataset "
                             "would publish", where=f"{profile.origin}: env.{key}",
                             hint=f"move it to [secrets] ({key} = \"{key}\") and keep the "
                                  "value in the secret store, then pack again")
    if profile.pip is not None and profile.pip.packages:
        _refuse_secrets(lockfile.path_for(profile, store.profiles),
                        hint=f"an older version wrote an index's signed link into it: run "
                             f"`bootstrap lock {spec} --upgrade`, then pack again")
    write_atomic(out_store.profile_path(name), Path(profile.origin).read_bytes())

    if profile.pip is not None and profile.pip.packages:
        lock_path = lockfile.path_for(profile, store.profiles)
        lock = lockfile.read(lock_path)
        if lock is None:
            raise StoreError(f"{name} has no lock yet", where=str(lock_path),
                             hint=f"run `bootstrap restore {spec}` (or `bootstrap lock {spec}`) "
                                  "once with the internet on, then pack again")
        write_atomic(out_store.profiles / "locks" / lockfile.lock_name(name),
                     lock_path.read_bytes())
        local = wheelstore.local_dir(environ)
        try:
            selected = lockfile.select(lock, inspect(python or sys.executable))
        except ValueError as exc:
            raise StoreError(f"{lock_path.name} does not fit this Python: {exc}",
                             where=str(lock_path),
                             hint=f"pack on the platform the dataset is for (run `bootstrap "
                                  f"restore {spec}` there once, then pack)") from None
        for item in selected:
            pkg = item.package
            if pkg.base:
                continue   # the platform's own: every VM of it has these
            wheel = installed_wheel(item)
            if wheel is None:
                raise StoreError(
                    f"{pkg.name} {pkg.version} has no wheel: it is built from its sdist on "
                    "first use", where=str(lock_path),
                    hint=f"run `bootstrap restore {spec}` once (it keeps the built wheel in "
                         "the store), then pack again")
            stored = wheelstore.store_path(store.wheels, wheel)
            found = next((p for p in (stored, wheelstore.store_path(local, wheel))
                          if p.is_file()), None)
            if found is None:
                raise StoreError(
                    f"the store has no {wheel.filename} ({pkg.name} {pkg.version})",
                    where=str(store.wheels),
                    hint=f"run `bootstrap restore {spec}` once with the internet on (it saves "
                         "every wheel it installs into the store), then pack again")
            target = wheelstore.store_path(out_store.wheels, wheel)
            try:
                wheelstore.copy_verified(found, target, wheel, link=False)
            except wheelstore.Damaged as exc:
                raise StoreError(f"{wheel.filename} in the store {exc.what}", where=str(found),
                                 hint=f"delete it and run `bootstrap restore {spec}` once with "
                                      "the internet on, then pack again") from None
            out.wheels.append(str(target.relative_to(out_store.wheels)))

    if profile.apt is not None and profile.apt.packages:
        out.debs = _pack_debs(store, out_store, list(profile.apt.packages), out.notes)

    metadata = {"title": title or _title(name), "id": dataset_id or _dataset_id(name, environ),
                "licenses": [{"name": "CC0-1.0"}]}
    if "INSERT_USERNAME" in metadata["id"]:
        out.notes.append(f"set your Kaggle user name in {folder / METADATA} (\"id\"), or "
                         "pack with --id USER/SLUG or KAGGLE_USERNAME set")
    write_atomic(folder / METADATA, (json.dumps(metadata, indent=2) + "\n").encode())
    return out


def _refuse_secrets(path: Path, *, hint: str) -> None:
    """Stop before a value that looks secret is copied into a dataset others may read."""
    from .redact import secret_lines

    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return
    found = secret_lines(text)
    if found:
        raise StoreError(
            f"{path.name} holds what looks like a secret value (a token, a password in a URL "
            f"or a signed query), which a dataset would publish",
            where=f"{path}:{found[0]}", hint=hint)


def _pack_debs(store: Store, out_store: Store, names: list[str], notes: list[str]) -> list[str]:
    """The store's lists of .debs that hold one of ``names``, and their .debs."""
    wanted = set(names)
    copied: list[str] = []
    sets = store.debs / "sets"
    for listing in sorted(sets.glob("*.json")) if sets.is_dir() else []:
        try:
            debs = json.loads(listing.read_text())["debs"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not any(str(d.get("filename", "")).split("_")[0] in wanted for d in debs):
            continue
        write_atomic(out_store.debs / "sets" / listing.name, listing.read_bytes())
        for deb in debs:
            filename = str(deb["filename"])
            src, dest = store.debs / filename, out_store.debs / filename
            if dest.exists() or filename in copied:
                continue
            if not src.is_file():
                notes.append(f"the store lacks {filename}: apt downloads it")
                continue
            shutil.copyfile(src, dest)
            copied.append(filename)
    if not copied:
        notes.append("the store keeps no .debs for [apt] yet: a restore with the internet on "
                     "keeps them; without them apt needs the internet")
    return copied


def _title(name: str) -> str:
    # Kaggle wants a title of 6 to 50 characters
    title = f"{name} environment"
    return title[:50] if len(title) >= 6 else f"{title} (bootstrap)"


def _dataset_id(name: str, environ: Mapping[str, str]) -> str:
    user = environ.get("KAGGLE_USERNAME") or _kaggle_json_user(environ) or "INSERT_USERNAME"
    slug = re.sub(r"[^a-z0-9]+", "-", f"{name}-env".lower()).strip("-")
    return f"{user}/{slug}"


def _kaggle_json_user(environ: Mapping[str, str]) -> str | None:
    folder = environ.get("KAGGLE_CONFIG_DIR") or str(Path(environ.get("HOME", "~")).expanduser()
                                                       / ".kaggle")
    try:
        data: Any = json.loads((Path(folder) / "kaggle.json").read_text())
    except (OSError, ValueError):
        return None
    user = data.get("username") if isinstance(data, dict) else None
    return user if isinstance(user, str) and user else None
