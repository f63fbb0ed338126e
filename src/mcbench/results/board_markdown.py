"""The leaderboard as Markdown: score tables, gains over the baselines, headroom shares, sanity verdicts.

Reference columns are never bold and never ranked: the ``ceiling`` (a probe trained with the labels) and any
method handed the true class names (``zeroshot_label``, "oracle"). Rows that are not a test result of a
personalised method carry a mark and are not ranked either: "best-match" (a classic method scored by its
best-matching clustering per aspect, an oracle selection) and † (image sets used to tune that method).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mcbench.results.gains import BASELINES, HEADROOM_BASELINE, MIN_IMAGE_SETS

ORACLE_WORDS = "class_names"
LEVELS = ("easy", "medium", "hard")  # in this order; other levels (e.g. the noise-based ones) follow, by name
BEST_MATCH = "best_match"
TUNED_MARK = " †"
BEST_MATCH_MARK = " (best-match: oracle selection)"
ORACLE_MARK = " (oracle)"
CEILING = "ceiling (probe)"

INTRO = """Derived from the result rows by `mcbench-leaderboard`; never edited by hand. Each cell: mean ± std over \
the runs (image sets × method seeds; a single run has no std). One row counts once per `run_id` (the newest \
copy). Bold = best in its row among the personalised methods.

* **{ceiling}**: a 5-fold cross-validated logistic-regression probe on the frozen image embeddings, trained \
*with the labels* (`ceiling_nmi`/`ceiling_acc` in the rows): what a linear read-out of the images reaches. A \
reference, never a method, never bold; NMI and ACC only.
* **(oracle)**: given the true class names as its words; a reference, never bold.
* **(best-match: oracle selection)**: a classic multiple-clustering method that returns several clusterings \
without knowing the named aspect, scored by the one that best matches each aspect. Personalised methods do \
not get this selection; never ranked beside them.
* **†**: the method's hyperparameters were chosen on these image sets (`tuned_on` in the rows, \
`conf/tuned_on.yaml`): not a test result; never bold.
* **runs**: image sets × method seeds per column; an image set is one dataset at one level drawn with one \
generator seed.

Published numbers are in the `reported` columns of leaderboard.csv, never mixed with ours.
"""


def label(row: pd.Series | dict) -> str:
    """A board column's name: the method, its varying settings, and its marks."""
    text = str(row["method"]) + (f" [{row['variant']}]" if row.get("variant") else "")
    if bool(row.get("tuned", False)):
        text += TUNED_MARK
    if row.get("selection") == BEST_MATCH:
        text += BEST_MATCH_MARK
    if row.get("words_source") == ORACLE_WORDS:
        text += ORACLE_MARK
    return text


def ranked(label_text: str) -> bool:
    return not any(mark in label_text for mark in (TUNED_MARK, BEST_MATCH_MARK, ORACLE_MARK))


def level_of(setting: str) -> str:
    """The difficulty level a setting names (``"hard n=600"`` → ``"hard"``), or ``""``."""
    words = str(setting).split()
    return words[0] if words and "=" not in words[0] else ""


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def setting_order(key: tuple) -> tuple:
    """Sort key for (dataset, setting, ...): difficulty levels in their own order, not alphabetically."""
    dataset, setting, *rest = key
    return (str(dataset), level_rank(level_of(setting)), str(setting), *map(str, rest))


def _cell(mean: float, std: float, n: int) -> str:
    if mean != mean:
        return "–"
    return f"{mean:.4f} ± {std:.4f}" if n > 1 and std == std else f"{mean:.4f}"


def _column_order(labels: list[str]) -> list[str]:
    """References (oracle) first, then the ranked methods, then the marked ones."""
    return sorted(labels, key=lambda lab: (0 if lab.endswith(ORACLE_MARK) else 1 if ranked(lab) else 2, lab))


def _runs(by_label: dict[str, pd.Series], labels: list[str]) -> str:
    """"5 × 3" (image sets × method seeds) when every column has the same runs; otherwise the most common
    count, then the columns that differ, named: "5 × 1 (multi_map, multi_sub: 5 × 3)"."""
    def describe(r: pd.Series) -> str:
        sets, seeds, runs = int(r["n_image_sets"]), int(r["n_seeds"]), int(r["n_runs"])
        return f"{sets} × {seeds}" if sets * seeds == runs else f"{runs} runs"

    described = {lab: describe(by_label[lab]) for lab in labels if lab in by_label}
    counts = pd.Series(list(described.values())).value_counts()
    common = counts.index[0]
    others: dict[str, list[str]] = {}
    for lab, desc in described.items():
        if desc != common:
            others.setdefault(desc, []).append(lab)
    rest = "; ".join(f"{', '.join(labs)}: {desc}" for desc, labs in others.items())
    return common + (f" ({rest})" if rest else "")


