"""Running a setup notebook: with papermill in a fresh kernel, or inline in the caller's kernel.

Shared by the ``setup`` step, ``bootstrap setup`` and ``%run_setup``:

- ``prepare()`` reads the notebook and decides everything a run needs (kernel,
  language, working folder, where the parameters go, the idempotence key) and
  whether a marker says it already ran on this VM. It changes nothing.
- ``run()`` runs it: papermill writes the output notebook to local disk, which
  is then copied atomically into the store's ``runs/`` (also when the run
  fails); values the notebook hands back with ``bootstrap.export`` are read
  back; a marker on local disk records the success.
- ``run_setup()`` is both, for the faces: skip when already done, unless forced.

Markers live on the VM's local disk (``setup-markers`` in the local state folder
of ``bootstrap.vmstate``), never on Drive, so a new VM runs the notebook again.
Inline runs are remembered per process only: their definitions live in the
kernel, so a restarted kernel runs the notebook again.

Secrets never become parameters (papermill saves parameters in the output
notebook): a parameter that carries the value of a secret is refused; the
setup kernel reads secrets from its environment, inherited from the caller.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import keyword
import logging
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from .errors import BootstrapError, OptionError, StepError
from .exports import EXPORT_FILE_ENV
from .fileio import sha256_bytes, write_atomic
from .redact import looks_secret, secret_values
from .store import Store

DEFAULT_START_TIMEOUT = 60.0
ENGINE_NAME = "notebook-bootstrap"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
ERROR_MARKER_TAG = "papermill-error-cell-tag"
#: a secret shorter than this is only refused when a parameter equals it exactly (a
#: short value is often part of ordinary text)
MIN_SECRET_LENGTH = 8
NUMBERING = "cells counted from 1 in notebook order, markdown cells included"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: inline runs done in this process: idempotence key -> Marker
_INLINE_DONE: dict[str, Marker] = {}
_engine_registered = False


# -- errors ---------------------------------------------------------------------

class NotebookFailed(StepError):
    """A setup notebook stopped: a cell raised, timed out, or the kernel died."""

    def __init__(self, what: str, *, cell: int | None, ename: str = "", evalue: str = "",
                 output: Path | None = None, **kwargs: Any) -> None:
        super().__init__(what, **kwargs)
        #: the failing cell's number (1-based, every cell counted); None: the parameters cell
        self.cell = cell
        self.ename = ename
        self.evalue = evalue
        #: the output notebook in the store that shows the failure (None for inline runs)
        self.output = output


class NotebookTimeout(NotebookFailed):
    """A cell ran past the execution timeout and was stopped."""


class KernelDied(NotebookFailed):
    """The kernel running the setup notebook died (os._exit, out of memory, a crash)."""


class KernelStartFailed(StepError):
    """The kernel for the setup notebook did not start (in time)."""


# -- parameters -------------------------------------------------------------------

def resolve_type(value: str) -> Any:
    """A ``-p NAME VALUE`` value as papermill's CLI reads it: True/False/None, int, float, str."""
    if value == "True":
        return True
    if value == "False":
        return False
    if value == "None":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_parameters(pairs: Iterable[Iterable[str]], *, where: str = "-p") -> dict[str, Any]:
    """``[(NAME, VALUE), ...]`` from the command line into a parameters dict."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        check_name(name, where)
        out[name] = resolve_type(value)
    return out


def check_name(name: str, where: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise OptionError(f"parameter name {name!r} is not a Python variable name", where=where,
                          hint="papermill assigns each parameter in a cell: use names like "
                               "epochs or data_dir")


def refuse_secrets(parameters: Mapping[str, Any], secrets: Mapping[str, str], where: str) -> None:
    """Raise OptionError when a parameter carries a secret's value (it would be saved).

    A secret is a value of ``secrets`` or any value ``redact`` finds secret by its
    shape (a token, URL credentials, a signed URL): what ``%save_env`` would not save.
    """
    for name, value in parameters.items():
        for text in _strings(value):
            if looks_secret(text):
                raise OptionError(
                    f"parameter {name!r} looks like a secret (a token, or a URL with "
                    "credentials or a signature)", where=f"{where}.{name}" if where else name,
                    hint="papermill saves parameters in the output notebook; put the secret "
                         "under [secrets] and read it from os.environ in the setup notebook")
            for var, secret in secrets.items():
                if text == secret or (len(secret) >= MIN_SECRET_LENGTH and secret in text):
                    raise OptionError(
                        f"parameter {name!r} carries the value of the secret {var}",
                        where=f"{where}.{name}" if where else name,
                        hint=f"papermill saves parameters in the output notebook; the setup "
                             f"notebook inherits the environment, so read os.environ[{var!r}] "
                             f"there instead")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


# -- the plan ------------------------------------------------------------------------

@dataclass
class Marker:
    """What a successful run left on this VM's local disk."""

    key: str
    notebook: str
    finished: str                      # ISO time, UTC
    output: str | None = None          # the output notebook in the store
    exported: dict[str, Any] = field(default_factory=dict)
    mode: str = "papermill"
    boot_id: str | None = None

    @property
    def when(self) -> str:
        return self.finished.replace("T", " ")[:19] + " UTC"


