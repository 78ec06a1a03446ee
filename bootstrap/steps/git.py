"""The ``git`` step: clone or update repositories at a ref, and optionally install them with uv.

Reads: ``[[git]]`` entries (url, dest, ref, install, editable), each dest's
``.git`` folder (read in this process: config, HEAD, refs, packed-refs), the
target interpreter's installed distributions.
Changes: each dest (a clone, or a fetch and checkout in an existing checkout
of the same URL) and, with ``install = true``, the target's site-packages
through ``uv pip install``. A relative dest is taken against the Drive root.

When an entry holds:

- no ``ref``: dest is a checkout of ``url`` (whatever its HEAD);
- a tag: HEAD is the tag's commit;
- a branch: HEAD is on that branch. A branch is *not* followed: once the
  checkout is on it, later restores do not fetch (``check`` never uses the
  network); pin a tag or a commit for an exact state;
- a commit (7 to 40 hex digits): HEAD is that commit.

``check`` decides all of this by reading files under ``.git``, so a restore
where every checkout holds starts no git process (only an annotated tag that
git has packed without its peeled commit needs one ``git rev-parse``).

``apply`` clones shallow where it can (``git clone --depth 1 --branch REF``;
for a commit ``git init`` + ``git fetch --depth 1 origin SHA``, falling back
to a full fetch when the server refuses unadvertised commits), into a
temporary folder next to dest that is renamed into place, so dest is never a
half clone. An existing checkout of the same URL is fetched and checked out;
local changes that would be overwritten make git fail, and the step with it:
it never discards work. A dest that is something else is an error.

Git runs with ``GIT_TERMINAL_PROMPT=0`` (no password prompt in a notebook),
ssh in batch mode, a stall limit for http and a time limit per command.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..context import Context
from ..errors import StepError
from ..profile import GitRepo, Profile
from ..redact import clean_url
from . import Check

GIT = "git"
TIMEOUT_S = 1800.0
#: git options for every command: no ext:: or fd:: transports, quiet advice,
#: give up on an http transfer slower than 1 kB/s for a minute
GIT_OPTIONS = ("-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never",
               "-c", "advice.detachedHead=false", "-c", "http.lowSpeedLimit=1000",
               "-c", "http.lowSpeedTime=60")

_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]*$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]")


def wanted(profile: Profile) -> bool:
    return bool(profile.git)


@dataclass
class Item:
    index: int
    entry: GitRepo
    url: str
    dest: Path
    ref: str | None
    why: str | None = None              # the checkout does not hold: why
    install_why: str | None = None      # the install does not hold: why
    refused: bool = False               # dest is something apply must not touch

    @property
    def key(self) -> str:
        return f"git[{self.index}]"


# -- reading a checkout without git -------------------------------------------------

def git_dir(dest: Path) -> Path | None:
    dot = dest / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():  # a worktree or submodule: "gitdir: PATH"
        try:
            text = dot.read_text().strip()
        except OSError:
            return None
        if text.startswith("gitdir:"):
            target = Path(text[7:].strip())
            return target if target.is_absolute() else (dest / target).resolve()
    return None


def origin_url(gitdir: Path) -> str | None:
    """``remote.origin.url`` from the repository's config file."""
    try:
        lines = (gitdir / "config").read_text(errors="replace").splitlines()
    except OSError:
        return None
    section = None
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = re.match(r'^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]', line)
            section = (match.group(1).lower(), match.group(2)) if match else None
            continue
        if section == ("remote", "origin"):
            name, sep, value = line.partition("=")
            if sep and name.strip().lower() == "url":
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                return value
    return None


def read_head(gitdir: Path) -> tuple[str | None, str | None]:
    """(symbolic ref or None, commit sha or None) of HEAD."""
    try:
        text = (gitdir / "HEAD").read_text().strip()
    except OSError:
        return None, None
    if text.startswith("ref:"):
        name = text[4:].strip()
        return name, resolve_ref(gitdir, name)
    return None, text if _FULL_SHA.match(text) else None