@dataclass
class BoardTable:
    """One leaderboard table: a (dataset, setting, encoder, words) group, a row per aspect and metric, a column per
    method. Cells are text; ``bold`` marks the best ranked method of each row. The Markdown (``to_markdown``) and the
    report's HTML are both written from these."""

    dataset: str
    setting: str
    encoder: str
    words: str
    head: list[str]                       # aspect, metric, [ceiling], the methods, runs
    rows: list[list[str]] = field(default_factory=list)
    bold: list[list[bool]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset} ({self.setting}) · encoder {self.encoder} · words {self.words}"


def board_tables(board: pd.DataFrame, metrics: tuple[str, ...] | str = ("nmi", "ri")) -> list[BoardTable]:
    """One table per (dataset, setting, encoder, words): a row per aspect and metric, a column per method."""
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if board.empty:
        return []
    out = []
    board = board.assign(label=board.apply(label, axis=1))
    groups = board.groupby(["dataset", "setting", "encoder"], dropna=False)
    for (dataset, setting, encoder), group in sorted(groups, key=lambda kv: setting_order(kv[0])):
        ceilings = {(a, m): _ceiling(rows, m) for a, rows in group.groupby("aspect") for m in metrics}
        ref = group[group["words_source"] == ORACLE_WORDS]
        others = group[group["words_source"] != ORACLE_WORDS]
        tables = [(words, pd.concat([part, ref])) for words, part in others.groupby("words_source", dropna=False)]
        for words, part in tables or [(ORACLE_WORDS, ref)]:
            labels = _column_order(list(dict.fromkeys(part["label"])))
            show_ceiling = any(v == v for v in ceilings.values())
            head = ([CEILING] if show_ceiling else []) + labels
            table = BoardTable(str(dataset), str(setting), str(encoder), str(words),
                               ["aspect", "metric"] + head + ["runs (image sets × seeds)"])
            for aspect, rows in part.groupby("aspect"):
                by_label = {r["label"]: r for _, r in rows.iterrows()}
                for metric in metrics:
                    means = {lab: r.get(f"{metric}_mean", np.nan) for lab, r in by_label.items()}
                    best = max([v for lab, v in means.items() if ranked(lab) and v == v], default=np.nan)
                    cells = [f"{ceilings[(aspect, metric)]:.4f}" if ceilings[(aspect, metric)] == ceilings[
                        (aspect, metric)] else "–"] if show_ceiling else []
                    bold = [False] * len(cells)
                    for lab in labels:
                        if lab not in by_label:
                            cells.append("–")
                            bold.append(False)
                            continue
                        r = by_label[lab]
                        cells.append(_cell(means[lab], r.get(f"{metric}_std", np.nan), int(r["n_runs"])))
                        bold.append(bool(ranked(lab) and means[lab] == best))
                    table.rows.append([str(aspect), metric.upper()] + cells + [_runs(by_label, labels)])
                    table.bold.append([False, False] + bold + [False])
            out.append(table)
    return out


def to_markdown(board: pd.DataFrame, metrics: tuple[str, ...] | str = ("nmi", "ri")) -> str:
    """The ``board_tables`` as Markdown, under the title and the legend (``INTRO``)."""
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    names = ", ".join(m.upper() for m in metrics)
    lines = [f"# mcbench leaderboard ({names})", "", INTRO.format(ceiling=CEILING)]
    if board.empty:
        return "\n".join(lines + ["No result rows."])
    for table in board_tables(board, metrics):
        lines += [f"## {table.title}", "", "| " + " | ".join(table.head) + " |", "|---" * len(table.head) + "|"]
        for cells, bold in zip(table.rows, table.bold):
            lines.append("| " + " | ".join(f"**{c}**" if b else c for c, b in zip(cells, bold)) + " |")
        lines.append("")
    return "\n".join(lines)


