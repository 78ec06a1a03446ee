"""The ``gpu`` step: which NVIDIA GPU this machine has, checked against ``[gpu]``.

Reads: ``[gpu]`` (``required``, ``min_memory_gib``, ``models``, ``min_cuda``,
``accelerator``) and
what ``nvidia-smi`` (looked up on the PATH of ``ctx.environ``) reports: one CSV
query for name, memory and driver, then the plain table, whose header carries
the CUDA version. Each call has a time limit (``TIMEOUT``, or the environment
variable ``BOOTSTRAP_GPU_TIMEOUT`` in seconds).
Changes: nothing on the machine. It puts what it found in ``ctx.state["gpu"]``
(``name``, ``memory_gib``, ``driver``, ``cuda``, ``count``, ``devices``,
``reason``) for the report and the status magic. nvidia-smi is asked once per
restore: when a ``when = "gpu"`` condition needed it first, the runner leaves
that answer in ``ctx.state["gpu"]["probe"]`` and this step uses it.

A machine without an NVIDIA GPU may be a TPU runtime: Colab's and Kaggle's
TPU VMs say so in their environment (``TPU_ACCELERATOR_TYPE``, ``ISTPUVM=1``,
``COLAB_TPU_ADDR``) and show their chips as ``/dev/accel*`` (``/dev/vfio/N``
on v5e and later); the step reports "TPU v3-8 (4 chips)" then. With
``accelerator = "tpu"`` the profile asks for a TPU instead of a GPU (the
other keys are about NVIDIA GPUs and are not checked then).

The step is always wanted, so every report says which GPU was found. Without
``[gpu]``, or with ``required = false``, it is informational: it holds, and a
requirement the GPU misses becomes a note. With ``required = true`` a missing
or unfit GPU raises EnvironmentMismatch; the step runs first, so nothing is
installed on a runtime of the wrong type. A missing tool, a non-zero exit, a
hang or an empty device list all mean "no GPU", with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .. import process
from ..context import Context
from ..errors import EnvironmentMismatch, StepError
from ..profile import Gpu, Profile
from . import Check

QUERY = ("--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits")
#: seconds each nvidia-smi call may take; a healthy one answers in well under one
TIMEOUT = 20.0

_CUDA = re.compile(r"CUDA Version\s*:\s*([0-9]+(?:\.[0-9]+)*)")
_HINTS = {
    "colab": "pick a GPU runtime in Colab (Runtime > Change runtime type > Hardware "
             "accelerator), then run the restore again",
    "kaggle": "turn on a GPU in Kaggle (Settings > Accelerator, e.g. GPU T4 x2), then run the "
              "restore again",
    "local": "run on a machine with a matching NVIDIA GPU and driver",
}


_TPU_HINTS = {
    "colab": "pick a TPU runtime in Colab (Runtime > Change runtime type > Hardware "
             "accelerator: TPU), then run the restore again",
    "kaggle": "turn on a TPU in Kaggle (Settings > Accelerator > TPU VM), then run the "
              "restore again",
    "local": "run on a TPU VM",
}


def wanted(profile: Profile) -> bool:
    return True


@dataclass(frozen=True)
class Device:
    name: str
    memory_mib: int | None
    driver: str

    @property
    def memory_gib(self) -> float | None:
        return None if self.memory_mib is None else round(self.memory_mib / 1024, 1)

    def describe(self) -> str:
        memory = "" if self.memory_gib is None else f", {self.memory_gib:g} GiB"
        return f"{self.name}{memory}"


@dataclass(frozen=True)
class Probe:
    """What nvidia-smi said: the devices, the CUDA version, and why something is missing."""

    devices: tuple[Device, ...] = ()
    cuda: str | None = None
    reason: str | None = None                     # why there is no GPU
    notes: tuple[str, ...] = field(default=())    # e.g. why the CUDA version is unknown

    def describe(self) -> str:
        if not self.devices:
            return f"no GPU: {self.reason}"
        first = self.devices[0]
        same = all(d == first for d in self.devices)
        if same:
            what = first.describe() if len(self.devices) == 1 \
                else f"{len(self.devices)} x {first.describe()}"
        else:
            what = " + ".join(d.describe() for d in self.devices)
        cuda = f", CUDA {self.cuda}" if self.cuda else ""
        return f"{what} (driver {first.driver}{cuda})"


def timeout(environ: Mapping[str, str]) -> float:
    raw = environ.get("BOOTSTRAP_GPU_TIMEOUT")
    try:
        value = float(raw) if raw else TIMEOUT
    except ValueError:
        value = TIMEOUT
    return value if value > 0 else TIMEOUT


def _call(argv: list[str], environ: Mapping[str, str], limit: float
          ) -> tuple[process.Completed | None, str | None]:
    """Run nvidia-smi; (result, None) or (None, why it gave no answer)."""
    try:
        return process.run(argv, env=environ, timeout=limit, check=False, tail_lines=200), None
    except StepError as exc:
        if "did not finish" in exc.what:
            return None, f"nvidia-smi did not answer within {limit:g} s"
        return None, exc.what


def _first_line(lines: list[str]) -> str:
    text = next((line.strip() for line in lines if line.strip()), "no output")
    return text if len(text) <= 200 else text[:197] + "..."


def parse_query(lines: list[str]) -> tuple[Device, ...]:
    """Devices from ``--format=csv,noheader,nounits`` lines; other lines are ignored."""
    devices = []
    for line in lines:
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3 or not parts[0] or not re.match(r"^\d+(\.\d+)*$", parts[2]):
            continue  # warnings such as "WARNING: infoROM is corrupted at gpu ..."
        try:
            memory: int | None = int(float(parts[1]))
        except ValueError:
            memory = None  # "[N/A]" on some virtualised devices
        devices.append(Device(parts[0], memory, parts[2]))
    return tuple(devices)


def parse_cuda(lines: list[str]) -> str | None:
    for line in lines:
        found = _CUDA.search(line)
        if found:
            return found.group(1)
    return None


def probe(environ: Mapping[str, str] | None = None, *, limit: float | None = None) -> Probe:
    """Ask nvidia-smi what GPUs this machine has; never raises for a missing GPU."""
    environ = os.environ if environ is None else environ
    limit = timeout(environ) if limit is None else limit
    exe = shutil.which("nvidia-smi", path=environ.get("PATH", os.defpath))
    if exe is None:
        return Probe(reason="nvidia-smi is not on PATH (no NVIDIA driver on this machine)")
    done, why = _call([exe, *QUERY], environ, limit)
    if done is None:
        return Probe(reason=why)
    if done.returncode != 0:
        return Probe(reason=f"nvidia-smi exited with code {done.returncode}: "
                            f"{_first_line(done.tail)}")
    devices = parse_query(done.tail)
    if not devices:
        return Probe(reason=f"nvidia-smi listed no GPU ({_first_line(done.tail)})")
    table, why = _call([exe], environ, limit)
    if table is None:
        return Probe(devices, None, notes=(f"CUDA version unknown: {why}",))
    cuda = parse_cuda(table.tail) if table.returncode == 0 else None
    notes = () if cuda else (f"CUDA version unknown: nvidia-smi's table (exit code "
                             f"{table.returncode}) has no 'CUDA Version'",)
    return Probe(devices, cuda, notes=notes)


@dataclass(frozen=True)
class Tpu:
    """A TPU runtime: its accelerator type (e.g. ``v3-8``) if the VM says, and its chips."""

    kind: str | None
    chips: int

    def describe(self) -> str:
        chips = f" ({self.chips} chip{'s' if self.chips != 1 else ''})" if self.chips else ""
        return f"TPU {self.kind or 'runtime'}{chips}"


#: variables a TPU VM sets (Cloud TPU VMs, Kaggle's TPU image, Colab's older TPU runtime);
#: /dev/accel* alone is no proof (NVIDIA's newer drivers make such files too)
_TPU_VARIABLES = ("TPU_ACCELERATOR_TYPE", "TPU_NAME", "COLAB_TPU_ADDR")


def probe_tpu(environ: Mapping[str, str] | None = None, *, dev: Path = Path("/dev")
              ) -> Tpu | None:
    """The TPU of this runtime, or None when it is not a TPU runtime."""
    environ = os.environ if environ is None else environ
    if not (environ.get("ISTPUVM") == "1" or any(environ.get(v) for v in _TPU_VARIABLES)):
        return None
    try:
        chips = len([p for p in dev.glob("accel*") if p.name[5:].isdigit()])
        if not chips and (dev / "vfio").is_dir():
            chips = len([p for p in (dev / "vfio").iterdir() if p.name.isdigit()])
    except OSError:
        chips = 0
    return Tpu(environ.get("TPU_ACCELERATOR_TYPE") or None, chips)


def matches_model(name: str, model: str) -> bool:
    """``T4`` matches ``Tesla T4`` and ``A100`` matches ``NVIDIA A100-SXM4-40GB``, not ``L4``/``L40S``."""
    pattern = r"(?<![A-Za-z0-9])" + re.escape(model.strip()) + r"(?![A-Za-z0-9])"
    return re.search(pattern, name, re.IGNORECASE) is not None


def shortfalls(device: Device, cuda: str | None, spec: Gpu) -> list[tuple[str, str]]:
    """(key, what is missing) for each requirement of ``spec`` that ``device`` misses."""
    from packaging.version import InvalidVersion, Version

    out = []
    if spec.models and not any(matches_model(device.name, m) for m in spec.models):
        out.append(("gpu.models", f"{device.name} is not one of {', '.join(spec.models)}"))
    if spec.min_memory_gib is not None:
        if device.memory_mib is None:
            out.append(("gpu.min_memory_gib", f"the memory of {device.name} is unknown"))
        elif device.memory_mib / 1024 < spec.min_memory_gib:
            out.append(("gpu.min_memory_gib", f"{device.name} has {device.memory_gib:g} GiB, "
                                              f"{spec.min_memory_gib:g} GiB wanted"))
    if spec.min_cuda is not None:
        if cuda is None:
            out.append(("gpu.min_cuda", f"the CUDA version is unknown, {spec.min_cuda} wanted"))
        else:
            try:
                low = Version(cuda) < Version(spec.min_cuda)
            except InvalidVersion:
                low = True
            if low:
                out.append(("gpu.min_cuda", f"the driver supports CUDA {cuda}, "
                                            f"{spec.min_cuda} wanted"))
    return out


def record(ctx: Context, found: Probe) -> None:
    first = found.devices[0] if found.devices else None
    ctx.state.setdefault("gpu", {}).update({
        "name": first.name if first else None,
        "memory_gib": first.memory_gib if first else None,
        "driver": first.driver if first else None,
        "cuda": found.cuda,
        "count": len(found.devices),
        "devices": [{"name": d.name, "memory_gib": d.memory_gib, "driver": d.driver}
                    for d in found.devices],
        "reason": found.reason,
        # no GPU and none asked for: the report shows the row as neither good nor bad
        "neutral": not found.devices and not (ctx.profile.gpu and ctx.profile.gpu.required),
    })


def check(ctx: Context) -> Check:
    # the runner asked already when a `when = "gpu"` condition needed the answer
    found = ctx.state.get("gpu", {}).get("probe") or probe(ctx.environ)
    ctx.state.setdefault("gpu", {})["probe"] = found
    tpu = None if found.devices else probe_tpu(ctx.environ)
    record(ctx, found)
    ctx.state["gpu"]["tpu"] = None if tpu is None else {"kind": tpu.kind, "chips": tpu.chips}
    for note in found.notes:
        ctx.note(note)
    spec = ctx.profile.gpu
    summary = found.describe() if tpu is None else f"{tpu.describe()}, no NVIDIA GPU"
    if spec is None:
        return Check(True, summary)
    if spec.accelerator == "tpu":
        if tpu is not None:
            return Check(True, summary)
        what = f"this runtime has no TPU ({found.describe()})"
        if spec.required:
            raise EnvironmentMismatch(what, where=ctx.where("gpu.accelerator"),
                                      hint=_hint(ctx, tpu=True))
        ctx.note(f"gpu.accelerator = \"tpu\" not met: {what} (informational: required = false)")
        return Check(True, summary)
    if not found.devices:
        if spec.required:
            why = f"it is a TPU runtime: {tpu.describe()}" if tpu is not None else found.reason
            raise EnvironmentMismatch(
                f"this runtime has no GPU ({why})", where=ctx.where("gpu.required"),
                hint=_hint(ctx))
        return Check(True, summary)
    misses = [shortfalls(d, found.cuda, spec) for d in found.devices]
    if any(not m for m in misses):
        return Check(True, summary)
    if spec.required:
        key = misses[0][0][0] if len(misses[0]) == 1 else "[gpu]"
        raise EnvironmentMismatch(
            f"the GPU does not fit the profile: {'; '.join(what for _, what in misses[0])}",
            where=ctx.where(key), details=f"found {summary}", hint=_hint(ctx))
    for key, what in misses[0]:
        ctx.note(f"{key} not met: {what} (informational: required = false)")
    return Check(True, summary)


def _hint(ctx: Context, *, tpu: bool = False) -> str:
    base = (_TPU_HINTS if tpu else _HINTS).get(ctx.platform.name, _HINTS["local"])
    return (f"{base}; or set required = false in [gpu] (or in [platforms."
            f"{ctx.platform.name}.gpu]) to continue without it")


def apply(ctx: Context, plan: Check) -> None:  # pragma: no cover - check() always holds or raises
    raise AssertionError("the gpu step changes nothing; check() holds or raises")