def _common_dir(gitdir: Path) -> Path:
    try:
        common = (gitdir / "commondir").read_text().strip()
    except OSError:
        return gitdir
    path = Path(common)
    return path if path.is_absolute() else (gitdir / path).resolve()


def _packed_refs(gitdir: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (sha, peeled sha or None) from packed-refs."""
    out: dict[str, tuple[str, str | None]] = {}
    try:
        lines = (_common_dir(gitdir) / "packed-refs").read_text().splitlines()
    except OSError:
        return out
    last = None
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("^") and last is not None:
            out[last] = (out[last][0], line[1:].strip())
            continue
        sha, _, name = line.partition(" ")
        last = name.strip()
        out[last] = (sha.strip(), None)
    return out


def resolve_ref(gitdir: Path, name: str) -> str | None:
    """The sha a full ref name points at (loose, then packed), or None."""
    for base in (gitdir, _common_dir(gitdir)):
        try:
            text = (base / name).read_text().strip()
        except OSError:
            continue
        if text.startswith("ref:"):
            return resolve_ref(gitdir, text[4:].strip())
        if _FULL_SHA.match(text):
            return text
    packed = _packed_refs(gitdir).get(name)
    return packed[0] if packed else None


_UNKNOWN = "unknown"


def tag_commit(gitdir: Path, tag: str) -> str | None:
    """The commit a tag points at; None when there is no such tag; _UNKNOWN when
    the tag object is in a pack and cannot be peeled here."""
    name = f"refs/tags/{tag}"
    sha = resolve_ref(gitdir, name)
    if sha is None:
        return None
    packed = _packed_refs(gitdir).get(name)
    if packed and packed[0] == sha and packed[1]:
        return packed[1]
    for _ in range(8):  # a tag of a tag of ... a commit
        kind, target = _loose_object_header(gitdir, sha)
        if kind == "commit":
            return sha
        if kind != "tag" or target is None:
            # Not loose: a lightweight tag's commit in a pack is still a commit,
            # but we cannot tell that from a packed tag object without git.
            if packed and packed[0] == sha and "peeled" in _packed_header(gitdir):
                return sha  # fully-peeled packed-refs: no ^ line means not a tag object
            return _UNKNOWN
        sha = target
    return _UNKNOWN


def _packed_header(gitdir: Path) -> str:
    try:
        with open(_common_dir(gitdir) / "packed-refs") as handle:
            first = handle.readline()
    except OSError:
        return ""
    return first if first.startswith("#") else ""


def _loose_object_header(gitdir: Path, sha: str) -> tuple[str | None, str | None]:
    """(type, tagged object for a tag) of a loose object; (None, None) when it is not loose."""
    path = _common_dir(gitdir) / "objects" / sha[:2] / sha[2:]
    try:
        raw = zlib.decompressobj().decompress(path.read_bytes(), 512)
    except (OSError, zlib.error):
        return None, None
    header, _, body = raw.partition(b"\0")
    kind = header.split(b" ")[0].decode("ascii", "replace")
    if kind == "tag":
        match = re.match(rb"object ([0-9a-f]{40})\n", body)
        return kind, match.group(1).decode() if match else None
    return kind, None


# -- URLs -----------------------------------------------------------------------------

def clone_url(ctx: Context, item_key: str, raw: str) -> str:
    """The URL git is given; an absolute path becomes a file:// URL (shallow clones work)."""
    text = ctx.expand(raw, f"{item_key}.url").strip()
    where = ctx.where(f"{item_key}.url")
    lowered = text.lower()
    if text.startswith("-") or "::" in text.split("/", 1)[0]:
        raise StepError(f"{text!r} is not a repository URL", where=where,
                        hint="use https://host/org/repo, git@host:org/repo, ssh://, file:// "
                             "or an absolute path")
    if lowered.startswith(("http://", "git://")):
        raise StepError("plain http:// and git:// are refused for clones", where=where,
                        hint="use the https:// (or ssh) address of the repository; plain "
                             "transports can be altered in transit")
    if text.startswith(("/", "~")):
        return Path(text).expanduser().absolute().as_uri()
    if lowered.startswith(("https://", "ssh://", "file://")) or _SCP_LIKE.match(text):
        return text
    raise StepError(f"{text!r} is not a repository URL", where=where,
                    hint="use https://host/org/repo, git@host:org/repo, ssh://, file:// or "
                         "an absolute path")


def canonical(url: str) -> str:
    """A form of a repository address in which two spellings of one repository are equal."""
    text = url.strip()
    if text.startswith("/") or text.lower().startswith("file://"):
        path = unquote(urlsplit(text).path) if "://" in text else text
        real = os.path.realpath(path).rstrip("/")
        return "file:" + (real[:-5] if real.endswith("/.git") else real)
    if _SCP_LIKE.match(text) and "://" not in text:
        user_host, _, path = text.partition(":")
        text = f"ssh://{user_host}/{path}"
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    host = (parts.hostname or "").lower()
    user = f"{parts.username}@" if parts.username and parts.scheme == "ssh" else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{user}{host}{port}{path}"


# -- check ----------------------------------------------------------------------------

def resolve(ctx: Context, index: int, entry: GitRepo) -> Item:
    key = f"git[{index}]"
    url = clone_url(ctx, key, entry.url)
    dest = ctx.path(entry.dest, f"{key}.dest")
    ref = None
    if entry.ref is not None:
        ref = ctx.expand(entry.ref, f"{key}.ref").strip()
        if not _REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
            raise StepError(f"{ref!r} is not a branch, tag or commit name",
                            where=ctx.where(f"{key}.ref"),
                            hint='write a tag ("v1.2"), a branch ("main") or a commit sha')
    return Item(index, entry, url, dest, ref)


def checkout_problem(ctx: Context, item: Item) -> str | None:
    dest = item.dest
    if not dest.exists():
        return "not cloned yet"
    gitdir = git_dir(dest)
    if gitdir is None:
        if dest.is_dir() and not any(dest.iterdir()):
            return "empty folder"
        item.refused = True
        return "exists and is not a git checkout"
    origin = origin_url(gitdir)
    if origin is None or canonical(origin) != canonical(item.url):
        item.refused = True
        return f"is a checkout of {origin or 'no origin'}, not of {item.url}"
    symbolic, head = read_head(gitdir)
    ref = item.ref
    if ref is None:
        return None
    if _COMMIT.match(ref) and resolve_ref(gitdir, f"refs/heads/{ref}") is None \
            and resolve_ref(gitdir, f"refs/tags/{ref}") is None:
        return None if head and head.startswith(ref) else f"HEAD is not commit {ref}"
    tagged = tag_commit(gitdir, ref)
    if tagged == _UNKNOWN:
        tagged = rev_parse(ctx, dest, f"refs/tags/{ref}^{{commit}}")
    if tagged is not None:
        return None if head == tagged else f"HEAD is not tag {ref}"
    if symbolic == f"refs/heads/{ref}":
        return None
    return f"not at {ref}"


def rev_parse(ctx: Context, dest: Path, spec: str) -> str | None:
    lines: list[str] = []
    done = ctx.run([GIT, *GIT_OPTIONS, "-C", str(dest), "rev-parse", "--verify", "-q", spec],
                   env=git_environment(ctx), on_line=lines.append, check=False, timeout=60)
    return lines[0].strip() if done.returncode == 0 and lines else None


def install_problem(ctx: Context, item: Item) -> str | None:
    """Why the checkout is not installed into the target as asked (None when it is)."""
    if not item.entry.install:
        return None
    from ..interpreter import inspect

    wanted_url = item.dest.absolute().as_uri()
    for dist in inspect(ctx.python).distributions().values():
        raw = dist.read_text("direct_url.json")
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(data, dict) or data.get("url") != wanted_url:
            continue
        editable = bool((data.get("dir_info") or {}).get("editable"))
        if editable != item.entry.editable:
            return ("installed without editable mode" if item.entry.editable
                    else "installed in editable mode")
        return None
    return "not installed"


def check(ctx: Context) -> Check:
    items = [resolve(ctx, i, entry) for i, entry in enumerate(ctx.profile.git)]
    for item in items:
        item.why = checkout_problem(ctx, item)
        if item.why is None:
            item.install_why = install_problem(ctx, item)
    todo = [item for item in items if item.why or item.install_why]
    count = len(items)
    if not todo:
        return Check(True, f"{count} repositor{'ies' if count != 1 else 'y'} at "
                           f"{'their refs' if count != 1 else 'its ref'}")
    actions = []
    for item in todo:
        at = f" at {item.ref}" if item.ref else ""
        if item.why:
            verb = "clone" if item.why in ("not cloned yet", "empty folder") else "update"
            if item.refused:
                verb = "cannot use"
            actions.append(f"{verb} {item.url}{at} -> {item.dest} ({item.why})")
        if item.entry.install and (item.why or item.install_why):
            mode = "editable " if item.entry.editable else ""
            actions.append(f"install {item.dest} {mode}into {ctx.python}"
                           + (f" ({item.install_why})" if item.install_why else ""))
    return Check(False, f"{len(todo)} of {count} repositories to update", actions, todo)


# -- apply ----------------------------------------------------------------------------

def git_environment(ctx: Context) -> dict[str, str]:
    env = dict(ctx.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"     # fail instead of asking for a password
    env["GCM_INTERACTIVE"] = "never"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C.UTF-8"            # the messages we look at are git's English ones
    env.pop("LANGUAGE", None)
    return env


class _Git:
    def __init__(self, ctx: Context, item: Item) -> None:
        self.ctx, self.item = ctx, item
        self.env = git_environment(ctx)
        self.program = shutil.which(GIT, path=self.env.get("PATH", os.defpath))
        if self.program is None:
            raise StepError("git is not installed", where=ctx.where(item.key),
                            hint="install git (apt: add it to [apt] packages) or put it on PATH")

    def __call__(self, *args: str, cwd: Path | None = None, check: bool = True,
                 hint: str | None = None) -> tuple[int, str]:
        lines: list[str] = []

        def keep(line: str) -> None:
            lines.append(line)
            self.ctx.say(line)

        argv = [self.program, *GIT_OPTIONS]
        if cwd is not None:
            argv += ["-C", str(cwd)]
        done = self.ctx.run([*argv, *args], env=self.env, timeout=TIMEOUT_S, on_line=keep,
                            check=check,
                            hint=hint or f"git could not get {self.item.url}; check the URL, "
                                         "the ref and your access (git cannot ask for a "
                                         "password here: set up a credential helper, a token "
                                         "or an ssh key)")
        return done.returncode, "\n".join(lines)


def apply(ctx: Context, plan: Check) -> None:
    for item in plan.data:
        if item.refused:
            raise StepError(f"{item.dest} {item.why}", where=ctx.where(f"{item.key}.dest"),
                            hint="it is never replaced: move it away, or choose another dest")
        git = _Git(ctx, item)
        if item.why in ("not cloned yet", "empty folder"):
            clone(git, item)
        elif item.why:
            update(git, item)
        if item.entry.install:
            install(ctx, item)


def clone(git: _Git, item: Item) -> None:
    """Clone into a sibling folder, then rename it onto dest (absent or an empty folder)."""
    dest = item.dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StepError(f"cannot create {dest.parent}: {exc.strerror}",
                        where=git.ctx.where(f"{item.key}.dest"),
                        hint="check the path and its permissions") from None
    tmp = dest.parent / f".{dest.name}.clone-{secrets.token_hex(4)}"
    try:
        ref = item.ref
        if ref is not None and _COMMIT.match(ref):
            git("init", "-q", str(tmp))
            git("remote", "add", "origin", "--", clean_url(item.url)[0], cwd=tmp)
            fetch_commit(git, tmp, ref)
            git("checkout", "-q", "--detach", ref, "--", cwd=tmp)
        else:
            branch = ["--branch", ref] if ref else []
            git("clone", "--depth", "1", *branch, "--", item.url, str(tmp))
            if clean_url(item.url)[1]:
                # a token in the URL must not stay in .git/config (often on Drive)
                git("remote", "set-url", "origin", "--", clean_url(item.url)[0], cwd=tmp)
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fetch_commit(git: _Git, repo: Path, sha: str) -> None:
    """Fetch one commit shallowly; when the server refuses (or the sha is short), fetch all."""
    if _FULL_SHA.match(sha):
        code, _ = git("fetch", "--depth", "1", git.item.url, sha, cwd=repo, check=False)
        if code == 0:
            return
        git.ctx.note(f"{git.item.url} does not serve single commits; fetched its whole history")
    shallow = (repo / ".git" / "shallow").exists()
    git("fetch", *(["--unshallow"] if shallow else []), "--tags", git.item.url,
        "+refs/heads/*:refs/remotes/origin/*", cwd=repo)


def update(git: _Git, item: Item) -> None:
    """Bring an existing checkout of the same URL to the ref."""
    dest, ref = item.dest, item.ref
    assert ref is not None
    if _COMMIT.match(ref):
        code, _ = git("cat-file", "-e", f"{ref}^{{commit}}", cwd=dest, check=False)
        if code != 0:
            fetch_commit(git, dest, ref)
        git("checkout", "-q", "--detach", ref, "--", cwd=dest)
        return
    # the profile's URL, not origin's: origin keeps no credentials (see clone)
    code, out = git("ls-remote", item.url, f"refs/tags/{ref}", f"refs/heads/{ref}", cwd=dest)
    names = {line.split("\t", 1)[1] for line in out.splitlines() if "\t" in line}
    if f"refs/tags/{ref}" in names:
        git("fetch", "--depth", "1", item.url, f"+refs/tags/{ref}:refs/tags/{ref}", cwd=dest)
        git("checkout", "-q", "--detach", f"refs/tags/{ref}^{{commit}}", "--", cwd=dest)
    elif f"refs/heads/{ref}" in names:
        local = resolve_ref(git_dir(dest) or dest / ".git", f"refs/heads/{ref}")
        if local is None:
            git("fetch", "--depth", "1", item.url,
                f"+refs/heads/{ref}:refs/remotes/origin/{ref}", cwd=dest)
            git("checkout", "-q", "-b", ref, f"refs/remotes/origin/{ref}", "--", cwd=dest)
        else:
            git("checkout", "-q", ref, "--", cwd=dest)  # an existing branch keeps its commits
    else:
        raise StepError(f"{item.url} has no branch or tag {ref!r}",
                        where=git.ctx.where(f"{item.key}.ref"),
                        hint="check the name (git ls-remote URL lists them), or use a commit")
    # So that check can peel the new tag from packed-refs without running git.
    git("pack-refs", "--all", cwd=dest)


def install(ctx: Context, item: Item) -> None:
    """``uv pip install [-e] DEST`` into the target interpreter."""
    import importlib

    from .. import uv

    env, cleared = uv.environment(ctx.environ)
    for setting in cleared:
        ctx.note(f"ignored {setting} from the environment for this install")
    argv = uv.pip_install(ctx.python)
    name = project_name(item.dest)
    if name:
        # uv would otherwise keep a build of this folder it made before the checkout moved.
        argv += ["--reinstall-package", name]
    argv += ["-e", str(item.dest)] if item.entry.editable else [str(item.dest)]
    ctx.run(argv, env=env, hint=f"uv could not install {item.dest}; its message is above")
    importlib.invalidate_caches()
    ctx.note(f"installed {name or item.dest}{' (editable)' if item.entry.editable else ''}")


def project_name(folder: Path) -> str | None:
    """``[project] name`` of the checkout's pyproject.toml, when it has one."""
    from ..profile import toml_reader

    tomllib = toml_reader()
    try:
        data: Any = tomllib.loads((folder / "pyproject.toml").read_text())
    except (OSError, ValueError):
        return None
    name = data.get("project", {}).get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and re.match(r"^[A-Za-z0-9._-]+$", name) else None
