"""Predicted wall time of each method at the papers' dataset sizes and settings, on this CPU and on a GPU,
from the ViT-B/32 measurements of ``benchmarks.architecture``.

CPU (measured scaling). Ours was measured at two N (the papers' batch, conf/experiment/reproduce_*'s batch);
each part of a fit is a straight line in N through the two points, and

    T(N, E) = start(N) + E · epoch(N) + readout(N) + protocol(N, k)

with, for Multi-Sub, E · epoch(N) = rounds · (P1 · phase1(N) + P2 · phase2(N)) and phase2(N) carrying the
whole-batch clustering loss's N² term (measured separately on N×N pairs). The image tower over the N
images (the feature cache, once per dataset and encoder) is a column of its own. The official-style loops
were measured at one N; all their work is per image (image tower, full-context text passes), so each part
is scaled by N/N₀.

GPU (an estimate: no GPU was measured). The same fits, counted instead of timed: FLOPs (torch's
``FlopCounterMode``) and tensor operations (each a kernel launch and eager-mode host work), per part, at the
same two N (operations per epoch as a line in the number of steps). Time = FLOPs / R + operations · L, with
R and L below (assumptions, not measurements); the whole-batch clustering loss adds its N×N memory traffic
at the HBM bandwidth; the k-means protocol stays on the CPU (scikit-learn), counted at this CPU's time; the
image tower at fp16 rate plus preprocessing on the GPU machine's 16 cores.
"""

from __future__ import annotations

import math
from typing import Any

# the papers' tasks (conf/dataset/*.yaml, conf/experiment/reproduce_*): images, k of the aspect
PAPER_TASKS = (("Fruit", "fruit_color", 105, 3), ("Cards", "cards_suits", 8029, 4),
               ("CIFAR-10-MC", "cifar10_mc_type", 60000, 2))
# assumptions of the GPU estimate (NVIDIA H200): FP32 without tensor cores (PyTorch's default for fp32
# matmuls) at ~40% of its 67 TFLOP/s peak; the image tower under fp16 autocast at ~25% of ~990 TFLOP/s dense;
# 10 µs per eager tensor operation (launch + dispatch); 4.8 TB/s HBM3e
GPU = {"name": "NVIDIA H200 (estimate)", "fp32_flop_s": 25e12, "fp16_flop_s": 250e12, "op_s": 10e-6,
       "hbm_bytes_s": 4.8e12, "cpu_cores": 16, "memory_gib": 139}
VIT_B32_IMAGE_FLOPS = 4.4e9  # forward FLOPs of ViT-B/32's image tower per 224-px image (published)
PAIR_BYTES = 4 * 24  # whole-batch clustering loss: ~24 float32 N×N tensors read or written, forward + backward
# optimisers that touch every row of an N-row table at every step (ours, official-style) and the epochs where
# they do (Multi-Sub: Phase I, where p is trained); Multi-MaP's own Adagrad gets the batch's rows only
TABLE_OPTIMIZER = {"multi_map": (None, "adagrad_dense"), "multi_sub": ("adam", "adam"),
                   "multi_dproxy": ("adam", "adam")}
OPTIMIZER_PHASES = ("epoch", "phase1")
ROW_BYTES = 8 * 4 * 512  # one optimiser step over a 512-wide row: ~8 float32 reads and writes per element


def paper_config(method: str, task: str) -> dict[str, Any]:
    """The method's settings in conf/experiment/reproduce_<method>_<task>.yaml (composed, as the runner does)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment=reproduce_{method}_{task}"])
    m = cfg.method
    keys = ("epochs", "batch_size", "rounds", "phase1_epochs", "phase2_epochs")
    return {k: m[k] for k in keys if k in m}


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) through the points (least squares; all at one x: the mean, a constant)."""
    n = len(points)
    mx, my = sum(p[0] for p in points) / n, sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:  # one x (one point, or one step per epoch at every N): a constant
        return my, 0.0
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return max(my - slope * mx, 0.0), max(slope, 0.0)


def _at(line: tuple[float, float], x: float) -> float:
    return line[0] + line[1] * x


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


