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

import re

from ..context import Context
from ..errors import EnvironmentMismatch
from ..gpus import (  # what nvidia-smi says: a part, saving asks it too
    Device,
    Probe,
    parse_cuda as parse_cuda,
    parse_query as parse_query,
    probe as probe,
    probe_tpu as probe_tpu,
)
from ..profile import Gpu, Profile
from . import Check

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


def matches_model(name: str, model: str) -> bool:
    """``T4`` matches ``Tesla T4`` and ``A100`` matches ``NVIDIA A100-SXM4-40GB``,
    not ``L4``/``L40S``."""
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
