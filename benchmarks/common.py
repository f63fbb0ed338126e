"""What every benchmark section needs: the machine's description, timers, peak memory, tasks built the
runner's way (Hydra config, per-dataset method settings, cached word lists, feature cache)."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def machine() -> dict[str, Any]:
    """CPU, cores, memory, GPU, and the versions that decide the timings."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "open_clip_torch", "numpy", "scikit-learn", "hydra-core",
                "hydra-joblib-launcher", "joblib", "mcbench"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {
        "cpu": cpu,
        "cores": cores,
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``), so the next RSS peak counts new memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak resident memory above the level at entry (a 2 ms sampler thread; CPU), and the CUDA allocator's
    peak (GPU). torch's CPU allocations are not seen by tracemalloc, so RSS is what is measured; freed pages
    are returned to the OS first, else a second fit would reuse the first one's heap and show no growth."""

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.002) -> None:
        self.device, self.interval = torch.device(device), interval
        self.peak_mib = 0.0
        self.cuda_peak_mib: float | None = None

    def __enter__(self) -> "PeakMemory":
        self._stop = threading.Event()
        release_free_memory()
        self._base = rss_bytes()
        self._peak = self._base
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_bytes())
            self._stop.wait(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_bytes())
        self.peak_mib = round((self._peak - self._base) / 2**20, 1)
        if self.device.type == "cuda":
            self.cuda_peak_mib = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)


# ------------------------------------------------------------------------------------------ tasks


def compose(method: str, dataset: str, overrides: list[str] = ()) -> DictConfig:
    """The runner's configuration for (method, dataset): conf/method + conf/method_dataset + overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        return hydra_compose("config", overrides=[f"method={method}", f"dataset={dataset}", "logger=none",
                                                  "progress=false", *overrides])


@dataclass
class Bench:
    """Everything a section needs for one (method, dataset): the runner's job, encoder and features."""

    cfg: DictConfig
    job: Any
    encoder: Any
    features: Any

    def task(self, aspect: str, words: tuple[str, ...] | None = None):
        from mcbench.protocol import KMeansProtocol
        from mcbench.runner import build_task, reference_words

        words = words or reference_words(self.job, aspect).words
        task, perm = build_task(self.job.dataset, aspect, self.features, self.encoder, tuple(words),
                                self.cfg.seed, self.cfg.data.order, self.job.device,
                                KMeansProtocol(self.cfg.protocol.n_restarts))
        return task, perm, self.job.dataset.labels[aspect][perm]

    def images(self, perm) -> torch.Tensor:
        """The task's images preprocessed for the encoder, in task order (what the official code holds in RAM)."""
        ds = self.job.dataset
        return torch.stack([self.encoder.preprocess(ds.image(int(i))) for i in perm]).to(self.job.device)

    def method(self):
        return self.job.method


_ENCODERS: dict[tuple[str, str, str], Any] = {}


def bench(method: str, dataset: str, overrides: list[str] = (), device: str = "cpu") -> Bench:
    from mcbench.encoders import create_encoder
    from mcbench.features import image_features
    from mcbench.runner import prepare

    cfg = compose(method, dataset, [f"device={device}", *overrides])
    job = prepare(cfg)
    key = (cfg.encoder.model, cfg.encoder.pretrained, str(job.device))
    if key not in _ENCODERS:
        _ENCODERS[key] = create_encoder(cfg.encoder.model, cfg.encoder.pretrained, job.device)
    encoder = _ENCODERS[key]
    features, _ = image_features(encoder, job.dataset, cfg.paths.cache_dir, progress=False)
    return Bench(cfg, job, encoder, features)


def nmi(truth, partitions) -> float:
    from mcbench.metrics import score_partitions

    return round(score_partitions(truth, partitions)["nmi"], 4)


def seeded(seed: int) -> None:
    """What the runner does before each fit."""
    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed)