def _phases(method: str, config: dict[str, Any], epochs: list[Any]) -> dict[str, list[Any]]:
    """Per-epoch entries grouped by phase (Multi-Sub: Phase I / Phase II epochs; others: one group)."""
    if method != "multi_sub":
        return {"epoch": list(epochs)}
    p1, p2 = config["phase1_epochs"], config["phase2_epochs"]
    out: dict[str, list[Any]] = {"phase1": [], "phase2": []}
    for i, value in enumerate(epochs):
        out["phase1" if i % (p1 + p2) < p1 else "phase2"].append(value)
    return out


def _epochs_of(method: str, config: dict[str, Any]) -> dict[str, int]:
    if method == "multi_sub":
        return {"phase1": config["rounds"] * config["phase1_epochs"], "phase2": config["rounds"] * config["phase2_epochs"]}
    return {"epoch": config["epochs"]}


def _steps(n: int, batch: int) -> int:
    return math.ceil(n / (batch or n))


def cpu_model(method: str, growth: list[dict[str, Any]], quadratic: dict[str, Any],
              rows: dict[str, float] | None = None) -> dict[str, Any]:
    """Lines in N for every part of ours on this CPU (seconds), plus the N² terms kept apart: the whole-batch
    clustering loss's pairs and the optimiser's every-row work per step (``rows``: seconds per row-step)."""
    optimizer = TABLE_OPTIMIZER[method][0]
    c = (rows or {}).get(optimizer, 0.0) if optimizer else 0.0
    start = _line([(g["n_images"], g["setup_s"]) for g in growth])
    readout = _line([(g["n_images"], max(g["readout_s"] - g["protocol_s"], 0.0)) for g in growth])
    protocol = _line([(g["n_images"] * g["k"], g["protocol_s"]) for g in growth])  # k-means: ∝ N·k
    per_phase: dict[str, tuple[float, float]] = {}
    q = quadratic.get("s_per_pair", 0.0) if method == "multi_sub" else 0.0
    for g in growth:
        for phase, values in _phases(method, g["config"], g["epochs_s"]).items():
            per_phase.setdefault(phase, [])  # type: ignore[arg-type]
            sub = q * g["n_images"] ** 2 if phase == "phase2" else 0.0
            if phase in OPTIMIZER_PHASES:
                sub += c * g["n_images"] * _steps(g["n_images"], g["config"].get("batch_size", 0))
            per_phase[phase].append((g["n_images"], max(_median(values) - sub, 0.0)))  # type: ignore[union-attr]
    lines = {phase: _line(points) for phase, points in per_phase.items()}  # type: ignore[arg-type]
    return {"start": start, "readout": readout, "protocol_per_nk": protocol, "epoch": lines, "pair_s": q,
            "row_step_s": c}


def gpu_model(method: str, growth: list[dict[str, Any]]) -> dict[str, Any]:
    """Lines for the counted work of ours: FLOPs in N, tensor operations in N (start, readout) and in steps
    (epochs)."""
    flops: dict[str, list[tuple[float, float]]] = {}
    ops: dict[str, list[tuple[float, float]]] = {}
    for g in growth:
        w, n, batch = g["work"], g["n_images"], g["config"].get("batch_size", 0)
        for part in ("start", "readout"):
            flops.setdefault(part, []).append((n, w[part][0]))
            ops.setdefault(part, []).append((n, w[part][1]))
        short_cfg = dict(g["config"])
        for o in w["overrides"]:
            key, value = o.removeprefix("method.").split("=")
            short_cfg[key] = int(value)
        for phase, values in _phases(method, short_cfg, w["epochs"]).items():
            sub = 6 * 1024 * n * n if phase == "phase2" else 0  # v·vᵀ forward and backward, counted apart
            flops.setdefault(phase, []).append((n, max(_median([v[0] for v in values]) - sub, 0)))
            ops.setdefault(phase, []).append((_steps(n, batch), _median([v[1] for v in values])))
    return {"flops": {k: _line(v) for k, v in flops.items()}, "ops": {k: _line(v) for k, v in ops.items()}}


