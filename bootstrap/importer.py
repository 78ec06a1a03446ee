"""Import: the profile a notebook's setup cells describe, read without running anything.

People's notebooks begin with the ritual a profile replaces: ``!pip install``,
``!apt-get install -y``, ``drive.mount(...)``, ``%cd``, ``!git clone``,
``!wget``, ``os.environ[...] = ...``, ``userdata.get(...)``, ``!nvidia-smi``.
This module reads the code cells of an ``.ipynb`` file (plain JSON), turns
each cell into Python with IPython's own input transformer (so ``!cmd``,
``%magic``, ``%%bash`` and line continuations read as IPython reads them),
walks the result with ``ast`` in source order and maps what it recognises
onto profile tables:

- pip lines (``pip``, ``pip3``, ``python -m pip``, ``%pip``, ``uv pip``) ->
  ``[pip]``, one set, options mapped to the ``[pip]`` keys;
- apt lines -> ``[apt]``; ``drive.mount`` -> ``[drive]``; the last ``%cd`` /
  ``os.chdir`` -> ``[workdir]``; ``git clone`` -> ``[[git]]``;
  ``os.environ`` / ``%env`` -> ``[env]``; secret reads -> ``[secrets]``;
  ``nvidia-smi`` -> ``[gpu]``;
- ``-r FILE`` -> ``[pip] requirements`` (the file's path as the notebook saw
  it, read at restore);
- downloads with a known https URL -> ``[[files]]`` entries without a sha256
  (trusted on first use), an unzip or untar of one right after it -> that
  entry's ``unpack = true``; other downloads and unpacking -> ``[[run]]``
  entries with a guard;
- any other shell command -> a ``[[run]]`` entry marked for review.

What it cannot map (an expression only known when the notebook runs, a
``!cd`` that changes nothing, a conda install...) is listed with its cell
number and kept as a comment in the profile. Secret values never reach the
profile: a value the secret detector flags becomes a ``[secrets]``
reference. The text produced always validates (``bootstrap.profile.parse``).
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import OptionError, ProfileError
from .profile import (
    _PROFILE_NAME,
    check_apt_name,
    check_argv,
    check_download_url,
    check_env_name,
    check_requirement,
    check_url,
    parse,
)
from .redact import clean_url, is_secret, mask

COLAB_CWD = "/content"
KAGGLE_CWD = "/kaggle/working"
COLAB_MOUNTPOINT = "/content/drive"
HOME = "/root"  # Colab and Kaggle run as root

#: commands that only show something: nothing to carry over
READ_ONLY = frozenset({
    "ls", "pwd", "echo", "cat", "head", "tail", "which", "free", "df", "du", "lscpu", "uname",
    "nproc", "date", "whoami", "env", "printenv", "tree", "wc", "nvcc", "lsb_release", "hostname",
    "top", "ps", "uptime", "id", "file", "stat", "sleep", "true", ":", "clear", "lshw", "lsblk",
})
#: pip options without a profile form that change nothing a restore cares about
PIP_QUIET = frozenset({
    "-q", "-qq", "-qqq", "--quiet", "-v", "-vv", "--verbose", "--no-cache-dir", "--user",
    "--system", "--disable-pip-version-check", "--no-warn-script-location",
    "--break-system-packages", "--prefer-binary", "--no-color", "--no-input", "--isolated",
    "--no-warn-conflicts", "--use-pep517", "--exists-action", "--compile", "--no-compile",
    "--force-reinstall", "--ignore-installed", "-I", "--root-user-action", "--progress-bar",
    "--timeout", "--retries", "--trusted-host", "--upgrade-strategy", "--cache-dir",
})
#: ... of those, the ones followed by a value
PIP_QUIET_VALUE = frozenset({"--root-user-action", "--progress-bar", "--timeout", "--retries",
                             "--trusted-host", "--upgrade-strategy", "--cache-dir",
                             "--exists-action"})
#: pip options whose value is an index or find-links URL (which may carry a credential)
INDEX_OPTIONS = frozenset({"-i", "--index-url", "--extra-index-url", "-f", "--find-links"})
APT_VALUE_OPTIONS = frozenset({"-o", "-t", "--target-release", "-c", "--config-file"})
CELL_SHELLS = frozenset({"bash", "sh", "shell", "script"})
CELL_PYTHON = frozenset({"capture", "time", "timeit", "prun", "debug"})
KERNEL_MAGICS = frozenset({
    "matplotlib", "load_ext", "reload_ext", "unload_ext", "autoreload", "aimport", "config",
    "time", "timeit", "capture", "precision", "xmode", "pdb", "who", "whos", "lsmagic",
    "tensorboard", "pylab", "store", "reset", "clear", "history", "ls", "pwd",
})
_SHELL_CONTROL = re.compile(r"^\s*(if|then|else|elif|fi|for|while|do|done|case|esac|function)\b"
                            r"|<<|\(\)\s*\{", re.M)
_DEVNULL = re.compile(r"\s*(?:[12]?>>?|&>)\s*/dev/null|\s*2>&1")
_FILTERS = frozenset({"tail", "head", "grep", "tee", "cat", "wc", "sed", "awk"})
#: shell text that adds an apt repository: packages from it must be installed after it
_APT_SOURCES = re.compile(
    r"sources\.list|add-apt-repository|apt-key|trusted\.gpg|/etc/apt/keyrings")


@dataclass
class Skipped:
    """A line the importer did not carry over, with where it was and why."""

    cell: int
    text: str
    reason: str

    def line(self) -> str:
        return f"cell {self.cell}: {self.text}  ({self.reason})"


@dataclass
class ImportResult:
    """What ``import_notebook`` made of a notebook."""

    name: str
    notebook: Path
    toml: str                         # the profile text, with its review comments
    profile: Any                      # the validated bootstrap.profile.Profile
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None          # where it was (or would be) written
    written: bool = False
    dry_run: bool = False
    history: Path | None = None       # where a replaced profile was kept

    def text(self) -> str:
        if self.dry_run or self.path is None:
            head = (f"# dry run: nothing written; this would be saved to {self.path}"
                    if self.path is not None else f"# imported from {self.notebook}")
            lines = [head, self.toml.rstrip("\n")]
        else:
            lines = [f"imported {self.notebook} as profile {self.name}: {self.path}"]
            if self.history is not None:
                lines.append(f"previous version kept as {self.history}")
        if self.skipped:
            count = len(self.skipped)
            lines.append(f"not carried over ({count} line{'s' if count != 1 else ''}, kept as "
                         "comments in the profile):")
            lines.extend(f"  {item.line()}" for item in self.skipped)
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    __str__ = text


def _literal(text: str) -> str:
    """``text`` as a profile string: braces doubled, so nothing reads as a placeholder."""
    return text.replace("{", "{{").replace("}", "}}")


# -- reading the notebook ---------------------------------------------------------------

def read_cells(path: Path) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """The code cells of ``path`` as (1-based cell number, source), and the notebook metadata."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"no such notebook: {path}", where=str(path),
                          hint="give the path of an .ipynb file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OptionError(f"{path.name} is not a notebook file ({exc.__class__.__name__})",
                          where=str(path), hint="give a Jupyter notebook (.ipynb, JSON)") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise OptionError(f"{path.name} has no cells", where=str(path),
                          hint="give a Jupyter notebook in nbformat 4 (.ipynb)")
    out = []
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(part) for part in source)
        out.append((number, str(source)))
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return out, metadata


