"""The five benchmark sections. Each returns plain JSON-able data; ``benchmarks.run`` writes them out."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks import official_style
from benchmarks.common import REPO, PeakMemory, bench, compose, load_average, median, nmi, seeded, timed

METHODS = ("multi_map", "multi_sub", "multi_dproxy")
DATASETS = ("synth_shapes", "synth_cards", "synth_fruit")


@dataclass
class Settings:
    """Sizes of every section; ``quick_settings()`` is the smoke version a test runs."""

    quick: bool = False
    device: str = "auto"
    repeats: int = 3
    official_repeats: int = 1
    datasets: tuple[str, ...] = DATASETS
    n_images: int | None = None  # None: the dataset's configured size (600)
    extraction_images: dict[str, int] = field(default_factory=lambda: {"tiny_clip": 512, "vit_b32": 48})
    side_by_side_datasets: tuple[str, ...] = DATASETS
    text_pass_batch: tuple[int, int] = (100, 20)  # (ours: Multi-MaP's synthetic batch, official)
    sweep_methods: tuple[str, ...] = METHODS
    sweep_datasets: tuple[str, ...] = DATASETS
    sweep_seeds: tuple[int, ...] = (0, 1, 2)
    sweep_n_jobs: int = 2
    sweep_extra: tuple[str, ...] = ()
    sweep_launchers: tuple[str, ...] = ("serial", "parallel")
    scaling_n: tuple[int, ...] = (150, 300, 600, 1200)
    scaling_words: tuple[int, ...] = (4, 8, 16, 32)
    # the side by side on the papers' architecture (benchmarks/architecture.py): encoder overrides, task, N,
    # the extra N of ours for the growth with N (benchmarks/projection.py)
    arch_encoder: tuple[str, ...] = ("encoder=vit_b32_openai", "encoder.pretrained=random")
    arch_task: tuple[str, str] = ("synth_cards", "suits")
    arch_n: int = 100
    arch_n_growth: tuple[int, ...] = (300,)
    arch_pairs: tuple[int, ...] = (1000, 2000)  # N of the N×N clustering-loss measurement (Multi-Sub Phase II)
    arch_partial: str | None = None  # file of the methods measured so far (a rerun of the same settings resumes)
    # per-method overrides for every in-process section (quick: fewer epochs)
    method_overrides: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def quick_settings(cls, device: str = "auto") -> "Settings":
        return cls(
            quick=True, device=device, repeats=1, official_repeats=1, datasets=("synth_shapes",), n_images=48,
            extraction_images={"tiny_clip": 32, "vit_b32": 4}, side_by_side_datasets=("synth_shapes",),
            text_pass_batch=(8, 4), sweep_datasets=("synth_shapes",), sweep_seeds=(0,), sweep_extra=("dataset.n=24",),
            scaling_n=(24, 48), scaling_words=(4, 8),
            arch_encoder=(), arch_n=16, arch_n_growth=(24,), arch_pairs=(100, 200),
            method_overrides={"multi_map": ["method.epochs=2"],
                              "multi_sub": ["method.rounds=1", "method.phase1_epochs=2", "method.phase2_epochs=1"],
                              "multi_dproxy": ["method.epochs=3"]},
        )

    def overrides(self, method: str, n: int | None = None) -> list[str]:
        n = n if n is not None else self.n_images
        return ([f"dataset.n={n}"] if n else []) + list(self.method_overrides.get(method, []))


def cpu_threads() -> int:
    """Set torch's CPU threads as the runner does (``mcbench.devices.set_cpu_threads``) and return how many."""
    from mcbench.devices import set_cpu_threads

    return set_cpu_threads()  # what the runner does on the CPU


# ------------------------------------------------------------------------------------------ 1. extraction


