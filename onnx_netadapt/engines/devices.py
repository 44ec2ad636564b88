"""Which devices the proposals train on, and how many run at once.

``--device auto`` takes every GPU torch sees (one worker pinned to each), else the CPU;
``cuda`` every GPU; ``cuda:N`` that GPU; ``cpu`` the CPU. On the CPU the default worker count
fills the cores with ``--train-threads`` threads each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from onnx_netadapt.errors import NetAdaptError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class DeviceError(NetAdaptError):
    """A device that does not exist here."""

    exit_code = 2


@dataclass(frozen=True)
class DevicePlan:
    """Per worker slot, the device its proposals train on.

    Attributes:
        devices: one entry per worker ("cpu", "cuda:0", ...).
        threads: torch CPU threads per proposal.
        deterministic: deterministic kernels (slower on GPUs; results then do not depend on
            the GPU's scheduling).
    """

    devices: tuple[str, ...]
    threads: int = 1
    deterministic: bool = False

    @property
    def workers(self) -> int:
        """Proposals evaluated at once."""
        return len(self.devices)

    @property
    def gpu(self) -> bool:
        """Whether proposals train on GPUs."""
        return self.devices[0].startswith("cuda")


def gpu_count() -> int:
    """GPUs torch sees (0 without torch's CUDA build); torch is imported only here, lazily."""
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def default_cpu_workers(threads: int) -> int:
    """Workers that fill the cores, ``threads`` each (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, threads))


def plan_devices(
    device: str = "auto",
    workers: int | None = None,
    threads: int = 1,
    deterministic: bool = False,
    gpus: int | None = None,
) -> DevicePlan:
    """The device of every worker for ``--device device --workers workers``.

    ``workers=None`` means: one per GPU, or fill the CPU cores. Workers beyond the GPUs share
    them round-robin. ``gpus`` overrides the detected GPU count (tests).

    >>> plan_devices("cpu", workers=2).devices
    ('cpu', 'cpu')
    >>> plan_devices("cuda", gpus=2).devices
    ('cuda:0', 'cuda:1')
    """
    visible = gpu_count() if gpus is None else gpus
    if device == "auto":
        device = "cuda" if visible else "cpu"
    if device == "cpu":
        gpu_ids: list[int] = []
    elif device == "cuda":
        gpu_ids = list(range(visible))
    elif device.startswith("cuda:") and device[5:].isdigit():
        gpu_ids = [int(device[5:])]
    else:
        raise DeviceError(f"unknown --device {device!r}: use {DEVICE_CHOICES}")
    if device != "cpu" and (not gpu_ids or max(gpu_ids) >= visible):
        raise DeviceError(
            f"--device {device} asked for, but torch sees {visible} CUDA device(s) here: "
            "use --device cpu (or auto), or check CUDA_VISIBLE_DEVICES and torch's CUDA build"
        )
    if workers is not None and workers < 1:
        raise DeviceError(f"--workers {workers} must be at least 1")
    if not gpu_ids:
        count = workers or default_cpu_workers(threads)
        return DevicePlan(("cpu",) * count, threads, deterministic)
    count = workers or len(gpu_ids)
    devices = tuple(f"cuda:{gpu_ids[i % len(gpu_ids)]}" for i in range(count))
    return DevicePlan(devices, threads, deterministic)