def _ceiling(rows: pd.DataFrame, metric: str) -> float:
    column = f"ceiling_{metric}"
    values = pd.to_numeric(rows[column], errors="coerce").dropna() if column in rows else pd.Series(dtype=float)
    return float(values.mean()) if len(values) else np.nan


INTERVAL_NOTE = (f"Gain = the method's score minus the baseline's on the same image set and method seed (same "
                 f"words and encoder); a method's seeds on one image set are averaged first. [low, high] = 95 % "
                 f"t-interval of the mean gain over image sets: how far the gain would move on another sample of "
                 f"images drawn the same way (seed noise alone is smaller). A verdict needs ≥ {MIN_IMAGE_SETS} "
                 f"image sets; a gain whose interval includes 0 is no gain.")


def gains_markdown(table: pd.DataFrame) -> str:
    """Per metric: one line per method and task, its gain over each baseline with the interval and verdict."""
    if table.empty:
        return ""
    table = table.assign(label=table.apply(label, axis=1))
    keys = ["dataset", "setting", "aspect", "label"]
    lines = []
    for metric, by_metric in table.groupby("metric", sort=False):
        bases = [b for b in BASELINES if b in set(by_metric["baseline"])]
        lines += [f"## Gain over the starting point ({metric.upper()}, paired by image set and seed, 95 % "
                  f"interval over image sets)", "", INTERVAL_NOTE if not lines else "Paired and replicated as above.", "",
                  "| dataset | setting | aspect | method | image sets | " + " | ".join(f"vs {b}" for b in bases)
                  + " |", "|---|---|---|---|---|" + "---|" * len(bases)]
        for key, part in sorted(by_metric.groupby(keys), key=lambda kv: setting_order(kv[0])):
            by_base = {r["baseline"]: r for _, r in part.iterrows()}
            cells = []
            for base in bases:
                r = by_base.get(base)
                if r is None:
                    cells.append("–")
                    continue
                interval = "" if r["ci95_low"] != r["ci95_low"] else f" [{r['ci95_low']:+.3f}, {r['ci95_high']:+.3f}]"
                cells.append(f"{r['gain']:+.3f}{interval} {r['verdict']}")
            sets = max(int(r["n_image_sets"]) for r in by_base.values())
            lines.append("| " + " | ".join(map(str, key)) + f" | {sets} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def headroom_markdown(table: pd.DataFrame) -> str:
    """Per task: the baseline, the ceiling, the headroom between them, and each method's share of it."""
    if table.empty or "headroom_share" not in table:
        return ""
    part = table[(table["baseline"] == HEADROOM_BASELINE) & table["headroom"].notna()]
    if part.empty:
        return ""
    part = part.assign(label=part.apply(label, axis=1))
    labels = _column_order(list(dict.fromkeys(part["label"])))
    lines = []
    for metric, rows in part.groupby("metric", sort=False):
        lines += [f"## Share of headroom captured ({metric.upper()})", "",
                  f"Share = (method − {HEADROOM_BASELINE}) / ({CEILING} − {HEADROOM_BASELINE}), on the same image "
                  f"sets: 0 % = no better than its zero-shot start, 100 % = as good as a linear probe trained with "
                  f"the labels. [low, high] = the gain's 95 % interval over image sets, divided by the headroom. "
                  f"n/a: less than 0.01 headroom.", "",
                  f"| dataset | setting | aspect | {HEADROOM_BASELINE} | {CEILING} | headroom | "
                  + " | ".join(labels) + " |", "|---" * (6 + len(labels)) + "|"]
        for key, task in sorted(rows.groupby(["dataset", "setting", "aspect"]), key=lambda kv: setting_order(kv[0])):
            by_label = {r["label"]: r for _, r in task.iterrows()}
            first = next(iter(by_label.values()))
            base = first["ceiling"] - first["headroom"]
            cells = []
            for lab in labels:
                r = by_label.get(lab)
                if r is None:
                    cells.append("–")
                elif r["headroom_share"] != r["headroom_share"]:
                    cells.append("n/a")
                else:
                    interval = ("" if r["share_low"] != r["share_low"]
                                else f" [{100 * r['share_low']:+.0f}, {100 * r['share_high']:+.0f}]")
                    cells.append(f"{100 * r['headroom_share']:+.0f} %{interval}")
            lines.append("| " + " | ".join(map(str, key)) + f" | {base:.4f} | {first['ceiling']:.4f} | "
                         f"{first['headroom']:+.4f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