def extraction(s: Settings) -> list[dict[str, Any]]:
    """Images/s of the image tower through ``ClipEncoder.encode_images`` (preprocessing included, as the feature
    cache pays it) and of the forward pass alone, for the tiny CLIP and ViT-B/32 (random weights: same cost)."""
    from mcbench.encoders import create_encoder
    from mcbench.runner import prepare

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and s.device != "cpu" else [])
    rows = []
    most = max(s.extraction_images.values())
    ds = prepare(compose("multi_map", "synth_shapes")).dataset  # the configured set (cached images)
    pil = [ds.image(i) for i in range(min(len(ds), most))]
    for key, model, pretrained in (("tiny_clip", "mcbench-tiny-clip", "mcbench"),
                                   ("vit_b32", "ViT-B-32-quickgelu", "random")):
        for device in devices:
            n = s.extraction_images[key] * (8 if device == "cuda" and not s.quick else 1)
            images = (pil * (n // len(pil) + 1))[:n]
            enc = create_encoder(model, pretrained, device)
            enc.encode_images(images[:4], batch_size=4, progress=False)  # warm-up
            full, forward = [], []
            batch = 64 if device == "cpu" else 256
            pre = torch.stack([enc.preprocess(im) for im in images])
            for _ in range(s.repeats):
                full.append(timed(lambda: enc.encode_images(images, batch_size=batch, progress=False), device)[0])
                forward.append(timed(lambda: _forward(enc, pre, batch), device)[0])
            rows.append({"encoder": key, "model": model, "weights": pretrained, "device": device,
                         "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                         "image_size": int(pre.shape[-1]), "n_images": n, "batch_size": batch,
                         "images_per_s": round(n / median(full), 1),
                         "forward_images_per_s": round(n / median(forward), 1),
                         "times_s": [round(t, 3) for t in full], "forward_times_s": [round(t, 3) for t in forward]})
            del enc
    return rows


@torch.no_grad()
def _forward(enc: Any, pre: torch.Tensor, batch: int) -> None:
    cuda = enc.device.type == "cuda"
    for i in range(0, len(pre), batch):
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            enc.model.encode_image(pre[i:i + batch].to(enc.device))


# ------------------------------------------------------------------------------------------ 2. per method


def _fit(method: Any, task: Any, seed: int, device: Any) -> tuple[float, Any, PeakMemory]:
    seeded(seed)
    with PeakMemory(device) as mem:
        seconds, result = timed(lambda: method.fit(task), device)
    return seconds, result, mem


def methods(s: Settings) -> dict[str, Any]:
    """Time per run (fit, k-means protocol included) and per epoch, peak memory, NMI: every method, every
    synthetic aspect, the runner's configuration (conf/method + conf/method_dataset)."""
    rows = []
    for method in METHODS:
        for dataset in s.datasets:
            b = bench(method, dataset, s.overrides(method), s.device)
            for aspect in b.job.aspects:
                task, _, truth = b.task(aspect)
                runs = [_fit(b.method(), task, b.cfg.seed, task.device) for _ in range(s.repeats)]
                result = runs[0][1]
                protocol = timed(lambda: task.protocol.partitions(result.representation, task.k))[0]
                fit_s = median([r[0] for r in runs])
                epochs = len(result.history)
                rows.append({
                    "method": method, "dataset": dataset, "aspect": aspect, "n_images": task.n, "k": task.k,
                    "n_words": len(task.reference_words), "device": str(task.device), "epochs": epochs,
                    "fit_s": round(fit_s, 3), "fit_s_runs": [round(r[0], 3) for r in runs],
                    "protocol_s": round(protocol, 3),
                    "per_epoch_s": round((fit_s - protocol) / max(epochs, 1), 4),
                    "peak_rss_mib": max(r[2].peak_mib for r in runs),
                    "peak_cuda_mib": runs[0][2].cuda_peak_mib,
                    "nmi": nmi(truth, result.partitions),
                })
    return {"rows": rows, "switches": switches(s)}


def switches(s: Settings) -> list[dict[str, Any]]:
    """The speed switches on and off on one task (what the prefix cache buys, same NMI), and Multi-MaP's
    synthetic batch (100) against one whole-batch step per epoch (the same proxies when weight decay is 0)."""
    rows = []
    dataset = s.datasets[min(1, len(s.datasets) - 1)]
    for method, off in (("multi_map", ["method.prefix_cache=false"]),
                        ("multi_map", ["method.prefix_cache=false", "method.truncate=false"]),
                        ("multi_sub", ["method.prefix_cache=false"]),
                        ("multi_map", ["method.batch_size=<N>"])):
        timings = {}
        for label in ("on", "off"):
            b = bench(method, dataset, s.overrides(method), s.device)
            aspect = b.job.aspects[0]
            if label == "off":
                n = b.task(aspect)[0].n
                off = [o.replace("<N>", str(n)) for o in off]
                b = bench(method, dataset, s.overrides(method) + off, s.device)
            task, _, truth = b.task(aspect)
            runs = [_fit(b.method(), task, b.cfg.seed, task.device) for _ in range(s.repeats)]
            timings[label] = (median([r[0] for r in runs]), nmi(truth, runs[0][1].partitions))
        rows.append({"method": method, "dataset": dataset, "aspect": aspect, "switched_off": off,
                     "fit_s_default": round(timings["on"][0], 3), "fit_s_off": round(timings["off"][0], 3),
                     "speedup": round(timings["off"][0] / timings["on"][0], 2),
                     "nmi_default": timings["on"][1], "nmi_off": timings["off"][1]})
    return rows


# ------------------------------------------------------------------------------------------ 3. side by side


def side_by_side(s: Settings) -> dict[str, Any]:
    """Each method as mcbench runs it against its official-style loop (benchmarks/official_style.py): same data,
    encoder, seed and hyperparameters; speed ratio and both NMIs. Where the official batch differs from ours,
    ours is also run at the official batch (the same computation as the official-style loop)."""
    rows = []
    for method in METHODS:
        for dataset in s.side_by_side_datasets:
            b = bench(method, dataset, s.overrides(method), s.device)
            aspect = b.job.aspects[0]
            task, perm, truth = b.task(aspect)
            images = b.images(perm)
            ours = [_fit(b.method(), task, b.cfg.seed, task.device) for _ in range(s.repeats)]
            loop = official_style.LOOPS[method]
            official = []
            for _ in range(s.official_repeats):
                seeded(b.cfg.seed)
                official.append(timed(lambda: loop(b.method(), task, images), task.device))
            ours_s, official_s = median([r[0] for r in ours]), median([r[0] for r in official])
            nmi_ours, nmi_official = nmi(truth, ours[0][1].partitions), nmi(truth, official[0][1].partitions)
            protocol = timed(lambda: task.protocol.partitions(ours[0][1].representation, task.k))[0]
            cfg = b.method().config
            our_batch = getattr(cfg, "batch_size", None) or task.n
            official_batch = official_style.OFFICIAL_BATCH[method] or our_batch
            row = {
                "method": method, "dataset": dataset, "aspect": aspect, "n_images": task.n,
                "device": str(task.device), "epochs": len(ours[0][1].history),
                "ours": {"fit_s": round(ours_s, 3), "runs_s": [round(r[0], 3) for r in ours], "nmi": nmi_ours,
                         "batch_size": our_batch, "text_pass": _text_pass(method, cfg),
                         "image_pass": "cached features"},
                "official_style": {"fit_s": round(official_s, 3), "runs_s": [round(r[0], 3) for r in official],
                                   "nmi": nmi_official, "batch_size": official_batch,
                                   "text_pass": ("none in the loop (joint-space proxies)" if method == "multi_dproxy"
                                                 else f"full context ({task.encoder.model.context_length} tokens), "
                                                      "filled per image, encoder gradients computed"),
                                   "image_pass": official_style.IMAGE_PASS[method]},
                "protocol_s": round(protocol, 3),
                "speedup": round(official_s / ours_s, 1),
                "speedup_without_protocol": round((official_s - protocol) / max(ours_s - protocol, 1e-9), 1),
                "nmi_diff": round(abs(nmi_ours - nmi_official), 4),
                "equal_nmi": abs(nmi_ours - nmi_official) <= 0.01,
            }
            if official_batch != our_batch:
                same = bench(method, dataset, s.overrides(method) + [f"method.batch_size={official_batch}"], s.device)
                same_task, _, _ = same.task(aspect)
                runs = [_fit(same.method(), same_task, same.cfg.seed, task.device) for _ in range(s.repeats)]
                same_s, same_nmi = median([r[0] for r in runs]), nmi(truth, runs[0][1].partitions)
                row["ours_at_official_batch"] = {"fit_s": round(same_s, 3), "runs_s": [round(r[0], 3) for r in runs],
                                                 "nmi": same_nmi, "batch_size": official_batch}
                row["speedup_same_batch"] = round(official_s / same_s, 1)
                row["equal_nmi_same_batch"] = abs(same_nmi - nmi_official) <= 0.01
            rows.append(row)
    return {"rows": rows, "text_pass": text_pass_bound(s)}


def _text_pass(method: str, cfg: Any) -> str:
    if method == "multi_dproxy":
        return "none in the loop (joint-space proxies)" if cfg.proxy_space == "joint" else "prompt per image"
    return "prefix cache (slot to EOT)" if getattr(cfg, "prefix_cache", False) else "truncated prompt"


def text_pass_bound(s: Settings) -> list[dict[str, Any]]:
    """The proxy-prompt forward+backward per image: official-style (full context, per-image fill, encoder
    gradients, batch 20) against the prefix cache at Multi-MaP's synthetic batch. Its ratio caps what the text
    side of Multi-MaP's loop can gain, per encoder."""
    from mcbench.encoders import create_encoder
    from mcbench.prompts import PrefixCachedPrompt

    rows = []
    prompt = "Card with suits of *"
    for key, model, pretrained in (("tiny_clip", "mcbench-tiny-clip", "mcbench"),
                                   ("vit_b32", "ViT-B-32-quickgelu", "random")):
        device = "cuda" if torch.cuda.is_available() and s.device != "cpu" else "cpu"
        enc = create_encoder(model, pretrained, device)
        cached = PrefixCachedPrompt(enc, prompt)
        ours_b, official_b = s.text_pass_batch
        tokens = enc.tokenize([prompt] * official_b)
        slot = enc.slot_token_id
        gen = torch.Generator().manual_seed(0)
        w_ours = torch.randn(ours_b, enc.text_width, generator=gen).to(device) * 0.02
        w_official = w_ours[:official_b].clone()

        def ours() -> None:
            w = w_ours.clone().requires_grad_(True)
            cached.encode(w).sum().backward()

        def official() -> None:
            w = w_official.clone().requires_grad_(True)
            with official_style.trainable_encoder(enc):
                official_style.official_prompt_encode(enc, tokens, slot, w, False).sum().backward()

        ours(), official()  # warm-up
        t_ours = median([timed(ours, device)[0] for _ in range(max(3, s.repeats))]) / ours_b
        t_off = median([timed(official, device)[0] for _ in range(max(1, s.repeats))]) / official_b
        rows.append({"encoder": key, "device": device, "context": int(enc.model.context_length),
                     "rows_ours": len(cached.tokens) - cached.slot, "batch_ours": ours_b, "batch_official": official_b,
                     "ours_us_per_image": round(1e6 * t_ours, 1), "official_us_per_image": round(1e6 * t_off, 1),
                     "ratio": round(t_off / t_ours, 1)})
        del enc
    return rows


def architecture(s: Settings) -> dict[str, Any]:
    """Side by side on ViT-B/32 (random weights) at small N, official-style extrapolated to the configured
    epochs, and the projection to the papers' dataset sizes (benchmarks/architecture.py, projection.py)."""
    from benchmarks import architecture as arch
    from benchmarks import projection

    out = arch.side_by_side(s)
    out["projection"] = projection.project(out)
    return out


# ------------------------------------------------------------------------------------------ 4. sweep


def sweep(s: Settings) -> dict[str, Any]:
    """Wall time of ``mcbench -m`` over methods x datasets x seeds: serial (Hydra's basic launcher, one process)
    and with the joblib launcher (conf/hydra/launcher/parallel.yaml). Feature caches warm, W&B off."""
    exe = Path(sys.executable).with_name("mcbench")
    base = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "mcbench.commands.cli"]), "-m",
            f"method={','.join(s.sweep_methods)}", f"dataset={','.join(s.sweep_datasets)}",
            f"seed={','.join(map(str, s.sweep_seeds))}", "logger=none", "progress=false", "force=true",
            *s.sweep_extra]
    if s.device != "auto":
        base.append(f"device={s.device}")
    out: dict[str, Any] = {"jobs": len(s.sweep_methods) * len(s.sweep_datasets) * len(s.sweep_seeds),
                           "methods": list(s.sweep_methods), "datasets": list(s.sweep_datasets),
                           "seeds": list(s.sweep_seeds), "extra_overrides": list(s.sweep_extra), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="mcbench-sweep-") as tmp:
        launchers = {"serial": [],
                     "parallel": ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={s.sweep_n_jobs}"]}
        for label, extra in ((k, v) for k, v in launchers.items() if k in s.sweep_launchers):
            results = Path(tmp) / f"{label}.csv"
            cmd = base + extra + [f"results_file={results}", f"hydra.sweep.dir={Path(tmp) / label}"]
            load = load_average()
            start = time.perf_counter()
            env = {**os.environ, "WANDB_MODE": "disabled"}
            cpu_before = _children_cpu_s()
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - start
            cpu_used = _children_cpu_s() - cpu_before
            rows = list(csv.DictReader(results.open())) if results.exists() else []
            ok = [r for r in rows if r.get("status") == "ok"]
            out["runs"][label] = {
                "wall_s": round(wall, 1), "cpu_s": round(cpu_used, 1), "returncode": proc.returncode,
                "tasks_ok": len(ok),
                "sum_fit_s": round(sum(float(r["fit_s"]) for r in ok), 1),
                "sum_runtime_s": round(sum(float(r["runtime_s"]) for r in ok), 1),
                "load_average_before": load, "load_average_after": load_average(),
                "command": " ".join(["mcbench", *cmd[cmd.index("-m"):]]).replace(tmp, "$TMP"),
                "stderr_tail": proc.stderr[-800:] if proc.returncode else "",
            }
            if label == "parallel":
                out["runs"][label]["n_jobs"] = s.sweep_n_jobs
    return out


def _children_cpu_s() -> float:
    """CPU seconds (user + system) used by finished child processes: what the sweep itself cost, whatever else
    the shared machine was running (on a quiet machine its wall time lies between this / cores and this)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------------ 5. scaling


def scaling(s: Settings) -> dict[str, Any]:
    """Fit time against the number of images N and the number of reference words, per method
    (synth_shapes, aspect shape; words beyond the aspect's list come from the other synthetic aspects)."""
    by_n, by_words = [], []
    for method in METHODS:
        for n in s.scaling_n:
            b = bench(method, "synth_shapes", s.overrides(method, n), s.device)
            task, _, _ = b.task("shape")
            runs = [_fit(b.method(), task, b.cfg.seed, task.device) for _ in range(s.repeats)]
            fit_s = median([r[0] for r in runs])
            by_n.append({"method": method, "n_images": task.n, "fit_s": round(fit_s, 3),
                         "per_epoch_s": round(fit_s / max(len(runs[0][1].history), 1), 4),
                         "peak_rss_mib": max(r[2].peak_mib for r in runs)})
        b = bench(method, "synth_shapes", s.overrides(method), s.device)
        task, _, _ = b.task("shape")
        pool = _word_pool(b, list(task.reference_words))
        for count in s.scaling_words:
            words_task, _, _ = b.task("shape", tuple(pool[:count]))
            runs = [_fit(b.method(), words_task, b.cfg.seed, task.device) for _ in range(s.repeats)]
            by_words.append({"method": method, "n_words": count, "n_images": task.n,
                             "fit_s": round(median([r[0] for r in runs]), 3)})
    return {"n_images": by_n, "n_words": by_words}


def _word_pool(b: Any, first: list[str]) -> list[str]:
    """The aspect's own words, then the other synthetic aspects' word lists (as the runner reads them)."""
    from mcbench.runner import prepare, reference_words

    words = list(first)
    for name in DATASETS:
        job = prepare(compose("multi_map", name))
        for aspect in job.aspects:
            words += [w for w in reference_words(job, aspect).words if w not in words]
    return words