@dataclass
class Plan:
    notebook: Path
    nb: Any                            # the parsed notebook (nbformat v4, with cell ids)
    parameters: dict[str, Any]
    key: str
    inline: bool = False
    cwd: Path = Path(".")
    kernel: str | None = None          # papermill runs only
    kernel_source: str = ""            # why this kernel
    language: str | None = None        # passed to papermill when the metadata lacks one
    timeout: float | None = None
    start_timeout: float = DEFAULT_START_TIMEOUT
    parameters_cell: int | None = None  # 1-based number of the tagged cell, if any
    notes: list[str] = field(default_factory=list)
    done: Marker | None = None

    @property
    def name(self) -> str:
        return self.notebook.name

    def describe(self) -> str:
        """One line on how it would run (for dry runs and summaries)."""
        params = len(self.parameters)
        what = f"{params} parameter{'s' if params != 1 else ''}"
        if self.inline:
            return f"run {self.notebook} inline in this kernel ({what})"
        limit = f", {self.timeout:g} s per cell" if self.timeout else ""
        return f"run {self.notebook} with papermill, kernel {self.kernel} ({what}{limit})"

    def cell_number(self, cell_id: str | None) -> int | None:
        """The 1-based number of the input cell with this id; None for the injected cell."""
        for i, cell in enumerate(self.nb.cells):
            if cell.get("id") == cell_id:
                return i + 1
        return None


@dataclass
class CellEvent:
    """Progress of a run: a cell starts or ends."""

    kind: str            # "start" or "end"
    index: int           # 0-based position among the cells that run
    total: int           # how many cells run (markdown included, the parameters cell too)
    number: int | None   # the cell's number in the user's notebook; None: injected parameters
    cell_type: str
    first_line: str

    @property
    def label(self) -> str:
        return "parameters" if self.number is None else f"cell {self.number}"


OnCell = Callable[[CellEvent], None]


@dataclass
class Outcome:
    plan: Plan
    ran: bool                          # False: a marker said it had already run
    output: Path | None = None
    exported: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    finished: str = ""

    def __repr__(self) -> str:
        # the plain-text form a notebook saves when a cell returns this: values masked
        from .redact import mask, shown_values

        return mask(f"Outcome(plan={self.plan!r}, ran={self.ran!r}, output={self.output!r}, "
                    f"exported={shown_values(self.exported)!r}, seconds={self.seconds!r}, "
                    f"notes={self.notes!r}, finished={self.finished!r})")

    def summary(self) -> str:
        plan = self.plan
        exported = (f"; exported {', '.join(self.exported)}" if self.exported
                    else "; nothing exported")
        where = f"; output {self.output}" if self.output else ""
        if not self.ran:
            return (f"{plan.name} already ran on this VM ({plan.done.when if plan.done else ''})"
                    f"{exported}{where}")
        how = "inline" if plan.inline else f"with kernel {plan.kernel}"
        return f"ran {plan.name} {how} in {self.seconds:.1f} s{exported}{where}"


