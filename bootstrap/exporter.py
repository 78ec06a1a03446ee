"""Export: a profile carried over to the engines that build environments.

When a project outgrows a notebook VM it moves to a container image (Binder
and JupyterHub build with repo2docker; VS Code and Codespaces with a
devcontainer) or to a cluster (Ray's ``runtime_env``). This module writes a
profile as each engine's own files, so the profile stays the one description:

- ``repo2docker``: ``apt.txt``, ``requirements.txt`` (pinned from the
  profile's lock in the store when there is one that still fits, with the
  lock's sha256 of each file where pip can check them, that is when the lock
  was made for Linux x86_64; ``runtime.txt`` then asks for the lock's
  Python), ``postBuild`` for ``[[git]]``, ``[[files]]`` and ``[[run]]``,
  ``start`` for ``[env]`` and ``[workdir]``;
- ``devcontainer``: ``.devcontainer/devcontainer.json`` following the
  devcontainer spec, with a ``Dockerfile`` for apt and pip, a
  ``postCreate.sh`` for clones, downloads and commands, ``containerEnv`` for
  ``[env]``, ``secrets`` (names only) and ``hostRequirements.gpu``;
- ``ray``: ``runtime_env.json`` (``pip``, ``env_vars``, ``working_dir``).

What an engine has no form for (the Drive mount, the platform's secret
store, GPU checks, the setup notebook, apt on Ray...) is listed in the result
and in the exported ``README.md``, with what to do instead. No secret value is
ever written: secrets are only named. The Drive root (``{drive}`` and every
relative path) becomes the repository folder: ``$REPO_DIR`` in repo2docker,
the workspace folder in a devcontainer.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import OptionError

TARGETS = ("repo2docker", "devcontainer", "ray")
DEVCONTAINER_IMAGE = "mcr.microsoft.com/devcontainers/python:1-{python}"
DEFAULT_PYTHON = "3.12"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass
class ExportResult:
    """What ``export_profile`` wrote, and what did not carry over."""

    target: str
    dest: Path
    files: list[Path] = field(default_factory=list)
    #: one line each: what was left out, and what to do instead
    left_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"exported to {self.target} in {self.dest}:"]
        lines.extend(f"  {path.relative_to(self.dest)}" for path in self.files)
        if self.left_out:
            lines.append("not carried over (also in README.md there):")
            lines.extend(f"  - {item}" for item in self.left_out)
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    __str__ = text


@dataclass
class _Pins:
    """The pip part of an export: requirement lines, option lines, and how they were made."""

    lines: list[str]
    options: list[str]
    no_deps: list[str]                 # installed afterwards with --no-deps
    paths: list[tuple[str, bool]]      # folders (path, editable), installed afterwards
    constraints: list[str] = field(default_factory=list)   # for a -c constraints.txt
    python: str | None = None          # the lock's Python (major.minor), when hashes are used
    files: list[str] = field(default_factory=list)         # [pip] requirements, installed after
    hashed: bool = False


# -- placeholders, per engine ------------------------------------------------------------

def shell_word(text: str) -> str:
    """A profile string as one POSIX shell word, placeholders turned into variables."""
    out, pos = [], 0
    for match in _PLACEHOLDER.finditer(text):
        literal = text[pos:match.start()]
        if literal:
            out.append(shlex.quote(literal))
        out.append(_variable(match))
        pos = match.end()
    if text[pos:]:
        out.append(shlex.quote(text[pos:]))
    return "".join(out) or "''"


def shell_text(text: str) -> str:
    """A ``shell = "..."`` script with its placeholders turned into variables."""
    return _PLACEHOLDER.sub(lambda m: m.group(0)[0] if m.group(0) in ("{{", "}}")
                            else _variable(m), text)


def _variable(match: re.Match[str]) -> str:
    token = match.group(0)
    if token in ("{{", "}}"):
        return shlex.quote(token[0])
    name = match.group(1) or ""
    if name.startswith("env:"):
        return '"${' + name[4:] + '}"'
    return {"drive": '"${DRIVE}"', "home": '"${HOME}"', "python": '"${PYTHON}"',
            "store": '"${DRIVE}/.bootstrap"', "here": '"${DRIVE}"'}.get(name, token)


#: the notebook VMs' working folders: in an image, the repository folder takes their place
VM_FOLDERS = ("/content", "/kaggle/working")


def _path_word(text: str) -> str:
    """A path of the profile: relative ones are taken against the Drive root, as on restore."""
    for folder in VM_FOLDERS:
        if text == folder or text.startswith(folder + "/"):
            return shell_word("{drive}" + text[len(folder):])
    if text.startswith(("/", "{", "~")):
        return shell_word(text.replace("~", "{home}", 1) if text.startswith("~") else text)
    return shell_word("{drive}/" + text)


def _uses(text: str, *names: str) -> bool:
    return any(match.group(1) in names or (match.group(1) or "").split(":")[0] in names
               for match in _PLACEHOLDER.finditer(text))


def _plain(text: str) -> str:
    """A profile string with its literal braces undoubled (no placeholders left)."""
    return text.replace("{{", "{").replace("}}", "}")


# -- pip: from the lock when one fits ---------------------------------------------------------

def pins(profile: Any, store_profiles: Path | None, result: ExportResult) -> _Pins:
    from packaging.requirements import Requirement

    pip = profile.pip
    out = _Pins([], [], [], [])
    if pip is None:
        return out
    from .redact import clean_url

    def public(url: str, key: str) -> str:
        cleaned, removed = clean_url(url)
        if removed:
            result.left_out.append(f"{key} {cleaned}: its credential (a password or token in "
                                   "the URL) was not written; give pip the index with its "
                                   "credential in the build's environment (PIP_INDEX_URL, "
                                   "PIP_EXTRA_INDEX_URL) or a netrc file")
        return cleaned

    if pip.index_url:
        out.options.append(f"--index-url {public(pip.index_url, 'pip.index_url')}")
    for url in pip.extra_index_urls:
        out.options.append(f"--extra-index-url {public(url, 'pip.extra_index_urls')}")
    for link in pip.find_links:
        if "://" in link and not link.startswith("file:"):
            out.options.append(f"--find-links {public(link, 'pip.find_links')}")
        else:
            result.left_out.append(f"pip.find_links {link}: a folder on the notebook VM; "
                                   "publish the wheels on an index or commit them to the "
                                   "repository and point --find-links at them")
    if pip.no_index:
        if any(o.startswith(("--find-links", "--index-url", "--extra-index-url"))
               for o in out.options) or any(i.url for i in pip.indexes):
            out.options.append("--no-index")
        else:  # every wheel folder stayed behind: without an index nothing could install
            result.notes.append("pip.no_index is left out: the profile's wheel folders are on "
                                "the notebook VM, so the packages come from PyPI here")
    for index in pip.indexes:
        if index.url:
            url = public(index.url, "pip.indexes")
            out.options.append(f"--extra-index-url {url}")
            result.notes.append(f"pip.indexes: {url} serves only {', '.join(index.packages)}"
                                " in the profile; pip has no per-package index, so it is an "
                                "extra index here: pin those packages' versions")
        else:
            result.left_out.append(f"pip.indexes: find_links {index.find_links} is a folder on "
                                   "the notebook VM; publish its wheels on an index")

    lock = _fitting_lock(profile, store_profiles, result)
    if lock is not None:
        out.python = ".".join(lock.python.split(".")[:2]) or None
        out.hashed = lock.sys_platform == "linux" and lock.machine in ("x86_64", "amd64")
        for pkg in sorted(lock.packages, key=lambda p: p.name):
            line = pkg.pin
            if out.hashed:
                hashes = [a.sha256 for a in (*pkg.wheels, pkg.archive, pkg.sdist)
                          if a is not None]
                if not hashes:
                    out.hashed = False
                line += "".join(f" --hash=sha256:{h}" for h in hashes)
            out.lines.append(line)
        if not out.hashed:
            out.lines = [line.split(" --hash=")[0] for line in out.lines]
            result.notes.append(f"requirements are the lock's exact versions (made for "
                                f"{lock.sys_platform} {lock.machine}, so without its sha256s)")
        else:
            result.notes.append(f"requirements are the lock's {len(lock.packages)} packages, each "
                                "with its sha256 (pip checks them: --require-hashes mode)")
        return out

    for entry in pip.packages:
        if isinstance(entry, str):
            out.lines.append(_plain(entry))
        elif entry.path is not None:
            out.paths.append((entry.path, entry.editable))
        elif entry.no_deps:
            out.no_deps.append(_plain(entry.requirement or ""))
        else:
            out.lines.append(_plain(entry.requirement or ""))
    out.constraints = [_plain(c) for c in pip.constraints]
    # read where the profile reads them, after the clones that may hold them
    out.files = list(pip.requirements)
    for kind in ("lines", "constraints"):
        kept = []
        for line in getattr(out, kind):
            if "{" in line:
                result.left_out.append(f"pip {line!r} uses a placeholder; write it out")
            else:
                Requirement(line)  # validated by the profile already; fails loudly if not
                kept.append(line)
        setattr(out, kind, kept)
    return out


def requirement_files(pip: _Pins, folder: str = "") -> dict[str, str]:
    """requirements.txt (and constraints.txt, which it names) for pip in an image build."""
    files: dict[str, str] = {}
    lines = list(pip.options)
    if pip.constraints:
        files[f"{folder}constraints.txt"] = "\n".join(pip.constraints) + "\n"
        lines.append("-c constraints.txt")  # pip reads it beside requirements.txt
    if pip.lines or lines:
        files[f"{folder}requirements.txt"] = "\n".join(lines + pip.lines) + "\n"
    return files


def _fitting_lock(profile: Any, store_profiles: Path | None, result: ExportResult) -> Any:
    from . import lock as lockfile

    if store_profiles is None or profile.pip is None:
        return None
    path = lockfile.path_for(profile, store_profiles)
    try:
        lock = lockfile.read(path)
    except ValueError as exc:
        result.notes.append(f"{path.name} {exc}; the profile's requirements are used instead")
        return None
    if lock is None:
        result.notes.append(f"no lock for this profile in the store ({path}); requirements "
                            "are the profile's own (run `bootstrap lock` first to pin them)")
        return None
    if lock.inputs != lockfile.inputs_digest(profile.pip):
        result.notes.append(f"{path.name} was made from another [pip] section; the profile's "
                            "requirements are used instead (run `bootstrap lock` again)")
        return None
    return lock


# -- shell steps (postBuild, postCreate.sh) -------------------------------------------------

def _guarded(command: str, entry: Any) -> str:
    if entry.creates:  # relative to the entry's cwd, where the command runs
        return f"{{ [ -e {shell_word(entry.creates)} ] || {command}; }}"
    if isinstance(entry.unless, list):
        return f"{{ {' '.join(shell_word(w) for w in entry.unless)} || {command}; }}"
    return command


#: unpacks a zip or tar (any compression) by its content: the temporary file has no suffix
#: for shutil.unpack_archive to go by; tar members are filtered as the files step does
_UNPACK = ("import sys, tarfile, zipfile; p, d = sys.argv[1:]; "
           "a = zipfile.ZipFile(p) if zipfile.is_zipfile(p) else tarfile.open(p); "
           "a.extractall(d, **({\"filter\": \"data\"} if isinstance(a, tarfile.TarFile) "
           "and hasattr(tarfile, \"data_filter\") else {}))")


def setup_script(profile: Any, result: ExportResult, *, drive: str, python: str) -> list[str]:
    """Bash lines that do what ``[[git]]``, ``[[files]]`` and ``[[run]]`` do on restore."""
    lines = ["#!/bin/bash", "# Written by notebook-bootstrap from the profile "
             f"{profile.name or profile.source}.", "set -euo pipefail",
             f'DRIVE="{drive}"  # stands for the Drive root of the profile',
             f'PYTHON="{python}"  # the interpreter packages go into']
    for name, value in profile.env.items():
        lines.append(f"export {name}={shell_word(value)}")
    for repo in profile.git:
        dest = _path_word(repo.dest)
        url = shell_word(repo.url)
        if repo.ref and _COMMIT.match(repo.ref):
            lines.append(f"[ -d {dest} ] || {{ git clone {url} {dest} && "
                         f"git -C {dest} checkout --quiet {shell_word(repo.ref)}; }}")
        else:
            branch = f" --branch {shell_word(repo.ref)}" if repo.ref else ""
            lines.append(f"[ -d {dest} ] || git clone --depth 1{branch} {url} {dest}")
        if repo.install:
            lines.append(f'"$PYTHON" -m pip install --no-cache-dir '
                         f"{'-e ' if repo.editable else ''}{dest}")
    for i, entry in enumerate(profile.files):
        dest = _path_word(entry.dest)
        if entry.url is None:
            result.left_out.append(f"files[{i}]: a copy of {entry.store} from the store on "
                                   "Drive; commit the file to the repository or publish it "
                                   "with a URL and sha256")
            continue
        if entry.sha256 is None:
            result.notes.append(f"files[{i}]: no sha256 in the profile, so the download is not "
                                "checked here; pin it with sha256 = \"...\" (a restore records "
                                "it in the store on first use)")
        if entry.unpack:
            check = f' && echo "{entry.sha256}  $tmp" | sha256sum -c -' if entry.sha256 else ""
            lines.append(f'[ -d {dest} ] || {{ tmp="$(mktemp)" && curl -fsSL --retry 3 -o '
                         f'"$tmp" {shell_word(entry.url)}{check}'
                         f" && \"$PYTHON\" -c '{_UNPACK}' \"$tmp\" {dest}; }}")
        else:
            check = (f' && echo "{entry.sha256}  "{dest} | sha256sum -c -' if entry.sha256
                     else "")
            lines.append(f"[ -e {dest} ] || {{ mkdir -p \"$(dirname {dest})\" && curl -fsSL "
                         f"--retry 3 -o {dest} {shell_word(entry.url)}{check}; }}")
    for i, entry in enumerate(profile.run):
        command = (" ".join(shell_word(w) for w in entry.argv) if isinstance(entry.argv, list)
                   else f"bash -c {shlex.quote(shell_text(entry.shell or ''))}")
        if entry.env:
            command = "env " + " ".join(f"{k}={shell_word(v)}" for k, v in entry.env.items()) \
                + " " + command
        if entry.timeout:
            command = f"timeout {int(entry.timeout)} {command}"
        cwd = _path_word(entry.cwd) if entry.cwd else '"${DRIVE}"'
        label = f"  # run[{i}]" + (f": {entry.name}" if entry.name else "")
        lines.append(f"(cd {cwd} && {_guarded(command, entry)}){label}")
    return lines


#: lines of setup_script before the first export or command
HEADER = 5


def _pip_lines(pip: _Pins) -> list[str]:
    """Installs a requirements file cannot express: the profile's own requirements files
    (they may be in a clone), folders, and --no-deps entries."""
    lines = [f'"$PYTHON" -m pip install --no-cache-dir -r {_path_word(path)}'
             for path in pip.files]
    lines += [f'"$PYTHON" -m pip install --no-cache-dir {"-e " if editable else ""}'
              f"{_path_word(path)}" for path, editable in pip.paths]
    lines += [f'"$PYTHON" -m pip install --no-cache-dir --no-deps {shlex.quote(requirement)}'
              for requirement in pip.no_deps]
    return lines


# -- what has no form in any engine ------------------------------------------------------------

def common_left_out(profile: Any, result: ExportResult, target: str) -> None:
    if profile.drive is not None:
        result.left_out.append("[drive]: there is no Google Drive; the repository folder stands "
                               "for the Drive root (relative paths and {drive} point into it)")
    if profile.secrets:
        where = {"repo2docker": "pass them when the container starts (docker run -e NAME, or "
                                "the JupyterHub/Binder deployment's secret settings); never "
                                "commit them",
                 "devcontainer": "they are listed under \"secrets\" in devcontainer.json "
                                 "(Codespaces asks for them); locally, set them in the "
                                 "environment VS Code starts from",
                 "ray": "set them in the cluster's environment (head and workers), not in the "
                        "runtime_env, which the Ray dashboard shows"}[target]
        result.left_out.append(f"[secrets] {', '.join(profile.secrets)}: the values stay in "
                               f"the platform's secret store; {where}")
    if profile.gpu is not None and (profile.gpu.required or profile.gpu.models
                                    or profile.gpu.min_memory_gib or profile.gpu.min_cuda):
        result.left_out.append({
            "repo2docker": "[gpu]: an image has no GPU check; start it with a GPU "
                           "(docker run --gpus all) and a CUDA-enabled base if you need one",
            "devcontainer": "[gpu]: only hostRequirements.gpu carries over (the models, "
                            "memory and CUDA version are not checked)",
            "ray": "[gpu]: ask Ray for GPUs per task or actor (@ray.remote(num_gpus=1))",
        }[target])
    if profile.setup is not None:
        result.left_out.append(f"[setup]: the setup notebook {profile.setup.notebook} does not "
                               "run; run it once by hand (papermill NOTEBOOK out.ipynb) or "
                               "turn its steps into [[run]] entries")
    paths = [repo.dest for repo in profile.git] + [e.dest for e in profile.files] + \
        [e.cwd or "" for e in profile.run] + ([profile.workdir.path] if profile.workdir else [])
    if any(p == f or p.startswith(f + "/") for p in paths for f in VM_FOLDERS) \
            and target != "ray":
        result.notes.append("paths under /content or /kaggle/working (the notebook VM's "
                            "working folder) are placed in the repository folder instead")
    if profile.platforms:
        result.notes.append("exported without [platforms] overrides except [platforms.local], "
                            "which applies to a plain machine")


# -- the three engines ---------------------------------------------------------------------------

def to_repo2docker(profile: Any, pip: _Pins, result: ExportResult) -> dict[str, str]:
    files: dict[str, str] = {}
    if profile.apt and profile.apt.packages:
        files["apt.txt"] = "\n".join(profile.apt.packages) + "\n"
    files.update(requirement_files(pip))
    if pip.python:
        files["runtime.txt"] = f"python-{pip.python}\n"
    # requirements.txt goes into the kernel's environment: so does everything else
    script = setup_script(profile, result, drive="${REPO_DIR:-$PWD}",
                          python="${KERNEL_PYTHON_PREFIX:+$KERNEL_PYTHON_PREFIX/bin/}python")
    script += _pip_lines(pip)
    if len(script) > HEADER + len(profile.env):
        files["postBuild"] = "\n".join(script) + "\n"
    if profile.env or profile.workdir:
        start = ["#!/bin/bash", "# Written by notebook-bootstrap: [env] and [workdir] of the "
                 "profile, in force in every session.", 'DRIVE="${REPO_DIR:-$PWD}"']
        start += [f"export {name}={shell_word(value)}" for name, value in profile.env.items()]
        if profile.workdir:
            dest = _path_word(profile.workdir.path)
            start.append(f"mkdir -p {dest}" if profile.workdir.create else f"[ -d {dest} ] && "
                         f"cd {dest} || true")
            if profile.workdir.create:
                start.append(f"cd {dest}")
        start.append('exec "$@"')
        files["start"] = "\n".join(start) + "\n"
    return files


def to_devcontainer(profile: Any, pip: _Pins, result: ExportResult) -> dict[str, str]:
    files: dict[str, str] = {}
    python = pip.python or (profile.captured.python if profile.captured and
                            profile.captured.python else DEFAULT_PYTHON)
    image = DEVCONTAINER_IMAGE.format(python=python)
    config: dict[str, Any] = {"name": profile.name or "notebook-bootstrap"}
    apt = profile.apt.packages if profile.apt else []
    if apt or pip.lines or pip.options:
        docker = [f"FROM {image}", ""]
        if apt:
            docker += ["RUN apt-get update \\",
                       "    && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                       "--no-install-recommends \\",
                       "       " + " ".join(apt) + " \\",
                       "    && rm -rf /var/lib/apt/lists/*", ""]
        pip_files = requirement_files(pip, ".devcontainer/")
        if pip_files:
            files.update(pip_files)
            names = " ".join(sorted(name.rsplit("/", 1)[1] for name in pip_files))
            docker += [f"COPY {names} /tmp/bootstrap/",
                       "RUN python -m pip install --no-cache-dir -r "
                       "/tmp/bootstrap/requirements.txt", ""]
        files[".devcontainer/Dockerfile"] = "\n".join(docker)
        config["build"] = {"dockerfile": "Dockerfile"}
    else:
        config["image"] = image
    env = {}
    for name, value in profile.env.items():
        converted = _PLACEHOLDER.sub(_devcontainer_variable, value)
        env[name] = converted
    if env:
        config["containerEnv"] = env
    if profile.secrets:
        config["secrets"] = {name: {"description": f"the secret {secret!r} of the notebook "
                                                   "profile"}
                             for name, secret in profile.secrets.items()}
    if profile.gpu is not None:
        config["hostRequirements"] = {"gpu": True if profile.gpu.required else "optional"}
    script = setup_script(profile, result, drive='$(cd "$(dirname "$0")/.." && pwd)',
                          python="python")
    script += _pip_lines(pip)
    if len(script) > HEADER + len(profile.env):
        files[".devcontainer/postCreate.sh"] = "\n".join(script) + "\n"
        config["postCreateCommand"] = "bash .devcontainer/postCreate.sh"
    if profile.workdir:
        result.left_out.append(f"[workdir] {profile.workdir.path}: VS Code opens the workspace "
                               "folder; open that folder from it")
    files[".devcontainer/devcontainer.json"] = json.dumps(config, indent=2) + "\n"
    return files


def _devcontainer_variable(match: re.Match[str]) -> str:
    token = match.group(0)
    if token in ("{{", "}}"):
        return token[0]
    name = match.group(1) or ""
    if name.startswith("env:"):
        return "${containerEnv:" + name[4:] + "}"
    return {"drive": "${containerWorkspaceFolder}", "home": "${containerEnv:HOME}",
            "python": "python"}.get(name, token)


def _here(path: str) -> Path | None:
    """``path`` of the profile on this machine (relative ones against its Drive root)."""
    from .errors import ProfileError
    from .platform import detect
    from .profile import expand

    platform = detect()
    values = {"drive": str(platform.drive_root), "store": str(platform.store_root),
              "home": str(Path.home()), "python": sys.executable}
    try:
        text = expand(path, values, where="workdir.path")
    except ProfileError:
        return None
    folder = Path(text).expanduser()
    return folder if folder.is_absolute() else platform.drive_root / folder


def to_ray(profile: Any, pip: _Pins, result: ExportResult) -> dict[str, str]:
    env: dict[str, Any] = {}
    if pip.lines or pip.options:
        packages = [line.split(" --hash=")[0] for line in pip.lines]
        env["pip"] = {"packages": pip.options + packages, "pip_check": False}
    if pip.constraints:
        result.left_out.append("pip.constraints: a runtime_env has no constraints file; pin "
                               "those versions in the packages if they matter")
    env_vars = {}
    for name, value in profile.env.items():
        if _uses(value, "drive", "store", "here", "python"):
            result.left_out.append(f"env.{name} uses a folder of the notebook VM ({value}); set "
                                   "it in the job's code or the cluster's environment")
            continue
        # Ray expands ${NAME} in env_vars from the worker's environment
        env_vars[name] = _PLACEHOLDER.sub(
            lambda m: "${" + (m.group(1) or "")[4:] + "}" if (m.group(1) or "").startswith(
                "env:") else "${HOME}" if m.group(1) == "home" else m.group(0)[0], value)
    if env_vars:
        env["env_vars"] = env_vars
    if profile.workdir:
        # Ray uploads working_dir from the machine that submits the job: this one
        folder = _here(profile.workdir.path)
        if folder is not None and folder.is_dir():
            env["working_dir"] = str(folder)
        else:
            result.left_out.append(f"[workdir] {profile.workdir.path} is not a folder on this "
                                   "machine; give the job's folder as working_dir when you "
                                   "submit it (ray job submit --working-dir DIR)")
    for table, what in (("apt", "system packages"), ("git", "clones"), ("files", "downloads"),
                        ("run", "commands")):
        value = getattr(profile, table)
        if value and (table != "apt" or value.packages):
            result.left_out.append(f"[{table}] ({what}): a runtime_env has no form for them; "
                                   "bake them into the cluster's image (image_uri) or the "
                                   "cluster launcher's setup_commands")
    if pip.no_deps or pip.paths:
        result.left_out.append("pip entries with no_deps or a path: install them in the "
                               "cluster's image, or pass the folder in py_modules")
    for path in pip.files:
        result.left_out.append(f"pip.requirements {path}: a file on the notebook VM; list its "
                               "lines in [pip] packages (or lock the profile: the lock's pins "
                               "are exported)")
    return {"runtime_env.json": json.dumps(env, indent=2) + "\n"}


# -- the entry point -------------------------------------------------------------------------------

def readme(profile: Any, result: ExportResult, files: dict[str, str]) -> str:
    how = {"repo2docker": "Build it with `jupyter-repo2docker .` (or put these files at the top "
                          "of a repository for Binder or a JupyterHub that builds with "
                          "repo2docker).",
           "devcontainer": "Open the folder in VS Code (Dev Containers: Reopen in Container) or "
                           "in GitHub Codespaces.",
           "ray": "Pass it to Ray: `ray job submit --runtime-env runtime_env.json -- python "
                  "job.py`, or `ray.init(runtime_env=json.load(open('runtime_env.json')))`."
           }[result.target]
    lines = [f"# {profile.name or 'profile'} for {result.target}", "",
             f"Written by notebook-bootstrap (`bootstrap export --to {result.target}`) from the "
             f"profile `{profile.name or profile.source}`. {how}", "", "Files:", ""]
    lines += [f"- `{name}`" for name in sorted(files)]
    if result.left_out:
        lines += ["", "## Not carried over, and what to do instead", ""]
        lines += [f"- {item}" for item in result.left_out]
    if result.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def without_secrets(profile: Any, result: ExportResult) -> Any:
    """``profile`` less every value that looks like a secret (each listed in ``left_out``)."""
    import dataclasses

    from .redact import is_secret

    env = {}
    for name, value in profile.env.items():
        if is_secret(name, value):
            result.left_out.append(f"env.{name}: looks like a secret value, so it was not "
                                   "written; move it to [secrets]")
        else:
            env[name] = value

    def clean(kind: str, entries: list[Any], text: Any) -> list[Any]:
        kept = []
        for i, entry in enumerate(entries):
            if is_secret("", text(entry)):
                result.left_out.append(f"{kind}[{i}]: holds what looks like a secret value "
                                       "(a token or a password in a URL), so it was not "
                                       "written; read it from [secrets]")
            else:
                kept.append(entry)
        return kept

    return dataclasses.replace(
        profile, env=env,
        git=clean("git", profile.git, lambda e: e.url),
        files=clean("files", profile.files, lambda e: e.url or ""),
        run=clean("run", profile.run, lambda e: json.dumps([e.argv, e.shell, e.env,
                                                            e.unless])))


def export_profile(profile: Any, to: str, dest: str | os.PathLike[str], *,
                   store: str | os.PathLike[str] | None = None) -> ExportResult:
    """Write ``profile`` (a Profile, or a name, path or URL) as ``to``'s files into ``dest``.

    Only the files listed in the result are written (each atomically); nothing
    else in ``dest`` is touched.
    """
    from .fileio import write_atomic
    from .platform import detect
    from .profile import Profile, load
    from .store import Store

    if to not in TARGETS:
        raise OptionError(f"unknown export target {to!r}", where="--to",
                          hint=f"use one of {', '.join(TARGETS)}")
    profiles = Store(detect(store=store).store_root).profiles
    if not isinstance(profile, Profile):
        profile = load(profile, profiles_dir=profiles)
    profile = profile.for_platform("local")
    folder = Path(dest).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"{folder} is not a folder", where=str(folder),
                          hint="give a folder to write the exported files into")
    result = ExportResult(to, folder)
    profile = without_secrets(profile, result)
    common_left_out(profile, result, to)
    pip = pins(profile, profiles, result)
    files = {"repo2docker": to_repo2docker, "devcontainer": to_devcontainer,
             "ray": to_ray}[to](profile, pip, result)
    files["README.md" if to != "devcontainer" else ".devcontainer/README.md"] = \
        readme(profile, result, files)
    from .redact import mask

    for name, text in sorted(files.items()):
        path = folder / name
        if mask(text) != text:  # a secret no rule above knew of: masked, never written
            text = mask(text)
            result.left_out.append(f"{name}: a value that looks secret was masked (***) in it; "
                                   "read it from [secrets] in the profile")
        write_atomic(path, text.encode())
        if name in ("postBuild", "start") or name.endswith(".sh"):
            path.chmod(0o755)
        result.files.append(path)
    return result
