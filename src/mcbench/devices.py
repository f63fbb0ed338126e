"""Device selection: ``device=auto|cpu|cuda|cuda:N``."""

from __future__ import annotations

import os

import torch


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA where there is none is one clear error."""
    spec = str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={spec} was asked for, but this machine has no CUDA GPU; use device=cpu or device=auto")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device={spec}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0..)")
        return dev
    raise ValueError(f"device={spec!r} is not valid; use auto, cpu, cuda or cuda:N")


def describe(device: torch.device) -> dict[str, str]:
    """What a result row records about where it ran."""
    info = {"device": str(device), "torch_version": torch.__version__, "cuda_version": torch.version.cuda or ""}
    info["gpu_name"] = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return info


def set_cpu_threads() -> int:
    """Use the cores this process may run on."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, n))
    return n