def prepare(notebook: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None, *,
            inline: bool = False, cwd: str | os.PathLike[str] | None = None,
            kernel: str | None = None, timeout: float | None = None,
            start_timeout: float | None = None, secrets: Mapping[str, str] | None = None,
            where: str | None = None) -> Plan:
    """Read ``notebook`` and plan its run; changes nothing.

    ``secrets`` maps env var names to secret values that no parameter may carry
    (default: the secret-looking variables of this process's environment).
    ``where`` names the source of the parameters in messages.
    """
    path = Path(notebook).expanduser().absolute()
    params = dict(parameters or {})
    for name in params:
        check_name(name, f"{where}.{name}" if where else "-p")
    refuse_secrets(params, secret_values(os.environ) if secrets is None else secrets,
                   where or "parameters")
    for label, value in (("timeout", timeout), ("start_timeout", start_timeout)):
        if value is not None and value <= 0:
            raise OptionError(f"{label} must be a positive number of seconds", where=label,
                              hint=f"got {value!r}")
    nb = read_notebook(path)
    run_dir = Path(cwd).expanduser().absolute() if cwd is not None else path.parent
    if not run_dir.is_dir():
        raise StepError(f"working folder {run_dir} does not exist", where="cwd",
                        hint="create it or give an existing folder")
    plan = Plan(notebook=path, nb=nb, parameters=params, key="", inline=inline, cwd=run_dir,
                timeout=timeout, start_timeout=start_timeout or DEFAULT_START_TIMEOUT)
    tagged = [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.metadata.get("tags", [])]
    plan.parameters_cell = tagged[0] + 1 if tagged else None
    if params and plan.parameters_cell is None:
        place_parameters(plan)
    if params:
        unread = sorted(set(params) - names_read(nb))
        if unread:
            plan.notes.append(f"{plan.name} never reads the parameter"
                              f"{'s' if len(unread) > 1 else ''} {', '.join(unread)}: "
                              "check the name against the notebook's variables")
    if not inline:
        plan.kernel, plan.kernel_source = resolve_kernel(kernel, nb)
        meta = nb.metadata
        if not (meta.get("language_info", {}).get("name")
                or meta.get("kernelspec", {}).get("language")):
            plan.language = "python"
            plan.notes.append(f"{plan.name} names no language in its metadata (as Colab saves "
                              "it); ran it as Python")
    plan.key = run_key(plan)
    plan.done = find_marker(plan.key, inline=inline)
    return plan


def place_parameters(plan: Plan) -> None:
    """Pick the parameters cell of a notebook without the tag, as papermill would need it.

    Colab saves no cell tags, so a notebook from there never has a ``parameters``
    cell. Putting the parameters at the top would let the notebook's own
    ``epochs = 1`` overwrite them; the first cell that assigns one of the
    parameter names is what its author meant, so it gets the tag (in the copy
    that runs) and the parameters go right after it.
    """
    names = set(plan.parameters)
    for i, cell in enumerate(plan.nb.cells):
        if cell.cell_type == "code" and names & names_assigned(cell.source):
            cell.metadata.setdefault("tags", []).append(PARAMETERS_TAG)
            plan.parameters_cell = i + 1
            which = ", ".join(sorted(names & names_assigned(cell.source)))
            plan.notes.append(f"{plan.name} has no cell tagged 'parameters': cell {i + 1} "
                              f"assigns {which}, so the parameters were put after it "
                              f"({NUMBERING})")
            return
    plan.notes.append(f"{plan.name} has no cell tagged 'parameters' and no cell assigns a "
                      "parameter: the parameters were put in a new first cell")


#: a line of IPython syntax (magics, shell escapes, help) that Python's parser rejects
_IPYTHON_LINE = re.compile(r"^\s*(?:[%!?]|([\w., ]+)=\s*[%!])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _python_source(source: str) -> tuple[str, str]:
    """(the cell as plain Python, its IPython-only lines): magic lines become ``pass``."""
    python, other = [], []
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return "", source                       # a cell magic: not Python at all
    for line in lines:
        match = _IPYTHON_LINE.match(line)
        if match:
            indent = line[:len(line) - len(line.lstrip())]
            # `files = !ls` still assigns files
            python.append(indent + (f"{match.group(1).strip()} = None" if match.group(1)
                                    else "pass"))
            other.append(line[match.end(1) if match.group(1) else 0:])
        else:
            python.append(line)
    return "\n".join(python), "\n".join(other)


def names_assigned(source: str) -> set[str]:
    """Names a cell assigns at its top level (``epochs = 1``, ``lr: float = 0.1``)."""
    import ast

    python, _ = _python_source(source)
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=\n]*)?=(?!=)", python,
                              re.MULTILINE))
    found: set[str] = set()
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            found.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return found