def to_python(source: str) -> str:
    """IPython's own transformation of a cell (``!cmd`` -> ``get_ipython().system(...)``)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


# -- shell lines --------------------------------------------------------------------------

def split_shell(line: str) -> list[tuple[str, str]]:
    """Split a shell line at top-level ``&&``, ``||``, ``;`` and ``&``.

    Returns [(segment, the operator before it)].

    Quotes and backslashes are respected; an unquoted ``#`` after a blank starts a comment.
    """
    parts: list[tuple[str, str]] = []
    current, before, quote, i = "", "", "", 0
    while i < len(line):
        char = line[i]
        if quote:
            current += char
            if char == "\\" and quote == '"' and i + 1 < len(line):
                current += line[i + 1]
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current += char
        elif char == "\\" and i + 1 < len(line):
            current += line[i:i + 2]
            i += 1
        elif char == "#" and (not current or current[-1].isspace()):
            break
        elif line.startswith(("&&", "||"), i):
            parts.append((current, before))
            current, before = "", line[i:i + 2]
            i += 1
        elif char == ";" or (char == "&" and not current.rstrip().endswith((">", "<"))
                             and not line.startswith("&>", i)):
            parts.append((current, before))
            current, before = "", char
        else:
            current += char
        i += 1
    parts.append((current, before))
    return [(text.strip(), op) for text, op in parts if text.strip()]


def _top_level(segment: str, chars: str) -> list[int]:
    """Positions of unquoted ``chars`` in ``segment``."""
    found, quote, i = [], "", 0
    while i < len(segment):
        char = segment[i]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                i += 1
        elif char in "'\"":
            quote = char
        elif char == "\\":
            i += 1
        elif char in chars:
            found.append(i)
        i += 1
    return found


# -- the importer -------------------------------------------------------------------------

@dataclass
class _Run:
    entry: dict[str, Any]
    comments: list[str]


class _Reader:
    """Walks the cells in order, keeping what a person reading them would keep in mind."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.cwd = KAGGLE_CWD if platform == "kaggle" else COLAB_CWD
        self.mountpoint: str | None = None
        self.mount_inferred = False               # Drive paths used, but no drive.mount
        self.known: dict[str, str] = {}           # Python names bound to strings we can read
        self.bound: set[str] = set()              # every Python name the notebook binds
        self.secret_vars: dict[str, str] = {}     # Python name -> secret name
        self.written: dict[str, str] = {}         # %%writefile path -> text
        self.pip: dict[str, Any] = {}             # canonical name -> entry (str or table)
        self.pip_lines: list[tuple[set[str], str | None]] = []
        self.requirements: list[str] = []         # [pip] requirements files, as profile paths
        self.files: list[_Run] = []               # [[files]] downloads
        self.last_download: tuple[str, _Run] | None = None  # (archive path, entry) just made
        self.downloaded: list[str] = []           # absolute paths [[files]] entries make
        self.extra_index_urls: list[str] = []
        self.find_links: list[str] = []
        self.no_index = False
        self.apt: list[str] = []
        self.env: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self.git: list[dict[str, Any]] = []
        self.runs: list[_Run] = []
        self.workdir: str | None = None
        self.gpu = False
        self.apt_sources = False                  # the notebook added an apt repository
        self.python: str | None = None            # the notebook's Python, from its metadata
        self.shown = ""                           # how the shell line being read was typed
        self.skipped: list[Skipped] = []
        self.notes: list[str] = []
        self.cell = 0

    # paths -----------------------------------------------------------------------------

    def drive_roots(self) -> list[str]:
        # "My Drive" is the older name of the same folder, still found in notebooks
        return [f"{self.mountpoint}/MyDrive", f"{self.mountpoint}/My Drive"] \
            if self.mountpoint else []

    def absolute(self, path: str, cwd: str | None = None) -> str:
        if path == "~" or path.startswith("~/"):
            path = HOME + path[1:]
        return posixpath.normpath(posixpath.join(cwd or self.cwd, path))

    def portable(self, path: str) -> str:
        """An absolute path as a profile string: relative to the Drive root when under it."""
        for root in self.drive_roots():
            if path == root or path.startswith(root + "/"):
                return _literal(posixpath.relpath(path, root))
        if path == HOME or path.startswith(HOME + "/"):
            return "{home}" + _literal(path[len(HOME):])
        return _literal(path)

    def guard(self, path: str, cwd: str) -> str:
        """A ``creates`` path: relative to the entry's ``cwd`` when inside it."""
        if path.startswith(cwd.rstrip("/") + "/"):
            return _literal(posixpath.relpath(path, cwd))
        portable = self.portable(path)
        return portable if portable.startswith(("/", "{")) else "{drive}/" + portable

    def skip(self, text: str, reason: str) -> None:
        text = " ".join(text.split())
        if self.shown and not text.startswith(("!", "%")):
            text = self.shown + text
        if is_secret("", text):
            text = "(a line holding a secret value; not copied)"
        self.skipped.append(Skipped(self.cell, text, mask(reason)))

    # Python ----------------------------------------------------------------------------

    def read_cell(self, number: int, source: str) -> None:
        self.cell = number
        try:
            code = to_python(source)
        except (SyntaxError, ValueError):
            code = source
        tree = self.parse_around(code)
        if tree is not None:
            self.read_tree(tree, code)

    def parse_around(self, code: str) -> ast.Module | None:
        """``code`` parsed; a line Python cannot read is listed and stood in for by ``pass``,
        so one bad line (``x = 1; !echo hi``, Python 2) does not hide the rest of the cell."""
        lines = code.splitlines()
        tried: dict[int, int] = {}
        while True:
            try:
                return ast.parse("\n".join(lines))
            except (SyntaxError, ValueError) as exc:
                n = (getattr(exc, "lineno", None) or 0) - 1
                if not 0 <= n < len(lines) or tried.get(n, 0) >= 2:
                    self.skip(code.splitlines()[0] + " ...", "a cell Python cannot read")
                    return None
                if n not in tried and lines[n].strip() and \
                        not lines[n].lstrip().startswith("#"):
                    self.skip(lines[n], "not a line IPython can read")
                tried[n] = tried.get(n, 0) + 1
                indent = lines[n][:len(lines[n]) - len(lines[n].lstrip())]
                lines[n] = indent + "pass" if tried[n] == 1 else ""

    def read_tree(self, tree: ast.AST, code: str) -> None:
        # positions in ``tree`` refer to ``code`` as parsed: lines it could not read were
        # replaced, not removed, so get_source_segment still finds every other node
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.bound.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self.bound.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                self.bound.add(node.name)
        self.read_block(getattr(tree, "body", []), code)

    def read_block(self, statements: list[ast.stmt], code: str) -> None:
        """Statements in order. Of two branches, the first one decides the folder: it is the
        path a fresh VM takes (``if not os.path.exists(repo): clone; %cd repo / else: ...``)."""
        for statement in statements:
            if isinstance(statement, ast.If):
                self.read_nodes(statement, code, header=True)
                self.branches([statement.body, statement.orelse], code)
            elif isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
                self.branches([statement.body + statement.orelse,  # type: ignore[attr-defined]
                               *(h.body for h in statement.handlers)],  # type: ignore[attr-defined]
                              code)
                self.read_block(statement.finalbody, code)  # type: ignore[attr-defined]
            elif isinstance(statement, (ast.For, ast.AsyncFor, ast.While, ast.With,
                                        ast.AsyncWith, ast.FunctionDef, ast.AsyncFunctionDef)):
                self.read_nodes(statement, code, header=True)
                self.branches([statement.body, getattr(statement, "orelse", [])], code)
            else:
                self.read_nodes(statement, code)

    def branches(self, blocks: list[list[ast.stmt]], code: str) -> None:
        """Each block starts from the same folder; the first block's folder is kept."""
        start = (self.cwd, self.workdir)
        after = start
        for i, block in enumerate(blocks):
            self.cwd, self.workdir = start
            self.read_block(block, code)
            if i == 0:
                after = (self.cwd, self.workdir)
        self.cwd, self.workdir = after

    def read_nodes(self, statement: ast.stmt, code: str, *, header: bool = False) -> None:
        if header:  # only the header: `for x in f(...)`, `with open(...)`, `if f(...)`
            parts: list[ast.AST] = [getattr(statement, key) for key in ("iter", "test")
                                    if getattr(statement, key, None) is not None]
            parts += [item.context_expr for item in getattr(statement, "items", [])]
        else:
            parts = [statement]
        nodes = [node for part in parts for node in ast.walk(part)
                 if isinstance(node, (ast.Call, ast.Assign, ast.AugAssign, ast.AnnAssign))]
        nodes.sort(key=lambda n: (n.lineno, n.col_offset))
        for node in nodes:
            if isinstance(node, ast.Call):
                self.read_call(node, code)
            else:
                self.read_assign(node, code)

    def value(self, node: ast.AST | None) -> str | None:
        """The string ``node`` evaluates to, when it can be known without running anything."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)) \
                and not isinstance(node.value, bool):
            return str(node.value)
        if isinstance(node, ast.Name):
            return self.known.get(node.id)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    if part.format_spec is not None or part.conversion not in (-1, 115):
                        return None
                    text = self.value(part.value)
                else:
                    text = self.value(part)
                if text is None:
                    return None
                parts.append(text)
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.value(node.left), self.value(node.right)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("os.path.join", "posixpath.join") and node.args:
                parts = [self.value(arg) for arg in node.args]
                return None if None in parts else posixpath.join(*parts)  # type: ignore[arg-type]
            if name in ("str", "Path", "pathlib.Path") and len(node.args) == 1:
                return self.value(node.args[0])
            if name == "os.getcwd":
                return self.cwd
            if name in ("os.getenv", "os.environ.get") and node.args:
                key = self.value(node.args[0])
                return self.env.get(key) if key else None
        if isinstance(node, ast.Subscript) and _dotted(node.value) == "os.environ":
            key = self.value(node.slice)
            return self.env.get(key) if key else None
        if _dotted(node) == "sys.executable":
            return "python"
        return None

    def secret_of(self, node: ast.AST | None) -> str | None:
        """The secret name when ``node`` reads one (``userdata.get('X')``, ``get_secret('X')``)."""
        if isinstance(node, ast.Name):
            return self.secret_vars.get(node.id)
        if not isinstance(node, ast.Call) or not node.args:
            return None
        name = _dotted(node.func) or ""
        if name.endswith("userdata.get") or name.endswith(".get_secret") \
                or name == "get_secret":
            return self.value(node.args[0])
        return None

    def read_assign(self, node: ast.AST, code: str) -> None:
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target])  # type: ignore[attr-defined]
        value_node = node.value  # type: ignore[attr-defined]
        if value_node is None:
            return
        for target in targets:
            if isinstance(target, ast.Name):
                secret = self.secret_of(value_node)
                if secret is not None:
                    self.secret_vars[target.id] = secret
                    continue
                text = self.value(value_node)
                if text is not None and not isinstance(node, ast.AugAssign):
                    self.known[target.id] = text
                else:
                    self.known.pop(target.id, None)
            elif isinstance(target, ast.Subscript) and _dotted(target.value) == "os.environ":
                key = self.value(target.slice)
                if isinstance(node, ast.AugAssign):
                    extra = self.value(value_node)
                    if key and extra is not None and check_env_name(key) is None:
                        self.set_env(key, "{env:" + key + "}" + _literal(extra), raw=True)
                    else:
                        self.skip(_source(code, node), "a value only known when the notebook runs")
                    continue
                self.assign_env(key, value_node, _source(code, node))

    def assign_env(self, key: str | None, node: ast.AST | None, text: str) -> None:
        if key is None or check_env_name(key) is not None:
            self.skip(text, "an environment variable name only known when the notebook runs")
            return
        secret = self.secret_of(node)
        if secret is not None:
            for guessed in [k for k, v in self.secrets.items() if v == secret and k != key]:
                del self.secrets[guessed]
            self.secrets[key] = secret
            return
        value = self.value(node)
        if value is None:
            self.skip(text, "a value only known when the notebook runs")
            return
        self.set_env(key, value)

    def set_env(self, key: str, value: str, *, raw: bool = False) -> None:
        if is_secret(key, value):
            self.secrets[key] = key
            self.notes.append(f"{key} looks like a secret: imported as a [secrets] reference, "
                              f"not its value; keep it in the secret store as {key} (and take "
                              "the value out of the notebook)")
            return
        if not raw:
            value = _literal(value)
            for root in self.drive_roots():
                value = re.sub(re.escape(_literal(root)) + r"(?=/|:|$)", "{drive}", value)
        self.env[key] = value

    def read_call(self, node: ast.Call, code: str) -> None:
        name = _dotted(node.func) or ""
        args = node.args
        if name.endswith(("get_ipython().system", "get_ipython().getoutput")) and args:
            self.shell_from(args[0], code, node)
        elif name.endswith("get_ipython().run_line_magic") and len(args) == 2:
            magic, line = self.value(args[0]), _constant(args[1])
            if magic is not None and line is not None:
                self.line_magic(magic.lstrip("%"), line)
        elif name.endswith("get_ipython().run_cell_magic") and len(args) == 3:
            magic, line, body = (_constant(a) for a in args)
            if magic is not None and line is not None and body is not None:
                self.cell_magic(magic, line, body)
        elif name.endswith("drive.mount"):
            point = args[0] if args else _keyword(node, "mountpoint")
            where = self.value(point) if point is not None else COLAB_MOUNTPOINT
            if where is None:
                self.skip(_source(code, node), "a mountpoint only known when the notebook runs")
                return
            self.mountpoint = self.absolute(where)
        elif name == "os.chdir" and args:
            where = self.value(args[0])
            if where is None:
                self.skip(_source(code, node), "a folder only known when the notebook runs")
                return
            self.chdir(where)
        elif name in ("os.environ.update", "os.environ.setdefault", "os.putenv"):
            if name == "os.environ.update" and args and isinstance(args[0], ast.Dict):
                for key, value in zip(args[0].keys, args[0].values, strict=True):
                    self.assign_env(self.value(key), value, _source(code, node))
            elif len(args) == 2:
                self.assign_env(self.value(args[0]), args[1], _source(code, node))
            for keyword in node.keywords:
                if keyword.arg:
                    self.assign_env(keyword.arg, keyword.value, _source(code, node))
        elif self.secret_of(node) is not None:
            secret = self.secret_of(node)
            assert secret is not None
            if secret not in self.secrets.values():
                env = re.sub(r"\W", "_", secret).upper().lstrip("0123456789") or "SECRET"
                self.secrets.setdefault(env, secret)
        elif name in ("os.system",) and args:
            self.shell_from(args[0], code, node)
        elif name.startswith("subprocess.") and name.split(".")[-1] in (
                "run", "call", "check_call", "check_output", "Popen") and args:
            if isinstance(args[0], (ast.List, ast.Tuple)):
                words = [self.value(item) for item in args[0].elts]
                if None in words:
                    self.skip(_source(code, node), "arguments only known when the notebook runs")
                    return
                self.command(words, shlex.join(words), self.cwd, top=True)  # type: ignore[arg-type]
            else:
                self.shell_from(args[0], code, node)
        elif name.endswith(("notebook_login", "auth.authenticate_user")):
            self.skip(_source(code, node), "a login that asks a person; give the token as a "
                      "secret in [secrets] instead (e.g. HF_TOKEN)")
        elif name.endswith("files.upload"):
            self.skip(_source(code, node), "an upload needs a person at the browser; keep the "
                      "file in the store and copy it with a [[files]] entry (store = ...)")
        elif name in ("sys.path.append", "sys.path.insert"):
            self.skip(_source(code, node), "sys.path is not part of a profile; install the "
                      "folder instead ([[git]] install = true, or a [pip] path entry)")

    def shell_from(self, node: ast.AST, code: str, call: ast.Call) -> None:
        line = _constant(node)
        if line is None:
            line = self.value(node)
        if line is None:
            self.skip(_source(code, call), "a command only known when the notebook runs")
            return
        self.shell_line(line)

    # magics ----------------------------------------------------------------------------

    def line_magic(self, magic: str, line: str) -> None:
        expanded = self.expand(line)
        if magic in ("pip", "uv"):
            if expanded is None:
                self.skip(f"%{magic} {line}", "uses a Python value only known when the notebook "
                          "runs")
                return
            self.shell_line(f"{magic} {line}", expand=False, shown="%")
        elif magic == "cd":
            if expanded is None:
                self.skip(f"%cd {line}", "a folder only known when the notebook runs")
                return
            try:  # as IPython's own %cd: options off, the rest joined (so My Drive holds)
                words = shlex.split(expanded)
            except ValueError:
                words = expanded.split()
            while words and words[0] in ("-q", "-b", "-qb", "-bq"):
                words = words[1:]
            self.chdir(" ".join(words) if words else HOME)
        elif magic in ("env", "set_env"):
            if expanded is None:
                self.skip(f"%{magic} {line}", "a value only known when the notebook runs")
                return
            # as IPython's set_env: split at the first '=' (else a blank), values as written
            bits = expanded.split("=" if "=" in expanded else " ", 1)
            if len(bits) < 2 or not bits[0].strip():
                return  # %env alone lists, %env NAME reads: nothing set
            name, value = bits[0].strip(), bits[1].strip()
            if check_env_name(name) is not None:
                self.skip(f"%{magic} {line}", f"{name!r} is not an environment variable name")
                return
            self.set_env(name, value)
        elif magic in ("sx", "system"):
            self.shell_line(line)
        elif magic == "run":
            self.skip(f"%run {line}", "runs a script or notebook: a setup notebook goes in "
                      "[setup] notebook = ...; other scripts in a [[run]] entry")
        elif magic in KERNEL_MAGICS:
            return  # a setting of this kernel, not of the machine
        else:
            self.skip(f"%{magic} {line}".strip(), "a magic with no profile form")

    def cell_magic(self, magic: str, line: str, body: str) -> None:
        words = line.split()
        if magic in CELL_SHELLS and (magic != "script" or (words and words[0] in ("bash", "sh"))):
            if _SHELL_CONTROL.search(body):
                self.run_entry({"shell": _literal(body.strip())}, self.cwd,
                               [f"review: cell {self.cell}: the %%{magic} cell, run as a script"])
                return
            cwd = self.cwd
            for raw in body.replace("\\\n", " ").splitlines():
                if raw.strip():
                    cwd = self.shell_line(raw, cwd=cwd, expand=False, script=True)
        elif magic in CELL_PYTHON:
            try:
                code = to_python(body)
            except (SyntaxError, ValueError):
                code = body
            tree = self.parse_around(code)
            if tree is not None:
                self.read_tree(tree, code)
        elif magic == "writefile" and words:
            path = self.absolute(words[-1])
            self.written[path] = body
            self.skip(f"%%writefile {line}", "a file written by the notebook; keep it in the "
                      "store and copy it with a [[files]] entry (store = ...)")
        else:
            self.skip(f"%%{magic} {line}".strip(), "a cell magic with no profile form")

    def expand(self, text: str) -> str | None:
        """IPython's ``{expr}`` and ``$name`` expansion, where the value is known; else None."""
        unknown = False

        def brace(match: re.Match[str]) -> str:
            nonlocal unknown
            inner = match.group(1)
            try:
                node = ast.parse(inner, mode="eval").body
            except SyntaxError:
                unknown = True
                return match.group(0)
            value = self.value(node)
            if value is None:
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                # IPython leaves {expr} as written when evaluating it fails (a name the
                # notebook never binds, like sed's or find's own braces)
                if names and not names & self.bound:
                    return match.group(0)
                unknown = True
                return match.group(0)
            return value

        def dollar(match: re.Match[str]) -> str:
            nonlocal unknown
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if name in self.known:
                return self.known[name]
            if name in self.secret_vars:  # a secret's value: never carried into a profile
                unknown = True
            return match.group(0)  # a shell variable: IPython leaves it to the shell

        text = re.sub(r"(?<!\{)\{([^{}]+)\}(?!\})", brace, text)
        text = re.sub(r"\$\$|\$([A-Za-z_][A-Za-z0-9_]*)", dollar, text)
        return None if unknown else text

    def chdir(self, where: str) -> None:
        self.cwd = self.absolute(where)
        self.workdir = self.cwd

    # shell -----------------------------------------------------------------------------

    def shell_line(self, line: str, *, cwd: str | None = None, expand: bool = True,
                   script: bool = False, shown: str = "!") -> str:
        """Map one shell line; returns the folder it leaves its shell in (for ``%%bash``)."""
        before, self.shown = self.shown, "" if script else shown
        try:
            return self._shell_line(line, cwd=cwd, expand=expand, script=script)
        finally:
            self.shown = before

    def _shell_line(self, line: str, *, cwd: str | None, expand: bool, script: bool) -> str:
        original = line.strip()
        if expand:
            expanded = self.expand(line)
            if expanded is None:
                self.skip(original, "uses a Python value only known when the notebook runs")
                return cwd or self.cwd
            line = expanded
        here = cwd or self.cwd
        segments = split_shell(line)
        top = len(segments) == 1
        for text, operator in segments:
            if operator == "||" and text.split()[0] in ("true", ":", "echo"):
                continue
            if operator == "&":
                self.skip(text, "a command started in the background")
                continue
            text = _DEVNULL.sub("", text)
            if _APT_SOURCES.search(text):
                self.apt_sources = True
            pipes = _top_level(text, "|")
            if pipes and _plain_head(text[:pipes[0]]) and all(
                    text[p + 1:].split()[:1] and text[p + 1:].split()[0] in _FILTERS
                    for p in pipes):
                text = text[:pipes[0]]  # `pip install x | tail -1` installs x
            if _top_level(text, "|<>`") or "$(" in text:
                self.run_entry({"shell": _literal(text)}, here,
                               [f"review: cell {self.cell}: {self.shown}{text}"])
                continue
            try:
                words = shlex.split(text)
            except ValueError:
                self.skip(text, "unbalanced quotes")
                continue
            if not words:
                continue
            if words[0] == "cd":
                if top and not script:
                    self.skip(original, "!cd does not change the notebook's folder; "
                              "%cd or os.chdir does")
                    continue
                here = self.absolute(words[1] if len(words) > 1 else HOME, here)
                continue
            here = self.command(words, text, here, top=top) or here
        return here

    def command(self, words: list[str], text: str, cwd: str, *, top: bool) -> str | None:
        env: dict[str, str] = {}
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            key, _, value = words[0].partition("=")
            env[key] = value
            words = words[1:]
        if words[:1] == ["sudo"]:
            words = [w for w in words[1:] if w not in ("-E", "-H")] if len(words) > 1 else []
        if not words:
            return None
        program = posixpath.basename(words[0])
        download, self.last_download = self.last_download, None
        if program == "export":
            self.skip(text, "export in a shell line has no lasting effect; use os.environ or "
                      "%env")
            return None
        pip_args = _pip_args(words)
        if pip_args is not None:
            self.pip_install(pip_args, text, cwd)
            return None
        if program in ("apt-get", "apt", "aptitude"):
            self.apt_line(words[1:], text)
            return None
        if program == "nvidia-smi":
            self.gpu = True
            return None
        if program == "git" and len(words) > 1:
            return self.git_line(words, text, cwd)
        if program in ("wget", "curl", "gdown", "aria2c"):
            self.download(words, text, cwd, env)
            return None
        if program in ("unzip", "tar", "7z"):
            self.unpack(words, text, cwd, download)
            return None
        if program in ("conda", "mamba"):
            self.skip(text, "conda has no profile form; install with [pip] or [apt]")
            return None
        if program in READ_ONLY or _version_query(words):
            self.skip(text, "only shows something")
            return None
        if re.match(r"^python(\d+(\.\d+)?)?$", program):
            return self.python_command(words, text, cwd)
        if program == "rm":
            self.skip(text, "removes files: a fresh VM has nothing to clean up")
            return None
        if program == "mkdir":
            folders = [w for w in words[1:] if not w.startswith("-")]
            entry: dict[str, Any] = {"argv": [_literal(w) for w in words]}
            if len(folders) == 1:
                entry["creates"] = self.guard(self.absolute(folders[0], cwd), cwd)
            self.run_entry(entry, cwd, [f"cell {self.cell}: {self.shown}{text}"])
            return None
        entry = {"argv": [_literal(w) for w in words]}
        if env:
            entry["env"] = {k: _literal(v) for k, v in env.items() if check_env_name(k) is None}
        self.run_entry(entry, cwd, [f"review: cell {self.cell}: {self.shown}{text}"])
        return None

    def python_command(self, words: list[str], text: str, cwd: str) -> None:
        """``python setup.py develop|install`` installs the folder; other scripts are the work."""
        if words[1:3] in (["setup.py", "develop"], ["setup.py", "install"]):
            self.pip_entry("editable" if words[2] == "develop" else "req", cwd, text, cwd,
                           upgrade=False, no_deps=False)
        elif words[1:2] == ["-m"]:  # a tool: python -m spacy download, nltk.downloader...
            self.run_entry({"argv": [_literal(w) for w in words]}, cwd,
                           [f"review: cell {self.cell}: {self.shown}{text}"])
        else:
            self.skip(text, "runs the notebook's own work (a script or python -c), not setup; "
                      "add a [[run]] entry by hand if it prepares something")
        return None

    def run_entry(self, entry: dict[str, Any], cwd: str, comments: list[str]) -> None:
        text = entry.get("shell") or " ".join(entry.get("argv", []))
        if is_secret("", text) or any(is_secret(key, value)
                                         for key, value in entry.get("env", {}).items()):
            self.skip(text, "holds a secret value; not copied: read it from [secrets] instead")
            return
        if "argv" in entry and check_argv(entry["argv"]) is not None:
            entry = {**{k: v for k, v in entry.items() if k != "argv"},
                     "shell": shlex.join(entry["argv"])}
        entry["cwd"] = self.portable(cwd)
        self.runs.append(_Run(entry, comments))

    # pip -------------------------------------------------------------------------------

    def without_credential(self, url: str) -> str:
        """An index or find-links URL to write down: its credential left out, with a note."""
        cleaned, removed = clean_url(url)
        if removed:
            self.notes.append(
                f"cell {self.cell}: the index URL {cleaned} held a credential; kept without "
                "it: keep the credential in the secret store and write it back as a [secrets] "
                "reference, e.g. https://user:{env:INDEX_TOKEN}@host/simple")
        return cleaned

    def pip_install(self, args: list[str], text: str, cwd: str) -> None:
        if not args or args[0] != "install":
            if args[:1] in (["list"], ["freeze"], ["show"], ["check"], ["--version"], ["-V"]):
                self.skip(text, "only shows something")
            else:
                self.skip(text, f"pip {args[0] if args else ''} has no profile form".rstrip())
            return
        upgrade = no_deps = from_file = False
        index_url: str | None = None
        names: set[str] = set()
        entries: list[tuple[str, str]] = []
        for option, value in pip_options(args[1:]):
            if value and option in INDEX_OPTIONS:
                value = self.without_credential(value)
            if option == "":
                entries.append(("req", value or ""))
            elif option in ("-U", "--upgrade") or re.match(r"^-[qvU]*U[qvU]*$", option):
                upgrade = True
            elif option == "--no-deps":
                no_deps = True
            elif option in ("-i", "--index-url"):
                index_url = value
            elif option == "--extra-index-url" and value:
                if check_url(value) is None:
                    if value not in self.extra_index_urls:
                        self.extra_index_urls.append(value)
                else:
                    self.skip(text, f"the index {value} is not an https URL")
            elif option in ("-f", "--find-links") and value:
                link = value if "://" in value else self.absolute(value, cwd)
                if check_url(link) is None and _literal(link) not in self.find_links:
                    self.find_links.append(link if "://" in link else _literal(link))
            elif option == "--no-index":
                self.no_index = True
            elif option in ("-r", "--requirement"):
                written = self.written.get(self.absolute(value or "", cwd))
                if written is None:
                    if self.requirements_file(value or "", text, cwd):
                        from_file = True
                else:
                    entries += [("req", line.split("#", 1)[0].strip())
                                for line in written.splitlines()
                                if line.split("#", 1)[0].strip()]
            elif option in ("-c", "--constraint"):
                self.skip(text, f"-c {value}: list the constraints in [pip] constraints")
            elif option in ("-e", "--editable") and value:
                entries.append(("editable", value))
            elif option in PIP_QUIET or re.match(r"^-[qv]+$", option):
                pass
            else:
                self.notes.append(f"cell {self.cell}: pip option {option} has no profile form; "
                                  "left out")
        for kind, target in entries:
            made = self.pip_entry(kind, target, text, cwd, upgrade=upgrade, no_deps=no_deps)
            if made is not None:
                names.add(made)
        if names or from_file:
            self.pip_lines.append((names, index_url))
        elif index_url:
            self.skip(text, f"an index ({index_url}) for no package the importer could read")

    def requirements_file(self, value: str, text: str, cwd: str) -> bool:
        """``-r FILE`` -> ``[pip] requirements``: the file where the notebook's folder put it."""
        if not value or "://" in value:
            self.skip(text, f"-r {value}: a requirements file from a URL has no profile form; "
                      "download it with a [[files]] entry and name its dest in [pip] "
                      "requirements")
            return False
        path = self.absolute(value, cwd)
        portable = self.portable(path)
        if not portable.startswith(("/", "{")):
            portable = "{drive}/" + portable
        made = [repo["_abs"] for repo in self.git] + self.downloaded
        if not portable.startswith("{drive}") and not any(
                path == folder or path.startswith(folder + "/") for folder in made):
            self.notes.append(f"cell {self.cell}: -r {value}: nothing in the notebook makes "
                              f"{path} (no clone or download holds it); a restore needs it "
                              "there: put it on Drive, or in a [[files]] entry")
        if portable not in self.requirements:
            self.requirements.append(portable)
        return True

    def pip_entry(self, kind: str, target: str, text: str, cwd: str, *, upgrade: bool,
                  no_deps: bool) -> str | None:
        from packaging.utils import canonicalize_name

        local = (kind == "editable" or target in (".", "..") or target.startswith(("/", "./",
                 "../", "~"))) and "://" not in target
        if local:
            folder = self.absolute(target, cwd)
            if re.search(r"[*?\[]", folder):
                self.skip(text, f"{target}: a wildcard; name the packages in [pip] packages and "
                          "their folder in find_links")
                return None
            if re.search(r"\.(whl|tar\.gz|zip)$", folder):
                return self.pip_archive(folder, text, no_deps=no_deps)
            for repo in self.git:
                if repo["_abs"] == folder:
                    repo["install"] = True
                    if kind != "editable":
                        repo["editable"] = False
                    return canonicalize_name(posixpath.basename(folder)) or "local"
            table: dict[str, Any] = {"path": self.portable(folder)}
            if kind == "editable":
                table["editable"] = True
            if no_deps:
                table["no_deps"] = True
            self.pip[f"path:{folder}"] = table
            return None
        if is_secret("", target):
            self.skip(text, "the URL holds a credential or a signature; not copied: keep the "
                      "file in the store (store = ...) or on an index")
            return None
        requirement = _requirement(target)
        if requirement is None:
            self.skip(text, f"{target!r} is not a requirement the importer understands")
            return None
        verdict = check_requirement(requirement)
        if verdict is not None:
            self.skip(text, f"{target!r} {verdict[0]}")
            return None
        if requirement != target:
            self.notes.append(f"cell {self.cell}: {target} is written as {requirement!r}; check "
                              "the distribution name")
        from packaging.requirements import Requirement

        key = canonicalize_name(Requirement(requirement).name)
        if key == "pip":  # pip upgrading itself: a restore installs with uv
            self.skip(text, "pip itself: a restore installs with uv, so it needs no newer pip")
            return None
        self.pip.pop(key, None)  # the last install of a name wins, as in the notebook
        upgrade = upgrade and not _exact(requirement)  # nothing newer to take
        if upgrade or no_deps:
            table = {"requirement": requirement}
            if upgrade:
                table["upgrade"] = True
            if no_deps:
                table["no_deps"] = True
            self.pip[key] = table
        else:
            self.pip[key] = requirement
        return key

    def pip_archive(self, path: str, text: str, *, no_deps: bool) -> str | None:
        """A wheel or sdist file: its name and version from the file's folder (find_links)."""
        from packaging.utils import (
            InvalidSdistFilename,
            InvalidWheelFilename,
            parse_sdist_filename,
            parse_wheel_filename,
        )

        filename = posixpath.basename(path)
        try:
            name, version = (parse_wheel_filename(filename)[:2] if filename.endswith(".whl")
                             else parse_sdist_filename(filename))
        except (InvalidWheelFilename, InvalidSdistFilename):
            self.skip(text, f"{filename} is not a wheel or sdist file name")
            return None
        folder = _literal(posixpath.dirname(path))
        if folder not in self.find_links:
            self.find_links.append(folder)
        requirement = f"{name}=={version}"
        self.pip[str(name)] = {"requirement": requirement, "no_deps": True} if no_deps \
            else requirement
        return str(name)

    # apt, git, files ---------------------------------------------------------------------

    def apt_line(self, args: list[str], text: str) -> None:
        words, i = [], 0
        while i < len(args):
            if args[i] in APT_VALUE_OPTIONS:
                i += 2
                continue
            if not args[i].startswith("-"):
                words.append(args[i])
            i += 1
        if not words:
            return
        action, names = words[0], words[1:]
        if action in ("update", "clean", "autoclean", "autoremove"):
            return  # the apt step updates its lists itself
        if action != "install":
            self.skip(text, f"apt-get {action} has no profile form")
            return
        good = [name for name in names if check_apt_name(name) is None]
        for name in names:
            if name not in good:
                self.skip(text, f"{name!r} is not a Debian package name")
        if self.apt_sources and good:
            # [apt] runs before every [[run]] entry, so before the repository is added
            self.run_entry({"argv": ["apt-get", "install", "-y", *good]}, self.cwd,
                           [f"review: cell {self.cell}: {self.shown}{text}",
                            "from an apt repository the notebook adds: installed after it"])
            return
        for name in good:
            if name not in self.apt:
                self.apt.append(name)

    def git_line(self, words: list[str], text: str, cwd: str) -> str | None:
        if words[1] == "clone":
            return self.clone(words[2:], text, cwd)
        if words[1] in ("checkout", "switch") and len(words) == 3:
            repo = next((r for r in self.git if r["_abs"] == cwd), None)
            if repo is not None:
                repo["ref"] = words[2]
                return None
        if words[1] in ("pull", "fetch") and any(r["_abs"] == cwd for r in self.git):
            self.skip(text, "the [[git]] entry keeps this clone at its ref; set ref to move it")
            return None
        if words[1] in ("lfs", "config", "status", "log"):
            self.skip(text, "git settings and queries have no profile form")
            return None
        self.run_entry({"argv": [_literal(w) for w in words]}, cwd,
                       [f"review: cell {self.cell}: {self.shown}{text}"])
        return None

    def clone(self, args: list[str], text: str, cwd: str) -> str | None:
        ref, positional, i = None, [], 0
        while i < len(args):
            word = args[i]
            if word in ("-b", "--branch"):
                ref = args[i + 1] if i + 1 < len(args) else None
                i += 1
            elif word.startswith("--branch="):
                ref = word.partition("=")[2]
            elif word in ("--depth", "--filter", "-o", "--origin", "-c", "--config",
                          "--shallow-since", "--jobs", "-j"):
                i += 1
            elif word in ("--recursive", "--recurse-submodules"):
                self.notes.append(f"cell {self.cell}: {text}: submodules are not cloned by "
                                  "[[git]]; add a [[run]] entry with git submodule update --init")
            elif not word.startswith("-"):
                positional.append(word)
            i += 1
        if not positional:
            self.skip(text, "a clone without a URL")
            return None
        url = positional[0]
        name = posixpath.basename(url.rstrip("/"))
        name = name[:-4] if name.endswith(".git") else name
        dest = self.absolute(positional[1] if len(positional) > 1 else name, cwd)
        if is_secret("", url):
            self.skip(text, "the URL holds a credential; not copied: give git a stored token")
            return None
        entry: dict[str, Any] = {"url": _literal(url), "dest": self.portable(dest), "_abs": dest}
        if ref:
            entry["ref"] = _literal(ref)
        self.git = [repo for repo in self.git if repo["_abs"] != dest] + [entry]
        return None

    def download(self, words: list[str], text: str, cwd: str, env: dict[str, str]) -> None:
        url, dest = _download_target(words)
        if url and dest is not None and (is_secret("", url) or clean_url(url)[1]):
            self.skip(text, "the URL holds a credential (a token or user:password); not copied: "
                      "download it in the notebook with the token read from [secrets], or put "
                      "the file on Drive and copy it with a [[files]] entry (source = ...)")
            return
        entry: dict[str, Any] = {"argv": [_literal(w) for w in words]}
        comments = [f"review: cell {self.cell}: {self.shown}{text}"]
        if dest is not None:
            target = self.absolute(dest, cwd)
            reason = _not_a_file_download(words, url)
            if reason is None and url is not None:
                self.file_entry(url, target, comments)
                return
            entry["creates"] = self.guard(target, cwd)
            if reason:
                comments.append(f"not a [[files]] entry: {reason}")
        else:
            comments.append("no guard: it downloads again on every restore; add creates = "
                            "\"FILE\"")
        self.run_entry(entry, cwd, comments)

    def file_entry(self, url: str, target: str, comments: list[str]) -> None:
        """A download with a known URL: ``[[files]]``, its sha256 trusted on first use."""
        entry = {"url": _literal(url), "dest": self.portable(target)}
        comments += ["no sha256: the first restore records the download's sha256 in the store "
                     "and requires it on every later VM;",
                     "to pin it now, add sha256 = \"...\" (sha256sum FILE)"]
        made = _Run(entry, comments)
        self.files = [f for f in self.files if f.entry["dest"] != entry["dest"]] + [made]
        self.last_download = (target, made)
        self.downloaded.append(target)

    def unpack(self, words: list[str], text: str, cwd: str,
               download: tuple[str, _Run] | None = None) -> None:
        entry: dict[str, Any] = {"argv": [_literal(w) for w in words]}
        folder = None
        for flag in ("-d", "-C", "--directory"):
            if flag in words[:-1]:
                folder = words[words.index(flag) + 1]
        comments = [f"review: cell {self.cell}: {self.shown}{text}"]
        if folder is not None and self.absolute(folder, cwd) not in (cwd, "/"):
            where = self.absolute(folder, cwd)
            archive = _archive_of(words)
            dest = self.portable(where)
            if download is not None and archive is not None \
                    and self.absolute(archive, cwd) == download[0] \
                    and not any(f.entry["dest"] == dest for f in self.files):
                # downloaded, then unpacked into a folder of its own: one [[files]] entry
                made = download[1]
                made.entry.update(dest=dest, unpack=True)
                self.downloaded.append(where)
                made.comments.insert(1, f"review: cell {self.cell}: {self.shown}{text} "
                                        "(unpack = true: dest is the folder)")
                return
            entry["creates"] = self.guard(where, cwd)
            comments.append("a [[files]] entry with unpack = true and dest = this folder "
                            "downloads and unpacks in one step")
        else:
            comments.append("no guard: it unpacks again on every restore; add creates = "
                            "\"FOLDER\" (a file or folder the archive makes)")
        self.run_entry(entry, cwd, comments)

