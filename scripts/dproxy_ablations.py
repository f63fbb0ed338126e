"""Multi-DProxy's ablation table: NMI per ablation x dataset x aspect, mean ± std over seeds.

    .venv/bin/mcbench -m experiment=multi_dproxy_ablations seed=0,1,2 logger=none progress=false
    .venv/bin/python scripts/dproxy_ablations.py results/dproxy_ablations.csv results/dproxy_ablations.md

Reads the rows the experiment wrote (multi_dproxy, status ok, no sanity rows); the ablation is the one
recorded in each row's ``hparams``. With several rows of one (method version, ablation, dataset, setting,
aspect, seed) the last one counts. Prints the table and writes it as markdown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from mcbench.results.leaderboard import load_rows

#: the paper's ablations in its order, with what each one changes (methods/multi_dproxy.py, resolve_ablation)
ABLATIONS = {
    "none": "full model (defaults)",
    "no_dynamic": "w/o dynamic pruning (`dynamic=false`)",
    "no_uconstraint": "w/o user-interest constraint L_u (`use_lu=false`)",
    "no_cconstraint": "w/o concept-discrimination constraint L_c (`use_lc=false`)",
    "concat_fusion": "fusion replaced by concatenation F = [T; V] (`fusion=concat`)",
    "text_only": "text only: F = proxies T⁰ (`modality=text`)",
    "visual_only": "visual only: F = frozen image V (`modality=visual`)",
}


def load(path: str | Path) -> pd.DataFrame:
    df = load_rows(path, method="multi_dproxy")  # ok rows, newest per run_id, sanity-check rows dropped
    hp = df["hparams"].map(json.loads)
    params = df["dataset_params"].map(json.loads)
    df = df.assign(ablation=hp.map(lambda h: h.get("ablation", "none")),
                   difficulty=params.map(lambda p: p.get("difficulty", "")),
                   n=params.map(lambda p: p.get("n", "")))
    key = ["method_version", "ablation", "dataset", "difficulty", "n", "aspect", "seed"]
    return df.drop_duplicates(key, keep="last")


def table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows: ablation (the paper's order); columns: dataset/aspect; cells: NMI mean, std, number of seeds."""
    g = df.groupby(["ablation", "dataset", "aspect"])["nmi"].agg(["mean", "std", "count"]).reset_index()
    g["std"] = g["std"].fillna(0.0)
    return g


def to_markdown(df: pd.DataFrame, command: str) -> str:
    g = table(df)
    cols = sorted({(d, a) for d, a in zip(g["dataset"], g["aspect"])})
    order = [a for a in ABLATIONS if a in set(g["ablation"])] + sorted(set(g["ablation"]) - set(ABLATIONS))
    seeds = sorted(df["seed"].unique().tolist())
    settings = sorted({f"{d}, n={n}" for d, n in zip(df["difficulty"], df["n"])})
    versions = sorted(df["method_version"].unique().tolist())
    lines = [f"# Multi-DProxy ablations (NMI, mean ± std over seeds {', '.join(map(str, seeds))})", "",
             f"Rows: `{command}`. Synthetic data: {'; '.join(settings)}; encoder: tiny CLIP; "
             f"multi_dproxy version {', '.join(map(str, versions))}; every other switch at its default "
             "(`conf/method/multi_dproxy.yaml`). (n) = seeds when fewer than all.", "",
             "| ablation | " + " | ".join(f"{d.removeprefix('synth_')}/{a}" for d, a in cols) + " | mean |",
             "|---|" + "---|" * (len(cols) + 1)]
    for abl in order:
        part = g[g["ablation"] == abl].set_index(["dataset", "aspect"])
        cells = []
        for c in cols:
            if c not in part.index:
                cells.append("–")
                continue
            r = part.loc[c]
            text = f"{r['mean']:.3f}" + (f" ± {r['std']:.3f}" if len(seeds) > 1 else "")
            cells.append(text + (f" ({int(r['count'])})" if int(r["count"]) < len(seeds) else ""))
        mean = df[df["ablation"] == abl].groupby(["dataset", "aspect"])["nmi"].mean().mean()
        lines.append(f"| {ABLATIONS.get(abl, abl)} | " + " | ".join(cells) + f" | {mean:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    src = argv[0] if argv else "results/dproxy_ablations.csv"
    out = Path(argv[1]) if len(argv) > 1 else Path(src).with_suffix(".md")
    seeds = ",".join(map(str, sorted(pd.read_csv(src)["seed"].unique())))
    command = f"mcbench -m experiment=multi_dproxy_ablations seed={seeds} logger=none progress=false"
    if Path(src) != Path("results/dproxy_ablations.csv"):  # the experiment's own results_file
        command += f" results_file={src}"
    text = to_markdown(load(src), command)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