def names_read(nb: Any) -> set[str]:
    """Every name some code cell reads (loads), magic lines counted as words."""
    import ast

    found: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        python, other = _python_source(cell.source)
        found.update(_WORD.findall(other))
        try:
            tree = ast.parse(python)
        except SyntaxError:
            found.update(_WORD.findall(python))
            continue
        found.update(n.id for n in ast.walk(tree)
                     if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store))
    return found


def read_notebook(path: Path) -> Any:
    """The notebook as nbformat v4 with an id on every cell (to map cells back after a run)."""
    import nbformat

    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StepError(f"setup notebook {path} not found", where=str(path),
                        hint="check the path (a relative [setup] notebook is taken against the "
                             "Drive root, on the command line against the current folder)"
                        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StepError(f"setup notebook {path.name} cannot be read: {exc}", where=str(path),
                        hint="check the file and its permissions") from None
    try:
        nb = nbformat.reads(raw, as_version=4)
        nb = nbformat.v4.upgrade(nb) or nb
    except Exception as exc:  # nbformat raises several kinds for a broken file
        raise StepError(f"{path.name} is not a Jupyter notebook: {exc}", where=str(path),
                        hint="give an .ipynb file saved by Jupyter or Colab") from None
    # old papermill error banners would shift the cell numbers; papermill drops them too
    nb.cells = [c for c in nb.cells if ERROR_MARKER_TAG not in c.metadata.get("tags", [])]
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        if not cell.get("id") or cell["id"] in seen:
            cell["id"] = f"bootstrap-cell-{i + 1}"
        seen.add(cell["id"])
    return nb


def run_key(plan: Plan) -> str:
    """What makes two runs the same: the notebook's code, where it is, parameters and mode.

    Only code cells count (their source and type), so outputs saved into the
    notebook, markdown edits and metadata do not force a rerun.
    """
    code = [c.source for c in plan.nb.cells if c.cell_type == "code"]
    data = {"version": 1, "notebook": str(plan.notebook), "code": code,
            "parameters": plan.parameters, "inline": plan.inline, "cwd": str(plan.cwd)}
    text = json.dumps(data, sort_keys=True, default=repr, ensure_ascii=False)
    return sha256_bytes(text)


# -- kernels ---------------------------------------------------------------------------

def running_kernel_name() -> str | None:
    """The kernelspec name of the IPython kernel this code runs in, if it is one.

    jupyter_client writes ``kernel_name`` into the kernel's connection file; the
    kernel itself does not otherwise know which spec started it.
    """
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        with open(get_connection_file(), encoding="utf-8") as handle:
            name = json.load(handle).get("kernel_name")
    except Exception:  # not in a kernel, or an old connection file without the key
        return None
    return name or None


def resolve_kernel(explicit: str | None, nb: Any) -> tuple[str, str]:
    """The kernel to run the notebook with, and where that choice came from."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if explicit:
        if explicit.lower() not in specs:
            raise StepError(f"no Jupyter kernel named {explicit!r}", where="kernel",
                            hint=f"installed kernels: {', '.join(sorted(specs)) or 'none'} "
                                 "(jupyter kernelspec list)")
        return explicit.lower(), "given"
    candidates = [(running_kernel_name(), "the running kernel's"),
                  (nb.metadata.get("kernelspec", {}).get("name"), "the notebook's kernelspec"),
                  ("python3", "the default")]
    for name, source in candidates:
        if name and name.lower() in specs:
            return name.lower(), source
    raise StepError("no Jupyter kernel to run the setup notebook with",
                    where="kernel", hint="pip install ipykernel (it provides the python3 kernel), "
                                         "or name an installed kernel with --kernel")


# -- markers ---------------------------------------------------------------------------

#: the kind of the setup markers in the local state folder (``setup-markers/``)
MARKS = "setup"


def find_marker(key: str, *, inline: bool = False) -> Marker | None:
    """The marker of a run of this notebook with these parameters on this VM, or None."""
    if inline:
        return _INLINE_DONE.get(key)
    from .vmstate import find_mark

    data = find_mark(MARKS, key)
    if data is None:
        return None
    try:
        return Marker(**{k: v for k, v in data.items() if k in Marker.__dataclass_fields__})
    except TypeError:
        return None


def save_marker(marker: Marker) -> None:
    """Record the run; raises StoreError when the marker cannot be written."""
    if marker.mode == "inline":
        _INLINE_DONE[marker.key] = marker
        return
    from .vmstate import save_mark

    save_mark(MARKS, marker.key, {k: v for k, v in marker.__dict__.items()
                                  if k not in ("key", "boot_id")})


# -- running -----------------------------------------------------------------------------

def run_setup(notebook: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None, *,
              store: Store, force: bool = False, shell: Any = None,
              on_cell: OnCell | None = None, **options: Any) -> Outcome:
    """Run a setup notebook unless it already ran on this VM with the same parameters.

    ``options`` are those of ``prepare`` (inline, cwd, kernel, timeout,
    start_timeout, secrets). Inline runs need ``shell`` (the IPython shell).
    """
    plan = prepare(notebook, parameters, **options)
    if plan.done is not None and not force:
        return Outcome(plan, ran=False, exported=dict(plan.done.exported),
                       output=Path(plan.done.output) if plan.done.output else None,
                       finished=plan.done.finished)
    return run(plan, store, shell=shell, on_cell=on_cell)


def run(plan: Plan, store: Store, *, shell: Any = None, on_cell: OnCell | None = None) -> Outcome:
    """Run the planned notebook now and record the success in a marker."""
    from .vmstate import boot_id

    start = time.monotonic()
    notes = list(plan.notes)
    if plan.inline:
        output, exported = None, run_inline(plan, shell, on_cell)
    else:
        output, exported = run_papermill(plan, store, on_cell, notes)
    finished = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    marker = Marker(key=plan.key, notebook=str(plan.notebook), finished=finished,
                    output=str(output) if output else None, exported=exported,
                    mode="inline" if plan.inline else "papermill", boot_id=boot_id())
    try:
        save_marker(marker)
    except BootstrapError as error:
        notes.append(f"could not record that {plan.name} ran ({error.what}); "
                     "the next restore runs it again")
    plan.done = marker
    return Outcome(plan, ran=True, output=output, exported=exported,
                   seconds=time.monotonic() - start, notes=notes, finished=finished)


def output_path(store: Store, notebook: Path) -> Path:
    """``runs/NAME-YYYYmmdd-HHMMSS.ipynb`` in the store, not yet taken."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", notebook.stem) or "setup"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = store.runs / f"{stem}-{stamp}.ipynb"
    n = 2
    while candidate.exists():
        candidate = store.runs / f"{stem}-{stamp}-{n}.ipynb"
        n += 1
    return candidate


