"""``python -m mcbench.commands.calibrate``: how hard each synthetic family × level × aspect is, and the room it leaves.

Through the ordinary pipeline (Hydra config, ``mcbench.runner``) on the shipped tiny CLIP, once per dataset
generator seed, it runs two controls and reads three numbers per aspect:

* **zero-shot accuracy** — ``zeroshot_label`` (CLIP argmax over the aspect's prompt filled with each true
  class name); plain accuracy: the predicted class name must be the true one;
* **probe accuracy** — the ceiling the evaluator puts in every row (``ceiling_acc``: a 5-fold cross-validated
  logistic-regression probe on the frozen image embeddings, trained *with the labels*,
  ``mcbench.ceiling.linear_probe_predictions``): a reference, never a method. Headroom = probe − zero-shot;
* **kmeans_image NMI on every aspect** — k-means on the image embeddings (aspect-blind) with the aspect's k,
  scored against every aspect's labels (the row's ``nmi`` and ``nmi_other_aspects``). An aspect is
  *dominant* when its own kmeans_image NMI is the highest of the family's aspects; on a non-dominant aspect an
  unpersonalised clustering follows another aspect, so personalisation matters.

Writes ``<out>/difficulty_calibration.csv`` (one row per family, level, aspect and seed) and
``<out>/difficulty_calibration.md`` (the table of docs/difficulty.md). Result rows go to a temporary file,
never to ``results/runs.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_module

import mcbench.paths  # noqa: F401  (config resolver)
from mcbench.atomic import write_text_atomic
from mcbench.data.synthetic import DIFFICULTIES, FAMILIES
from mcbench.runner import prepare, run_with_results

#: The target band of zero-shot accuracy per level (docs/difficulty.md); the echo levels also need a probe
#: accuracy >= PROBE_TARGET. The noisy levels have the medium/hard zero-shot bands and no probe target.
BANDS = {"easy": (0.95, 1.0), "medium": (0.60, 0.85), "hard": (0.30, 0.60),
         "noisy_medium": (0.60, 0.85), "noisy_hard": (0.30, 0.60)}
PROBE_TARGET = {"medium": 0.95, "hard": 0.95}
TEST_SEEDS = "10,11,12,13,14"  # the leaderboard's generator seeds (development seeds 0, 1 are for tuning)


def _compose(method: str, family: str, difficulty: str, seed: int, n: int, encoder: str, results: Path,
             overrides: tuple[str, ...]):
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        return compose("config", overrides=[
            f"method={method}", f"dataset=synth_{family}", f"dataset.n={n}", f"dataset.seed={seed}",
            f"dataset.difficulty={difficulty}", f"encoder={encoder}", f"seed={seed}", "logger=none",
            "progress=false", "force=true", f"results_file={results}", *overrides,
        ])  # fmt: skip


def measure(family: str, difficulty: str, seed: int, n: int = 600, encoder: str = "tiny_clip",
            overrides: tuple[str, ...] = (), kmeans: bool = True) -> list[dict]:
    """One row per aspect on one generated set: zero-shot accuracy, probe accuracy (the row's ceiling) and,
    with ``kmeans``, kmeans_image NMI against every aspect. ``overrides``: extra Hydra overrides."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _compose("zeroshot_label", family, difficulty, seed, n, encoder, Path(tmp) / "runs.csv", overrides)
        results = run_with_results(cfg)
        labels = prepare(cfg).dataset.labels  # the same generated set, read back from the disk cache
        km = {}
        if kmeans:
            cfg_km = _compose("kmeans_image", family, difficulty, seed, n, encoder, Path(tmp) / "runs.csv",
                              (*overrides, "protocol.ceiling=false"))
            for row, _ in run_with_results(cfg_km):
                km[row["aspect"]] = {row["aspect"]: float(row["nmi"]), **json.loads(row["nmi_other_aspects"])}
    rows = []
    for row, result in results:
        aspect = row["aspect"]
        # the words are the class names in class order, so the cluster index is the predicted class
        predicted = np.asarray(result.info["partition_dataset_order"])
        accuracy = float((predicted == labels[aspect]).mean())
        probe = float(row["ceiling_acc"]) if row.get("ceiling_acc", "") != "" else float("nan")
        out = {"family": family, "difficulty": difficulty, "aspect": aspect, "seed": seed, "n": n, "k": row["k"],
               "accuracy": accuracy, "probe_acc": probe, "headroom": probe - accuracy,
               "probe_nmi": float(row["ceiling_nmi"]) if row.get("ceiling_nmi", "") != "" else float("nan"),
               "zeroshot_nmi": row["nmi"]}
        if kmeans:
            out["kmeans_nmi"] = km[aspect][aspect]
            out["kmeans_nmi_all"] = json.dumps({a: round(v, 4) for a, v in km[aspect].items()}, sort_keys=True)
            out["dominant"] = all(km[aspect][aspect] >= km[b][b] for b in km if b != aspect)
        rows.append(out)
    return rows


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per (family, difficulty, aspect): zero-shot mean/min/max over seeds, probe and headroom means, whether the
    zero-shot mean is in the level's band and the probe at its target, kmeans_image NMI means per aspect."""
    keys = ["family", "difficulty", "aspect"]
    g = df.groupby(keys, sort=False)
    out = g["accuracy"].agg(["mean", "min", "max", "count"]).reset_index()
    out["probe"] = g["probe_acc"].mean().values
    out["probe_min"] = g["probe_acc"].min().values
    out["headroom"] = out["probe"] - out["mean"]
    out["in_band"] = [BANDS[d][0] <= m <= BANDS[d][1] for d, m in zip(out["difficulty"], out["mean"])]
    out["probe_ok"] = [p >= PROBE_TARGET.get(d, 0.0) for d, p in zip(out["difficulty"], out["probe_min"])]
    if "kmeans_nmi_all" in df:
        per = df["kmeans_nmi_all"].map(json.loads)
        mean_all = (pd.DataFrame(list(per), index=df.index).assign(**{k: df[k] for k in keys})
                    .groupby(keys, sort=False).mean())
        out["kmeans_nmi_all"] = [json.dumps({a: round(v, 4) for a, v in mean_all.loc[tuple(r)].dropna().items()},
                                            sort_keys=True) for r in out[keys].itertuples(index=False)]
        own = {tuple(r[:3]): r[3] for r in g["kmeans_nmi"].mean().reset_index().itertuples(index=False)}
        out["kmeans_nmi"] = [own[tuple(r)] for r in out[keys].itertuples(index=False)]
        out["dominant"] = [
            own[(f, d, a)] >= max(v for (f2, d2, _), v in own.items() if (f2, d2) == (f, d))
            for f, d, a in out[keys].itertuples(index=False)
        ]
    return out


def _levels(summary: pd.DataFrame) -> list[str]:
    return [d for d in DIFFICULTIES if d in set(summary["difficulty"])]


def to_markdown(summary: pd.DataFrame, command: str, seconds: float | None = None) -> str:
    seeds = int(summary["count"].max())
    kmeans = "kmeans_nmi_all" in summary
    lines = [
        f"Per family × aspect × level, mean over {seeds} generator seed(s) at n = {int(summary.attrs.get('n', 0))} "
        f"images: **zero-shot** accuracy of `zeroshot_label` (tiny CLIP, true class names) [min–max]; **probe** "
        "accuracy, the ceiling (5-fold cross-validated logistic regression on the frozen image embeddings, "
        "trained with the labels: a reference, never a method; the rows' `ceiling_acc`); **headroom** = probe − "
        "zero-shot; **kmeans_image NMI** of k-means on the image embeddings with the aspect's k against each "
        "aspect's labels (the named aspect in bold; *dominant*: the named aspect's kmeans_image NMI is the "
        f"family's highest). Made by `{command}`" + (f" in {seconds / 60:.1f} min." if seconds else "."),
        "",
        "| dataset | level | aspect | zero-shot | probe | headroom | kmeans_image NMI (every aspect) | dominant |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in dict.fromkeys(summary["family"]):
        for level in _levels(summary):
            part = summary[(summary["family"] == family) & (summary["difficulty"] == level)]
            for r in part.itertuples(index=False):
                zs = f"{r.mean:.3f} [{r.min:.3f}–{r.max:.3f}]" + ("" if r.in_band else " **(out of band)**")
                probe = f"{r.probe:.3f}" + ("" if r.probe_ok else f" **(a seed < 0.95: min {r.probe_min:.3f})**")
                if kmeans:
                    nmis = json.loads(r.kmeans_nmi_all)
                    cell = ", ".join((f"**{a} {v:.3f}**" if a == r.aspect else f"{a} {v:.3f}")
                                     for a, v in sorted(nmis.items(), key=lambda kv: kv[0] != r.aspect))
                    dom = "yes" if r.dominant else "no"
                else:
                    cell, dom = "–", "–"
                lines.append(f"| synth_{family} | {level} | {r.aspect} | {zs} | {probe} | {r.headroom:+.3f} | "
                             f"{cell} | {dom} |")
    lines += ["", "Per level: mean zero-shot, mean probe, mean headroom, aspects in band, probes ≥ 0.95 on every "
              "seed, non-dominant aspects.", "", "| level | zero-shot | probe | headroom | in band | probe ≥ 0.95 |"
              " non-dominant |", "|---|---|---|---|---|---|---|"]
    for level in _levels(summary):
        part = summary[summary["difficulty"] == level]
        nondom = f"{int((~part['dominant']).sum())} / {len(part)}" if kmeans else "–"
        target = "" if level in PROBE_TARGET else " (no target)"
        lines.append(f"| {level} | {part['mean'].mean():.3f} | {part['probe'].mean():.3f} | "
                     f"{part['headroom'].mean():+.3f} | {int(part['in_band'].sum())} / {len(part)} | "
                     f"{int(part['probe_ok'].sum())} / {len(part)}{target} | {nondom} |")
    bands = ", ".join(f"{d} {lo:.0%}–{hi:.0%}" for d, (lo, hi) in BANDS.items())
    return "\n".join(lines + ["", f"Zero-shot target bands: {bands}. Probe target (echo levels): ≥ 0.95."]) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mcbench.commands.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--difficulties", default=",".join(DIFFICULTIES))
    p.add_argument("--seeds", default=TEST_SEEDS, help="dataset generator seeds (default: the test seeds)")
    p.add_argument("--n", type=int, default=600, help="images per dataset")
    p.add_argument("--encoder", default="tiny_clip")
    p.add_argument("--no-kmeans", action="store_true", help="skip the kmeans_image NMI columns (faster)")
    p.add_argument("--out", default="results", help="folder for difficulty_calibration.{csv,md}")
    args = p.parse_args(argv)
    for level in args.difficulties.split(","):
        if level not in DIFFICULTIES:
            p.error(f"unknown difficulty '{level}'; choose from {', '.join(DIFFICULTIES)}")
    start, rows = time.perf_counter(), []
    for family in args.families.split(","):
        for difficulty in args.difficulties.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                new = measure(family, difficulty, seed, args.n, args.encoder, kmeans=not args.no_kmeans)
                print(f"synth_{family} {difficulty} seed={seed}: " + ", ".join(
                    f"{r['aspect']} zero-shot {r['accuracy']:.3f} probe {r['probe_acc']:.3f}" for r in new), flush=True)
                rows += new
    df = pd.DataFrame(rows)
    summary = summarize(df)
    summary.attrs["n"] = args.n
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "difficulty_calibration.csv", df.to_csv(index=False, float_format="%.4f"))
    command = " ".join(["python -m mcbench.commands.calibrate", *(argv if argv is not None else sys.argv[1:])])
    write_text_atomic(out / "difficulty_calibration.md",
                      to_markdown(summary, command.strip(), time.perf_counter() - start))
    print(summary.drop(columns=["kmeans_nmi_all"], errors="ignore").to_string(index=False))


if __name__ == "__main__":
    main()
