"""``mcbench-leaderboard``: result rows → leaderboard CSV/markdown and plots (derived, never edited).

Rows are grouped by (method variant, dataset, dataset settings, aspect, encoder, words source); each group
gets mean ± std over its seeds of every metric and its run count. A method's variant label shows the
hyperparameters that vary between its rows (a sweep ``method.alpha=0.1,0.3`` gives two lines). The papers'
published numbers (``results/reported.csv``) sit in columns of their own, never mixed with ours.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mcbench.atomic import write_text_atomic
from mcbench.results import ResultStore

METRICS = ("nmi", "ri", "ari", "acc")
GROUP = ["dataset", "setting", "aspect", "encoder", "words_source", "method", "variant"]


def _variant_labels(df: pd.DataFrame) -> pd.Series:
    """Per row: the hyperparameters that differ between rows of the same method, as ``k=v`` text."""
    labels = pd.Series("", index=df.index)
    for _, rows in df.groupby("method"):
        params = rows["hparams"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
        keys = sorted({k for p in params for k in p})
        varying = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in params}) > 1]
        labels.loc[rows.index] = params.map(lambda p: ",".join(f"{k}={p.get(k)}" for k in varying))
    return labels


def _setting(params: str) -> str:
    """The dataset settings that matter for comparison (difficulty, size)."""
    p = json.loads(params) if isinstance(params, str) and params else {}
    parts = [str(p["difficulty"])] if "difficulty" in p else []
    if "n" in p:
        parts.append(f"n={p['n']}")
    return " ".join(parts)


def load_rows(results: str | Path, dataset: str | None = None, method: str | None = None,
              encoder: str | None = None, include_sanity: bool = False) -> pd.DataFrame:
    df = ResultStore(results).read()
    if df.empty:
        return df
    df = df[df["status"] == "ok"].copy()
    if not include_sanity and "sanity_check" in df:
        df = df[df["sanity_check"].fillna("").astype(str) == ""]
    for column, wanted in (("dataset", dataset), ("method", method), ("encoder", encoder)):
        if wanted:
            df = df[df[column].isin(wanted.split(","))]
    df["variant"] = _variant_labels(df) if len(df) else ""
    df["setting"] = df["dataset_params"].map(_setting)
    return df


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per group, plus the run count."""
    if df.empty:
        return pd.DataFrame(columns=GROUP + ["n_runs"])
    grouped = df.groupby(GROUP, dropna=False)
    out = grouped.size().rename("n_runs").reset_index()
    for m in METRICS:
        stats = grouped[m].agg(["mean", "std"]).reset_index(drop=True)
        out[f"{m}_mean"] = stats["mean"].round(4).values
        out[f"{m}_std"] = stats["std"].fillna(0.0).round(4).values
    out["seeds"] = grouped["seed"].apply(lambda s: ",".join(str(int(v)) for v in sorted(set(s)))).values
    return out.sort_values(GROUP).reset_index(drop=True)


BASELINES = ("zeroshot_gpt", "crl_projection")
GAIN_EPS = 1e-4  # NMI differences below this are float noise (rows keep 6 decimals): never a gain or a loss


def gains(df: pd.DataFrame, metric: str = "nmi") -> pd.DataFrame:
    """Each method's gain over its starting point (``zeroshot_gpt``) and over ``crl_projection``, with the
    same dataset, setting, aspect, encoder and words, paired by seed: mean, std and a 95 % t-interval.
    A gain whose interval includes 0 (or that has fewer than 2 paired seeds) is not called a gain; a method
    that scores what the baseline scores on every seed (within ``GAIN_EPS``) shows "no change"."""
    from scipy import stats

    keys = ["dataset", "setting", "aspect", "encoder", "words_source"]
    out = []
    for key, part in df.groupby(keys, dropna=False):
        for base in BASELINES:
            ref = part[part["method"] == base].groupby("seed")[metric].mean()
            if ref.empty:
                continue
            for (method, variant), rows in part[~part["method"].isin(BASELINES)].groupby(["method", "variant"]):
                paired = rows.groupby("seed")[metric].mean()
                diff = (paired - ref).dropna()
                n = len(diff)
                mean = float(diff.mean()) if n else np.nan
                std = float(diff.std(ddof=1)) if n > 1 else np.nan
                half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else np.nan
                low, high = mean - half, mean + half
                verdict = ("n/a (<2 seeds)" if n < 2 else
                           "no change (same as the baseline)" if diff.abs().max() < GAIN_EPS else
                           "gain" if low > GAIN_EPS else "loss" if high < -GAIN_EPS else "no gain (within seed noise)")
                out.append(dict(zip(keys, key)) | {"method": method, "variant": variant, "baseline": base,
                                                   "n_seeds": n, f"{metric}_gain": round(mean, 4),
                                                   "gain_std": round(std, 4), "ci95_low": round(low, 4),
                                                   "ci95_high": round(high, 4), "verdict": verdict})
    return pd.DataFrame(out)