def run_papermill(plan: Plan, store: Store, on_cell: OnCell | None,
                  notes: list[str]) -> tuple[Path, dict[str, Any]]:
    """Execute with papermill into a local temp folder, keep the output in the store."""
    import nbformat
    import papermill

    from . import exports

    register_engine()
    kept = output_path(store, plan.notebook)
    with tempfile.TemporaryDirectory(prefix="bootstrap-setup-") as tmp:
        source = Path(tmp) / "input.ipynb"
        local = Path(tmp) / plan.notebook.name
        export_file = Path(tmp) / "exported.json"
        nbformat.write(plan.nb, str(source))
        failure: BaseException | None = None
        events = _CellEvents(plan, on_cell)
        with _papermill_log(notes, bool(plan.parameters_cell)), \
                _environ({EXPORT_FILE_ENV: str(export_file),
                          # debugpy's warning about frozen modules would land in the caller's
                          # output on every kernel start
                          "PYDEVD_DISABLE_FILE_VALIDATION": os.environ.get(
                              "PYDEVD_DISABLE_FILE_VALIDATION", "1")}):
            try:
                papermill.execute_notebook(
                    str(source), str(local), parameters=plan.parameters or None,
                    engine_name=ENGINE_NAME, kernel_name=plan.kernel, language=plan.language,
                    progress_bar=False, cwd=str(plan.cwd),
                    # nbclient's traits take whole seconds
                    start_timeout=math.ceil(plan.start_timeout),
                    execution_timeout=math.ceil(plan.timeout) if plan.timeout else None,
                    extra_arguments=quiet_kernel_arguments(plan.kernel), on_cell=events)
            except BaseException as exc:  # keep the output also on Ctrl-C, then re-raise
                failure = exc
        error = (translate(failure, plan, local, kept, events.current)
                 if failure is not None else None)
        if local.exists():
            banner = error.what if isinstance(error, (NotebookTimeout, KernelDied)) else None
            try:
                keep_output(local, kept, plan, banner)
            except BootstrapError as store_error:  # StoreError: Drive full, gone, ...
                if error is None:
                    raise
                error.details = ((error.details or "") +
                                 f"\nthe output notebook could not be kept: {store_error.what}")
        else:
            kept = None  # type: ignore[assignment]
        if error is not None:
            raise error from None
        if failure is not None:
            raise failure
        return kept, exports.read(export_file)


