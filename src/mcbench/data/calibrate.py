"""``python -m mcbench.data.calibrate``: zero-shot accuracy of each synthetic family × difficulty × aspect.

Runs the ``zeroshot_label`` control (CLIP argmax over the aspect's prompt filled with each true class name)
through the ordinary pipeline (Hydra config, ``mcbench.run``) on the shipped tiny CLIP, once per dataset
generator seed, and writes ``<out>/difficulty_calibration.{csv,md}``. Result rows go to a temporary file,
never to ``results/runs.csv``. Accuracy is the plain one: the predicted class name must be the true one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_module

import mcbench.paths  # noqa: F401  (config resolver)
from mcbench.atomic import write_text_atomic
from mcbench.data.synthetic import DIFFICULTIES, FAMILIES
from mcbench.run import prepare, run_with_results

#: The target band of zero-shot accuracy per level (docs/difficulty.md).
BANDS = {"easy": (0.95, 1.0), "medium": (0.60, 0.85), "hard": (0.30, 0.60)}


def measure(family: str, difficulty: str, seed: int, n: int = 600, encoder: str = "tiny_clip",
            overrides: tuple[str, ...] = ()) -> list[dict]:
    """One row per aspect: zero-shot accuracy (and the row's Hungarian ACC and NMI) on one generated set.

    ``overrides`` are extra Hydra overrides (e.g. ``paths.cache_dir=...``).
    """
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_module("mcbench.conf", version_base="1.3"):
            cfg = compose("config", overrides=[
                "method=zeroshot_label", f"dataset=synth_{family}", f"dataset.n={n}", f"dataset.seed={seed}",
                f"dataset.difficulty={difficulty}", f"encoder={encoder}", f"seed={seed}", "logger=none",
                "progress=false", "force=true", f"results_file={Path(tmp) / 'runs.csv'}",
                *overrides,
            ])  # fmt: skip
        results = run_with_results(cfg)
        labels = prepare(cfg).dataset.labels  # the same generated set, read back from the disk cache
    rows = []
    for row, result in results:
        # the words are the class names in class order, so the cluster index is the predicted class
        predicted = np.asarray(result.info["partition_dataset_order"])
        rows.append({"family": family, "difficulty": difficulty, "aspect": row["aspect"], "seed": seed, "n": n,
                     "k": row["k"], "accuracy": float((predicted == labels[row["aspect"]]).mean()),
                     "acc_hungarian": row["acc"], "nmi": row["nmi"]})
    return rows


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max accuracy over seeds per (family, difficulty, aspect), and whether the mean is in band."""
    out = (df.groupby(["family", "difficulty", "aspect"], sort=False)["accuracy"]
           .agg(["mean", "min", "max", "count"]).reset_index())
    out["in_band"] = [BANDS[d][0] <= m <= BANDS[d][1] for d, m in zip(out["difficulty"], out["mean"])]
    return out


def to_markdown(summary: pd.DataFrame, command: str) -> str:
    seeds = int(summary["count"].max())
    lines = [f"Zero-shot accuracy of `zeroshot_label` (tiny CLIP, true class names), mean over {seeds} generator "
             f"seed(s) [min–max]. Made by `{command}`.", "",
             "| dataset | aspect | easy | medium | hard |", "|---|---|---|---|---|"]
    for (family, aspect), part in summary.groupby(["family", "aspect"], sort=False):
        cells = []
        for level in DIFFICULTIES:
            r = part[part["difficulty"] == level]
            if r.empty:
                cells.append("–")
                continue
            r = r.iloc[0]
            mark = "" if r["in_band"] else " **(out of band)**"
            cells.append(f"{r['mean']:.3f} [{r['min']:.3f}–{r['max']:.3f}]{mark}")
        lines.append(f"| synth_{family} | {aspect} | " + " | ".join(cells) + " |")
    bands = ", ".join(f"{d} {lo:.0%}–{hi:.0%}" for d, (lo, hi) in BANDS.items())
    return "\n".join(lines + ["", f"Target bands: {bands}."]) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mcbench.data.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--difficulties", default=",".join(DIFFICULTIES))
    p.add_argument("--seeds", default="0,1,2", help="dataset generator seeds")
    p.add_argument("--n", type=int, default=600, help="images per dataset")
    p.add_argument("--encoder", default="tiny_clip")
    p.add_argument("--out", default="results", help="folder for difficulty_calibration.{csv,md}")
    args = p.parse_args(argv)
    rows = []
    for family in args.families.split(","):
        for difficulty in args.difficulties.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                new = measure(family, difficulty, seed, args.n, args.encoder)
                print(f"synth_{family} {difficulty} seed={seed}: "
                      + ", ".join(f"{r['aspect']} {r['accuracy']:.3f}" for r in new), flush=True)
                rows += new
    df = pd.DataFrame(rows)
    summary = summarize(df)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "difficulty_calibration.csv", df.to_csv(index=False, float_format="%.4f"))
    command = " ".join(["python -m mcbench.data.calibrate", *(argv if argv is not None else sys.argv[1:])])
    write_text_atomic(out / "difficulty_calibration.md", to_markdown(summary, command.strip()))
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
