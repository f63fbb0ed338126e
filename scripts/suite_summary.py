"""The synthetic suite in two tables (the README's "What the synthetic suite shows"): mean NMI per method and level
over the 7 aspects, and one contender against several rivals per aspect, paired by image set.

    python scripts/suite_summary.py                         # results/synthetic/runs.csv -> results/synthetic/summary.md
    python scripts/suite_summary.py --contender transductive_lda --rivals zeroshot_gpt,multi_map,multi_sub,multi_dproxy

Rows are counted once per run_id (the newest); an image set is one dataset at one level drawn with one generator
seed; a gain's 95 % interval is a t-interval over image sets (method seeds averaged first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mcbench.results.gains import t_interval
from mcbench.results.leaderboard import load_rows

LEVELS = ("easy", "medium", "hard", "noisy_medium", "noisy_hard")


def load(path: Path) -> pd.DataFrame:
    """The leaderboard's rows (ok, newest per run_id, sanity-check rows dropped), NMI and ceiling as numbers."""
    rows = load_rows(path)
    rows["nmi"] = rows["nmi"].astype(float)
    rows["ceiling_nmi"] = pd.to_numeric(rows["ceiling_nmi"], errors="coerce")
    return rows


def mean_table(rows: pd.DataFrame) -> str:
    levels = [lv for lv in LEVELS if lv in set(rows["difficulty"])]
    per_task = rows.groupby(["method", "difficulty", "dataset", "aspect"])["nmi"].mean().reset_index()
    means = per_task.groupby(["method", "difficulty"])["nmi"].mean().unstack()
    ceiling = rows.groupby(["difficulty", "dataset", "aspect"])["ceiling_nmi"].mean().groupby("difficulty").mean()
    n_sets = rows.groupby("difficulty")["dataset_seed"].nunique()
    lines = ["| method | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels),
             "| ceiling (probe, labels) | " + " | ".join(f"{ceiling.get(lv, np.nan):.3f}" for lv in levels) + " |"]
    order = means[levels[-1] if "hard" not in levels else "hard"].sort_values(ascending=False).index
    for method in order:
        lines.append(f"| `{method}` | " + " | ".join(
            "–" if pd.isna(means.loc[method].get(lv)) else f"{means.loc[method][lv]:.3f}" for lv in levels) + " |")
    lines.append("")
    lines.append("Image sets (generator seeds) per level: " + ", ".join(f"{lv} {n_sets[lv]}" for lv in levels) + ".")
    return "\n".join(lines)


def paired(rows: pd.DataFrame, contender: str, rival: str) -> pd.DataFrame:
    keys = ["dataset", "difficulty", "aspect", "dataset_seed"]
    a = rows[rows["method"] == contender].groupby(keys)["nmi"].mean()
    b = rows[rows["method"] == rival].groupby(keys)["nmi"].mean()
    diff = (a - b).dropna().reset_index()
    out = []
    for (dataset, level, aspect), part in diff.groupby(["dataset", "difficulty", "aspect"]):
        gain, _, low, high = t_interval(part["nmi"].to_numpy())
        out.append({"dataset": dataset, "difficulty": level, "aspect": aspect, "rival": rival, "n": len(part),
                    "gain": gain, "low": low, "high": high})
    return pd.DataFrame(out)


def contender_table(rows: pd.DataFrame, contender: str, rivals: list[str]) -> str:
    gains = pd.concat([paired(rows, contender, r) for r in rivals], ignore_index=True)
    lines = [f"| dataset | level | aspect | " + " | ".join(f"vs `{r}`" for r in rivals) + " | beats all |",
             "|---|---|---|" + "---|" * (len(rivals) + 1)]
    wins: dict[str, list[int]] = {}
    for (dataset, level, aspect), part in gains.groupby(["dataset", "difficulty", "aspect"]):
        cells, ok = [], True
        for r in rivals:
            g = part[part["rival"] == r]
            if g.empty:
                cells.append("–")
                ok = False
                continue
            g = g.iloc[0]
            cells.append(f"{g.gain:+.3f} [{g.low:+.3f}, {g.high:+.3f}]")
            ok &= bool(g.low > 0)
        wins.setdefault(level, []).append(int(ok))
        lines.append(f"| {dataset} | {level} | {aspect} | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    lines.append("")
    lines.append("Aspects where the 95 % interval is above zero against every rival: " + ", ".join(
        f"{lv} {sum(w)}/{len(w)}" for lv, w in sorted(wins.items(), key=lambda kv: LEVELS.index(kv[0]))) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results/synthetic/runs.csv")
    parser.add_argument("--out", default="results/synthetic/summary.md")
    parser.add_argument("--contender", default="transductive_lda")
    parser.add_argument("--rivals", default="zeroshot_gpt,multi_map,multi_sub,multi_dproxy")
    args = parser.parse_args(argv)
    rows = load(Path(args.results))
    rows = rows[rows["selection"].fillna("named") == "named"]  # best-match (oracle selection) rows apart
    text = ("# The synthetic suite in two tables\n\nMade by `python scripts/suite_summary.py` from "
            f"`{args.results}`.\n\n## Mean NMI over the aspects, per level\n\n" + mean_table(rows) +
            f"\n\n## `{args.contender}` against each rival (NMI gain, 95 % interval over image sets)\n\n" +
            contender_table(rows, args.contender, args.rivals.split(",")) + "\n")
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