def quiet_kernel_arguments(kernel: str | None) -> list[str]:
    """Kernel arguments that keep ipykernel's own log warnings out of the caller's output.

    ipykernel 7 warns on every start that its TCP transport is not encrypted
    (the kernel talks to papermill on 127.0.0.1); the kernel's stderr is the
    caller's, so the warning would land in every setup run's output. Only
    ipykernel takes the option; other kernels get none.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel or "python3").argv
    except (NoSuchKernel, OSError, ValueError):
        return []
    if any("ipykernel" in part for part in argv):
        return ["--IPKernelApp.log_level=ERROR"]
    return []


def keep_output(local: Path, kept: Path, plan: Plan, banner: str | None) -> None:
    """Copy the output notebook into the store atomically, naming the real input file."""
    data = json.loads(local.read_text(encoding="utf-8"))
    mask_outputs(data)
    meta = data.setdefault("metadata", {}).setdefault("papermill", {})
    meta["input_path"], meta["output_path"] = str(plan.notebook), str(kept)
    if banner:
        data.setdefault("cells", []).insert(0, {
            "cell_type": "markdown", "id": "bootstrap-failure", "metadata": {},
            "source": f"**notebook-bootstrap stopped this run:** {banner}"})
    write_atomic(kept, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def mask_outputs(data: dict[str, Any]) -> None:
    """Mask secrets (``redact``) in the text outputs of a notebook kept in the store: a cell
    that printed a token must not leave it on Drive. Images and other binary data stay."""
    from .redact import mask

    def masked(text: Any) -> Any:
        if isinstance(text, list):
            return [mask(part) if isinstance(part, str) else part for part in text]
        return mask(text) if isinstance(text, str) else text

    for cell in data.get("cells", []):
        for output in cell.get("outputs", []) if isinstance(cell, dict) else ():
            if not isinstance(output, dict):
                continue
            for key in ("text", "traceback", "evalue"):
                if key in output:
                    output[key] = masked(output[key])
            bundle = output.get("data")
            if isinstance(bundle, dict):
                for mime in list(bundle):
                    if mime.startswith("text/") or mime == "application/json":
                        bundle[mime] = masked(bundle[mime])


def translate(failure: BaseException, plan: Plan, local: Path, kept: Path,
              current: Any = None) -> StepError | None:
    """The error a user should see for what papermill or nbclient raised (None: re-raise)."""
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    ran = _read_output(local)
    shown = kept if local.exists() else None
    see = f"the output notebook shows it: {shown}" if shown else "no output notebook was written"
    if isinstance(failure, PapermillExecutionError):
        cells = [c for c in ran.get("cells", []) if ERROR_MARKER_TAG not in
                 c.get("metadata", {}).get("tags", [])] if ran else []
        cell_id = cells[failure.cell_index].get("id") if failure.cell_index < len(cells) else None
        number = plan.cell_number(cell_id)
        label = f"cell {number}" if number is not None else "the injected parameters cell"
        evalue = str(failure.evalue)
        tail = [_ANSI.sub("", line) for line in (failure.traceback or [])]
        return NotebookFailed(
            f"{plan.name} failed in {label}: {failure.ename}: {evalue}".rstrip(": "),
            cell=number, ename=failure.ename, evalue=evalue, output=shown,
            where=f"{plan.notebook}, {label} ({NUMBERING})",
            details="\n".join("\n".join(tail).splitlines()[-15:]) or None,
            hint=f"{see}; fix the cell and run the setup again")
    # the cell that had started last; papermill marks it "completed" even when it was cut off
    number = plan.cell_number(current.get("id")) if current is not None else None
    label = f"cell {number}" if number is not None else "the parameters cell"
    if isinstance(failure, CellTimeoutError):
        return NotebookTimeout(
            f"{plan.name}: {label} did not finish within {plan.timeout:g} s (the execution "
            "timeout) and was stopped", cell=number, ename="CellTimeoutError", output=shown,
            where=f"{plan.notebook}, {label} ({NUMBERING})",
            hint=f"{see}; raise the timeout (--timeout, [setup] timeout) or find why it hangs")
    if isinstance(failure, DeadKernelError):
        return KernelDied(
            f"the kernel running {plan.name} died in {label}", cell=number,
            ename="DeadKernelError", output=shown,
            where=f"{plan.notebook}, {label} ({NUMBERING})",
            hint=f"{see}; a cell ended the process (os._exit, a crash in native code) or it ran "
                 "out of memory")
    if isinstance(failure, NoSuchKernel):
        return KernelStartFailed(f"no Jupyter kernel named {plan.kernel!r}", where="kernel",
                                 hint="jupyter kernelspec list shows the installed kernels")
    if isinstance(failure, RuntimeError) and current is None and "ernel" in str(failure):
        # jupyter_client: "Kernel didn't respond in N seconds", "Kernel died before replying"
        return KernelStartFailed(
            f"the kernel {plan.kernel!r} did not start: {failure}", where="kernel",
            hint=f"the start timeout is {plan.start_timeout:g} s (--start-timeout, [setup] "
                 "start_timeout); check that the kernel starts by itself")
    return None


def _read_output(local: Path) -> dict[str, Any]:
    try:
        return json.loads(local.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the kernel papermill starts (it inherits os.environ at launch)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _papermill_log(notes: list[str], has_parameters_cell: bool) -> Iterator[None]:
    """Turn papermill's logged warnings into report notes instead of stray stderr lines."""
    logger = logging.getLogger("papermill")
    capture = _Capture()
    old_propagate = logger.propagate
    logger.addHandler(capture)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(capture)
        logger.propagate = old_propagate
        for message in capture.messages:
            if message.startswith("Input notebook does not contain a cell with tag"):
                continue  # already a note of the plan, in our words
            if message.startswith("Passed unknown parameter: "):
                if has_parameters_cell:
                    name = message.split(": ", 1)[1]
                    notes.append(f"parameter {name} is not set in the notebook's parameters "
                                 "cell (papermill passed it anyway)")
                continue
            notes.append(f"papermill: {message}")


