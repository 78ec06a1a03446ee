"""The machine's accelerators: NVIDIA GPUs as ``nvidia-smi`` reports them, and TPU runtimes.

One CSV query for name, memory and driver, then the plain table, whose header
carries the CUDA version. Each call has a time limit (``TIMEOUT``, or the
environment variable ``BOOTSTRAP_GPU_TIMEOUT`` in seconds). A missing tool, a
non-zero exit, a hang or an empty device list all mean "no GPU", with the
reason. The gpu step checks the result against ``[gpu]``; saving and the
status magic read it too.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import process
from .errors import StepError

QUERY = ("--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits")
#: seconds each nvidia-smi call may take; a healthy one answers in well under one
TIMEOUT = 20.0

_CUDA = re.compile(r"CUDA Version\s*:\s*([0-9]+(?:\.[0-9]+)*)")

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
