"""Side by side on the papers' architecture: each method as mcbench runs it against its official-style loop,
with open_clip ViT-B-32 (random weights: the cost of the OpenAI weights, nothing to download), at a small N
on the CPU.

The official-style loops are run for a few epochs and extrapolated to the method's configured epochs from
their own per-epoch times (``benchmarks.epoch_clock``: setup + epochs × time per epoch + readout); ours runs
the configured epochs in full and is measured. Both loops are also compared at the same few epochs: that
short run is where the NMIs must agree (same computation, same batch), the extrapolated one is the speed-up
a user sees. Ours at a second N gives the growth with N that ``benchmarks.projection`` uses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import official_style
from benchmarks.common import bench, load_average, median, nmi, now, seeded
from benchmarks.epoch_clock import timed_task

METHODS = ("multi_map", "multi_sub", "multi_dproxy")
# a few epochs of each loop (the official-style side is extrapolated from them); Multi-Sub: one round with
# one Phase I epoch and two Phase II epochs (the first Phase II epoch also pays the pseudo-labelling pass)
SHORT = {"multi_map": ["method.epochs=2"],
         "multi_sub": ["method.rounds=1", "method.phase1_epochs=1", "method.phase2_epochs=2"],
         "multi_dproxy": ["method.epochs=2"]}


def _run(fn: Any, task: Any, truth: Any, seed: int) -> dict[str, Any]:
    """One timed fit of ``fn(task)`` with its epoch split and NMI."""
    t = timed_task(task)
    seeded(seed)
    start = time.perf_counter()
    result = fn(t)
    end = time.perf_counter()
    return {"fit_s": round(end - start, 3), **t.clock.split(start, end), "nmi": nmi(truth, result.partitions),
            "history": result.history, "representation": result.representation}


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, its representation dropped; every run's time kept."""
    ranked = sorted(runs, key=lambda r: r["fit_s"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["runs_s"] = [r["fit_s"] for r in runs]
    chosen.pop("representation", None)
    chosen.pop("history", None)
    return chosen


def extrapolate(method: str, split: dict[str, Any], config: Any, unused_pass_s: float = 0.0) -> dict[str, Any]:
    """A loop's time at the configured epochs from a short run's split: setup + epochs + readout.

    Multi-MaP: E × (median epoch) + ⌊E/10⌋ unused prompt passes; Multi-DProxy: E × (median epoch);
    Multi-Sub: rounds × (P1 × Phase I epoch + first Phase II epoch (pseudo-labels included) + (P2 − 1) ×
    Phase II epoch)."""
    ep = split["epochs_s"]
    if method == "multi_sub":
        p1, p2_first, p2 = ep[0], ep[1], (median(ep[2:]) if len(ep) > 2 else ep[1])
        per_round = config.phase1_epochs * p1 + min(config.phase2_epochs, 1) * p2_first \
            + max(config.phase2_epochs - 1, 0) * p2
        body, formula = config.rounds * per_round, (f"{config.rounds} x ({config.phase1_epochs} x {p1:.3g} + "
                                                    f"{p2_first:.3g} + {config.phase2_epochs - 1} x {p2:.3g})")
        per_epoch = {"phase1_s": p1, "phase2_first_s": p2_first, "phase2_s": p2}
    else:
        e = median(ep)
        extra = (config.epochs // official_style.UNUSED_PASS_EVERY) * unused_pass_s if method == "multi_map" else 0.0
        body = config.epochs * e + extra
        formula = f"{config.epochs} x {e:.3g}" + (f" + {config.epochs // 10} x {unused_pass_s:.3g}" if extra else "")
        per_epoch = {"epoch_s": e}
    total = split["setup_s"] + body + split["readout_s"]
    return {"fit_s": round(total, 2), "per_epoch": per_epoch,
            "formula": f"{split['setup_s']:.3g} + {formula} + {split['readout_s']:.3g}"}


def side_by_side(s: Any) -> dict[str, Any]:
    """Every method on ``s.arch_encoder`` at N = ``s.arch_n``: official-style short run (extrapolated),
    ours short (same batch: the NMI check) and ours at the configured epochs (measured); ours again at
    ``s.arch_n_growth`` for the projection."""
    rows, growth = [], []
    dataset, aspect = s.arch_task
    extraction = None
    key = {"encoder": list(s.arch_encoder), "task": list(s.arch_task), "n": s.arch_n,
           "growth": list(s.arch_n_growth), "repeats": s.repeats, "device": s.device, "quick": s.quick}
    partial = Path(s.arch_partial) if s.arch_partial else None
    saved = json.loads(partial.read_text()) if partial and partial.exists() else {}
    if saved.get("key") != key:
        saved = {"key": key, "rows": [], "growth": []}
    for method in METHODS:
        kept = [r for r in saved["rows"] if r["method"] == method]
        if kept:  # measured by an interrupted run of the same settings
            print(f"[architecture] {method}: kept from {partial}", flush=True)
            rows += kept
            growth += [g for g in saved["growth"] if g["method"] == method]
            extraction = kept[0]["extraction_s"]
            continue
        base = list(s.arch_encoder) + list(s.method_overrides.get(method, []))
        full = bench(method, dataset, base + [f"dataset.n={s.arch_n}"], s.device)
        short = bench(method, dataset, base + [f"dataset.n={s.arch_n}"] + SHORT[method], s.device)
        task, perm, truth = short.task(aspect)
        enc, dev, seed = task.encoder, task.device, short.cfg.seed
        preprocess = _seconds(lambda: short.images(perm))
        images = short.images(perm)
        if extraction is None:  # the image tower over the N images once (what the feature cache saves)
            official_style.encode_images(enc, images[:2])  # warm-up
            t0 = time.perf_counter()
            official_style.encode_images(enc, images)
            extraction = time.perf_counter() - t0
        config = full.method().config
        official_batch = official_style.OFFICIAL_BATCH[method] or getattr(config, "batch_size", None) or task.n
        same_batch = [f"method.batch_size={official_batch}"]
        loop = official_style.LOOPS[method]

        print(f"[architecture] {method}: official-style loop, {SHORT[method]}", flush=True)
        official = _best([_run(lambda t: loop(short.method(), t, images), task, truth, seed)
                           for _ in range(s.official_repeats)])
        unused = 0.0
        if method == "multi_map":  # the released loop's every-10-epochs prompt pass, timed once
            tokens = enc.tokenize([task.prompt] * task.n)
            w = torch.zeros(task.n, enc.text_width, device=dev)
            unused = _seconds(lambda: official_style.unused_prompt_pass(enc, tokens, enc.slot_token_id, w,
                                                                        official_batch, False))
        official_full = extrapolate(method, official, config, unused)

        print(f"[architecture] {method}: ours ({official['fit_s']} s official-style short)", flush=True)
        ours_short_same = bench(method, dataset, base + [f"dataset.n={s.arch_n}"] + SHORT[method] + same_batch,
                                s.device)
        runs_same = [_run(ours_short_same.method().fit, task, truth, seed) for _ in range(s.repeats)]
        ours_short = _best(runs_same)
        ftask, _, ftruth = full.task(aspect)
        ours_full_runs = [_run(full.method().fit, ftask, ftruth, seed) for _ in range(s.repeats)]
        ours_full = _best(ours_full_runs)
        protocol = _seconds(lambda: ftask.protocol.partitions(ours_full_runs[0]["representation"], ftask.k))
        row: dict[str, Any] = {
            "method": method, "measured_at": now(), "load_average": load_average(),
            "dataset": dataset, "aspect": aspect, "n_images": task.n, "k": task.k,
            "encoder": enc.identity, "device": str(dev), "extraction_s": round(extraction, 3),
            "preprocess_s": round(preprocess, 3),
            "short_overrides": SHORT[method], "config_epochs": _epochs(method, config),
            "official_batch": official_batch, "our_batch": getattr(config, "batch_size", None) or task.n,
            "official_short": official, "official_unused_pass_s": round(unused, 3),
            "official_extrapolated": official_full,
            "ours_short_same_batch": ours_short, "ours_full": ours_full, "protocol_s": round(protocol, 3),
        }
        if official_batch != row["our_batch"]:  # ours at the official batch too, configured epochs
            same_full = bench(method, dataset, base + [f"dataset.n={s.arch_n}"] + same_batch, s.device)
            row["ours_full_same_batch"] = _best([_run(same_full.method().fit, ftask, ftruth, seed)
                                                 for _ in range(s.repeats)])
            row["ours_short_default_batch"] = _best([_run(short.method().fit, task, truth, seed)])
        ours_same_full = row.get("ours_full_same_batch", ours_full)
        row["nmi_equal_short"] = abs(ours_short["nmi"] - official["nmi"]) <= 0.01
        row["speedup_short"] = round(official["fit_s"] / ours_short["fit_s"], 1)
        row["speedup"] = round(official_full["fit_s"] / ours_same_full["fit_s"], 1)  # same batch: equal NMI
        row["speedup_default_batch"] = round(official_full["fit_s"] / ours_full["fit_s"], 1)
        row["speedup_cold_cache"] = round(official_full["fit_s"] / (ours_same_full["fit_s"] + extraction), 1)
        row["parts"] = parts(method, row)
        rows.append(row)
        reuse = {**row.get("ours_full_same_batch", ours_full), "protocol_s": row["protocol_s"]} \
            if method == "multi_map" else {**ours_full, "protocol_s": row["protocol_s"]}
        growth += _growth(s, method, base, dataset, aspect, seed, reuse)
        if partial:  # a crash or a change under a shared tree loses at most the method in progress
            partial.write_text(json.dumps({"key": key, "rows": rows, "growth": growth}))
    return {"encoder": list(s.arch_encoder), "task": [dataset, aspect], "n_images": s.arch_n, "rows": rows,
            "growth": growth, "projection_overrides": PROJECTION,
            "quadratic": clustering_pairs(s.arch_pairs, rows[0]["device"]),
            "optimizer_rows": optimizer_rows(s.arch_pairs[-1] * 10, rows[0]["device"])}


def optimizer_rows(n: int, device: str = "cpu") -> dict[str, float]:
    """Seconds per table row of one optimiser step over an N×512 table whose gradient is dense (the rows outside
    the batch included): the O(N)-per-step work that makes an epoch of small batches grow like N²/batch.
    ``adagrad_dense``: the official-style Multi-MaP step (index backward, zeroed N-row gradient, Adagrad on every
    row); ``adam``: Multi-DProxy's latents and the official-style Multi-Sub's p (fused Adam, every row moves)."""
    from benchmarks.common import timed

    out = {}
    for name in ("adagrad_dense", "adam"):
        gen = torch.Generator().manual_seed(0)
        table = torch.nn.Parameter((torch.randn(n, 512, generator=gen) * 0.02).to(device))
        opt = (torch.optim.Adagrad([table], lr=0.01) if name == "adagrad_dense"
               else torch.optim.Adam([table], lr=0.01, fused=torch.device(device).type in ("cpu", "cuda")))

        def step() -> None:
            idx = torch.randperm(n, generator=gen)[:20].to(device)
            opt.zero_grad(set_to_none=name == "adam")
            (table[idx] ** 2).sum().backward()
            opt.step()

        step()
        out[name] = median([timed(step, device)[0] for _ in range(5)]) / n
    out["n"] = n
    return out


def clustering_pairs(sizes: tuple[int, ...], device: str = "cpu") -> dict[str, Any]:
    """Multi-Sub's Phase II loss (``clustering_loss``) forward + backward on N×N pairs of 1024-d rows (ViT-B/32's
    [w; x]): seconds and peak memory per pair, the N² part of a whole-batch Phase II epoch."""
    from benchmarks.common import PeakMemory, timed
    from mcbench.methods.multi_sub import clustering_loss

    points = []
    for n in sizes:
        gen = torch.Generator().manual_seed(0)
        v = torch.randn(n, 1024, generator=gen).to(device).requires_grad_(True)
        labels = torch.randint(0, 4, (n,), generator=gen).to(device)
        clustering_loss(v, labels)[0].backward()  # warm-up
        with PeakMemory(device) as mem:
            seconds = timed(lambda: clustering_loss(v, labels)[0].backward(), device)[0]
        peak = mem.cuda_peak_mib if mem.cuda_peak_mib is not None else mem.peak_mib
        points.append({"n": n, "s": round(seconds, 4), "peak_mib": peak})
    big = points[-1]
    slope = (big["s"] - points[0]["s"]) / max(big["n"] ** 2 - points[0]["n"] ** 2, 1) if len(points) > 1 \
        else big["s"] / big["n"] ** 2
    return {"points": points, "s_per_pair": max(slope, 0.0), "bytes_per_pair": big["peak_mib"] * 2**20 / big["n"] ** 2}


# the batch each method runs at the papers' settings (conf/experiment/reproduce_*): Multi-MaP 20, Multi-Sub its
# whole-batch default, Multi-DProxy 150; the growth with N is measured there
PROJECTION = {"multi_map": ["method.batch_size=20"], "multi_sub": [], "multi_dproxy": []}


def _growth(s: Any, method: str, base: list[str], dataset: str, aspect: str, seed: int,
            first: dict[str, Any]) -> list[dict[str, Any]]:
    """Ours at each N (configured epochs, the papers' batch): time split, protocol time, and the work counted
    (FLOPs, tensor operations) on a short run of the same configuration. ``first``: the run at ``s.arch_n``,
    already measured."""
    from benchmarks.work_counter import WorkCounter

    out = []
    for n in (s.arch_n, *s.arch_n_growth):
        g = bench(method, dataset, base + [f"dataset.n={n}"] + PROJECTION[method], s.device)
        gtask, _, gtruth = g.task(aspect)
        if n == s.arch_n:
            measured, protocol = first, first["protocol_s"]
        else:
            runs = [_run(g.method().fit, gtask, gtruth, seed) for _ in range(s.repeats)]
            protocol = _seconds(lambda: gtask.protocol.partitions(runs[0]["representation"], gtask.k))
            measured = _best(runs)
        counted = bench(method, dataset, base + [f"dataset.n={n}"] + PROJECTION[method] + SHORT[method], s.device)
        with WorkCounter() as w:
            t = timed_task(gtask, w.now)
            seeded(seed)
            start = w.now()
            counted.method().fit(t)
            end = w.now()
        marks = [start, *t.clock.probes, end]
        work = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
        out.append({"method": method, "n_images": gtask.n, "k": gtask.k, **measured,
                    "protocol_s": round(protocol, 3), "config": _config(g.method().config),
                    "work": {"overrides": SHORT[method], "start": work[0], "epochs": work[1:-1], "readout": work[-1]}})
    return out


def _config(config: Any) -> dict[str, Any]:
    keys = ("epochs", "batch_size", "rounds", "phase1_epochs", "phase2_epochs")
    return {k: getattr(config, k) for k in keys if hasattr(config, k)}


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _epochs(method: str, config: Any) -> int:
    if method == "multi_sub":
        return config.rounds * (config.phase1_epochs + config.phase2_epochs)
    return config.epochs


def parts(method: str, row: dict[str, Any]) -> dict[str, Any]:
    """Where each loop's time goes at the configured epochs (seconds): the fixed start, the epochs, the readout
    and (ours) the k-means protocol inside it; the per-epoch ratio; and the largest part of ours."""
    off = row["official_extrapolated"]
    short = row["official_short"]
    ours = row.get("ours_full_same_batch", row["ours_full"])
    ours_parts = {"start": ours["setup_s"], "epochs": round(sum(ours["epochs_s"]), 3),
                  "readout": round(max(ours["readout_s"] - row["protocol_s"], 0.0), 3), "k-means protocol": row["protocol_s"]}
    official_parts = {"start": short["setup_s"],
                      "epochs": round(off["fit_s"] - short["setup_s"] - short["readout_s"], 3),
                      "readout": short["readout_s"]}
    per_epoch = official_parts["epochs"] / max(ours_parts["epochs"], 1e-9)
    return {"ours": ours_parts, "official_style": official_parts, "ours_largest": max(ours_parts, key=ours_parts.get),
            "epochs_ratio": round(per_epoch, 1)}