class _CellEvents:
    """Called by the engine for each cell; remembers the cell that started last."""

    def __init__(self, plan: Plan, on_cell: OnCell | None) -> None:
        self.plan, self.on_cell = plan, on_cell
        self.current: Any = None

    def __call__(self, kind: str, index: int, total: int, cell: Any) -> None:
        if kind == "start":
            self.current = cell
        if self.on_cell is None:
            return
        lines = [line for line in (cell.get("source") or "").splitlines() if line.strip()]
        self.on_cell(CellEvent(kind, index, total, self.plan.cell_number(cell.get("id")),
                               cell.get("cell_type", "code"), lines[0].strip() if lines else ""))


def register_engine() -> None:
    """papermill's nbclient engine, reporting each cell's start and end to a callback.

    papermill's own progress bar is a tqdm bar with no hook; this engine lets the
    restore step show per-cell lines and the magic and CLI draw their own bar.
    """
    global _engine_registered
    if _engine_registered:
        return
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class Manager(NotebookExecutionManager):
        def __init__(self, *args: Any, on_cell: Callable[..., None], **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.on_cell = on_cell

        def cell_start(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
            super().cell_start(cell, cell_index, **kwargs)
            self.on_cell("start", cell_index, len(self.nb.cells), cell)

        def cell_complete(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
            super().cell_complete(cell, cell_index, **kwargs)
            self.on_cell("end", cell_index, len(self.nb.cells), cell)

    class Engine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb: Any, kernel_name: str, output_path: Any = None,
                             progress_bar: bool = False, log_output: bool = False,
                             autosave_cell_every: int = 30, on_cell: Any = None,
                             **kwargs: Any) -> Any:
            manager = Manager(nb, output_path=output_path, progress_bar=False,
                              log_output=log_output, autosave_cell_every=autosave_cell_every,
                              on_cell=on_cell or (lambda *a: None))
            manager.notebook_start()
            try:
                cls.execute_managed_notebook(manager, kernel_name, log_output=log_output,
                                             **kwargs)
            finally:
                manager.cleanup_pbar()
                manager.notebook_complete()
            return manager.nb

    papermill_engines.register(ENGINE_NAME, Engine)
    _engine_registered = True


# -- inline ------------------------------------------------------------------------------

def ipython_shell() -> Any:
    """The running IPython shell, or None (checked without importing IPython)."""
    module = sys.modules.get("IPython")
    return module.get_ipython() if module is not None else None


def run_inline(plan: Plan, shell: Any, on_cell: OnCell | None) -> dict[str, Any]:
    """Run the code cells in ``shell`` itself, the parameters where papermill would put them."""
    if shell is None:
        raise OptionError("inline mode runs the notebook in your IPython kernel, and there is "
                          "none here", where=str(plan.notebook),
                          hint="use it from a notebook (%run_setup NOTEBOOK --inline, or "
                               "%restore_env) or run without inline (a separate kernel)")
    from . import exports

    cells: list[tuple[int | None, Any]] = [(i + 1, c) for i, c in enumerate(plan.nb.cells)]
    if plan.parameters:
        from papermill.translators import PythonTranslator

        injected = {"cell_type": "code", "id": "injected-parameters",
                    "source": PythonTranslator.codify(plan.parameters)}
        at = plan.parameters_cell or 0
        cells.insert(at, (None, injected))
    code = [(n, c) for n, c in cells
            if c.get("cell_type") == "code" and c.get("source", "").strip()]
    before = os.getcwd()
    os.chdir(plan.cwd)
    try:
        with exports.collecting() as exported:
            for index, (number, cell) in enumerate(code):
                first = next((ln.strip() for ln in cell["source"].splitlines() if ln.strip()), "")
                event = CellEvent("start", index, len(code), number, "code", first)
                if on_cell:
                    on_cell(event)
                # silent: no Out[...] echo of a cell's last value (bootstrap.export returns
                # a dict) in the caller's notebook
                result = shell.run_cell(cell["source"], store_history=False, silent=True)
                error = result.error_before_exec or result.error_in_exec
                if isinstance(error, SystemExit) and error.code in (None, 0):
                    break  # papermill treats sys.exit() / sys.exit(0) as a clean stop
                if error is not None:
                    label = f"cell {number}" if number is not None else "the parameters cell"
                    raise NotebookFailed(
                        f"{plan.name} failed in {label}: {type(error).__name__}: {error}"
                        .rstrip(": "), cell=number, ename=type(error).__name__,
                        evalue=str(error), where=f"{plan.notebook}, {label} ({NUMBERING})",
                        hint="the traceback is above; the cells before it ran in this kernel, "
                             "so fix the cell and run the setup again")
                if on_cell:
                    on_cell(CellEvent("end", index, len(code), number, "code", first))
    finally:
        # a cell that changed directory on purpose (%cd, os.chdir) keeps its choice
        if _same_dir(os.getcwd(), plan.cwd):
            os.chdir(before)
    return dict(exported)


def _same_dir(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# -- progress for the faces --------------------------------------------------------------

def progress_bar(*, file: Any = None) -> tuple[OnCell, Callable[[], None]]:
    """A tqdm bar over the cells (a widget in a kernel with ipywidgets, else text).

    Returns the callback and a function that closes the bar.
    """
    bar: list[Any] = []

    def make(total: int, name: str) -> Any:
        if "ipykernel" in sys.modules and file is None:
            try:
                from tqdm.notebook import IProgress, tqdm as notebook_tqdm

                if IProgress is not None:
                    return notebook_tqdm(total=total, unit="cell", desc=name)
            except ImportError:
                pass
        from tqdm.std import tqdm

        return tqdm(total=total, unit="cell", desc=name, file=file or sys.stderr,
                    dynamic_ncols=True)

    def on_cell(event: CellEvent) -> None:
        if not bar:
            bar.append(make(event.total, "setup"))
        if event.kind == "start":
            bar[0].set_description(event.label, refresh=False)
            bar[0].set_postfix_str(event.first_line[:40], refresh=True)
        else:
            bar[0].update(1)

    def close() -> None:
        if bar:
            bar[0].close()

    return on_cell, close