def gains_markdown(table: pd.DataFrame, metric: str = "nmi") -> str:
    """One line per method and task: its gain over each baseline with the 95 % interval and the verdict."""
    if table.empty:
        return ""
    keys = ["dataset", "setting", "aspect", "method", "variant"]
    bases = [b for b in BASELINES if b in set(table["baseline"])]
    lines = [f"## Gain over the starting point ({metric.upper()}, paired by seed, 95 % interval)", "",
             "Gain = the method's NMI minus the baseline's, same seed, words and encoder. A gain whose 95 % interval "
             "includes 0 is reported as no gain.", "",
             "| dataset | setting | aspect | method | seeds | " + " | ".join(f"vs {b}" for b in bases) + " |",
             "|---|---|---|---|---|" + "---|" * len(bases)]
    for key, part in sorted(table.groupby(keys), key=lambda kv: _setting_order(kv[0])):
        dataset, setting, aspect, method, variant = key
        by_base = {r["baseline"]: r for _, r in part.iterrows()}
        cells = []
        for base in bases:
            if base not in by_base:
                cells.append("–")
                continue
            r = by_base[base]
            interval = ("" if r["n_seeds"] < 2 else f" [{r['ci95_low']:+.3f}, {r['ci95_high']:+.3f}]")
            cells.append(f"{r[f'{metric}_gain']:+.3f}{interval} {r['verdict']}")
        label = method + (f" [{variant}]" if variant else "")
        seeds = max(int(r["n_seeds"]) for r in by_base.values())
        lines.append(f"| {dataset} | {setting} | {aspect} | {label} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def attach_reported(board: pd.DataFrame, reported: Path) -> pd.DataFrame:
    """Add the published NMI/RI (and their source) beside our numbers, in separate columns."""
    if not reported.is_file() or board.empty:
        return board.assign(reported_nmi=np.nan, reported_ri=np.nan, reported_source="")
    rep = pd.read_csv(reported)
    rep = rep.rename(columns={"nmi": "reported_nmi", "ri": "reported_ri", "source": "reported_source"})
    return board.merge(rep[["method", "dataset", "aspect", "reported_nmi", "reported_ri", "reported_source"]],
                       on=["method", "dataset", "aspect"], how="left")


def _cell(mean: float, std: float, n: int) -> str:
    return f"{mean:.4f} ± {std:.4f}" if n > 1 else f"{mean:.4f}"


ORACLE_WORDS = "class_names"
LEVELS = ("easy", "medium", "hard")


def _setting_order(key: tuple) -> tuple:
    """Sort key for (dataset, setting, ...): difficulty levels in their own order, not alphabetically."""
    dataset, setting, *rest = key
    level = str(setting).split()[0] if str(setting).split() else ""
    rank = LEVELS.index(level) if level in LEVELS else len(LEVELS)
    return (str(dataset), rank, str(setting), *map(str, rest))


def to_markdown(board: pd.DataFrame, metric: str = "nmi") -> str:
    """One table per (dataset, setting, encoder, words): rows = aspects, columns = method variants, best in bold.

    A method that is handed the true class names (``zeroshot_label``) is shown in every table of its dataset,
    setting and encoder as a reference column marked "oracle"; it is not a competitor, so it is never bold.
    """
    lines = [f"# mcbench leaderboard ({metric.upper()}, mean ± std over seeds)", "",
             "Derived from the result rows by `mcbench-leaderboard`; never edited by hand. Bold = best in its row "
             "(oracle columns, which are given the true class names, excluded). Published numbers are in the "
             "`reported` columns of leaderboard.csv, never mixed with ours.", ""]
    board = board.assign(label=board["method"] + board["variant"].map(lambda v: f" [{v}]" if v else ""))
    groups = board.groupby(["dataset", "setting", "encoder"], dropna=False)
    for (dataset, setting, encoder), group in sorted(groups, key=lambda kv: _setting_order(kv[0])):
        ref = group[group["words_source"] == ORACLE_WORDS].assign(label=lambda d: d["label"] + " (oracle)")
        others = group[group["words_source"] != ORACLE_WORDS]
        tables = [(words, pd.concat([part, ref])) for words, part in others.groupby("words_source", dropna=False)]
        if not tables:
            tables = [(ORACLE_WORDS, ref)]
        for words, part in tables:
            labels = list(dict.fromkeys(part.sort_values(["words_source", "label"])["label"]))
            lines += [f"## {dataset} ({setting}) · encoder {encoder} · words {words}", "",
                      "| aspect | " + " | ".join(labels) + " | runs |", "|---" * (len(labels) + 2) + "|"]
            for aspect, rows in part.groupby("aspect"):
                by_label = {r["label"]: r for _, r in rows.iterrows()}
                ranked = [r[f"{metric}_mean"] for lab, r in by_label.items() if not lab.endswith("(oracle)")]
                best = max(ranked) if ranked else np.nan
                cells = []
                for label in labels:
                    if label not in by_label:
                        cells.append("–")
                        continue
                    r = by_label[label]
                    text = _cell(r[f"{metric}_mean"], r[f"{metric}_std"], r["n_runs"])
                    bold = r[f"{metric}_mean"] == best and not label.endswith("(oracle)")
                    cells.append(f"**{text}**" if bold else text)
                runs = "/".join(str(int(by_label[lab]["n_runs"])) if lab in by_label else "0" for lab in labels)
                lines.append(f"| {aspect} | " + " | ".join(cells) + f" | {runs} |")
            lines.append("")
    return "\n".join(lines)


def sanity_markdown(out_dir: Path) -> str:
    """Per method and settings: did the sanity suite pass (evidence in sanity.md)?"""
    path = out_dir / "sanity.csv"
    if not path.is_file():
        return ""
    from mcbench.sanity import CHECKS, summarize

    verdicts = pd.read_csv(path)
    summary = summarize(verdicts)
    blind = set()
    if "applies" in verdicts:  # checks that do not apply (the interest swap of an aspect-blind control)
        off = verdicts[~verdicts["applies"].astype(bool)]
        blind = set(zip(off["method"], off["variant"], off["check"]))
    lines = ["## Sanity checks", "", "Evidence: [sanity.md](sanity.md) (`mcbench-sanity`). A method above the "
             "random-encoder band is flagged as leaking.", "",
             "| method | settings | " + " | ".join(CHECKS) + " |", "|---|---|" + "---|" * len(CHECKS)]
    for (method, variant), part in summary.groupby(["method", "variant"]):
        marks = {r["check"]: "pass" if r["passed"] else "**FAIL**" for _, r in part.iterrows()}
        marks.update({c: "n/a" for m, v, c in blind if (m, v) == (method, variant) and c not in marks})
        lines.append(f"| {method} | {variant} | " + " | ".join(marks.get(c, "–") for c in CHECKS) + " |")
    return "\n".join(lines) + "\n"


def plot_bars(board: pd.DataFrame, out_dir: Path, metric: str = "nmi") -> list[Path]:
    """A bar chart per dataset setting: aspects on the x axis, one bar per method, error bars = std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, setting, encoder), part in board.groupby(["dataset", "setting", "encoder"], dropna=False):
        part = part.assign(label=part["method"] + part["variant"].map(lambda v: f" [{v}]" if v else ""))
        aspects = sorted(part["aspect"].unique())
        labels = list(dict.fromkeys(part["label"]))
        width = 0.8 / max(1, len(labels))
        fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(aspects) + 0.4 * len(labels)), 3.6))
        for j, label in enumerate(labels):
            rows = part[part["label"] == label].set_index("aspect")
            means = [rows[f"{metric}_mean"].get(a, np.nan) for a in aspects]
            stds = [rows[f"{metric}_std"].get(a, 0.0) for a in aspects]
            ax.bar(np.arange(len(aspects)) + j * width - 0.4 + width / 2, means, width, yerr=stds, capsize=2,
                   label=label)
        ax.set_xticks(np.arange(len(aspects)), aspects)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(metric.upper())
        ax.set_title(f"{dataset} ({setting}) · {encoder}")
        ax.legend(fontsize=7, ncol=2, loc="lower right")
        fig.tight_layout()
        slug = "-".join(s.replace(" ", "_").replace("=", "") for s in (dataset, setting, encoder) if s)
        path = out_dir / f"{slug}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_levels(board: pd.DataFrame, out_dir: Path, metric: str = "nmi") -> list[Path]:
    """Per dataset and encoder with more than one difficulty level: NMI per level per method, a panel per aspect
    (error bars = std over seeds; the oracle dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = board.assign(level=board["setting"].str.split().str[0],
                         label=board["method"] + board["variant"].map(lambda v: f" [{v}]" if v else ""))
    board = board[board["level"].isin(LEVELS)]
    written = []
    for (dataset, encoder), part in board.groupby(["dataset", "encoder"], dropna=False):
        levels = [lv for lv in LEVELS if lv in set(part["level"])]
        if len(levels) < 2:
            continue
        aspects = sorted(part["aspect"].unique())
        fig, axes = plt.subplots(1, len(aspects), figsize=(3.2 * len(aspects) + 1.5, 3.4), sharey=True,
                                 squeeze=False)
        for ax, aspect in zip(axes[0], aspects):
            rows = part[part["aspect"] == aspect]
            for label, line in rows.groupby("label"):
                line = line.set_index("level").reindex(levels)
                oracle = (line["words_source"] == ORACLE_WORDS).any()
                ax.errorbar(range(len(levels)), line[f"{metric}_mean"], yerr=line[f"{metric}_std"].fillna(0),
                            marker="o", capsize=2, linestyle="--" if oracle else "-",
                            label=label + (" (oracle)" if oracle else ""))
            ax.set_xticks(range(len(levels)), levels)
            ax.set_ylim(0, 1.05)
            ax.set_title(aspect)
        axes[0][0].set_ylabel(metric.upper())
        axes[0][-1].legend(fontsize=6, loc="lower left")
        fig.suptitle(f"{dataset} · {encoder}: {metric.upper()} per difficulty level")
        fig.tight_layout()
        path = out_dir / f"{dataset}-{encoder}-levels.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def build(results: str | Path, out_dir: str | Path, dataset: str | None = None, method: str | None = None,
          encoder: str | None = None, plots: bool = True) -> pd.DataFrame:
    out_dir = Path(out_dir)
    rows = load_rows(results, dataset, method, encoder)
    board = aggregate(rows)
    gain_table = gains(rows) if not rows.empty else pd.DataFrame()
    board = attach_reported(board, out_dir / "reported.csv")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "leaderboard.csv", board.to_csv(index=False))
    write_text_atomic(out_dir / "gains.csv", gain_table.to_csv(index=False))
    write_text_atomic(out_dir / "leaderboard.md", "\n".join(
        [to_markdown(board), gains_markdown(gain_table), sanity_markdown(out_dir)]))
    if plots and not board.empty:
        plot_bars(board, out_dir / "plots")
        plot_levels(board, out_dir / "plots")
    return board


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mcbench-leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/runs.csv", help="result rows (default: results/runs.csv)")
    parser.add_argument("--out", default="results", help="folder for leaderboard.csv/.md and plots/")
    parser.add_argument("--dataset", help="comma-separated dataset names to keep")
    parser.add_argument("--method", help="comma-separated method names to keep")
    parser.add_argument("--encoder", help="comma-separated encoder names to keep")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    if not Path(args.results).is_file():
        parser.error(f"no results file at {args.results}: run `mcbench` first or pass --results PATH")
    board = build(args.results, args.out, args.dataset, args.method, args.encoder, plots=not args.no_plots)
    print(f"{len(board)} leaderboard rows → {args.out}/leaderboard.csv, {args.out}/leaderboard.md"
          + ("" if args.no_plots else f", {args.out}/plots/"))


if __name__ == "__main__":
    main()
