"""Reproduce, on our tiny CLIP architecture with random weights, how the official Multi-MaP loop reads
the label order (docs/leakage.md). Writes docs/leakage_table.md.

    .venv/bin/python scripts/leakage_table.py [--seeds 0,1] [--aspects color,shape]

Every run goes through the real runner (rows in results/leakage_runs.csv, marked sanity_check=leakage).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module

import mcbench.paths  # noqa: F401
from mcbench.contracts import METHODS
from mcbench.runner import run_with_results

OFFICIAL = list(METHODS.get("multi_map").official_leak_amplified_overrides)  # + per-class subsets of 20
SETTINGS = [
    ("official loop, README Fruit settings, batch 20 = class size", OFFICIAL),
    ("same, batch 16", [*OFFICIAL, "method.batch_size=16"]),
    ("same, weight decay 0", [*OFFICIAL, "method.weight_decay=0.0"]),
    ("same, shuffled data order (framework default)", [o for o in OFFICIAL if o != "data.order=sorted"]),
    ("mcbench defaults (shuffled batches, decay on batch rows), wd 5e-5, sorted order",
     ["method.weight_decay=5e-5", "data.order=sorted", "data.per_class=20"]),
    ("k-means on the random image features (the band)", ["data.order=sorted", "data.per_class=20"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--aspects", default="color,shape")
    parser.add_argument("--results", default="results/leakage_runs.csv")
    parser.add_argument("--out", default="docs/leakage_table.md")
    args = parser.parse_args()
    lines = ["| settings (synth_shapes, 20 images per class, `encoder=tiny_clip_random`) | "
             + " | ".join(f"NMI {a}" for a in args.aspects.split(",")) + " |",
             "|---|" + "---|" * len(args.aspects.split(","))]
    for label, overrides in SETTINGS:
        method = "kmeans_image" if label.startswith("k-means") else "multi_map"
        cells = []
        for aspect in args.aspects.split(","):
            nmis = []
            for seed in args.seeds.split(","):
                with initialize_config_module("mcbench.conf", version_base="1.3"):
                    cfg = compose("config", overrides=[
                        f"method={method}", "dataset=synth_shapes", "encoder=tiny_clip_random", f"aspect={aspect}",
                        f"seed={seed}", "logger=none", "progress=false", "force=true", "sanity_check=leakage",
                        f"results_file={args.results}", *overrides])
                nmis += [row["nmi"] for row, _ in run_with_results(cfg)]
            cells.append(" / ".join(f"{v:.3f}" for v in nmis) + f" (mean {np.mean(nmis):.3f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    Path(args.out).write_text(
        f"Seeds {args.seeds} (one value per seed). Made by `.venv/bin/python scripts/leakage_table.py "
        f"--seeds {args.seeds} --aspects {args.aspects}`.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