def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for attribute chains; ``get_ipython()`` and ``f()`` keep their call."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base is not None else None
    if isinstance(node, ast.Call):
        base = _dotted(node.func)
        return f"{base}()" if base is not None else None
    return None


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(node: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _source(code: str, node: ast.AST) -> str:
    return ast.get_source_segment(code, node) or ""


def _pip_args(words: list[str]) -> list[str] | None:
    """The arguments after ``pip`` in any spelling of it, or None when this is not pip."""
    program = posixpath.basename(words[0])
    if re.match(r"^pip(\d+(\.\d+)?)?$", program):
        return words[1:]
    if program == "uv" and words[1:2] == ["pip"]:
        return words[2:]
    if re.match(r"^python(\d+(\.\d+)?)?$", program) and words[1:3] == ["-m", "pip"]:
        return words[3:]
    if re.match(r"^python(\d+(\.\d+)?)?$", program) and words[1:4] == ["-m", "uv", "pip"]:
        return words[4:]
    return None


#: pip install options followed by a value (``-r FILE``, ``--index-url=URL``, ``-ihttps://``)
PIP_VALUE = frozenset({"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-r",
                       "--requirement", "-c", "--constraint", "-e", "--editable"}) | PIP_QUIET_VALUE


def pip_options(words: list[str]) -> list[tuple[str, str | None]]:
    """The words after ``pip install`` as (option, value) pairs; a requirement is ("", it)."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if not word.startswith("-") or word == "-":
            out.append(("", word))
        elif word.startswith("--"):
            option, eq, value = word.partition("=")
            if not eq and option in PIP_VALUE:
                value, i = nxt or "", i + 1
            out.append((option, value if option in PIP_VALUE else None))
        elif re.match(r"^-[qvU]+[rcefi]$", word):  # -qr FILE: flags written together
            out += [(f"-{flag}", None) for flag in word[1:-1]]
            out.append((f"-{word[-1]}", nxt))
            i += 1
        elif word[:2] in PIP_VALUE:
            if len(word) > 2:
                out.append((word[:2], word[2:]))
            else:
                out.append((word, nxt))
                i += 1
        else:
            out.append((word, None))  # -q, -qq, -U, -qU
        i += 1
    return out


def _exact(requirement: str) -> bool:
    from packaging.requirements import Requirement

    specs = list(Requirement(requirement).specifier)
    return len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version


def _plain_head(text: str) -> bool:
    """Whether a pipe's first command is one whose output filters do not matter: an
    install, a version query or a script run (``python train.py | tee log``)."""
    try:
        words = shlex.split(text)
    except ValueError:
        return False
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]
    if not words:
        return False
    args = _pip_args(words)
    program = posixpath.basename(words[0])
    return (args is not None and args[:1] == ["install"]) or (
        program in ("apt-get", "apt") and "install" in words) or _version_query(words) or (
        bool(re.match(r"^python(\d+(\.\d+)?)?$", program)) and len(words) > 1
        and words[1].endswith(".py"))


def _version_query(words: list[str]) -> bool:
    return words[1:] in (["--version"], ["-version"], ["-V"], ["version"], ["--help"])


def _requirement(target: str) -> str | None:
    """A PEP 508 requirement for what pip was given: a name, a spec or a URL."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    lowered = target.lower()
    if lowered.startswith(("git+", "https://", "http://")):
        url, _, fragment = target.partition("#")
        egg = re.search(r"(?:^|&)egg=([A-Za-z0-9._-]+)", fragment)
        if egg:
            return f"{egg.group(1)} @ {url}"
        last = posixpath.basename(url.split("@")[0].rstrip("/")) if lowered.startswith("git+") \
            else posixpath.basename(url.split("?")[0])
        if last.endswith(".whl"):
            try:
                return f"{parse_wheel_filename(last)[0]} @ {target}"
            except InvalidWheelFilename:
                return None
        archive = re.search(r"github\.com/[^/]+/([^/]+)/archive/", url)
        if archive:  # https://github.com/org/repo/archive/main.zip
            last = archive.group(1)
        last = re.sub(r"(\.git|\.zip|\.tar\.gz|\.tgz)$", "", last)
        last = re.sub(r"-\d[\w.]*$", "", last)  # name-1.2.3.tar.gz
        return f"{last} @ {target}" if re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", last) else None
    return target


def _download_target(words: list[str]) -> tuple[str | None, str | None]:
    """(URL, destination file or None) of a wget, curl or gdown command."""
    program = posixpath.basename(words[0])
    url = next((w for w in words[1:] if "://" in w), None)
    dest = folder = None
    args = words[1:]
    for i, word in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else None
        if program == "wget":
            if word in ("-O", "--output-document"):
                dest = nxt
            elif word.startswith("--output-document="):
                dest = word.partition("=")[2]
            elif word.startswith("-O") and len(word) > 2:
                dest = word[2:]
            elif word in ("-P", "--directory-prefix"):
                folder = nxt
        elif program == "curl":
            if word in ("-o", "--output"):
                dest = nxt
            elif re.match(r"^-[a-zA-Z]*O$", word) and url:
                dest = posixpath.basename(url.split("?")[0])
        elif program == "aria2c":
            if word in ("-o", "--out"):
                dest = nxt
            elif word in ("-d", "--dir"):
                folder = nxt
        elif program == "gdown":
            if word in ("-O", "--output"):
                dest = nxt
            elif word == "--id" and nxt:
                url = url or nxt
    if program == "gdown" and url is None:
        url = next((w for w in args if not w.startswith("-")), None)
    if dest == "-":
        return url, None
    if program == "aria2c" and dest is not None and folder:
        dest = posixpath.join(folder, dest)
    if program == "wget" and dest is None and url:
        name = posixpath.basename(url.split("?")[0])
        if name:
            dest = posixpath.join(folder, name) if folder else name
    return url, dest


#: download options a [[files]] entry cannot carry: headers, credentials, posts, several files
_DOWNLOAD_ONLY = {
    "wget": {"--header", "--user", "--password", "--http-user", "--http-password",
             "--post-data", "--post-file", "--load-cookies", "-i", "--input-file", "-r",
             "--recursive", "-m", "--mirror"},
    "curl": {"-H", "--header", "-u", "--user", "-d", "--data", "--data-binary", "--data-raw",
             "-X", "--request", "-b", "--cookie", "-F", "--form", "-T", "--upload-file", "-K",
             "--config"},
    "aria2c": {"--header", "--http-user", "--http-passwd", "-i", "--input-file"},
    "gdown": {"--folder"},
}


def _not_a_file_download(words: list[str], url: str | None) -> str | None:
    """Why a download command is no [[files]] entry, or None when it is one."""
    if url is None:
        return "the URL is not in the command"
    if posixpath.basename(words[0]) == "gdown" and "://" not in url:
        url = "https://drive.google.com/uc?id=" + url  # gdown --id ID, or an ID alone
    if check_download_url(url) is not None:
        return "[[files]] downloads use https"
    if sum("://" in w for w in words[1:]) > 1:
        return "it downloads several URLs"
    refused = _DOWNLOAD_ONLY.get(posixpath.basename(words[0]), set())
    for word in words[1:]:
        if word.split("=", 1)[0] in refused:
            return f"{word.split('=', 1)[0]} has no [[files]] form"
    host = (url.split("://", 1)[1].split("/", 1)[0]).lower()
    if posixpath.basename(words[0]) == "gdown" and host.endswith(("drive.google.com",
                                                                  "docs.google.com")):
        return ("a Google Drive share link answers large files with a confirmation page that "
                "only gdown follows; or copy the file to your Drive and use source = "
                "\"{drive}/...\"")
    return None


def _archive_of(words: list[str]) -> str | None:
    """The archive a plain ``unzip [-q] [-o] X -d D`` or ``tar -xf X -C D`` unpacks, else None
    (member lists, --strip-components and other options have no ``unpack = true`` form)."""
    program, args = posixpath.basename(words[0]), words[1:]
    if program == "unzip":
        rest = [w for i, w in enumerate(args) if w != "-d" and (i == 0 or args[i - 1] != "-d")]
        names = [w for w in rest if not w.startswith("-")]
        flags = [w for w in rest if w.startswith("-")]
        ok = all(re.match(r"^-[qo]+$", w) for w in flags)
        return names[0] if ok and len(names) == 1 else None
    if program == "tar":
        archive, extract, i = None, False, 0
        while i < len(args):
            word = args[i]
            if word in ("-C", "--directory", "--file"):
                archive = args[i + 1] if word == "--file" and i + 1 < len(args) else archive
                i += 2
                continue
            if word.startswith("--file="):
                archive = word.partition("=")[2]
            elif word in ("--extract", "--get"):
                extract = True
            elif re.match(r"^-?[xzjJvaf]+$", word):
                extract = extract or "x" in word
                if "f" in word:
                    if not word.endswith("f") or i + 1 >= len(args):
                        return None
                    archive, i = args[i + 1], i + 1
            else:
                return None  # a member list, --strip-components, ...
            i += 1
        return archive if extract else None
    return None


# -- the profile text -----------------------------------------------------------------------

def guess_platform(cells: list[tuple[int, str]], metadata: dict[str, Any]) -> str:
    if "kaggle" in metadata:
        return "kaggle"
    if "colab" in metadata:
        return "colab"
    text = "\n".join(source for _, source in cells)
    return "kaggle" if ("/kaggle/" in text or "kaggle_secrets" in text) else "colab"


def profile_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._") or "imported"
    return name if _PROFILE_NAME.match(name) else "imported"


def render(reader: _Reader, *, name: str, notebook: str) -> str:
    """The profile as TOML text, with the review comments."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"Imported by notebook-bootstrap from {notebook} on "
                            f"{time.strftime('%Y-%m-%d %H:%M')}; nothing was run."))
    doc.add(tomlkit.comment("Review the entries marked 'review' before the first restore."))
    if reader.skipped:
        doc.add(tomlkit.comment("Not carried over (cell numbers count every cell from 1):"))
        for item in reader.skipped:
            doc.add(tomlkit.comment(f"  {item.line()}"))
    doc["version"] = 1
    doc["name"] = name
    if reader.gpu:
        gpu = tomlkit.table()
        gpu.add(tomlkit.comment("the notebook checks the GPU with nvidia-smi; set required = "
                                "false if it also runs without one"))
        gpu["required"] = True
        doc["gpu"] = gpu
    if reader.mountpoint:
        drive = tomlkit.table()
        if reader.mount_inferred:
            drive.add(tomlkit.comment("the notebook uses /content/drive/MyDrive paths (Drive "
                                      "mounted from the Files panel)"))
        drive["mount"] = True
        if reader.mountpoint != COLAB_MOUNTPOINT:
            drive["mountpoint"] = _literal(reader.mountpoint)
        doc["drive"] = drive
    if reader.secrets:
        table = tomlkit.table()
        table.add(tomlkit.comment("environment variable = name in the secret store"))
        for key, secret in reader.secrets.items():
            table[key] = secret
        doc["secrets"] = table
    if reader.env:
        table = tomlkit.table()
        for key, value in reader.env.items():
            table[key] = value
        doc["env"] = table
    if reader.apt:
        table = tomlkit.table()
        table["packages"] = _array(reader.apt)
        doc["apt"] = table
    pip = pip_table(reader)
    if pip is not None:
        doc["pip"] = pip
    if reader.git:
        repos = tomlkit.aot()
        for repo in reader.git:
            table = tomlkit.table()
            for key in ("url", "ref", "dest", "install", "editable"):
                if key in repo:
                    table[key] = repo[key]
            repos.append(table)
        doc["git"] = repos
    if reader.files:
        doc["files"] = _entries(reader.files)
    if reader.runs:
        doc["run"] = _entries(reader.runs)
    if reader.workdir:
        table = tomlkit.table()
        table["path"] = reader.portable(reader.workdir)
        doc["workdir"] = table
    captured = tomlkit.table()
    captured.add(tomlkit.comment("where the notebook ran; a restore says what differs"))
    captured["platform"] = reader.platform
    if reader.python:
        captured["python"] = reader.python
    doc["captured"] = captured
    return tomlkit.dumps(doc)


def _entries(entries: list[_Run]) -> Any:
    """An array of tables (``[[run]]``, ``[[files]]``), each with its review comments."""
    import tomlkit

    out = tomlkit.aot()
    for run in entries:
        table = tomlkit.table()
        for comment in run.comments:
            table.add(tomlkit.comment(comment))
        for key, value in run.entry.items():
            table[key] = value
        out.append(table)
    return out


def _array(items: Iterable[Any]) -> Any:
    import tomlkit

    array = tomlkit.array()
    for item in items:
        if isinstance(item, dict):
            inline = tomlkit.inline_table()
            inline.update(item)
            array.append(inline)
        else:
            array.append(item)
    array.multiline(True)
    return array


def pip_table(reader: _Reader) -> Any:
    """``[pip]``: one set; an ``--index-url`` only some lines used serves only their packages."""
    import tomlkit

    if not reader.pip and not reader.requirements:
        return None
    table = tomlkit.table()
    if reader.pip:
        table["packages"] = _array(reader.pip.values())
    if reader.requirements:
        table.add(tomlkit.comment("requirements files (-r), read at each restore: plain "
                                  "requirements only; an option line in them (-e, "
                                  "--index-url, ...) belongs in [pip]"))
        table["requirements"] = list(reader.requirements)
    urls = [url for _, url in reader.pip_lines]
    distinct = list(dict.fromkeys(url for url in urls if url))
    if len(distinct) == 1 and all(url == distinct[0] for url in urls):
        if check_url(distinct[0]) is None:
            table["index_url"] = distinct[0]
        distinct = []
    if reader.extra_index_urls:
        table["extra_index_urls"] = list(reader.extra_index_urls)
    if reader.find_links:
        table["find_links"] = list(reader.find_links)
    if reader.no_index:
        table["no_index"] = True
    indexes = tomlkit.aot()
    owner: set[str] = set()
    for url in distinct:
        if check_url(url) is not None:
            reader.notes.append(f"the index {url} is not an https URL; left out")
            continue
        names = [n for lines, u in reader.pip_lines if u == url for n in sorted(lines)
                 if n in reader.pip and n not in owner]
        owner.update(names)
        if not names and reader.requirements:
            reader.notes.append(f"the index {url} was given to a requirements file on some "
                                "pip lines only; add it to [pip] (extra_index_urls, or indexes "
                                "with the packages it serves) if they come from it")
        if names:
            index = tomlkit.table()
            index.add(tomlkit.comment("pip --index-url on some lines: serves only these"))
            index["url"] = url
            index["packages"] = list(dict.fromkeys(names))
            indexes.append(index)
    if indexes:
        table["indexes"] = indexes
    return table


# -- the entry point -------------------------------------------------------------------------

def read_notebook(notebook: str | os.PathLike[str], *, name: str | None = None) -> ImportResult:
    """Read ``notebook`` and build its profile; writes nothing."""
    path = Path(notebook).expanduser()
    if name is not None and not _PROFILE_NAME.match(name):
        raise OptionError(f"{name!r} is not a profile name", where="--name",
                          hint="use letters, digits, '.', '_' and '-', e.g. vision")
    cells, metadata = read_cells(path)
    reader = _Reader(guess_platform(cells, metadata))
    version = (metadata.get("language_info") or {}).get("version")
    found = re.match(r"^(3\.\d+)", version) if isinstance(version, str) else None
    reader.python = found.group(1) if found else None
    text = "\n".join(source for _, source in cells)
    if reader.platform == "colab" and re.search(r"/content/drive/My ?Drive\b", text):
        # Drive mounted from Colab's Files panel leaves no drive.mount in the code
        reader.mountpoint, reader.mount_inferred = COLAB_MOUNTPOINT, "drive.mount" not in text
    for number, source in cells:
        reader.read_cell(number, source)
    name = name or profile_name(path)
    text = render(reader, name=name, notebook=path.name)
    try:
        profile = parse(text, source=f"{name}.toml")
    except ProfileError as error:  # pragma: no cover - a bug: every entry was checked
        error.hint = ("the imported profile does not validate; this is a bug in the importer, "
                      "please report it with the notebook's setup cells")
        raise
    result = ImportResult(name, path, text, profile, list(reader.skipped), list(reader.notes))
    if reader.platform == "kaggle" and reader.mountpoint is None:
        result.notes.append("read as a Kaggle notebook: restore it there, or put Kaggle-only "
                            "tables under [platforms.kaggle]")
    return result


def import_notebook(notebook: str | os.PathLike[str], *, name: str | None = None,
                    dry_run: bool = False, store: str | os.PathLike[str] | None = None
                    ) -> ImportResult:
    """Import ``notebook`` as profile ``name`` (default: the notebook's name) into the store.

    With ``dry_run`` nothing is written. An existing profile of that name is kept
    in ``profiles/history/`` before it is replaced.
    """
    from .fileio import ConcurrentWrite, write_atomic
    from .platform import detect
    from .store import Store, history_path, prune_history

    result = read_notebook(notebook, name=name)
    target = Store(detect(store=store).store_root).profile_path(result.name)
    result.path, result.dry_run = target, dry_run
    if dry_run:
        return result
    try:
        previous = target.read_bytes()
    except FileNotFoundError:
        previous = None
    except OSError as exc:
        from .errors import StoreError

        raise StoreError(f"cannot read {target.name}: {exc.strerror}", where=str(target),
                         hint="check the store folder and its permissions") from None
    if previous is not None:
        result.history = history_path(target)
        write_atomic(result.history, previous)
    try:
        write_atomic(target, result.toml.encode(), expected=previous)
    except ConcurrentWrite:  # another session wrote it since: theirs stays, ours goes to history
        from .errors import StoreError

        ours = history_path(target)
        write_atomic(ours, result.toml.encode())
        raise StoreError(f"profile {result.name} was changed by another session while it was "
                         "imported; nothing was overwritten", where=str(target),
                         hint=f"the imported version is kept as {ours}: compare the two and "
                              f"copy what you want into {target.name}") from None
    result.written = True
    prune_history(target)
    return result