def predict(method: str, n: int, k: int, config: dict[str, Any], cpu: dict[str, Any], gpu: dict[str, Any],
            row: dict[str, Any], n0: int) -> dict[str, Any]:
    """Seconds of ours (CPU, GPU estimate), of the image tower once, and of the official-style loop (CPU)."""
    epochs = _epochs_of(method, config)
    batch = config.get("batch_size", 0)
    protocol = _at(cpu["protocol_per_nk"], n * k)
    pairs = n * n if method == "multi_sub" and not batch else (n * (batch or n) if method == "multi_sub" else 0)
    cpu_s = _at(cpu["start"], n) + _at(cpu["readout"], n) + protocol
    gpu_s = protocol
    for part in ("start", "readout"):
        gpu_s += _at(gpu["flops"][part], n) / GPU["fp32_flop_s"] + _at(gpu["ops"][part], n) * GPU["op_s"]
    for phase, count in epochs.items():
        quad = pairs if phase == "phase2" else 0
        row_steps = n * _steps(n, batch) if phase in OPTIMIZER_PHASES and TABLE_OPTIMIZER[method][0] else 0
        cpu_s += count * (_at(cpu["epoch"][phase], n) + cpu["pair_s"] * quad + cpu["row_step_s"] * row_steps)
        flops = _at(gpu["flops"][phase], n) + 6 * 1024 * quad
        gpu_s += count * (flops / GPU["fp32_flop_s"] + _at(gpu["ops"][phase], _steps(n, batch)) * GPU["op_s"]
                          + (PAIR_BYTES * quad + ROW_BYTES * row_steps) / GPU["hbm_bytes_s"])
    per_image = row["extraction_s"] / n0
    image_gpu = n * VIT_B32_IMAGE_FLOPS / GPU["fp16_flop_s"] + n * row["preprocess_s"] / n0 / GPU["cpu_cores"]
    off = row["official_short"]
    scale = n / n0
    o_epochs = row["official_extrapolated"]["per_epoch"]
    c = row.get("optimizer_rows", {}).get(TABLE_OPTIMIZER[method][1], 0.0)
    b_off = row["official_batch"]

    def grown(seconds: float) -> float:
        """An official-style epoch with a table optimiser: per-image work × N/N₀, every-row work per step at N."""
        return (seconds - c * n0 * _steps(n0, b_off)) * scale + c * n * _steps(n, b_off)

    if method == "multi_sub":
        per_round = (config["phase1_epochs"] * grown(o_epochs["phase1_s"]) + o_epochs["phase2_first_s"] * scale
                     + (config["phase2_epochs"] - 1) * o_epochs["phase2_s"] * scale)
        body = config["rounds"] * per_round
    else:
        body = config["epochs"] * grown(o_epochs["epoch_s"])
        if method == "multi_map":
            body += config["epochs"] // 10 * row["official_unused_pass_s"] * scale
    official = (off["setup_s"] + off["readout_s"]) * scale + body
    out = {"ours_s": round(cpu_s, 1), "ours_gpu_s_estimate": round(gpu_s, 1),
           "image_tower_s": round(n * per_image, 1), "image_tower_gpu_s_estimate": round(image_gpu, 1),
           "official_style_s": round(official, 1), "speedup": round(official / cpu_s, 1)}
    if method == "multi_sub" and pairs:
        mem = pairs * row.get("pair_bytes", 0)
        out["pairwise_memory_gib"] = round(mem / 2**30, 1)
    return out


def project(arch: dict[str, Any]) -> dict[str, Any]:
    rows = {r["method"]: r for r in arch["rows"]}
    out: dict[str, Any] = {"measured_on": next(iter(rows.values()))["device"], "gpu_assumptions": GPU,
                           "image_flops": VIT_B32_IMAGE_FLOPS, "tasks": [], "models": {}}
    for method, row in rows.items():
        growth = [g for g in arch["growth"] if g["method"] == method]
        optimizer_rows = arch.get("optimizer_rows", {})
        row = {**row, "pair_bytes": arch.get("quadratic", {}).get("bytes_per_pair", 0),
               "optimizer_rows": optimizer_rows}
        cpu = cpu_model(method, growth, arch.get("quadratic", {}), optimizer_rows)
        gpu = gpu_model(method, growth)
        out["models"][method] = {"cpu": cpu, "gpu": gpu}
        for name, task, n, k in PAPER_TASKS:
            config = paper_config(method, task)
            out["tasks"].append({"method": method, "dataset": name, "experiment": f"reproduce_{method}_{task}",
                                 "n_images": n, "k": k, "config": config,
                                 **predict(method, n, k, config, cpu, gpu, row, row["n_images"])})
    return out
