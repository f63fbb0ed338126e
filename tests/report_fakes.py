"""Fabricated run folders for the report tests: the artifacts ``mcbench.runner`` writes, without running a method.

The images come from ``report_fake``, a dataset registered here that draws its n images in milliseconds
(a class colour per ``color`` label, a stripe pattern per ``shape`` label), so a 10,000-image task is cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mcbench.data.base import DATASETS, Aspect, MultiViewDataset

COLORS = ("red", "green", "blue", "yellow", "purple")
SHAPES = ("circle", "square", "star")
RGB = np.array([(220, 40, 40), (40, 180, 60), (40, 80, 220), (230, 210, 40), (150, 60, 170)], dtype=np.int16)


@DATASETS.register("report_fake")
def report_fake(n: int = 100, seed: int = 0, image_size: int = 32, cache_dir=None) -> MultiViewDataset:
    rng = np.random.default_rng(seed)
    labels = {"color": rng.integers(0, len(COLORS), n), "shape": rng.integers(0, len(SHAPES), n)}
    stripes = (np.arange(image_size) // 4 % 2).astype(np.int16)
    pixels = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    for s in range(len(SHAPES)):  # one stripe direction per shape, the colour per class
        mask = labels["shape"] == s
        pattern = {0: stripes[None, :], 1: stripes[:, None], 2: (stripes[:, None] ^ stripes[None, :])}[s]
        base = RGB[labels["color"][mask]][:, None, None, :]
        pixels[mask] = np.clip(base - 60 * pattern[None, :, :, None], 0, 255).astype(np.uint8)
    aspects = {
        "color": Aspect("color", COLORS, "A fake of color *"),
        "shape": Aspect("shape", SHAPES, "A fake of shape *"),
    }
    return MultiViewDataset("report_fake", aspects, labels, [f"fake_{i:06d}" for i in range(n)], pixels=pixels)


def fabricate_run(root: Path, n: int = 200, aspect: str = "color", seed: int = 0, collide: bool = True,
                  history: int = 6, name: str = "outputs/2026-01-01/00-00-00", image_size: int = 32,
                  dim: int = 16) -> Path:
    """A run folder with one task on ``report_fake``: clusters = the true classes, with 10% noise.

    ``collide``: the first two clusters get the same name ("red"), a finding the page must show.
    """
    run = Path(root) / name
    ds = report_fake(n=n, seed=0, image_size=image_size)
    truth = ds.labels[aspect]
    k = ds.aspects[aspect].k
    rng = np.random.default_rng(seed + 1)
    pred = truth.copy()
    noisy = rng.random(n) < 0.1
    pred[noisy] = rng.integers(0, k, noisy.sum())
    order = rng.permutation(n)
    centres = rng.normal(size=(k, dim)) * 3
    rep = (centres[pred[order]] + rng.normal(size=(n, dim))).astype(np.float32)
    classes = ds.aspects[aspect].classes
    words = [classes[c] for c in range(k)]
    if collide:
        words[1] = words[0]
    names = [{"cluster": c, "size": int((pred == c).sum()), "word": words[c], "score": 0.3, "runner_up": "other",
              "margin": round(0.01 * (c + 1), 4)} for c in range(k)]
    run_id = f"fake{n:06d}{seed:02d}"
    slug = f"fake_method-report_fake-{aspect}-s{seed}-{run_id}"
    task = run / "tasks" / slug
    task.mkdir(parents=True, exist_ok=True)
    np.save(task / "partition.npy", pred.astype(np.int64))
    np.save(task / "representation.npy", rep)
    np.save(task / "task_order.npy", order)
    hist = [{"loss": 2.0 / (e + 1), "align": 1.0 / (e + 1), "epoch": e} for e in range(history)]
    (task / "history.json").write_text(json.dumps(hist))
    (task / "cluster_names.json").write_text(json.dumps(names, indent=1))
    collisions = {words[0]: [0, 1]} if collide else {}
    row = {
        "run_id": run_id, "status": "ok", "method": "fake_method", "dataset": "report_fake", "aspect": aspect,
        "seed": seed, "k": k, "n_images": n, "encoder": "fake_encoder", "nmi": 0.8 + 0.01 * seed, "ri": 0.9,
        "ari": 0.7, "ami": 0.79, "acc": 0.9, "nmi_std": 0.01, "ri_std": 0.0, "ari_std": 0.01,
        "nmi_other_aspects": json.dumps({a: 0.01 for a in ds.aspects if a != aspect}),
        "representation": "fake proxies", "cluster_names": "; ".join(f"{w}(x)" for w in words),
        "name_collisions": json.dumps(collisions), "protocol": "kmeans++ x2", "data_order": "shuffled",
        "words_source": "declared", "n_words": k, "hparams": json.dumps({"lr": 0.01}),
        "dataset_params": json.dumps({"n": n, "seed": 0, "image_size": image_size}, sort_keys=True),
        "dataset_revision": ds.revision, "runtime_s": 1.5, "sweep_id": "",
    }
    (task / "row.json").write_text(json.dumps(row, indent=1))
    hydra = run / ".hydra"
    hydra.mkdir(parents=True, exist_ok=True)
    (hydra / "config.yaml").write_text(
        f"method:\n  name: fake_method\ndataset:\n  name: report_fake\n  'n': {n}\nseed: {seed}\n"
        "paths:\n  cache_dir: /nonexistent-cache  # FAKE-CONFIG-MARKER\n")
    (hydra / "overrides.yaml").write_text(f"- dataset.n={n}\n- seed={seed}\n")
    return run
