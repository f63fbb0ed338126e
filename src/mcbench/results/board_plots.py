"""The leaderboard's figures: a bar chart per dataset setting, and each method's score across difficulty levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mcbench.results.board_markdown import ORACLE_MARK, label, level_of, level_rank


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bars(board: pd.DataFrame, out_dir: Path, metric: str = "nmi") -> list[Path]:
    """A bar chart per dataset setting: aspects on the x axis, one bar per method, error bars = std."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, setting, encoder), part in board.groupby(["dataset", "setting", "encoder"], dropna=False):
        part = part.assign(label=part.apply(label, axis=1))
        aspects = sorted(part["aspect"].unique())
        labels = list(dict.fromkeys(part["label"]))
        width = 0.8 / max(1, len(labels))
        fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(aspects) + 0.4 * len(labels)), 3.6))
        for j, lab in enumerate(labels):
            rows = part[part["label"] == lab].groupby("aspect")
            means = [rows[f"{metric}_mean"].mean().get(a, np.nan) for a in aspects]
            stds = [rows[f"{metric}_std"].mean().fillna(0.0).get(a, 0.0) for a in aspects]
            ax.bar(np.arange(len(aspects)) + j * width - 0.4 + width / 2, means, width, yerr=stds, capsize=2,
                   label=lab)
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
    """Per dataset and encoder with more than one difficulty level: the score per level per method, a panel
    per aspect (error bars = std over runs; references dashed)."""
    plt = _pyplot()
    board = board.assign(level=board["setting"].map(level_of), label=board.apply(label, axis=1))
    board = board[board["level"] != ""]
    written = []
    for (dataset, encoder), part in board.groupby(["dataset", "encoder"], dropna=False):
        levels = sorted(set(part["level"]), key=lambda lv: (level_rank(lv), lv))
        if len(levels) < 2:
            continue
        aspects = sorted(part["aspect"].unique())
        fig, axes = plt.subplots(1, len(aspects), figsize=(3.2 * len(aspects) + 1.5, 3.4), sharey=True,
                                 squeeze=False)
        for ax, aspect in zip(axes[0], aspects):
            rows = part[part["aspect"] == aspect]
            for lab, line in rows.groupby("label"):
                line = line.groupby("level")[[f"{metric}_mean", f"{metric}_std"]].mean().reindex(levels)
                ax.errorbar(range(len(levels)), line[f"{metric}_mean"], yerr=line[f"{metric}_std"].fillna(0),
                            marker="o", capsize=2, linestyle="--" if lab.endswith(ORACLE_MARK) else "-", label=lab)
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
