"""Choosing the device for a run: a visible NVIDIA GPU when there is one (``auto``), the CPU
otherwise, and what the sandbox must expose for the GPU to work inside it."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from autograder.errors import AutograderError

DEVICE_MODES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Device:
    """The device a run uses: ``cpu``, or ``gpu`` with its index, name and device nodes."""

    kind: str
    name: str
    index: int | None = None
    nodes: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str


def visible_gpus(
    dev: Path = Path("/dev"), proc: Path = Path("/proc/driver/nvidia")
) -> list[GpuInfo]:
    """NVIDIA GPUs this machine exposes: device nodes ``/dev/nvidiaN`` plus the driver's
    ``/proc`` entries for their names. Empty without the driver's control node."""
    if not (dev / "nvidiactl").exists():
        return []
    names = []
    for info in sorted((proc / "gpus").glob("*/information")):
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("Model:"):
                names.append(line.split(":", 1)[1].strip())
    gpus = []
    for node in sorted(dev.glob("nvidia[0-9]*"), key=lambda p: int(p.name[6:])):
        index = int(node.name[6:])
        name = names[index] if index < len(names) else "NVIDIA GPU"
        gpus.append(GpuInfo(index, name))
    return gpus


def gpu_nodes(dev: Path = Path("/dev")) -> tuple[str, ...]:
    """Device nodes the sandbox needs for CUDA: every GPU node (``CUDA_VISIBLE_DEVICES``
    picks one, keeping the driver's numbering) and the driver's shared nodes."""
    shared = ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"]
    nodes = sorted(str(p) for p in dev.glob("nvidia[0-9]*"))
    nodes += [str(dev / n) for n in shared if (dev / n).exists()]
    nodes += sorted(glob.glob(str(dev / "nvidia-caps" / "*")))
    return tuple(nodes)


def select_device(
    mode: str, *, slot: int = 0, gpus: list[GpuInfo] | None = None, dev: Path = Path("/dev")
) -> Device:
    """The device for one run. ``slot`` spreads runs over several GPUs round-robin."""
    if mode not in DEVICE_MODES:
        raise AutograderError(f"--device {mode!r}: expected one of {', '.join(DEVICE_MODES)}")
    found = visible_gpus(dev) if gpus is None else gpus
    if mode == "cpu" or (mode == "auto" and not found):
        return Device("cpu", "CPU", env={"CUDA_VISIBLE_DEVICES": ""})
    if not found:
        raise AutograderError("--device gpu: no NVIDIA GPU is visible on this machine")
    gpu = found[slot % len(found)]
    return Device(
        "gpu",
        gpu.name,
        index=gpu.index,
        nodes=gpu_nodes(dev),
        env={"CUDA_VISIBLE_DEVICES": str(gpu.index), "TF_FORCE_GPU_ALLOW_GROWTH": "true"},
    )
